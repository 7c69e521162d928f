//! Mergeable partial statistics of a part of an array, and how they become
//! final results.
//!
//! Algorithms:
//! * **Sum of floats**: pairwise summation inside a part (see `kernels`),
//!   parts combined with Knuth's TwoSum into an unevaluated pair `sum + sum_c`
//!   (compensated summation). All in f64, also for f32 data.
//! * **Sum of integers**: exact, in i128 (no overflow below 2^63 values).
//! * **Mean**: compensated sum ÷ count; when the sum overflows f64 (values
//!   near `f64::MAX`), the Chan-merged running mean is used instead.
//! * **Variance**: per part a two-pass `M2 = Σ(x − mean)²` on cache-resident
//!   data, parts merged with Chan et al.'s pairwise update
//!   `M2 = M2a + M2b + δ²·na·nb/n` — no catastrophic cancellation when mean ≫ std.
//! * **min/max** skip NaN.
//!
//! Merging is done in a fixed order (block index, then sub-slice index), so
//! the result is bit-identical for every rank and thread count.

use crate::parse::Op;
use serde::Serialize;

/// Partial statistics of some elements. `Acc::default()` is the empty part.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Acc {
    /// Values counted (NaN excluded).
    pub n: u64,
    /// NaN values seen.
    pub nan: u64,
    /// Leading part of the compensated float sum.
    pub sum: f64,
    /// Trailing (error) part of the compensated float sum.
    pub sum_c: f64,
    /// Exact sum for integer data.
    pub isum: i128,
    /// Running mean of counted values.
    pub mean: f64,
    /// Sum of squared deviations from `mean`.
    pub m2: f64,
    /// Minimum (floats), `+inf` when empty.
    pub min: f64,
    /// Maximum (floats), `-inf` when empty.
    pub max: f64,
    /// Minimum (integers), `i128::MAX` when empty.
    pub imin: i128,
    /// Maximum (integers), `i128::MIN` when empty.
    pub imax: i128,
}

impl Default for Acc {
    fn default() -> Self {
        Acc {
            n: 0,
            nan: 0,
            sum: 0.0,
            sum_c: 0.0,
            isum: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            imin: i128::MAX,
            imax: i128::MIN,
        }
    }
}

/// Knuth's TwoSum: `a + b = s + e` exactly.
#[inline]
pub fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    let e = (a - (s - bb)) + (b - bb);
    (s, e)
}

/// Number of u64 words in the wire form of an `Acc`.
pub const ACC_WORDS: usize = 15;

impl Acc {
    /// Combine `self` (the earlier part) with `other` (the later part).
    pub fn merge(&self, other: &Acc) -> Acc {
        let (a, b) = (self, other);
        // The float statistics: one implementation, FloatAcc's.
        let f = FloatAcc::from(a).merge(&FloatAcc::from(b));
        Acc {
            isum: a.isum + b.isum,
            imin: a.imin.min(b.imin),
            imax: a.imax.max(b.imax),
            ..Acc::from(f)
        }
    }

    /// Merge a sequence of parts left to right.
    pub fn merge_all<'a>(parts: impl IntoIterator<Item = &'a Acc>) -> Acc {
        parts
            .into_iter()
            .fold(Acc::default(), |acc, p| acc.merge(p))
    }

    /// Fixed-size wire form for MPI messages.
    pub fn to_words(&self) -> [u64; ACC_WORDS] {
        [
            self.n,
            self.nan,
            self.sum.to_bits(),
            self.sum_c.to_bits(),
            self.isum as u64,
            (self.isum >> 64) as u64,
            self.mean.to_bits(),
            self.m2.to_bits(),
            self.min.to_bits(),
            self.max.to_bits(),
            self.imin as u64,
            (self.imin >> 64) as u64,
            self.imax as u64,
            (self.imax >> 64) as u64,
            0,
        ]
    }

    /// Inverse of [`Acc::to_words`].
    pub fn from_words(w: &[u64]) -> Acc {
        let i = |lo: u64, hi: u64| ((hi as i128) << 64) | lo as i128;
        Acc {
            n: w[0],
            nan: w[1],
            sum: f64::from_bits(w[2]),
            sum_c: f64::from_bits(w[3]),
            isum: i(w[4], w[5]),
            mean: f64::from_bits(w[6]),
            m2: f64::from_bits(w[7]),
            min: f64::from_bits(w[8]),
            max: f64::from_bits(w[9]),
            imin: i(w[10], w[11]),
            imax: i(w[12], w[13]),
        }
    }
}

/// [`Acc`] without its exact-integer fields, for float (or decoded) data:
/// half its size in memory (64 bytes) and on the wire (8 words instead of
/// 15). Grouped reductions hold one partial result per kept cell per group
/// met and send them to rank 0, so their cost is mostly the size of this
/// state. [`Acc::merge`] uses [`FloatAcc::merge`] for its float fields, so
/// results are the same bits whichever of the two carries them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FloatAcc {
    /// Values counted (NaN excluded).
    pub n: u64,
    /// NaN values seen.
    pub nan: u64,
    /// Leading part of the compensated sum.
    pub sum: f64,
    /// Trailing (error) part of the compensated sum.
    pub sum_c: f64,
    /// Running mean of counted values.
    pub mean: f64,
    /// Sum of squared deviations from `mean`.
    pub m2: f64,
    /// Minimum, `+inf` when empty.
    pub min: f64,
    /// Maximum, `-inf` when empty.
    pub max: f64,
}

