//! Weighted statistics (`--weights`) with xarray's `weighted` semantics:
//! a missing (NaN) value carries no weight; per result cell
//!
//! * `sum  = Σ w·x` over the valid values (0 when there are none, as xarray),
//! * `mean = Σ w·x / Σ w` — NaN when the valid values' weights sum to 0,
//! * `var  = Σ w·(x − mean)² / Σ w` (xarray's weighted variance: no
//!   degrees-of-freedom correction, so `--ddof` must be 0), `std = √var`,
//! * `count`, `min`, `max` are not weighted (valid values).
//!
//! Algorithm: per contiguous row of a block, `Σ w·x`, `Σ w` and (for var)
//! `Σ w·(x − m_row)²` around the row's own weighted mean, with pairwise
//! summation; a weight constant along the row (`coslat` in a field mean)
//! multiplies the plain kernel's sums (`kernels::reduce_slice`). Rows and blocks are merged with TwoSum-
//! compensated sums and the weighted form of Chan et al.'s update,
//! `M2 = M2a + M2b + δ²·Wa·Wb/W`. Rows are grouped into fixed tasks of
//! about [`SUB_ELEMS`] elements (independent of the thread count) merged in
//! order, and blocks along the fixed merge tree, so results are
//! bit-identical for every rank and thread count. When the last axis is
//! kept, each cell accumulates its column in row order (TwoSum), then a
//! second pass gives `M2` around the block's cell mean.

use crate::accum::{Acc, Value, two_sum};
use crate::axis_kernel::cell_strides;
use crate::cf::Decode;
use crate::element::Element;
use crate::kernels::{SUB_ELEMS, reduce_slice};
use crate::parse::Op;
use crate::pieces::Partial;
use crate::weights::Weights;
use rayon::prelude::*;

/// Mergeable weighted statistics of some elements of one result cell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WAcc {
    /// Valid (non-NaN) values.
    pub n: u64,
    /// NaN (missing) values.
    pub nan: u64,
    /// Σ w of the valid values (leading part).
    pub w: f64,
    /// Compensation of `w`.
    pub w_c: f64,
    /// Σ w·x (leading part).
    pub s: f64,
    /// Compensation of `s`.
    pub s_c: f64,
    /// Weighted mean of this part (meaningless when the weights sum to 0).
    pub mean: f64,
    /// Σ w·(x − mean)².
    pub m2: f64,
    /// Smallest valid value.
    pub min: f64,
    /// Largest valid value.
    pub max: f64,
}

