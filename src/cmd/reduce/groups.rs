//! `reduce --groupby` / `--resample`: one pass over the data, as the plain
//! statistics, but each block is cut along the time axis into runs of
//! steps of one group (a calendar month, a season, a period), and each run
//! is accumulated into that group's partial results. A leaf's partials are
//! sparse (only the groups its steps belong to) and combine along each
//! tile's fixed merge tree group by group ([`crate::group_pieces`]), so the
//! result is bit-identical for every P and thread count, and equal for the
//! same data in one file or many (the decomposition does not see files).
//!
//! Memory per rank: two block buffers, one run copy when time is not the
//! block's outermost axis, and the partial results of the groups met.

use super::ReducePlan;
use super::blocks::with_blocks;
use super::facts::{Phase, base_report, stat};
use crate::accum::{Acc, FloatAcc};
use crate::axis_kernel::LeafAcc;
use crate::comm::Comm;
use crate::decomp::Block;
use crate::element::Element;
use crate::error::CwError;
use crate::group_pieces::{GroupAssembler, GroupCells, Piece};
use crate::pieces::StatCell;
use crate::reduce_layout::wants_m2;
use crate::report::ReduceReport;
use crate::source::Reader;
use crate::with_dtype;
use std::borrow::Cow;
use std::cell::RefCell;
use std::time::Instant;

/// Read, reduce per group and combine; the report on rank 0. Float (or
/// decoded) data carry the smaller [`FloatAcc`] cells, integers [`Acc`].
pub fn execute(comm: &Comm, plan: &ReducePlan) -> anyhow::Result<Option<ReduceReport>> {
    if plan.finish().integer {
        run::<Acc>(comm, plan)
    } else {
        run::<FloatAcc>(comm, plan)
    }
}

/// [`execute`] with partial results in cells of type `C`.
fn run<C: StatCell>(comm: &Comm, plan: &ReducePlan) -> anyhow::Result<Option<ReduceReport>> {
    let t0 = Instant::now();
    let reader = Reader::open(comm, &plan.source)?;
    let (d, t) = (plan.decomp(), plan.tiling());
    let groups = plan.groups.as_ref().expect("grouped plan");
    let (range, mine) = super::blocks::rank_share(plan, comm.rank(), comm.size());
    let pool = crate::cmd::thread_pool(plan.threads)?;
    let total = d.shape.iter().product::<usize>() as u64 * plan.dtype.size() as u64;
    let progress = crate::progress::Progress::start(comm, "reduce", total);
    crate::interrupt::set_total(mine.len());
    // Rank-local phase: a failure aborts the job (others may be waiting
    // to stream their pieces to rank 0).
    let (pieces, phase) = with_dtype!(plan.dtype, T => {
        comm.or_abort(grouped_blocks::<T, C>(&reader, plan, &mine, range.clone(), &pool, &progress))
    });
    let t_comm = Instant::now();
    progress.finish();
    // The pieces stream to rank 0, which completes each tile's trees as
    // they arrive and keeps only the final values of completed groups.
    let finished = if !comm.is_root() {
        // Each piece dropped group by group as it is encoded.
        let msgs = pieces.into_iter().flat_map(Piece::into_messages).collect();
        comm.stream_to_root(msgs, |_| Ok::<(), CwError>(()))?;
        None
    } else {
        let finish = plan.finish();
        let n_cells = t.result_shape(d).iter().product::<usize>() * groups.len();
        let empty = C::default();
        let mut values: Vec<Vec<crate::accum::Value>> = plan
            .ops
            .iter()
            .map(|&op| vec![empty.value(op, finish); n_cells])
            .collect();
        let mut count = 0u64;
        let mut place = |off: usize, cells: &[C]| {
            for (vals, &op) in values.iter_mut().zip(&plan.ops) {
                for (v, c) in vals[off..off + cells.len()].iter_mut().zip(cells) {
                    *v = c.value(op, finish);
                }
            }
            count += cells
                .iter()
                .map(|c| {
                    let (n, nan) = c.counts();
                    n + if finish.keep_nan { nan } else { 0 }
                })
                .sum::<u64>();
        };
        let mut asm = GroupAssembler::<C>::new(d, t, groups.len());
        let assembled = pieces
            .into_iter()
            .try_for_each(|p| asm.push(p, &mut place))
            .and_then(|()| comm.stream_to_root(Vec::new(), |m| asm.add(m, &mut place)))
            .and_then(|()| asm.finish());
        // A malformed piece is rank 0's alone: the others may wait in a send.
        comm.or_abort(assembled);
        Some((values, count))
    };
    let report = base_report(comm, plan, phase, t0, t_comm);
    reader.close();
    let (Some(mut report), Some((values, count))) = (report, finished) else {
        return Ok(None);
    };
    report.results = plan
        .ops
        .iter()
        .zip(values)
        .map(|(&op, vals)| (op.name().to_string(), stat(plan, vals)))
        .collect();
    report.count = count;
    Ok(Some(report))
}