impl Default for FloatAcc {
    fn default() -> Self {
        FloatAcc::from(&Acc::default())
    }
}

impl From<&Acc> for FloatAcc {
    fn from(a: &Acc) -> Self {
        FloatAcc {
            n: a.n,
            nan: a.nan,
            sum: a.sum,
            sum_c: a.sum_c,
            mean: a.mean,
            m2: a.m2,
            min: a.min,
            max: a.max,
        }
    }
}

impl From<FloatAcc> for Acc {
    fn from(f: FloatAcc) -> Self {
        Acc {
            n: f.n,
            nan: f.nan,
            sum: f.sum,
            sum_c: f.sum_c,
            mean: f.mean,
            m2: f.m2,
            min: f.min,
            max: f.max,
            ..Acc::default()
        }
    }
}

impl FloatAcc {
    /// Combine `self` (the earlier part) with `b` (the later part): TwoSum
    /// for the compensated sum, Chan et al.'s pairwise update for mean and
    /// M2 (scaled first where the means' difference would overflow).
    pub fn merge(&self, b: &FloatAcc) -> FloatAcc {
        let a = self;
        let (s, e) = two_sum(a.sum, b.sum);
        let n = a.n + b.n;
        let (mean, m2) = if a.n == 0 {
            (b.mean, b.m2)
        } else if b.n == 0 {
            (a.mean, a.m2)
        } else {
            let (na, nb, nf) = (a.n as f64, b.n as f64, n as f64);
            let delta = b.mean - a.mean;
            let mean = if delta.is_finite() {
                a.mean + delta * (nb / nf)
            } else {
                // Opposite huge means: scale first so the difference cannot overflow.
                a.mean * (na / nf) + b.mean * (nb / nf)
            };
            (mean, a.m2 + b.m2 + delta * delta * (na / nf) * nb)
        };
        FloatAcc {
            n,
            nan: a.nan + b.nan,
            sum: s,
            sum_c: a.sum_c + b.sum_c + e,
            mean,
            m2,
            min: a.min.min(b.min),
            max: a.max.max(b.max),
        }
    }

    /// The value of `op` (float data: `fin.integer` is false).
    pub fn value(&self, op: Op, fin: &Finish) -> Value {
        Acc::from(*self).value(op, fin)
    }
}

/// One statistic's value: exact integers stay integers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// An exact integer (counts, integer sums, integer min/max).
    Int(i128),
    /// A floating-point value; NaN and ±inf serialise as JSON `null`.
    Float(f64),
}

impl Value {
    /// The value as f64 (lossy for huge integers).
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Int(i) => i as f64,
            Value::Float(f) => f,
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(v) => write!(f, "{}", crate::number_format::fmt_float(*v)),
        }
    }
}

/// How partial statistics become final results.
#[derive(Clone, Copy, Debug)]
pub struct Finish {
    /// Delta degrees of freedom for var/std (0 population, 1 sample).
    pub ddof: u64,
    /// Propagate NaN (any NaN makes every float statistic NaN) instead of skipping it.
    pub keep_nan: bool,
    /// The data are integers (sum/min/max reported exactly).
    pub integer: bool,
}

impl Acc {
    /// The value of `op` for these partial statistics.
    pub fn value(&self, op: Op, fin: &Finish) -> Value {
        let nan_wins = fin.keep_nan && self.nan > 0;
        if op == Op::Count {
            return Value::Int(if fin.keep_nan {
                (self.n + self.nan) as i128
            } else {
                self.n as i128
            });
        }
        if nan_wins {
            return Value::Float(f64::NAN);
        }
        let n = self.n as f64;
        match op {
            Op::Sum if fin.integer => Value::Int(self.isum),
            // An overflowed (±inf) or NaN sum is reported as is; its correction term is meaningless.
            Op::Sum if !self.sum.is_finite() => Value::Float(self.sum),
            Op::Sum => Value::Float(self.sum + self.sum_c),
            Op::Min | Op::Max if self.n == 0 => Value::Float(f64::NAN),
            Op::Min if fin.integer => Value::Int(self.imin),
            Op::Max if fin.integer => Value::Int(self.imax),
            Op::Min => Value::Float(self.min),
            Op::Max => Value::Float(self.max),
            Op::Mean if self.n == 0 => Value::Float(f64::NAN),
            Op::Mean if fin.integer => Value::Float(self.isum as f64 / n),
            Op::Mean => {
                let s = self.sum + self.sum_c;
                Value::Float(if s.is_finite() { s / n } else { self.mean })
            }
            Op::Var | Op::Std => {
                if self.n <= fin.ddof {
                    return Value::Float(f64::NAN);
                }
                let var = self.m2 / (self.n - fin.ddof) as f64;
                Value::Float(if op == Op::Std { var.sqrt() } else { var })
            }
            Op::Count => unreachable!(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reduce_slice;

    fn values(n: usize, seed: u64, scale: f64) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let u = crate::generate_values::uniform01(seed, i as u64);
                if i % 13 == 7 {
                    f64::NAN
                } else {
                    1e4 + (u - 0.3) * scale
                }
            })
            .collect()
    }

