//! Per-block reduction kernels. A block is cut into fixed sub-slices of
//! [`SUB_ELEMS`] elements (independent of the thread count); rayon reduces the
//! sub-slices in parallel and their partial statistics are merged in index
//! order, so the result never depends on how many threads ran.

use crate::accum::Acc;
use crate::element::Element;
use rayon::prelude::*;

/// Elements per sub-slice: 16 Ki elements (128 KiB of f64) stays in L2 for the
/// second (variance) pass.
pub const SUB_ELEMS: usize = 16 * 1024;

/// Pairwise sum of `f(x)` over `xs` (NumPy's scheme: 8 independent lanes on
/// runs of at most 256 elements, halves added recursively). Error grows with
/// O(log n) instead of O(n).
#[inline]
fn pairwise<T: Copy>(xs: &[T], f: &impl Fn(T) -> f64) -> f64 {
    if xs.len() <= 256 {
        let mut l = [0.0f64; 8];
        let mut it = xs.chunks_exact(8);
        for c in &mut it {
            for j in 0..8 {
                l[j] += f(c[j]);
            }
        }
        let mut tail = 0.0;
        for &x in it.remainder() {
            tail += f(x);
        }
        ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])) + tail
    } else {
        let half = (xs.len() / 2) / 8 * 8;
        pairwise(&xs[..half], f) + pairwise(&xs[half..], f)
    }
}

/// Statistics of one sub-slice. `want_m2` enables the second pass that
/// computes `Σ(x − mean)²` (needed only for var/std).
pub fn reduce_slice<T: Element>(xs: &[T], want_m2: bool) -> Acc {
    let mut acc = Acc::default();
    if xs.is_empty() {
        return acc;
    }
    if T::DTYPE.is_float() {
        let mut mn = [f64::INFINITY; 4];
        let mut mx = [f64::NEG_INFINITY; 4];
        let mut nan = 0u64;
        let mut it = xs.chunks_exact(4);
        for c in &mut it {
            for j in 0..4 {
                let v = c[j].to_f64();
                nan += u64::from(v.is_nan());
                // Comparisons with NaN are false, so NaN never becomes min/max.
                mn[j] = if v < mn[j] { v } else { mn[j] };
                mx[j] = if v > mx[j] { v } else { mx[j] };
            }
        }
        for &x in it.remainder() {
            let v = x.to_f64();
            nan += u64::from(v.is_nan());
            mn[0] = if v < mn[0] { v } else { mn[0] };
            mx[0] = if v > mx[0] { v } else { mx[0] };
        }
        acc.min = mn.iter().copied().fold(f64::INFINITY, f64::min);
        acc.max = mx.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        acc.nan = nan;
        acc.n = xs.len() as u64 - nan;
        let masked = |x: T| {
            let v = x.to_f64();
            if v.is_nan() { 0.0 } else { v }
        };
        acc.sum = pairwise(xs, &masked);
        if acc.n > 0 {
            acc.mean = acc.sum / acc.n as f64;
            if !acc.mean.is_finite() {
                // The sum overflowed: sum values scaled by 2^-64 (exact, a power
                // of two) and scale the mean back, so rounding is as unscaled.
                const DOWN: f64 = 1.0 / 18446744073709551616.0;
                acc.mean = pairwise(xs, &|x: T| masked(x) * DOWN) / acc.n as f64 / DOWN;
            }
            // The mean lies in [min, max]; clamping undoes rounding past
            // them, so equal values (even f64::MAX) have their own value as
            // mean and a variance of exactly 0 (not (1 ulp)² = inf).
            acc.mean = acc.mean.clamp(acc.min, acc.max);
            if want_m2 {
                let m = acc.mean;
                acc.m2 = pairwise(xs, &|x: T| {
                    let v = x.to_f64();
                    if v.is_nan() { 0.0 } else { (v - m) * (v - m) }
                });
            }
        }
    } else {
        let mut s: i128 = 0;
        let mut mn = i128::MAX;
        let mut mx = i128::MIN;
        for &x in xs {
            let v = x.to_i128();
            s += v;
            mn = mn.min(v);
            mx = mx.max(v);
        }
        acc.n = xs.len() as u64;
        acc.isum = s;
        acc.imin = mn;
        acc.imax = mx;
        acc.min = mn as f64;
        acc.max = mx as f64;
        acc.mean = s as f64 / acc.n as f64;
        if want_m2 {
            let m = acc.mean;
            acc.m2 = pairwise(xs, &|x: T| {
                let d = x.to_f64() - m;
                d * d
            });
        }
    }
    acc
}