/// This rank's blocks (those of work positions `leaves`), cut into runs of
/// one group along the time axis, accumulated per group and folded along
/// each tile's merge tree into wire pieces.
fn grouped_blocks<T: Element, C: StatCell>(
    reader: &Reader,
    plan: &ReducePlan,
    blocks: &[Block],
    leaves: std::ops::Range<usize>,
    pool: &rayon::ThreadPool,
    progress: &crate::progress::Progress,
) -> Result<(Vec<Piece<C>>, Phase), CwError> {
    let groups = plan.groups.as_ref().expect("grouped plan");
    let ax = groups.axis;
    let want_m2 = wants_m2(&plan.ops);
    let tiling = plan.tiling();
    let reduced = &tiling.reduced;
    let decode = plan.meta.decode.effective(T::DTYPE);
    // Accumulators of the groups the current leaf touches (a leaf meets a
    // few groups: a month or two of daily data), taken from and returned
    // to a pool so their state is allocated once, not per leaf or group.
    let mut spare: Vec<LeafAcc> = Vec::new();
    // Vectors of cells merged away along the tree, reused for the next
    // leaves' results instead of being freed and faulted in again.
    let spare_cells: RefCell<Vec<Vec<C>>> = RefCell::new(Vec::new());
    let recycle = |v: Vec<C>| spare_cells.borrow_mut().push(v);
    let mut compute_s = 0.0;
    let (pieces, read_s) = with_blocks::<T, _>(
        reader,
        plan.sel(),
        plan.decomp().block_elems(),
        blocks,
        pool,
        progress,
        |feed| {
            let mut next_leaf = leaves.start;
            let mut leaf = |_: usize| -> Result<GroupCells<C>, CwError> {
                let n_blocks = tiling.leaf_blocks(next_leaf).len();
                next_leaf += 1;
                let mut open: Vec<(u32, LeafAcc)> = Vec::new();
                for _ in 0..n_blocks {
                    let Some((b, buf)) = feed.next()? else {
                        return Err(CwError::Internal("fewer blocks than leaves".into()));
                    };
                    let tc = Instant::now();
                    let xs = &buf[..b.len()];
                    for (g, lo, hi) in groups.runs(b.start[ax], b.count[ax]) {
                        let (part, count) = run_of(xs, &b.count, ax, lo, hi);
                        let at = match open.iter().position(|(k, _)| *k == g) {
                            Some(i) => i,
                            None => {
                                open.push((g, spare.pop().unwrap_or_default()));
                                open.len() - 1
                            }
                        };
                        let acc = &mut open[at].1;
                        pool.install(|| acc.add(&part, &count, reduced, &decode, want_m2));
                    }
                    compute_s += tc.elapsed().as_secs_f64();
                    crate::interrupt::tick();
                    feed.give_back(buf);
                }
                let tc = Instant::now();
                open.sort_unstable_by_key(|(g, _)| *g);
                let mut cells = GroupCells::default();
                for (g, mut acc) in open {
                    let mut out = spare_cells.borrow_mut().pop().unwrap_or_default();
                    acc.finish_into(&mut out, |a| C::from(a));
                    cells.groups.push((g, out));
                    spare.push(acc);
                }
                compute_s += tc.elapsed().as_secs_f64();
                Ok(cells)
            };
            crate::group_pieces::fold_tiles(tiling, leaves.start, leaves.len(), &mut leaf, &recycle)
        },
    )?;
    let bytes = (blocks.iter().map(|b| b.len()).sum::<usize>() * plan.dtype.size()) as u64;
    Ok((
        pieces,
        Phase {
            read_s,
            compute_s,
            bytes,
        },
    ))
}

/// Steps `lo .. hi` along axis `ax` of a block (`xs` in C order, extents
/// `count`): a slice of the block when `ax` is its outermost axis of more
/// than one element, else a copy; with the run's extents.
fn run_of<'a, T: Copy>(
    xs: &'a [T],
    count: &[usize],
    ax: usize,
    lo: usize,
    hi: usize,
) -> (Cow<'a, [T]>, Vec<usize>) {
    let mut c = count.to_vec();
    c[ax] = hi - lo;
    let inner: usize = count[ax + 1..].iter().product();
    let outer: usize = count[..ax].iter().product();
    if outer == 1 {
        return (Cow::Borrowed(&xs[lo * inner..hi * inner]), c);
    }
    let stride = count[ax] * inner;
    let mut out = Vec::with_capacity(outer * (hi - lo) * inner);
    for o in 0..outer {
        out.extend_from_slice(&xs[o * stride + lo * inner..o * stride + hi * inner]);
    }
    (Cow::Owned(out), c)
}

#[cfg(test)]
mod tests {
    use super::run_of;

    #[test]
    fn a_run_is_the_steps_of_the_axis_in_c_order() {
        // 2 × 3 × 2 block, values = their flat index; steps 1..3 of axis 1.
        let xs: Vec<u32> = (0..12).collect();
        let (r, c) = run_of(&xs, &[2, 3, 2], 1, 1, 3);
        assert_eq!(c, vec![2, 2, 2]);
        assert_eq!(&*r, &[2, 3, 4, 5, 8, 9, 10, 11]);
        let (r, c) = run_of(&xs, &[3, 4], 0, 1, 2);
        assert_eq!(c, vec![1, 4]);
        assert_eq!(&*r, &[4, 5, 6, 7]);
    }
}
