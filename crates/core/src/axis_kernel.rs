//! Per-block kernel for reductions over some dimensions (`--dim`): the block
//! (C order, extents `count`) becomes one [`Acc`] per *kept cell* — a
//! position along the kept axes — in C order over the block's kept extents.
//!
//! Two layouts, chosen by the last axis:
//! * **Last axis reduced** (e.g. a field mean over lat/lon): the block is a
//!   sequence of contiguous segments, one kept cell each. Segments are
//!   reduced with the whole-array kernels (pairwise sums) and merged into
//!   their cell in segment order.
//! * **Last axis kept** (e.g. a time mean): each row of `W` contiguous
//!   elements feeds `W` consecutive cells. Column accumulators per cell:
//!   TwoSum-compensated float sum (exact i128 for integers), count, NaN
//!   count, min, max; then a second pass over the block for
//!   `M2 = Σ(x − mean)²` around the block's own cell mean. Threads split
//!   the columns; each cell is always accumulated in row order.
//!
//! Both are independent of the thread count, so results are bit-identical
//! for any `--threads`. With CF decoding (fill values, packing) values are
//! decoded to f64 first and reduced as floats.

use crate::accum::{Acc, two_sum};
use crate::cf::Decode;
use crate::element::Element;
use crate::kernels::{SUB_ELEMS, reduce_block, reduce_slice};
use rayon::prelude::*;

/// Statistics of one contiguous run, decoded first when `decode` applies.
fn run_slice<T: Element>(xs: &[T], decode: &Decode, want_m2: bool) -> Acc {
    if decode.is_identity() {
        reduce_slice(xs, want_m2)
    } else {
        let mut v = Vec::with_capacity(xs.len());
        decode.apply_slice(xs, &mut v);
        reduce_slice(&v, want_m2)
    }
}

/// Statistics of a long contiguous run: fixed sub-slices reduced in parallel
/// and merged in order (as [`reduce_block`]), decoded first when needed.
pub fn run_block<T: Element>(xs: &[T], decode: &Decode, want_m2: bool) -> Acc {
    if decode.is_identity() {
        return reduce_block(xs, want_m2);
    }
    let parts: Vec<Acc> = xs
        .par_chunks(SUB_ELEMS)
        .map(|c| run_slice(c, decode, want_m2))
        .collect();
    Acc::merge_all(&parts)
}

/// Number of kept cells of a block with extents `count`.
pub fn kept_cells(count: &[usize], reduced: &[bool]) -> usize {
    count
        .iter()
        .zip(reduced)
        .filter(|(_, r)| !**r)
        .map(|(c, _)| *c)
        .product()
}