impl Default for WAcc {
    fn default() -> Self {
        WAcc {
            n: 0,
            nan: 0,
            w: 0.0,
            w_c: 0.0,
            s: 0.0,
            s_c: 0.0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl WAcc {
    /// Σ w (with its compensation).
    pub fn weight(&self) -> f64 {
        self.w + self.w_c
    }

    /// Combine `self` (the earlier part) with `b` (the later part).
    pub fn merge(&self, b: &WAcc) -> WAcc {
        let a = self;
        let (w, ew) = two_sum(a.w, b.w);
        let (s, es) = two_sum(a.s, b.s);
        let (wa, wb) = (a.weight(), b.weight());
        let (mean, m2) = if wa == 0.0 {
            (b.mean, b.m2 + a.m2)
        } else if wb == 0.0 {
            (a.mean, a.m2 + b.m2)
        } else {
            let wt = wa + wb;
            let d = b.mean - a.mean;
            (a.mean + d * (wb / wt), a.m2 + b.m2 + d * d * (wa / wt) * wb)
        };
        WAcc {
            n: a.n + b.n,
            nan: a.nan + b.nan,
            w,
            w_c: a.w_c + b.w_c + ew,
            s,
            s_c: a.s_c + b.s_c + es,
            mean,
            m2,
            min: a.min.min(b.min),
            max: a.max.max(b.max),
        }
    }

    /// The value of `op` (see the module docs); `keep_nan` makes any NaN
    /// win, as for the unweighted statistics.
    pub fn value(&self, op: Op, keep_nan: bool) -> Value {
        if op == Op::Count {
            return Value::Int((self.n + if keep_nan { self.nan } else { 0 }) as i128);
        }
        if keep_nan && self.nan > 0 {
            return Value::Float(f64::NAN);
        }
        let wt = self.weight();
        Value::Float(match op {
            Op::Sum if !self.s.is_finite() => self.s,
            Op::Sum => self.s + self.s_c,
            Op::Min | Op::Max if self.n == 0 => f64::NAN,
            Op::Min => self.min,
            Op::Max => self.max,
            _ if wt == 0.0 => f64::NAN,
            Op::Mean => (self.s + self.s_c) / wt,
            Op::Var => self.m2 / wt,
            Op::Std => (self.m2 / wt).sqrt(),
            Op::Count => unreachable!(),
        })
    }
}

impl Partial for WAcc {
    const WORDS: usize = 10;
    fn merge_with(&self, later: &WAcc) -> WAcc {
        self.merge(later)
    }
    fn put_words(&self, out: &mut Vec<u64>) {
        out.extend([
            self.n,
            self.nan,
            self.w.to_bits(),
            self.w_c.to_bits(),
            self.s.to_bits(),
            self.s_c.to_bits(),
            self.mean.to_bits(),
            self.m2.to_bits(),
            self.min.to_bits(),
            self.max.to_bits(),
        ]);
    }
    fn from_wire(w: &[u64]) -> WAcc {
        let f = f64::from_bits;
        WAcc {
            n: w[0],
            nan: w[1],
            w: f(w[2]),
            w_c: f(w[3]),
            s: f(w[4]),
            s_c: f(w[5]),
            mean: f(w[6]),
            m2: f(w[7]),
            min: f(w[8]),
            max: f(w[9]),
        }
    }
}

/// Pairwise sum of `f(0..n)` (8 lanes on runs of at most 256, halves
/// added recursively), as the unweighted kernels sum.
#[inline]
fn psum(lo: usize, hi: usize, f: &impl Fn(usize) -> f64) -> f64 {
    if hi - lo <= 256 {
        let mut l = [0.0f64; 8];
        let mut i = lo;
        while i + 8 <= hi {
            for (j, lane) in l.iter_mut().enumerate() {
                *lane += f(i + j);
            }
            i += 8;
        }
        let mut tail = 0.0;
        while i < hi {
            tail += f(i);
            i += 1;
        }
        ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])) + tail
    } else {
        let half = lo + ((hi - lo) / 2) / 8 * 8;
        psum(lo, half, f) + psum(half, hi, f)
    }
}

/// Weighted statistics of a row with the same weight `c` for every
/// element, from its plain statistics (the unweighted kernel's pass):
/// `Σw = c·n`, `Σw·x = c·Σx`, `M2 = c·Σ(x − mean)²`.
fn from_plain(a: &Acc, c: f64, integer: bool) -> WAcc {
    let sum = if integer { a.isum as f64 } else { a.sum };
    WAcc {
        n: a.n,
        nan: a.nan,
        w: c * a.n as f64,
        w_c: 0.0,
        s: c * sum,
        s_c: 0.0,
        mean: a.mean,
        m2: c * a.m2,
        min: a.min,
        max: a.max,
    }
}

/// `Σw`, `Σw·x`, valid count, min and max of a run (pairwise: 4 lanes on
/// runs of at most 256, halves added recursively).
#[derive(Clone, Copy)]
struct Sums {
    w: f64,
    s: f64,
    n: u64,
    min: f64,
    max: f64,
}

#[inline]
fn wsums<T: Copy>(xs: &[T], ws: &[f64], val: &impl Fn(T) -> f64) -> Sums {
    if xs.len() <= 256 {
        let mut lw = [0.0f64; 4];
        let mut ls = [0.0f64; 4];
        let mut n = 0u64;
        let mut mn = f64::INFINITY;
        let mut mx = f64::NEG_INFINITY;
        let mut i = 0;
        while i + 4 <= xs.len() {
            for j in 0..4 {
                let v = val(xs[i + j]);
                let ok = !v.is_nan();
                n += u64::from(ok);
                lw[j] += if ok { ws[i + j] } else { 0.0 };
                ls[j] += if ok { ws[i + j] * v } else { 0.0 };
                mn = if v < mn { v } else { mn };
                mx = if v > mx { v } else { mx };
            }
            i += 4;
        }
        let (mut tw, mut ts) = (0.0, 0.0);
        while i < xs.len() {
            let v = val(xs[i]);
            if !v.is_nan() {
                n += 1;
                tw += ws[i];
                ts += ws[i] * v;
                mn = if v < mn { v } else { mn };
                mx = if v > mx { v } else { mx };
            }
            i += 1;
        }
        Sums {
            w: (lw[0] + lw[1]) + (lw[2] + lw[3]) + tw,
            s: (ls[0] + ls[1]) + (ls[2] + ls[3]) + ts,
            n,
            min: mn,
            max: mx,
        }
    } else {
        let half = (xs.len() / 2) / 4 * 4;
        let a = wsums(&xs[..half], &ws[..half], val);
        let b = wsums(&xs[half..], &ws[half..], val);
        Sums {
            w: a.w + b.w,
            s: a.s + b.s,
            n: a.n + b.n,
            min: a.min.min(b.min),
            max: a.max.max(b.max),
        }
    }
}

