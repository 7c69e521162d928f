//! `chunkwise reduce`: statistics of one variable, over all dimensions or
//! some (`--dim`), of all of it or a part (`--select`).
//!
//! Flow: validate on every rank (agreed) → open with MPI-IO → the blocks are
//! ordered tile-major (see [`Tiling`]) and each rank takes a contiguous
//! range; one reader thread reads them into two reused buffers (double
//! buffering) while the rayon pool reduces the other → each rank folds its
//! blocks along the fixed merge tree of each tile ([`crate::tree`]) → the
//! tree pieces are gathered on rank 0, which completes every tile, places it
//! in the result and prints (and writes `--output`). The merge tree does not
//! depend on the rank count, so results are bit-identical for every P.
//!
//! Memory per rank: two block buffers plus O(log(blocks per tile)) partial
//! results of one block's kept cells. Rank 0 also holds the result
//! (120 bytes per result cell while combining).

mod output;
mod stream;

use crate::accum::{Acc, Finish};
use crate::comm::Comm;
use crate::decomp::{Block, Decomposition, Tiling, split_range};
use crate::element::Dtype;
use crate::parse::Op;
use crate::reduce_layout::{ReduceLayout, wants_m2};
use crate::report::{ReduceReport, RunFacts, Timings};
use crate::request::ReduceRequest;
use crate::selection::AxisRange;
use crate::source::{Reader, Source};
use crate::variable::VariableMeta;
use crate::with_dtype;
use std::path::PathBuf;
use std::time::Instant;

/// Everything `reduce` needs, validated.
#[derive(Clone, Debug)]
pub struct ReducePlan {
    /// Input file.
    pub file: PathBuf,
    /// Variable path (HDF5) or name (other formats).
    pub var: String,
    /// Where the variable is read from.
    pub source: Source,
    /// Requested statistics.
    pub ops: Vec<Op>,
    /// Element type of the variable.
    pub dtype: Dtype,
    /// What the file says about the variable (dimensions, CF attributes).
    pub meta: VariableMeta,
    /// Selection, blocks, merge order, finishing (see `reduce_layout`).
    pub layout: ReduceLayout,
    /// Threads per rank.
    pub threads: usize,
    /// NetCDF-4 output, if asked for.
    pub output: Option<PathBuf>,
}

impl ReducePlan {
    /// Selected range along each axis.
    pub fn sel(&self) -> &[AxisRange] {
        &self.layout.sel
    }
    /// Block decomposition of the selected part.
    pub fn decomp(&self) -> &Decomposition {
        &self.layout.decomp
    }
    /// Order of the blocks (which axes are reduced).
    pub fn tiling(&self) -> &Tiling {
        &self.layout.tiling
    }
    /// Finalisation settings.
    pub fn finish(&self) -> &Finish {
        &self.layout.finish
    }
}

/// Validate the request and the input on this rank (no collective calls).
pub fn validate(req: &ReduceRequest) -> anyhow::Result<ReducePlan> {
    let threads = super::resolve_threads(req.threads)?;
    let (source, meta) = crate::source::describe(&req.input)?;
    let mem_per_rank = crate::blocksize::mem_per_rank_from_env();
    let layout = crate::reduce_layout::layout(req, &meta, mem_per_rank)?;
    // A result too big for memory is refused before any read.
    let (limit, from) = match mem_per_rank {
        Some(m) => (m, "of memory per rank Slurm grants"),
        None => (crate::procinfo::physical_memory(), "of RAM on this machine"),
    };
    if limit > 0 {
        let mem = crate::reduce_layout::result_memory(&layout, req.ops.len());
        crate::reduce_layout::check_result_memory(&mem, &layout, limit, from)?;
    }
    if let Some(out) = &req.output {
        super::output::check_output(out, req.force, &[&req.input.path])?;
    }
    Ok(ReducePlan {
        file: req.input.path.clone(),
        var: source.var_name(),
        source,
        ops: req.ops.clone(),
        dtype: meta.dtype,
        meta,
        layout,
        threads,
        output: req.output.clone(),
    })
}