/// Statistics of a whole block, reduced by the current rayon pool over
/// fixed sub-slices and merged in order (deterministic for any pool size).
pub fn reduce_block<T: Element>(xs: &[T], want_m2: bool) -> Acc {
    let parts: Vec<Acc> = xs
        .par_chunks(SUB_ELEMS)
        .map(|c| reduce_slice(c, want_m2))
        .collect();
    Acc::merge_all(&parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accum::Finish;
    use crate::parse::Op;

    #[test]
    fn f32_sum_does_not_stall_at_2_pow_24() {
        // 2^25 ones in f32: naive f32 accumulation stops at 16777216.
        let xs = vec![1.0f32; 1 << 25];
        let a = reduce_block(&xs, false);
        let fin = Finish {
            ddof: 0,
            keep_nan: false,
            integer: false,
        };
        assert_eq!(a.value(Op::Sum, &fin).as_f64(), (1u64 << 25) as f64);
    }

    #[test]
    fn variance_when_mean_dwarfs_std() {
        // 1e9 + {0,1,2,3} repeated: var = 1.25 exactly; naive E[x²]−E[x]² gives garbage.
        let xs: Vec<f64> = (0..400_000).map(|i| 1e9 + (i % 4) as f64).collect();
        let a = reduce_block(&xs, true);
        let fin = Finish {
            ddof: 0,
            keep_nan: false,
            integer: false,
        };
        let v = a.value(Op::Var, &fin).as_f64();
        assert!((v - 1.25).abs() < 1e-9, "{v}");
    }

    #[test]
    fn thread_count_does_not_change_bits() {
        let xs: Vec<f64> = (0..300_001)
            .map(|i| crate::generate_values::uniform01(5, i) * 3.0 - 1.0)
            .collect();
        let run = |t| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
                .install(|| reduce_block(&xs, true))
        };
        let (a, b) = (run(1), run(3));
        assert_eq!(a.to_words(), b.to_words());
    }

    #[test]
    fn integer_extremes_are_exact() {
        let xs = vec![u64::MAX; 1000];
        let a = reduce_block(&xs, false);
        assert_eq!(a.isum, u64::MAX as i128 * 1000);
        let ys = [i64::MIN, i64::MAX, -1];
        let b = reduce_block(&ys, false);
        assert_eq!(
            (b.isum, b.imin, b.imax),
            (-2, i64::MIN as i128, i64::MAX as i128)
        );
    }

    #[test]
    fn nan_is_skipped_and_counted() {
        let xs = [1.0f64, f64::NAN, 3.0, f64::NAN, 5.0];
        let a = reduce_block(&xs, true);
        assert_eq!((a.n, a.nan, a.min, a.max, a.sum), (3, 2, 1.0, 5.0, 9.0));
        let keep = Finish {
            ddof: 0,
            keep_nan: true,
            integer: false,
        };
        assert!(a.value(Op::Mean, &keep).as_f64().is_nan());
    }

    fn stats(xs: &[f64]) -> [f64; 6] {
        let fin = Finish {
            ddof: 0,
            keep_nan: false,
            integer: false,
        };
        let a = Acc::merge_all(&[reduce_block(xs, true), Acc::default()]);
        [Op::Sum, Op::Mean, Op::Min, Op::Max, Op::Var, Op::Count].map(|o| a.value(o, &fin).as_f64())
    }

    #[test]
    fn extreme_values_have_known_answers() {
        // Near f64::MAX: the sum overflows, the mean must not.
        let big = vec![f64::MAX * 0.75; 50_000];
        let [sum, mean, min, _, var, n] = stats(&big);
        assert!(
            sum.is_infinite()
                && mean == f64::MAX * 0.75
                && min == f64::MAX * 0.75
                && var == 0.0
                && n == 50_000.0
        );
        // All NaN: nothing counted; sum 0 (as xarray's nansum), the rest NaN.
        let [sum, mean, min, max, var, n] = stats(&[f64::NAN; 100]);
        assert!(
            sum == 0.0 && n == 0.0 && mean.is_nan() && min.is_nan() && max.is_nan() && var.is_nan()
        );
        // ±inf as NumPy: [1, inf] -> mean inf; [inf, -inf] -> mean NaN; min/max are the infinities.
        let [_, mean, min, max, _, _] = stats(&[1.0, f64::INFINITY]);
        assert!(mean == f64::INFINITY && min == 1.0 && max == f64::INFINITY);
        let [_, mean, min, max, _, _] = stats(&[f64::INFINITY, f64::NEG_INFINITY]);
        assert!(mean.is_nan() && min == f64::NEG_INFINITY && max == f64::INFINITY);
        // Subnormals: 1000 × the smallest subnormal sums exactly.
        let tiny = f64::from_bits(1);
        let [sum, _, min, _, _, _] = stats(&vec![tiny; 1000]);
        assert!(sum == f64::from_bits(1000) && min == tiny);
        // Integer extremes: i64::MIN/MAX and u64::MAX sums stay exact.
        let i = reduce_block(&[i64::MIN, i64::MIN, i64::MAX], false);
        assert_eq!(i.isum, 2 * i64::MIN as i128 + i64::MAX as i128);
        let u = reduce_block(&vec![u64::MAX; 70_000], false);
        assert_eq!(u.isum, 70_000 * u64::MAX as i128);
    }
}