/// Weighted statistics of a row `xs` whose weights `ws` vary along it.
fn weighted_row<T: Copy>(xs: &[T], ws: &[f64], val: &impl Fn(T) -> f64, want_m2: bool) -> WAcc {
    let t = wsums(xs, ws, val);
    let mut a = WAcc {
        n: t.n,
        nan: xs.len() as u64 - t.n,
        w: t.w,
        s: t.s,
        min: t.min,
        max: t.max,
        ..WAcc::default()
    };
    if a.n == 0 {
        return WAcc {
            nan: a.nan,
            ..WAcc::default()
        };
    }
    if a.w > 0.0 {
        let m = a.s / a.w;
        a.mean = m;
        if want_m2 {
            a.m2 = psum(0, xs.len(), &|i| {
                let v = val(xs[i]);
                if v.is_nan() {
                    0.0
                } else {
                    ws[i] * (v - m) * (v - m)
                }
            });
        }
    }
    a
}

/// Reduce one block (`xs`, C order, extents `count`, first element at the
/// selected index `start`) over the axes flagged in `reduced`, weighting
/// with `wts`; one [`WAcc`] per kept cell in C order over the kept axes.
pub fn reduce_block_weighted<T: Element>(
    xs: &[T],
    start: &[usize],
    count: &[usize],
    reduced: &[bool],
    decode: &Decode,
    wts: &Weights,
    want_m2: bool,
) -> Vec<WAcc> {
    let n = count.len();
    debug_assert_eq!(xs.len(), count.iter().product::<usize>());
    let (cstride, n_cells) = cell_strides(count, reduced);
    let len = count[n - 1];
    let n_rows = xs.len() / len.max(1);
    // Per row: its cell (of the first element) and the offset of its first weight.
    let mut rows = Vec::with_capacity(n_rows);
    let mut idx = vec![0usize; n - 1];
    let wlast = wts.stride[n - 1];
    for _ in 0..n_rows {
        let mut cell = 0;
        let mut woff = start[n - 1] * wlast;
        for a in 0..n - 1 {
            cell += idx[a] * cstride[a];
            woff += (start[a] + idx[a]) * wts.stride[a];
        }
        rows.push((cell, woff));
        for a in (0..n - 1).rev() {
            idx[a] += 1;
            if idx[a] < count[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    let value = |x: T| {
        if decode.is_identity() {
            x.to_f64()
        } else {
            decode.apply(x.to_f64())
        }
    };
    let integer = !T::DTYPE.is_float();
    let mut cells = vec![WAcc::default(); n_cells];
    if reduced[n - 1] {
        // Each row feeds one cell; fixed tasks of rows, merged in order.
        let per_task = (SUB_ELEMS / len.max(1)).max(1);
        let parts: Vec<Vec<(usize, WAcc)>> = rows
            .par_chunks(per_task)
            .enumerate()
            .map(|(t, chunk)| {
                let mut out: Vec<(usize, WAcc)> = Vec::new();
                // Decoded values of one row (scratch, refilled per row).
                let mut dec: Vec<f64> = Vec::new();
                for (k, &(cell, woff)) in chunk.iter().enumerate() {
                    let r = t * per_task + k;
                    let row = &xs[r * len..(r + 1) * len];
                    let a = if wlast != 0 && decode.is_identity() {
                        let ws = &wts.values[woff..woff + len];
                        weighted_row(row, ws, &|x: T| x.to_f64(), want_m2)
                    } else if wlast != 0 {
                        let ws = &wts.values[woff..woff + len];
                        weighted_row(row, ws, &|x: T| decode.apply(x.to_f64()), want_m2)
                    } else if decode.is_identity() {
                        from_plain(&reduce_slice(row, want_m2), wts.values[woff], integer)
                    } else {
                        decode.apply_slice(row, &mut dec);
                        from_plain(&reduce_slice(&dec, want_m2), wts.values[woff], false)
                    };
                    match out.last_mut() {
                        Some((c, p)) if *c == cell => *p = p.merge(&a),
                        _ => out.push((cell, a)),
                    }
                }
                out
            })
            .collect();
        for part in parts {
            for (c, a) in part {
                cells[c] = cells[c].merge(&a);
            }
        }
        return cells;
    }
    // Last axis kept: element j of a row feeds cell `cell + j`.
    let mut sw = vec![(0.0f64, 0.0f64); n_cells];
    let mut sx = vec![(0.0f64, 0.0f64); n_cells];
    for (r, &(cell, woff)) in rows.iter().enumerate() {
        for j in 0..len {
            let x = value(xs[r * len + j]);
            let c = &mut cells[cell + j];
            if x.is_nan() {
                c.nan += 1;
                continue;
            }
            c.n += 1;
            c.min = c.min.min(x);
            c.max = c.max.max(x);
            let w = wts.values[woff + j * wlast];
            let (s, e) = two_sum(sw[cell + j].0, w);
            sw[cell + j] = (s, sw[cell + j].1 + e);
            let (s, e) = two_sum(sx[cell + j].0, w * x);
            sx[cell + j] = (s, sx[cell + j].1 + e);
        }
    }
    for ((c, w), s) in cells.iter_mut().zip(&sw).zip(&sx) {
        c.w = w.0;
        c.w_c = w.1;
        c.s = s.0;
        c.s_c = s.1;
        let wt = c.weight();
        if wt > 0.0 {
            c.mean = (s.0 + s.1) / wt;
        }
    }
    if want_m2 {
        for (r, &(cell, woff)) in rows.iter().enumerate() {
            for j in 0..len {
                let x = value(xs[r * len + j]);
                if x.is_nan() {
                    continue;
                }
                let c = &mut cells[cell + j];
                let w = wts.values[woff + j * wlast];
                c.m2 += w * (x - c.mean) * (x - c.mean);
            }
        }
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selection::{AxisRange, Dims};

    /// Direct two-pass weighted statistics of each kept cell.
    fn reference(
        xs: &[f64],
        count: &[usize],
        reduced: &[bool],
        wts: &Weights,
    ) -> Vec<(f64, f64, f64)> {
        let n_cells: usize = count
            .iter()
            .zip(reduced)
            .filter(|(_, r)| !**r)
            .map(|(c, _)| c)
            .product();
        let mut groups: Vec<Vec<(f64, f64)>> = vec![Vec::new(); n_cells];
        for (i, &x) in xs.iter().enumerate() {
            let mut rem = i;
            let mut coords = vec![0; count.len()];
            for a in (0..count.len()).rev() {
                coords[a] = rem % count[a];
                rem /= count[a];
            }
            let mut cell = 0;
            for a in 0..count.len() {
                if !reduced[a] {
                    cell = cell * count[a] + coords[a];
                }
            }
            if !x.is_nan() {
                groups[cell].push((x, wts.at(&coords)));
            }
        }
        groups
            .iter()
            .map(|g| {
                let w: f64 = g.iter().map(|p| p.1).sum();
                let s: f64 = g.iter().map(|p| p.0 * p.1).sum();
                let m = s / w;
                let v = g.iter().map(|p| p.1 * (p.0 - m) * (p.0 - m)).sum::<f64>() / w;
                (s, m, v)
            })
            .collect()
    }

    #[test]
    fn every_axis_subset_matches_the_reference() {
        let count = [3usize, 4, 5, 6];
        let dims = Dims {
            names: (0..4).map(|i| format!("d{i}")).collect(),
            shape: count.to_vec(),
            coords: vec![None; 4],
        };
        let sel: Vec<AxisRange> = count.iter().map(|&c| AxisRange::all(c)).collect();
        let len: usize = count.iter().product();
        let xs: Vec<f64> = (0..len)
            .map(|i| {
                if i % 13 == 5 {
                    f64::NAN
                } else {
                    crate::generate_values::uniform01(4, i as u64) * 10.0 + 280.0
                }
            })
            .collect();
        // Weights over (d3, d1) and over d1 alone (constant along rows).
        let w31: Vec<f64> = (0..24).map(|i| 0.5 + (i % 7) as f64).collect();
        let w1 = vec![0.25, 1.0, 0.0, 2.0];
        for (w, axes) in [(&w31, vec![3usize, 1]), (&w1, vec![1usize])] {
            let wts = Weights::lay_out(w, &axes, &dims, &sel, "w").unwrap();
            for mask in 0..16u32 {
                let reduced: Vec<bool> = (0..4).map(|a| mask & (1 << a) != 0).collect();
                let got = reduce_block_weighted(
                    &xs,
                    &[0; 4],
                    &count,
                    &reduced,
                    &Decode::default(),
                    &wts,
                    true,
                );
                let want = reference(&xs, &count, &reduced, &wts);
                for (g, (s, m, v)) in got.iter().zip(&want) {
                    let close = |a: f64, b: f64| {
                        (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-12 * b.abs().max(1.0)
                    };
                    assert!(close(g.value(Op::Sum, false).as_f64(), *s), "mask {mask}");
                    assert!(close(g.value(Op::Mean, false).as_f64(), *m), "mask {mask}");
                    assert!(
                        close(g.value(Op::Var, false).as_f64(), *v),
                        "mask {mask}: {} vs {v}",
                        g.value(Op::Var, false).as_f64()
                    );
                }
            }
        }
    }

    #[test]
    fn zero_weights_and_missing_values_give_nan() {
        let dims = Dims {
            names: vec!["a".into(), "b".into()],
            shape: vec![2, 3],
            coords: vec![None; 2],
        };
        let sel = [AxisRange::all(2), AxisRange::all(3)];
        let wts = Weights::lay_out(&[0.0, 1.0], &[0], &dims, &sel, "w").unwrap();
        let xs = [1.0, 2.0, 3.0, f64::NAN, f64::NAN, f64::NAN];
        let cells = reduce_block_weighted(
            &xs,
            &[0, 0],
            &[2, 3],
            &[false, true],
            &Decode::default(),
            &wts,
            true,
        );
        // Row 0: zero weight -> mean NaN, sum 0; row 1: all missing -> NaN.
        assert!(cells[0].value(Op::Mean, false).as_f64().is_nan());
        assert_eq!(cells[0].value(Op::Sum, false).as_f64(), 0.0);
        assert!(cells[1].value(Op::Mean, false).as_f64().is_nan());
        assert_eq!(cells[1].value(Op::Count, false), Value::Int(0));
        let all = reduce_block_weighted(
            &xs,
            &[0, 0],
            &[2, 3],
            &[true, true],
            &Decode::default(),
            &wts,
            true,
        );
        assert!(all[0].value(Op::Mean, false).as_f64().is_nan());
    }

    #[test]
    fn thread_count_does_not_change_bits() {
        let count = [64usize, 700];
        let dims = Dims {
            names: vec!["lat".into(), "lon".into()],
            shape: count.to_vec(),
            coords: vec![None; 2],
        };
        let sel = [AxisRange::all(64), AxisRange::all(700)];
        let w: Vec<f64> = (0..64).map(|i| (i as f64 * 0.02).cos()).collect();
        let wts = Weights::lay_out(&w, &[0], &dims, &sel, "w").unwrap();
        let xs: Vec<f64> = (0..64 * 700)
            .map(|i| crate::generate_values::uniform01(8, i) * 30.0)
            .collect();
        let run = |t: usize, reduced: &[bool]| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
                .install(|| {
                    reduce_block_weighted(
                        &xs,
                        &[0, 0],
                        &count,
                        reduced,
                        &Decode::default(),
                        &wts,
                        true,
                    )
                })
        };
        for reduced in [[true, true], [false, true], [true, false]] {
            assert_eq!(run(1, &reduced), run(3, &reduced));
        }
    }
}