/// Reduce one block (`xs`, C order, extents `count`) over the axes flagged in
/// `reduced`; returns one `Acc` per kept cell in C order over the kept axes.
pub fn reduce_block_axes<T: Element>(
    xs: &[T],
    count: &[usize],
    reduced: &[bool],
    decode: &Decode,
    want_m2: bool,
) -> Vec<Acc> {
    let n = count.len();
    debug_assert_eq!(xs.len(), count.iter().product::<usize>());
    // Cell stride of each axis: product of the kept extents after it (0 if reduced).
    let mut cstride = vec![0usize; n];
    let mut acc = 1;
    for a in (0..n).rev() {
        if !reduced[a] {
            cstride[a] = acc;
            acc *= count[a];
        }
    }
    let n_cells = acc;
    let last_reduced = n == 0 || reduced[n - 1];
    // First axis of the trailing run of axes that are all reduced (or all kept).
    let mut j = n;
    while j > 0 && reduced[j - 1] == last_reduced {
        j -= 1;
    }
    let inner: usize = count[j..].iter().product();
    let n_runs: usize = count[..j].iter().product();
    // Cell of the first element of run `r` (coordinates over axes < j).
    let base_cell = |mut r: usize| -> usize {
        let mut cell = 0;
        for a in (0..j).rev() {
            cell += (r % count[a]) * cstride[a];
            r /= count[a];
        }
        cell
    };
    if last_reduced {
        if j == 0 {
            return vec![run_block(xs, decode, want_m2)];
        }
        let mut cells = vec![Acc::default(); n_cells];
        if inner >= SUB_ELEMS {
            for r in 0..n_runs {
                let a = run_block(&xs[r * inner..(r + 1) * inner], decode, want_m2);
                let c = base_cell(r);
                cells[c] = cells[c].merge(&a);
            }
        } else {
            let parts: Vec<Acc> = xs
                .par_chunks(inner)
                .map(|s| run_slice(s, decode, want_m2))
                .collect();
            for (r, a) in parts.iter().enumerate() {
                let c = base_cell(r);
                cells[c] = cells[c].merge(a);
            }
        }
        return cells;
    }
    // Last axis kept: rows of `inner` elements feed cells base .. base+inner.
    let w = inner;
    let rows: Vec<usize> = (0..n_runs).map(|r| base_cell(r) / w).collect();
    let n_prefix = n_cells / w;
    let threads = rayon::current_num_threads().max(1);
    let width = w.div_ceil(threads * 4).max(64).min(w);
    let float = !decode.is_identity() || T::DTYPE.is_float();
    let parts: Vec<(usize, Vec<Acc>)> = (0..w.div_ceil(width))
        .into_par_iter()
        .map(|t| {
            let w0 = t * width;
            let w1 = (w0 + width).min(w);
            let cols = Columns::accumulate(xs, w, w0, w1, &rows, n_prefix, decode, float, want_m2);
            (w0, cols)
        })
        .collect();
    let mut cells = vec![Acc::default(); n_cells];
    for (w0, cols) in parts {
        let wd = cols.len() / n_prefix;
        for p in 0..n_prefix {
            for k in 0..wd {
                cells[p * w + w0 + k] = cols[p * wd + k];
            }
        }
    }
    cells
}

/// Column accumulators for the last-axis-kept layout.
struct Columns;

