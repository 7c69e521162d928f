//! `reduce --quantile`: exact quantiles, NumPy's linear method.
//!
//! * **Whole array**: the passes of [`crate::quantile::Search`]. Each pass
//!   reads this rank's blocks once (double-buffered), the threads count
//!   into their own histograms, and the ranks combine them with one
//!   `MPI_Allreduce` (sum) and one (max) — so every rank knows the next
//!   pass — plus, for the last pass, a gather of at most
//!   [`crate::quantile::GATHER_MAX`] keys on rank 0.
//! * **Along dimensions**: the decomposition keeps whole series in a block
//!   ([`crate::quantile::series_decomposition`]); each rank sorts its
//!   blocks' cells and sends the quantiles to rank 0, which places them.
//!
//! Both are exact, so bit-identical for every P and thread count.

use super::ReducePlan;
use super::blocks::with_blocks;
use super::facts::{Phase, base_report, stat};
use crate::accum::Value;
use crate::comm::Comm;
use crate::decomp::{Block, for_each_row};
use crate::element::Element;
use crate::error::CwError;
use crate::quantile::{Group, KeyKind, Search, Tally, block_quantiles, quantile_name};
use crate::report::ReduceReport;
use crate::source::Reader;
use crate::with_dtype;
use rayon::prelude::*;
use std::time::Instant;

/// Compute the quantiles of `plan`; on rank 0 the report with a result per
/// quantile (`q0.95`), `None` elsewhere.
pub fn execute(comm: &Comm, plan: &ReducePlan) -> anyhow::Result<Option<ReduceReport>> {
    if plan.tiling().reduced.iter().all(|&r| r) {
        whole_array(comm, plan)
    } else {
        along_dims(comm, plan)
    }
}

fn whole_array(comm: &Comm, plan: &ReducePlan) -> anyhow::Result<Option<ReduceReport>> {
    let t0 = Instant::now();
    let reader = Reader::open(comm, &plan.source)?;
    let (_, mine) = super::blocks::rank_share(plan, comm.rank(), comm.size());
    let pool = crate::cmd::thread_pool(plan.threads)?;
    let kind = KeyKind::of(plan.dtype, &plan.meta.decode);
    let total = plan.decomp().shape.iter().product::<usize>() as u64 * plan.dtype.size() as u64;
    let mut search = Search::new(&plan.quantiles);
    let mut phase = Phase::default();
    let mut comm_s = 0.0;
    while !search.finished() {
        let groups = search.groups();
        let progress = crate::progress::Progress::start(comm, "reduce", total);
        crate::interrupt::set_total(mine.len());
        // Rank-local phase: a failure aborts the job (others may be in the allreduce).
        let (tally, p) = with_dtype!(plan.dtype, T => {
            comm.or_abort(pass::<T>(&reader, plan, &mine, &groups, kind, &pool, &progress))
        });
        let tc = Instant::now();
        progress.finish();
        phase.read_s += p.read_s;
        phase.compute_s += p.compute_s;
        phase.bytes += p.bytes;
        let sum = comm.sum_all(&tally.sum_words());
        let max = comm.max_all(&tally.max_words());
        // Every rank knows whether this pass collected keys (same groups).
        let keys = if groups.iter().any(|g| g.gather) {
            comm.gather_varlen(&tally.key_words(&groups))
        } else {
            None
        };
        comm.or_abort(search.advance(&groups, &sum, &max, keys.as_deref()));
        comm_s += tc.elapsed().as_secs_f64();
    }
    let t_comm = Instant::now();
    let report = base_report(comm, plan, phase, t0, t_comm);
    reader.close();
    let Some(mut report) = report else {
        return Ok(None);
    };
    report.timings.comm_s += comm_s;
    let values = search.values(kind, plan.finish().keep_nan);
    report.results = plan
        .quantiles
        .iter()
        .zip(values)
        .map(|(&q, v)| (quantile_name(q), stat(plan, vec![Value::Float(v)])))
        .collect();
    report.count = search.n.unwrap_or(0)
        + if plan.finish().keep_nan {
            search.nan
        } else {
            0
        };
    log::info!("quantiles: {} passes over the data", search.passes);
    Ok(Some(report))
}

/// One pass: count this rank's blocks into the groups' histograms (one
/// tally per thread, merged).
fn pass<T: Element>(
    reader: &Reader,
    plan: &ReducePlan,
    blocks: &[Block],
    groups: &[Group],
    kind: KeyKind,
    pool: &rayon::ThreadPool,
    progress: &crate::progress::Progress,
) -> Result<(Tally, Phase), CwError> {
    let threads = plan.threads.max(1);
    let mut parts: Vec<Tally> = (0..threads).map(|_| Tally::new(groups)).collect();
    let decode = &plan.meta.decode;
    let mut compute_s = 0.0;
    let ((), read_s) = with_blocks::<T, _>(
        reader,
        plan.sel(),
        plan.decomp().block_elems(),
        blocks,
        pool,
        progress,
        |feed| {
            while let Some((b, buf)) = feed.next()? {
                let t = Instant::now();
                let xs = &buf[..b.len()];
                let per = xs.len().div_ceil(threads).max(1);
                pool.install(|| {
                    xs.par_chunks(per)
                        .zip(parts.par_iter_mut())
                        .for_each(|(c, tl)| tl.add(c, groups, kind, decode));
                });
                compute_s += t.elapsed().as_secs_f64();
                crate::interrupt::tick();
                feed.give_back(buf);
            }
            Ok(())
        },
    )?;
    let mut tally = parts.swap_remove(0);
    for p in &parts {
        tally.merge(p);
    }
    let bytes = (blocks.iter().map(|b| b.len()).sum::<usize>() * plan.dtype.size()) as u64;
    Ok((
        tally,
        Phase {
            read_s,
            compute_s,
            bytes,
        },
    ))
}