/// Run `reduce` on every rank; rank 0 prints the report.
pub fn run(comm: &Comm, req: &ReduceRequest) -> anyhow::Result<()> {
    // Checks on every rank, then agreement (comm::agree) before any collective.
    let plan = comm.agree(validate(req))?;
    let Some((mut report, cells)) = execute(comm, &plan)? else {
        // Non-root ranks only take part in agreeing on the output's fate.
        if plan.output.is_some() {
            comm.agree(Ok(()))?;
        }
        return Ok(());
    };
    if let Some(out) = &plan.output {
        // Rank 0 writes; the others wait in the matching agree above, so a
        // write error is agreed (one message, every rank exits non-zero).
        let written = output::write_output(&plan, &report, &cells, out);
        comm.agree(written.map_err(Into::into))?;
        report.output = Some(out.display().to_string());
    }
    if req.json {
        crate::outln!("{}", serde_json::to_string(&report)?)?;
    } else {
        crate::out!("{}", report.to_text())?;
    }
    Ok(())
}

/// Read, reduce and combine; returns the report and the result cells on rank 0.
pub fn execute(comm: &Comm, plan: &ReducePlan) -> anyhow::Result<Option<(ReduceReport, Vec<Acc>)>> {
    let t0 = Instant::now();
    // Collective open; the input was already described on every rank, so
    // a failure here is an MPI-IO problem and is agreed like the checks.
    let reader = Reader::open(comm, &plan.source)?;

    let (d, t) = (plan.decomp(), plan.tiling());
    let range = split_range(t.n_positions(), comm.rank(), comm.size());
    let mine: Vec<Block> = range
        .clone()
        .map(|p| d.block(t.block_index(d, p)))
        .collect();
    let want_m2 = wants_m2(&plan.ops);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(plan.threads)
        .build()?;

    // Rank-local phase: a failure here aborts the job (other ranks may already
    // be waiting in the gather below).
    let total = d.shape.iter().product::<usize>() as u64 * plan.dtype.size() as u64;
    let progress = crate::progress::Progress::start(comm, "reduce", total);
    let (pieces, read_s, compute_s) = with_dtype!(plan.dtype, T => {
        comm.or_abort(stream::reduce_blocks::<T>(&reader, plan, &mine, range.start, &pool, want_m2, &progress))
    });

    // Collectives from here on: every rank arrives, because a failure in the
    // rank-local phase above aborted the job instead of returning.
    let t_comm = Instant::now();
    // Rank 0 waits here for the others' final counts, as it would in the
    // gather below (see `crate::progress`); counted as communication.
    progress.finish();
    let gathered = comm.gather_varlen(&pieces);
    let my_bytes = (mine.iter().map(|b| b.len()).sum::<usize>() * plan.dtype.size()) as u64;
    let bytes_read = comm.sum_all(&[my_bytes])[0];
    let hosts = comm.hosts();
    let Some(words) = gathered else {
        comm.max_to_root(&[
            read_s,
            compute_s,
            t_comm.elapsed().as_secs_f64(),
            t0.elapsed().as_secs_f64(),
            crate::procinfo::peak_rss_bytes() as f64,
        ]);
        return Ok(None);
    };
    let cells = comm.or_abort(crate::pieces::assemble(d, t, &words));
    let comm_s = t_comm.elapsed().as_secs_f64();
    let total_s = t0.elapsed().as_secs_f64();
    let rss = crate::procinfo::peak_rss_bytes() as f64;
    let maxes = comm.max_to_root(&[read_s, compute_s, comm_s, total_s, rss]);
    reader.close();
    let timings = Timings {
        read_s: maxes[0],
        compute_s: maxes[1],
        comm_s: maxes[2],
        total_s: maxes[3],
    };
    let mut report = ReduceReport::build(
        &plan.file.display().to_string(),
        &plan.var,
        &plan.meta,
        &plan.ops,
        &plan.layout,
        &cells,
        RunFacts {
            ranks: comm.size(),
            hosts,
            threads: plan.threads,
            bytes_read,
            timings,
        },
    );
    report.peak_rss_mib = maxes[4] / (1u64 << 20) as f64;
    Ok(Some((report, cells)))
}