impl Columns {
    /// Accumulate columns `w0..w1` of every row (`rows[r]` = prefix cell of
    /// row r); returns `Acc`s indexed `prefix * (w1 - w0) + column`.
    #[allow(clippy::too_many_arguments)]
    fn accumulate<T: Element>(
        xs: &[T],
        w: usize,
        w0: usize,
        w1: usize,
        rows: &[usize],
        n_prefix: usize,
        decode: &Decode,
        float: bool,
        want_m2: bool,
    ) -> Vec<Acc> {
        const DOWN: f64 = 1.0 / 18446744073709551616.0;
        let wd = w1 - w0;
        let m = n_prefix * wd;
        let mut out = vec![Acc::default(); m];
        let value = |x: T| {
            if decode.is_identity() {
                x.to_f64()
            } else {
                decode.apply(x.to_f64())
            }
        };
        if float {
            let mut scaled = vec![0.0f64; m];
            for (r, &p) in rows.iter().enumerate() {
                let row = &xs[r * w + w0..r * w + w1];
                let cells = &mut out[p * wd..(p + 1) * wd];
                let sc = &mut scaled[p * wd..(p + 1) * wd];
                for ((a, s), &x) in cells.iter_mut().zip(sc.iter_mut()).zip(row) {
                    let v = value(x);
                    if v.is_nan() {
                        a.nan += 1;
                        continue;
                    }
                    a.n += 1;
                    let (sum, e) = two_sum(a.sum, v);
                    a.sum = sum;
                    a.sum_c += e;
                    *s += v * DOWN;
                    a.min = if v < a.min { v } else { a.min };
                    a.max = if v > a.max { v } else { a.max };
                }
            }
            for (a, s) in out.iter_mut().zip(&scaled) {
                if a.n > 0 {
                    let total = a.sum + a.sum_c;
                    a.mean = if total.is_finite() {
                        total / a.n as f64
                    } else {
                        s / a.n as f64 / DOWN
                    };
                    // In [min, max] (see `kernels`: equal huge values).
                    a.mean = a.mean.clamp(a.min, a.max);
                }
            }
        } else {
            for (r, &p) in rows.iter().enumerate() {
                let row = &xs[r * w + w0..r * w + w1];
                let cells = &mut out[p * wd..(p + 1) * wd];
                for (a, &x) in cells.iter_mut().zip(row) {
                    let v = x.to_i128();
                    a.n += 1;
                    a.isum += v;
                    a.imin = a.imin.min(v);
                    a.imax = a.imax.max(v);
                }
            }
            for a in out.iter_mut() {
                if a.n > 0 {
                    a.min = a.imin as f64;
                    a.max = a.imax as f64;
                    a.mean = a.isum as f64 / a.n as f64;
                }
            }
        }
        if want_m2 {
            for (r, &p) in rows.iter().enumerate() {
                let row = &xs[r * w + w0..r * w + w1];
                let cells = &mut out[p * wd..(p + 1) * wd];
                for (a, &x) in cells.iter_mut().zip(row) {
                    let v = value(x);
                    if !v.is_nan() {
                        let d = v - a.mean;
                        a.m2 += d * d;
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accum::Finish;
    use crate::parse::Op;

    const FIN: Finish = Finish {
        ddof: 0,
        keep_nan: false,
        integer: false,
    };

    /// Straightforward reference: gather each kept cell's values by index
    /// arithmetic and compute mean and variance in two passes.
    fn reference(xs: &[f64], count: &[usize], reduced: &[bool]) -> Vec<(f64, f64, usize)> {
        let n_cells = kept_cells(count, reduced);
        let mut groups: Vec<Vec<f64>> = vec![Vec::new(); n_cells];
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
                groups[cell].push(x);
            }
        }
        groups
            .iter()
            .map(|g| {
                let m = g.iter().sum::<f64>() / g.len() as f64;
                let v = g.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / g.len() as f64;
                (m, v, g.len())
            })
            .collect()
    }

    #[test]
    fn every_axis_subset_matches_the_reference() {
        let count = [3usize, 4, 5, 6];
        let len: usize = count.iter().product();
        let xs: Vec<f64> = (0..len)
            .map(|i| {
                if i % 17 == 5 {
                    f64::NAN
                } else {
                    crate::generate_values::uniform01(9, i as u64) * 10.0 + 100.0
                }
            })
            .collect();
        for mask in 0..16u32 {
            let reduced: Vec<bool> = (0..4).map(|a| mask & (1 << a) != 0).collect();
            let got = reduce_block_axes(&xs, &count, &reduced, &Decode::default(), true);
            let want = reference(&xs, &count, &reduced);
            assert_eq!(got.len(), want.len());
            for (g, (m, v, n)) in got.iter().zip(&want) {
                assert_eq!(g.n as usize, *n, "mask {mask}");
                if *n == 0 {
                    assert!(g.value(Op::Mean, &FIN).as_f64().is_nan());
                    continue;
                }
                assert!(
                    (g.value(Op::Mean, &FIN).as_f64() - m).abs() < 1e-12,
                    "mask {mask}"
                );
                assert!(
                    (g.value(Op::Var, &FIN).as_f64() - v).abs() < 1e-10,
                    "mask {mask}"
                );
            }
        }
    }

    #[test]
    fn integers_stay_exact_per_column() {
        let xs: Vec<i64> = vec![i64::MAX, 1, i64::MAX, 2, i64::MIN, 3];
        let cells = reduce_block_axes(&xs, &[3, 2], &[true, false], &Decode::default(), false);
        let fin = Finish {
            integer: true,
            ..FIN
        };
        assert_eq!(
            cells[0].value(Op::Sum, &fin),
            crate::accum::Value::Int(i64::MAX as i128 * 2 + i64::MIN as i128)
        );
        assert_eq!(cells[1].value(Op::Sum, &fin), crate::accum::Value::Int(6));
    }

    #[test]
    fn thread_count_does_not_change_bits() {
        let count = [40usize, 300];
        let xs: Vec<f64> = (0..12000)
            .map(|i| crate::generate_values::uniform01(3, i) * 1e3)
            .collect();
        let run = |t: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap();
            pool.install(|| {
                reduce_block_axes(&xs, &count, &[true, false], &Decode::default(), true)
            })
        };
        assert_eq!(run(1), run(3));
    }
}
