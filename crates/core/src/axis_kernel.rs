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
//!   elements feeds `W` consecutive cells. Float (and CF-decoded) data go
//!   through [`LeafAcc`]: the cells are cut into column tiles of [`TILE`]
//!   cells whose state is a structure of arrays; for each tile, one pass
//!   over the block's rows keeps per-cell sums (plain over runs of
//!   [`SUB_ROWS`] rows, the runs' sums joined by TwoSum), counts, NaN
//!   counts, min and max in contiguous branch-free loops (which the
//!   compiler vectorises), a second pass over the same cache-resident rows
//!   gives `M2 = Σ(x − mean)²` around the block's cell mean, and the
//!   block's per-cell result is merged into the leaf's with the same
//!   arithmetic as [`Acc::merge`] (TwoSum for the sum, Chan et al. for M2).
//!   Integers keep a per-cell exact i128 accumulator.
//!
//! Each cell is always accumulated in row order and blocks are merged in
//! block order, whatever the thread count: results are bit-identical for
//! any `--threads`. With CF decoding (fill values, packing) values are
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

/// Cell stride of each axis of a block with extents `count` — the product of
/// the kept extents after it, 0 for a reduced axis — and the number of kept
/// cells.
pub fn cell_strides(count: &[usize], reduced: &[bool]) -> (Vec<usize>, usize) {
    let mut cstride = vec![0usize; count.len()];
    let mut acc = 1;
    for a in (0..count.len()).rev() {
        if !reduced[a] {
            cstride[a] = acc;
            acc *= count[a];
        }
    }
    (cstride, acc)
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
    let (cstride, n_cells) = cell_strides(count, reduced);
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
            // Every run's fixed sub-slices (as `run_block` cuts them) in one
            // parallel pass — one fork-join per block, not one per run — then
            // each run's parts merged in order, as `run_block` merges them.
            let per_run = inner.div_ceil(SUB_ELEMS);
            let parts: Vec<Acc> = (0..n_runs * per_run)
                .into_par_iter()
                .map(|k| {
                    let (r, i) = (k / per_run, k % per_run);
                    let lo = r * inner + i * SUB_ELEMS;
                    let hi = (lo + SUB_ELEMS).min((r + 1) * inner);
                    run_slice(&xs[lo..hi], decode, want_m2)
                })
                .collect();
            for (r, run) in parts.chunks(per_run).enumerate() {
                let c = base_cell(r);
                cells[c] = cells[c].merge(&Acc::merge_all(run));
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
    if !decode.is_identity() || T::DTYPE.is_float() {
        let mut leaf = LeafAcc::default();
        leaf.add_rows(xs, w, &rows, n_prefix, decode, want_m2);
        return leaf.finish();
    }
    let threads = rayon::current_num_threads().max(1);
    let width = w.div_ceil(threads * 4).max(64).min(w);
    let parts: Vec<(usize, Vec<Acc>)> = (0..w.div_ceil(width))
        .into_par_iter()
        .map(|t| {
            let w0 = t * width;
            let w1 = (w0 + width).min(w);
            let cols = Columns::accumulate(xs, w, w0, w1, &rows, n_prefix, want_m2);
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

/// Column accumulators of integer data in the last-axis-kept layout (exact
/// i128 sums; floats go through [`LeafAcc`]).
struct Columns;

impl Columns {
    /// Accumulate columns `w0..w1` of every row (`rows[r]` = prefix cell of
    /// row r); returns `Acc`s indexed `prefix * (w1 - w0) + column`.
    fn accumulate<T: Element>(
        xs: &[T],
        w: usize,
        w0: usize,
        w1: usize,
        rows: &[usize],
        n_prefix: usize,
        want_m2: bool,
    ) -> Vec<Acc> {
        let wd = w1 - w0;
        let m = n_prefix * wd;
        let mut out = vec![Acc::default(); m];
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
        if want_m2 {
            for (r, &p) in rows.iter().enumerate() {
                let row = &xs[r * w + w0..r * w + w1];
                let cells = &mut out[p * wd..(p + 1) * wd];
                for (a, &x) in cells.iter_mut().zip(row) {
                    let d = x.to_f64() - a.mean;
                    a.m2 += d * d;
                }
            }
        }
        out
    }
}

/// Cells per column tile of [`LeafAcc`]: 256 cells of state (12 KiB) and
/// the block's rows of those cells stay in L1/L2 for both passes.
pub const TILE: usize = 256;

/// `ColTile::$name`: [`ColTile::add_plain`]'s work compiled with the
/// target feature `$feature` (run only where the CPU has it).
macro_rules! add_plain_with {
    ($name:ident, $feature:literal) => {
        #[doc = concat!("[`ColTile::add_plain`] compiled with `", $feature, "`.")]
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        unsafe fn $name<T: Element>(
            &mut self,
            xs: &[T],
            w: usize,
            c0: usize,
            wd: usize,
            rows: &[usize],
            want_m2: bool,
        ) {
            self.add(xs, w, c0, wd, rows, |x: T| x.to_f64(), want_m2);
        }
    };
}

/// Per-cell partial statistics of [`TILE`] consecutive cells (structure of
/// arrays, the fields of [`Acc`] that float data use).
#[derive(Clone)]
struct ColTile {
    n: [u64; TILE],
    nan: [u64; TILE],
    sum: [f64; TILE],
    sum_c: [f64; TILE],
    mean: [f64; TILE],
    m2: [f64; TILE],
    min: [f64; TILE],
    max: [f64; TILE],
}

impl Default for ColTile {
    fn default() -> Self {
        ColTile {
            n: [0; TILE],
            nan: [0; TILE],
            sum: [0.0; TILE],
            sum_c: [0.0; TILE],
            mean: [0.0; TILE],
            m2: [0.0; TILE],
            min: [f64::INFINITY; TILE],
            max: [f64::NEG_INFINITY; TILE],
        }
    }
}

/// Rows of a block summed plainly per cell before the partial sum joins
/// the block's compensated sum (TwoSum): plain f64 summation of at most
/// this many values errs by at most `SUB_ROWS · ε · Σ|x|` (ε = 2⁻⁵³), and
/// the compensated joins keep those errors from growing with the rows.
pub const SUB_ROWS: usize = 64;

/// Cells whose state the first and second passes keep in registers while
/// they walk down the rows (8 f64 lanes per quantity: two AVX2 registers).
const STRIP: usize = 8;

/// The strips of `wd` cells the passes walk: `(first cell, width)`, width
/// [`STRIP`] (state in registers over all rows), then the last, narrower
/// cells one at a time (the same arithmetic).
fn strips(wd: usize) -> impl Iterator<Item = (usize, usize)> {
    let full = wd / STRIP * STRIP;
    (0..full)
        .step_by(STRIP)
        .map(|k| (k, STRIP))
        .chain((full..wd).map(|k| (k, 1)))
}

/// Where [`first_pass`] leaves one strip's statistics of a block.
struct Strip<'a> {
    n: &'a mut [u64],
    sum: &'a mut [f64],
    sum_c: &'a mut [f64],
    min: &'a mut [f64],
    max: &'a mut [f64],
}

/// Count, sum (plain over runs of [`SUB_ROWS`] rows, runs joined by
/// TwoSum), min and max of the `L` cells from column `col` of `rows`
/// (row `r` starts at `xs[r * w]`); the state stays in registers.
#[inline(always)]
fn first_pass<T: Element, const L: usize>(
    xs: &[T],
    w: usize,
    col: usize,
    rows: &[usize],
    value: &impl Fn(T) -> f64,
    out: Strip<'_>,
) {
    let mut n = [0u64; L];
    let (mut s, mut c) = ([0.0f64; L], [0.0f64; L]);
    let (mut mn, mut mx) = ([f64::INFINITY; L], [f64::NEG_INFINITY; L]);
    for sub in rows.chunks(SUB_ROWS) {
        let mut p = [0.0f64; L];
        for &r in sub {
            let x: &[T; L] = xs[r * w + col..r * w + col + L]
                .try_into()
                .expect("L values");
            for l in 0..L {
                let v = value(x[l]);
                let ok = !v.is_nan();
                p[l] += if ok { v } else { 0.0 };
                n[l] += u64::from(ok);
                // NaN compares false: never becomes min or max.
                mn[l] = if v < mn[l] { v } else { mn[l] };
                mx[l] = if v > mx[l] { v } else { mx[l] };
            }
        }
        // The run's sums joined to the block's: s + p = t + e exactly.
        for l in 0..L {
            let (t, e) = two_sum(s[l], p[l]);
            s[l] = t;
            c[l] += e;
        }
    }
    out.n.copy_from_slice(&n);
    out.sum.copy_from_slice(&s);
    out.sum_c.copy_from_slice(&c);
    out.min.copy_from_slice(&mn);
    out.max.copy_from_slice(&mx);
}

/// `Σ (x − mean)²` over `rows` of the `L` cells from column `col`, NaN
/// skipped (the second pass; the state stays in registers).
#[inline(always)]
fn m2_pass<T: Element, const L: usize>(
    xs: &[T],
    w: usize,
    col: usize,
    rows: &[usize],
    value: &impl Fn(T) -> f64,
    mean: &[f64],
    m2: &mut [f64],
) {
    let m: [f64; L] = mean.try_into().expect("L means");
    let mut acc = [0.0f64; L];
    for &r in rows {
        let x: &[T; L] = xs[r * w + col..r * w + col + L]
            .try_into()
            .expect("L values");
        for l in 0..L {
            let v = value(x[l]);
            let d = v - m[l];
            acc[l] += if v.is_nan() { 0.0 } else { d * d };
        }
    }
    m2.copy_from_slice(&acc);
}

/// `x` clamped to `[lo, hi]` (`lo ≤ hi`) as a select, which vectorises
/// (`f64::clamp` checks its bounds and may panic); a NaN `x` stays NaN.
#[inline(always)]
fn clamp_sel(x: f64, lo: f64, hi: f64) -> f64 {
    let x = if x < lo { lo } else { x };
    if x > hi { hi } else { x }
}

/// The smaller of two values that are not NaN, as a select.
#[inline(always)]
fn min_sel(a: f64, b: f64) -> f64 {
    if b < a { b } else { a }
}

/// The larger of two values that are not NaN, as a select.
#[inline(always)]
fn max_sel(a: f64, b: f64) -> f64 {
    if b > a { b } else { a }
}

/// Scale for sums that overflow f64 (a power of two: exact).
const DOWN: f64 = 1.0 / 18446744073709551616.0;

impl ColTile {
    /// Add columns `c0..c0 + wd` of `rows` (row `r` starts at `xs[r * w]`),
    /// values given by `value`: a block's statistics per cell (one pass for
    /// count/NaN/min/max/TwoSum sum, one for M2 around the block's cell
    /// mean), then merged into this tile's state as [`Acc::merge`] does.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn add<T: Element>(
        &mut self,
        xs: &[T],
        w: usize,
        c0: usize,
        wd: usize,
        rows: &[usize],
        value: impl Fn(T) -> f64,
        want_m2: bool,
    ) {
        let mut bn = [0u64; TILE];
        let mut bs = [0.0f64; TILE];
        let mut bc = [0.0f64; TILE];
        let mut bmin = [f64::INFINITY; TILE];
        let mut bmax = [f64::NEG_INFINITY; TILE];
        for (k, l) in strips(wd) {
            let out = Strip {
                n: &mut bn[k..k + l],
                sum: &mut bs[k..k + l],
                sum_c: &mut bc[k..k + l],
                min: &mut bmin[k..k + l],
                max: &mut bmax[k..k + l],
            };
            if l == STRIP {
                first_pass::<T, STRIP>(xs, w, c0 + k, rows, &value, out);
            } else {
                first_pass::<T, 1>(xs, w, c0 + k, rows, &value, out);
            }
        }
        // Each cell's block mean, branch-free (vectorised); sums that
        // overflowed are redone below.
        let mut bmean = [0.0f64; TILE];
        let mut overflowed = false;
        for k in 0..wd {
            let total = bs[k] + bc[k];
            overflowed |= bn[k] > 0 && !total.is_finite();
            // In [min, max] (see `kernels`: equal huge values).
            let m = clamp_sel(total / bn[k] as f64, bmin[k], bmax[k]);
            bmean[k] = if bn[k] > 0 { m } else { 0.0 };
        }
        if overflowed {
            for k in 0..wd {
                if bn[k] > 0 && !(bs[k] + bc[k]).is_finite() {
                    // The sum overflowed: sum values scaled by 2^-64 instead.
                    let mut sc = 0.0;
                    for &r in rows {
                        let v = value(xs[r * w + c0 + k]);
                        if !v.is_nan() {
                            sc += v * DOWN;
                        }
                    }
                    bmean[k] = clamp_sel(sc / bn[k] as f64 / DOWN, bmin[k], bmax[k]);
                }
            }
        }
        let mut bm2 = [0.0f64; TILE];
        if want_m2 {
            for (k, l) in strips(wd) {
                let (m, m2) = (&bmean[k..k + l], &mut bm2[k..k + l]);
                if l == STRIP {
                    m2_pass::<T, STRIP>(xs, w, c0 + k, rows, &value, m, m2);
                } else {
                    m2_pass::<T, 1>(xs, w, c0 + k, rows, &value, m, m2);
                }
            }
        }
        // Merged into the tile's state as [`Acc::merge`] does, written with
        // selects instead of branches (the same values; vectorised).
        let n_rows = rows.len() as u64;
        for k in 0..wd {
            let (na, nb) = (self.n[k], bn[k]);
            let (s, e) = two_sum(self.sum[k], bs[k]);
            self.sum[k] = s;
            self.sum_c[k] = self.sum_c[k] + bc[k] + e;
            let (mean, m2) = (self.mean[k], self.m2[k]);
            let (fa, fb, f) = (na as f64, nb as f64, (na + nb) as f64);
            let delta = bmean[k] - mean;
            let merged_mean = if delta.is_finite() {
                mean + delta * (fb / f)
            } else {
                mean * (fa / f) + bmean[k] * (fb / f)
            };
            let merged_m2 = m2 + bm2[k] + delta * delta * (fa / f) * fb;
            let (mean, m2) = if na == 0 {
                (bmean[k], bm2[k])
            } else if nb > 0 {
                (merged_mean, merged_m2)
            } else {
                (mean, m2)
            };
            let n = na + nb;
            let (mn, mx) = (min_sel(self.min[k], bmin[k]), max_sel(self.max[k], bmax[k]));
            self.n[k] = n;
            self.nan[k] += n_rows - nb;
            self.min[k] = mn;
            self.max[k] = mx;
            self.mean[k] = if n > 0 { clamp_sel(mean, mn, mx) } else { mean };
            self.m2[k] = m2;
        }
    }

    /// [`ColTile::add`] of undecoded values, compiled for AVX2 as well and
    /// run that way where the CPU has it (the same operations per cell on
    /// wider vectors: the same bits; no FMA, which would change them).
    fn add_plain<T: Element>(
        &mut self,
        xs: &[T],
        w: usize,
        c0: usize,
        wd: usize,
        rows: &[usize],
        want_m2: bool,
    ) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            unsafe { self.add_plain_avx512(xs, w, c0, wd, rows, want_m2) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { self.add_plain_avx2(xs, w, c0, wd, rows, want_m2) };
            return;
        }
        self.add(xs, w, c0, wd, rows, |x: T| x.to_f64(), want_m2);
    }

    add_plain_with!(add_plain_avx2, "avx2");
    add_plain_with!(add_plain_avx512, "avx512f");

    /// Empty again, in place (no 16 KiB temporary).
    fn reset(&mut self) {
        self.n.fill(0);
        self.nan.fill(0);
        self.sum.fill(0.0);
        self.sum_c.fill(0.0);
        self.mean.fill(0.0);
        self.m2.fill(0.0);
        self.min.fill(f64::INFINITY);
        self.max.fill(f64::NEG_INFINITY);
    }

    /// Cell `k` as an [`Acc`].
    fn acc(&self, k: usize) -> Acc {
        Acc {
            n: self.n[k],
            nan: self.nan[k],
            sum: self.sum[k],
            sum_c: self.sum_c[k],
            mean: self.mean[k],
            m2: self.m2[k],
            min: self.min[k],
            max: self.max[k],
            ..Acc::default()
        }
    }
}

/// Partial statistics of the kept cells of one *leaf* — one or more blocks
/// of a tile, added in order — for the last-axis-kept layout of float (or
/// decoded) data; other layouts merge the blocks' [`reduce_block_axes`]
/// results in order. Reused from leaf to leaf (no allocation per block).
#[derive(Default)]
pub struct LeafAcc {
    tiles: Vec<ColTile>,
    /// Cells per prefix (the last kept run's extent) of the tiled layout.
    w: usize,
    n_prefix: usize,
    /// Blocks added in another layout, merged per cell.
    cells: Option<Vec<Acc>>,
}

impl LeafAcc {
    /// Add one block (`xs`, C order, extents `count`; the same kept extents
    /// for every block of the leaf).
    pub fn add<T: Element>(
        &mut self,
        xs: &[T],
        count: &[usize],
        reduced: &[bool],
        decode: &Decode,
        want_m2: bool,
    ) {
        let n = count.len();
        let tiled = n > 0 && !reduced[n - 1] && (!decode.is_identity() || T::DTYPE.is_float());
        if !tiled {
            let part = reduce_block_axes(xs, count, reduced, decode, want_m2);
            self.cells = Some(match self.cells.take() {
                None => part,
                Some(acc) => crate::pieces::merge_cells(acc, &part),
            });
            return;
        }
        // Rows: runs of the trailing kept axes; prefix = cell of the row's
        // first element ÷ row length.
        let mut j = n;
        while j > 0 && !reduced[j - 1] {
            j -= 1;
        }
        let w: usize = count[j..].iter().product();
        let n_runs: usize = count[..j].iter().product();
        let mut cstride = vec![0usize; j];
        let mut acc = 1;
        for a in (0..j).rev() {
            if !reduced[a] {
                cstride[a] = acc;
                acc *= count[a];
            }
        }
        let rows: Vec<usize> = (0..n_runs)
            .map(|mut r| {
                let mut cell = 0;
                for a in (0..j).rev() {
                    cell += (r % count[a]) * cstride[a];
                    r /= count[a];
                }
                cell
            })
            .collect();
        self.add_rows(xs, w, &rows, acc, decode, want_m2);
    }

    /// Add a block given as rows of `w` values (`prefix[r]` = prefix cell of
    /// row r, `n_prefix` prefixes).
    fn add_rows<T: Element>(
        &mut self,
        xs: &[T],
        w: usize,
        prefix: &[usize],
        n_prefix: usize,
        decode: &Decode,
        want_m2: bool,
    ) {
        let per = w.div_ceil(TILE);
        if self.tiles.len() != n_prefix * per || self.w != w {
            self.tiles = vec![ColTile::default(); n_prefix * per];
        }
        self.w = w;
        self.n_prefix = n_prefix;
        // Rows of each prefix, in row order.
        let mut order: Vec<usize> = (0..prefix.len()).collect();
        order.sort_by_key(|&r| prefix[r]);
        let mut starts = vec![0usize; n_prefix + 1];
        for &p in prefix {
            starts[p + 1] += 1;
        }
        for p in 0..n_prefix {
            starts[p + 1] += starts[p];
        }
        self.tiles.par_iter_mut().enumerate().for_each(|(i, tile)| {
            let (p, c0) = (i / per, (i % per) * TILE);
            let wd = TILE.min(w - c0);
            let rows = &order[starts[p]..starts[p + 1]];
            if decode.is_identity() {
                tile.add_plain(xs, w, c0, wd, rows, want_m2);
            } else {
                tile.add(
                    xs,
                    w,
                    c0,
                    wd,
                    rows,
                    |x: T| decode.apply(x.to_f64()),
                    want_m2,
                );
            }
        });
    }

    /// The leaf's cells (C order over the kept extents); resets for the next leaf.
    pub fn finish(&mut self) -> Vec<Acc> {
        match self.cells.take() {
            Some(cells) => cells,
            None => self.finish_as(|a| *a),
        }
    }

    /// [`LeafAcc::finish`], each cell converted by `f` as it is made (e.g.
    /// into the smaller [`crate::accum::FloatAcc`]).
    pub fn finish_as<C>(&mut self, f: impl Fn(&Acc) -> C) -> Vec<C> {
        let mut out = Vec::new();
        self.finish_into(&mut out, f);
        out
    }

    /// [`LeafAcc::finish_as`] into `out` (cleared first; its allocation is
    /// reused).
    pub fn finish_into<C>(&mut self, out: &mut Vec<C>, f: impl Fn(&Acc) -> C) {
        out.clear();
        if let Some(cells) = self.cells.take() {
            out.extend(cells.iter().map(f));
            return;
        }
        let (w, per) = (self.w, self.w.div_ceil(TILE));
        out.reserve(self.n_prefix * w);
        for (i, t) in self.tiles.iter_mut().enumerate() {
            let wd = TILE.min(w - (i % per) * TILE);
            out.extend((0..wd).map(|k| f(&t.acc(k))));
            t.reset();
        }
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

    /// Runs longer than a sub-slice (a field mean of big maps): the flat
    /// parallel pass over every run's sub-slices gives each run exactly
    /// `run_block`'s result (its sub-slices merged in order), for any
    /// thread count, with and without CF decoding.
    #[test]
    fn long_runs_match_run_block_bits() {
        let inner = 2 * SUB_ELEMS + 77;
        let count = [3usize, 2, inner];
        // Non-integer values (sums round: any other split changes bits),
        // every 97th the missing value of the packed decoding.
        let xs: Vec<f32> = (0..count.iter().product::<usize>())
            .map(|i| {
                if i % 97 == 0 {
                    500.0
                } else {
                    (crate::generate_values::uniform01(9, i as u64) * 1e3) as f32
                }
            })
            .collect();
        let packed = Decode {
            missing: vec![500.0],
            scale: Some(0.5),
            offset: Some(3.0),
        };
        for decode in [Decode::default(), packed] {
            let want: Vec<Acc> = (0..6)
                .map(|r| {
                    Acc::default().merge(&run_block(&xs[r * inner..(r + 1) * inner], &decode, true))
                })
                .collect();
            for t in [1, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .unwrap();
                let got = pool.install(|| {
                    reduce_block_axes(&xs, &count, &[false, false, true], &decode, true)
                });
                assert_eq!(got, want, "{t} threads");
            }
        }
    }

    /// Exact sum of f64 values (Shewchuk's partials, as Python's math.fsum).
    fn fsum(xs: impl IntoIterator<Item = f64>) -> f64 {
        let mut partials: Vec<f64> = Vec::new();
        for mut x in xs {
            let mut i = 0;
            for j in 0..partials.len() {
                let mut y = partials[j];
                if x.abs() < y.abs() {
                    std::mem::swap(&mut x, &mut y);
                }
                let hi = x + y;
                let lo = y - (hi - x);
                if lo != 0.0 {
                    partials[i] = lo;
                    i += 1;
                }
                x = hi;
            }
            partials.truncate(i);
            partials.push(x);
        }
        partials.iter().sum()
    }

    /// A leaf of several blocks (time steps of maps), added block by block,
    /// against exact (fsum) mean and variance per cell; NaN skipped; the
    /// same bits for 1 and 3 threads and for a block split of the rows.
    #[test]
    fn leaf_of_blocks_matches_an_exact_reference() {
        let (nt, ny, nx) = (37usize, 5usize, 300usize);
        let xs: Vec<f32> = (0..nt * ny * nx)
            .map(|i| {
                if i % 23 == 7 {
                    f32::NAN
                } else {
                    // Mean ≫ std: the case naive formulas get wrong.
                    (1e4 + crate::generate_values::uniform01(11, i as u64) * 3.0) as f32
                }
            })
            .collect();
        let cells = ny * nx;
        let run = |threads: usize, step: usize| -> Vec<Acc> {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut leaf = LeafAcc::default();
                for t0 in (0..nt).step_by(step) {
                    let t1 = (t0 + step).min(nt);
                    leaf.add(
                        &xs[t0 * cells..t1 * cells],
                        &[t1 - t0, ny, nx],
                        &[true, false, false],
                        &Decode::default(),
                        true,
                    );
                }
                leaf.finish()
            })
        };
        let got = run(1, 8);
        let bits = |v: &[Acc]| v.iter().map(|a| a.to_words()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&run(3, 8)));
        for c in 0..cells {
            let col: Vec<f64> = (0..nt)
                .map(|t| f64::from(xs[t * cells + c]))
                .filter(|v| !v.is_nan())
                .collect();
            let n = col.len() as f64;
            let mean = fsum(col.iter().copied()) / n;
            let var = fsum(col.iter().map(|x| (x - mean) * (x - mean))) / n;
            let a = &got[c];
            assert_eq!(a.n as usize, col.len());
            assert_eq!(a.nan as usize, nt - col.len());
            let m = a.value(Op::Mean, &FIN).as_f64();
            assert!((m - mean).abs() <= 1e-15 * mean, "cell {c}: {m} vs {mean}");
            let v = a.value(Op::Var, &FIN).as_f64();
            assert!((v - var).abs() <= 1e-12 * var, "cell {c}: {v} vs {var}");
            let mn = col.iter().copied().fold(f64::INFINITY, f64::min);
            assert_eq!(a.value(Op::Min, &FIN).as_f64(), mn);
        }
        // One block per leaf gives the same statistics up to rounding.
        let whole = run(2, nt);
        for (a, b) in got.iter().zip(&whole) {
            let (x, y) = (
                a.value(Op::Var, &FIN).as_f64(),
                b.value(Op::Var, &FIN).as_f64(),
            );
            assert!((x - y).abs() <= 1e-12 * x);
        }
    }

    /// Blocks longer than [`SUB_ROWS`] rows, widths that are not a multiple
    /// of [`STRIP`], a column whose sums overflow f64 and an all-missing
    /// column: the undecoded path (compiled for the widest vectors the CPU
    /// has) and the decoding path (a missing value standing for NaN;
    /// baseline instructions) give the same bits, and both match an exact
    /// reference.
    #[test]
    fn vector_paths_long_blocks_and_overflow_match_the_reference() {
        let (nt, nx) = (150usize, 37usize);
        const MISSING: f64 = -999.0;
        let raw: Vec<f64> = (0..nt * nx)
            .map(|i| {
                let (t, c) = (i / nx, i % nx);
                match c {
                    3 => 1.5e308 * if t % 3 == 0 { -0.5 } else { 1.0 },
                    5 => MISSING,
                    _ if (i * 7) % 19 == 3 => MISSING,
                    _ => 1e6 + crate::generate_values::uniform01(5, i as u64) - 0.5,
                }
            })
            .collect();
        let nan: Vec<f64> = raw
            .iter()
            .map(|&x| if x == MISSING { f64::NAN } else { x })
            .collect();
        let run = |xs: &[f64], decode: &Decode, step: usize| -> Vec<Acc> {
            let mut leaf = LeafAcc::default();
            for t0 in (0..nt).step_by(step) {
                let t1 = (t0 + step).min(nt);
                leaf.add(
                    &xs[t0 * nx..t1 * nx],
                    &[t1 - t0, nx],
                    &[true, false],
                    decode,
                    true,
                );
            }
            leaf.finish()
        };
        let missing = Decode {
            missing: vec![MISSING],
            ..Decode::default()
        };
        let bits = |v: &[Acc]| v.iter().map(|a| a.to_words()).collect::<Vec<_>>();
        for step in [nt, 70] {
            let got = run(&nan, &Decode::default(), step);
            assert_eq!(bits(&got), bits(&run(&raw, &missing, step)), "step {step}");
            for (c, a) in got.iter().enumerate() {
                let col: Vec<f64> = (0..nt)
                    .map(|t| nan[t * nx + c])
                    .filter(|v| !v.is_nan())
                    .collect();
                assert_eq!((a.n as usize, a.nan as usize), (col.len(), nt - col.len()));
                if col.is_empty() {
                    assert!(a.value(Op::Mean, &FIN).as_f64().is_nan(), "cell {c}");
                    continue;
                }
                // Scaled by 2^-64 (exact) so that the overflowing column's
                // reference is finite.
                let scale = 2f64.powi(-64);
                let n = col.len() as f64;
                let mean = fsum(col.iter().map(|x| x * scale)) / n / scale;
                let var = fsum(col.iter().map(|x| (x * scale - mean * scale).powi(2)))
                    / n
                    / scale
                    / scale;
                let m = a.value(Op::Mean, &FIN).as_f64();
                // The overflow fallback sums the scaled values plainly.
                let tol = if c == 3 { 1e-13 } else { 1e-15 };
                assert!(
                    (m - mean).abs() <= tol * mean.abs(),
                    "cell {c}: {m} vs {mean}"
                );
                if c != 3 {
                    let v = a.value(Op::Var, &FIN).as_f64();
                    assert!((v - var).abs() <= 1e-9 * var, "cell {c}: {v} vs {var}");
                }
                let mn = col.iter().copied().fold(f64::INFINITY, f64::min);
                let mx = col.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                assert_eq!(a.value(Op::Min, &FIN).as_f64(), mn);
                assert_eq!(a.value(Op::Max, &FIN).as_f64(), mx);
            }
        }
    }

    /// A middle axis reduced (kept time and lon, reduced lat) through a leaf:
    /// rows of a prefix are not contiguous in the block.
    #[test]
    fn middle_axis_through_a_leaf_matches_the_reference() {
        let count = [4usize, 6, 70];
        let xs: Vec<f64> = (0..count.iter().product::<usize>())
            .map(|i| crate::generate_values::uniform01(4, i as u64) * 50.0 - 20.0)
            .collect();
        let reduced = [false, true, false];
        let mut leaf = LeafAcc::default();
        leaf.add(&xs, &count, &reduced, &Decode::default(), true);
        let got = leaf.finish();
        let want = reference(&xs, &count, &reduced);
        assert_eq!(got.len(), want.len());
        for (g, (m, v, n)) in got.iter().zip(&want) {
            assert_eq!(g.n as usize, *n);
            assert!((g.value(Op::Mean, &FIN).as_f64() - m).abs() < 1e-12);
            assert!((g.value(Op::Var, &FIN).as_f64() - v).abs() < 1e-10);
        }
    }
}