    fn part(n: usize, seed: u64, scale: f64) -> Acc {
        reduce_slice(&values(n, seed, scale), true)
    }

    #[test]
    fn merged_parts_agree_with_the_whole_by_two_passes() {
        let fin = Finish {
            ddof: 0,
            keep_nan: false,
            integer: false,
        };
        let sizes = [(100, 1), (37, 2), (0, 3), (1, 4), (250, 5)];
        for &(na, sa) in &sizes {
            for &(nb, sb) in &sizes {
                let (xa, xb) = (values(na, sa, 1e3), values(nb, sb, 1e3));
                let m = FloatAcc::from(&reduce_slice(&xa, true))
                    .merge(&FloatAcc::from(&reduce_slice(&xb, true)));
                // Independent reference: two passes over the concatenation.
                let all: Vec<f64> = xa
                    .iter()
                    .chain(&xb)
                    .copied()
                    .filter(|x| !x.is_nan())
                    .collect();
                let nan = (na + nb - all.len()) as u64;
                assert_eq!((m.n, m.nan), (all.len() as u64, nan));
                if all.is_empty() {
                    assert!(m.value(Op::Mean, &fin).as_f64().is_nan());
                    continue;
                }
                let mean = all.iter().sum::<f64>() / all.len() as f64;
                let var =
                    all.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / all.len() as f64;
                let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let close = |op: Op, want: f64, tol: f64| {
                    let got = m.value(op, &fin).as_f64();
                    assert!(
                        (got - want).abs() <= tol * want.abs().max(1e-300),
                        "{op}: {got} vs {want}"
                    );
                };
                close(Op::Mean, mean, 1e-14);
                close(Op::Var, var, 1e-10);
                assert_eq!((m.min, m.max), (lo, hi));
            }
        }
    }

    #[test]
    fn huge_parts_keep_a_finite_mean_inside_min_max() {
        // Sums overflow f64 and the means' difference would too.
        let (a, b) = (part(50, 4, f64::MAX / 2.0), part(50, 5, -f64::MAX / 2.0));
        for (x, y) in [(&a, &b), (&b, &a), (&a, &a)] {
            let m = FloatAcc::from(x).merge(&FloatAcc::from(y));
            assert!(
                m.mean.is_finite() && m.min <= m.mean && m.mean <= m.max,
                "{m:?}"
            );
        }
    }

    fn data(n: usize, seed: u64) -> Vec<f64> {
        (0..n)
            .map(|i| crate::generate_values::uniform01(seed, i as u64) * 100.0 + 1e6)
            .collect()
    }

    const FIN: Finish = Finish {
        ddof: 0,
        keep_nan: false,
        integer: false,
    };

    #[test]
    fn empty_parts_are_identity() {
        let a = reduce_slice(&data(1000, 1), true);
        assert_eq!(a.merge(&Acc::default()), a);
        assert_eq!(Acc::default().merge(&a), a);
    }

    #[test]
    fn merge_is_associative_within_rounding() {
        let xs = data(3000, 7);
        let (a, b, c) = (
            reduce_slice(&xs[..1000], true),
            reduce_slice(&xs[1000..1700], true),
            reduce_slice(&xs[1700..], true),
        );
        let l = a.merge(&b).merge(&c);
        let r = a.merge(&b.merge(&c));
        for op in [Op::Sum, Op::Mean, Op::Var, Op::Min, Op::Max, Op::Count] {
            let (x, y) = (l.value(op, &FIN).as_f64(), r.value(op, &FIN).as_f64());
            assert!((x - y).abs() <= 1e-12 * x.abs(), "{op}: {x} vs {y}");
        }
        // Two-pass variance of the whole slice, computed independently here.
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / xs.len() as f64;
        let got = l.value(Op::Var, &FIN).as_f64();
        assert!((got - var).abs() <= 1e-9 * var, "{got} vs {var}");
    }

    #[test]
    fn words_round_trip() {
        let mut a = reduce_slice(&data(10, 3), true);
        a.isum = -(1i128 << 100) + 12345;
        a.imin = i128::from(i64::MIN);
        assert_eq!(Acc::from_words(&a.to_words()), a);
    }

    #[test]
    fn ddof_and_empty() {
        let a = reduce_slice(&[1.0f64, 2.0, 3.0, 4.0], true);
        let sample = Finish { ddof: 1, ..FIN };
        assert_eq!(a.value(Op::Var, &FIN).as_f64(), 1.25);
        assert_eq!(a.value(Op::Var, &sample).as_f64(), 5.0 / 3.0);
        assert!(Acc::default().value(Op::Mean, &FIN).as_f64().is_nan());
        assert_eq!(Acc::default().value(Op::Count, &FIN), Value::Int(0));
    }
}
