//! Deterministic synthetic data: every value is a pure function of
//! (seed, global C-order index), so a file written by any number of ranks is
//! byte-for-byte the same.

use crate::parse::Dist;

/// SplitMix64 finaliser: a fast, well-mixed 64-bit hash.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in [0, 1) for (seed, stream index).
#[inline]
pub fn uniform01(seed: u64, i: u64) -> f64 {
    let h = mix64(mix64(seed) ^ i);
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The value at global index `i` for `dist`, or NaN with probability `nan_fraction`.
#[inline]
pub fn value_at(seed: u64, i: u64, dist: Dist, nan_fraction: f64) -> f64 {
    // Three independent streams per element: two for the value, one for NaN.
    let base = i.wrapping_mul(3);
    if nan_fraction > 0.0 && uniform01(seed, base + 2) < nan_fraction {
        return f64::NAN;
    }
    match dist {
        Dist::Uniform { lo, hi } => lo + (hi - lo) * uniform01(seed, base),
        Dist::Normal { mean, std } => {
            // Box–Muller (cosine branch); 1 − u keeps the log argument in (0, 1].
            let u1 = 1.0 - uniform01(seed, base);
            let u2 = uniform01(seed, base + 1);
            mean + std * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_match_the_distribution() {
        let n = 200_000u64;
        let d = Dist::Normal {
            mean: 10.0,
            std: 2.0,
        };
        let xs: Vec<f64> = (0..n).map(|i| value_at(9, i, d, 0.0)).collect();
        let m = xs.iter().sum::<f64>() / n as f64;
        let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n as f64;
        // Standard errors: 2/sqrt(n) = 0.0045 for the mean; ~0.0126 for the variance.
        assert!((m - 10.0).abs() < 0.03, "{m}");
        assert!((v - 4.0).abs() < 0.08, "{v}");
        let u: Vec<f64> = (0..n)
            .map(|i| value_at(9, i, Dist::Uniform { lo: -1.0, hi: 3.0 }, 0.0))
            .collect();
        assert!(u.iter().all(|&x| (-1.0..3.0).contains(&x)));
        let nan = (0..n).filter(|&i| value_at(1, i, d, 0.25).is_nan()).count() as f64 / n as f64;
        assert!((nan - 0.25).abs() < 0.01, "{nan}");
    }

    #[test]
    fn depends_only_on_seed_and_index() {
        let d = Dist::Uniform { lo: 0.0, hi: 1.0 };
        assert_eq!(
            value_at(3, 12345, d, 0.0).to_bits(),
            value_at(3, 12345, d, 0.0).to_bits()
        );
        assert_ne!(value_at(3, 12345, d, 0.0), value_at(4, 12345, d, 0.0));
    }
}