fn along_dims(comm: &Comm, plan: &ReducePlan) -> anyhow::Result<Option<ReduceReport>> {
    let t0 = Instant::now();
    let reader = Reader::open(comm, &plan.source)?;
    let (range, mine) = super::blocks::rank_share(plan, comm.rank(), comm.size());
    let pool = crate::cmd::thread_pool(plan.threads)?;
    let total = plan.decomp().shape.iter().product::<usize>() as u64 * plan.dtype.size() as u64;
    let progress = crate::progress::Progress::start(comm, "reduce", total);
    crate::interrupt::set_total(mine.len());
    let (words, phase) = with_dtype!(plan.dtype, T => {
        comm.or_abort(series_blocks::<T>(&reader, plan, &mine, range.start, &pool, &progress))
    });
    let t_comm = Instant::now();
    progress.finish();
    let gathered = comm.gather_varlen(&words);
    let placed = gathered.map(|w| comm.or_abort(place(plan, &w)));
    let report = base_report(comm, plan, phase, t0, t_comm);
    reader.close();
    let (Some(mut report), Some((arrays, n))) = (report, placed) else {
        return Ok(None);
    };
    report.results = plan
        .quantiles
        .iter()
        .zip(arrays)
        .map(|(&q, v)| {
            (
                quantile_name(q),
                stat(plan, v.into_iter().map(Value::Float).collect()),
            )
        })
        .collect();
    report.count = n;
    Ok(Some(report))
}

/// Words per block: `[tile, valid values, quantile-major f64 bits…]`.
fn series_blocks<T: Element>(
    reader: &Reader,
    plan: &ReducePlan,
    blocks: &[Block],
    first: usize,
    pool: &rayon::ThreadPool,
    progress: &crate::progress::Progress,
) -> Result<(Vec<u64>, Phase), CwError> {
    let t = plan.tiling();
    let mut compute_s = 0.0;
    let (words, read_s) = with_blocks::<T, _>(
        reader,
        plan.sel(),
        plan.decomp().block_elems(),
        blocks,
        pool,
        progress,
        |feed| {
            let mut out = Vec::new();
            let mut pos = first;
            while let Some((b, buf)) = feed.next()? {
                let tm = Instant::now();
                let (q, n) = pool.install(|| {
                    block_quantiles(
                        &buf[..b.len()],
                        &b.count,
                        &t.reduced,
                        &plan.quantiles,
                        &plan.meta.decode,
                        plan.finish().keep_nan,
                    )
                });
                // One leaf per tile: the work position is the tile.
                out.extend([(pos / t.n_leaves) as u64, n]);
                out.extend(q.iter().map(|v| v.to_bits()));
                pos += 1;
                compute_s += tm.elapsed().as_secs_f64();
                crate::interrupt::tick();
                feed.give_back(buf);
            }
            Ok(out)
        },
    )?;
    let bytes = (blocks.iter().map(|b| b.len()).sum::<usize>() * plan.dtype.size()) as u64;
    Ok((
        words,
        Phase {
            read_s,
            compute_s,
            bytes,
        },
    ))
}

/// Rank 0: place every tile's quantiles in the result arrays (one per
/// quantile, C order over the result shape); also the valid values counted.
fn place(plan: &ReducePlan, words: &[u64]) -> Result<(Vec<Vec<f64>>, u64), CwError> {
    let (d, t) = (plan.decomp(), plan.tiling());
    if t.n_leaves != 1 {
        return Err(CwError::Internal(
            "quantiles along dimensions need whole series per block".into(),
        ));
    }
    let shape = t.result_shape(d);
    let cells: usize = shape.iter().product();
    let nq = plan.quantiles.len();
    let mut out = vec![vec![f64::NAN; cells]; nq];
    let mut n_total = 0;
    let mut at = 0;
    while at < words.len() {
        let tile = words[at] as usize;
        n_total += words.get(at + 1).copied().unwrap_or(0);
        let (start, count) = t.tile_region(d, tile);
        let k: usize = count.iter().product();
        let body = words
            .get(at + 2..at + 2 + nq * k)
            .ok_or_else(|| CwError::Internal(format!("truncated quantiles of tile {tile}")))?;
        let row = count.last().copied().unwrap_or(1);
        for (iq, arr) in out.iter_mut().enumerate() {
            let vals = &body[iq * k..(iq + 1) * k];
            for_each_row(&shape, &start, &count, |r, off| {
                let off = off as usize;
                for j in 0..row {
                    arr[off + j] = f64::from_bits(vals[r * row + j]);
                }
            });
        }
        at += 2 + nq * k;
    }
    Ok((out, n_total))
}
