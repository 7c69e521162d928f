//! `chunkwise reduce`: statistics of one variable, over all dimensions or
//! some (`--dim`), of all of it or a part (`--select`).
//!
//! Flow: validate on every rank (agreed) → open with MPI-IO → the blocks are
//! ordered tile-major (see [`Tiling`]) and each rank takes a contiguous
//! range; one reader thread reads them into two reused buffers (double
//! buffering) while the rayon pool reduces the other → each rank folds its
//! blocks along the fixed merge tree of each tile ([`crate::tree`]) → the
//! tree pieces stream to rank 0 ([`combine`]), which completes every tile as
//! they arrive, places it in the result and prints (and writes `--output`). The merge tree does not
//! depend on the rank count, so results are bit-identical for every P.
//!
//! Memory per rank: two block buffers plus O(log(blocks per tile)) partial
//! results of one block's kept cells. Rank 0 also holds the result and, while
//! combining, one partial result per tree level and one received message.

mod blocks;
mod combine;
mod facts;
mod groups;
mod output;
mod quantiles;
mod stream;
mod weights;

use crate::accum::{Acc, Finish};
use crate::comm::Comm;
use crate::decomp::{Decomposition, Tiling};
use crate::element::Dtype;
use crate::multi_var::VarChoice;
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
    /// `--quantile` (see [`quantiles`]).
    pub quantiles: Vec<f64>,
    /// `--weights`, laid over the selection (see [`weights`]).
    pub weights: Option<crate::weights::Weights>,
    /// `--groupby` / `--resample`: the group of every selected time step
    /// (see [`groups`]).
    pub groups: Option<crate::grouping::GroupAxis>,
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
    validate_described(req, crate::source::describe(&req.input)?)
}

/// Validate the request for an input already described (no collective calls).
pub fn validate_described(
    req: &ReduceRequest,
    (source, meta): (Source, VariableMeta),
) -> anyhow::Result<ReducePlan> {
    let threads = super::resolve_threads(req.threads)?;
    let mem_per_rank = crate::blocksize::mem_per_rank_from_env();
    let mut layout = crate::reduce_layout::layout(req, &meta, mem_per_rank)?;
    let groups = match &req.grouping {
        Some(g) => {
            if req.weights.is_some() || !req.quantiles.is_empty() {
                return Err(anyhow::anyhow!(
                    "{} cannot be combined with --weights or --quantile yet",
                    g.to_argv()[0]
                ));
            }
            Some(crate::grouping::group_axis(g, &meta, &layout.sel)?)
        }
        None => None,
    };
    // A result too big for memory is refused before any read.
    let (limit, from) = match mem_per_rank {
        Some(m) => (m, "of memory per rank Slurm grants"),
        None => (crate::procinfo::physical_memory(), "of RAM on this machine"),
    };
    if limit > 0 {
        let mut mem = crate::reduce_layout::result_memory(&layout, req.ops.len());
        if let Some(g) = &groups {
            // One result per group: every group may meet every rank.
            let n = g.len() as u64;
            mem.cells = mem.cells.saturating_mul(n);
            mem.rank0_bytes = mem.rank0_bytes.saturating_mul(n);
            mem.per_rank_bytes = mem.per_rank_bytes.saturating_mul(n);
        }
        crate::reduce_layout::check_result_memory(&mem, &layout, limit, from)?;
    }
    if !req.quantiles.is_empty() && layout.tiling.reduced.iter().any(|&r| !r) {
        // Quantiles along dimensions: whole series in every block.
        let chunk_in_sel: Option<Vec<usize>> = meta.chunk.as_ref().map(|c| {
            c.iter()
                .zip(&layout.sel)
                .map(|(&c, r)| (c / r.step).max(1))
                .collect()
        });
        layout.decomp = crate::quantile::series_decomposition(
            chunk_in_sel.as_deref(),
            meta.dtype.size(),
            &layout.decomp.shape,
            &layout.tiling.reduced,
            layout.block_bytes,
        );
        layout.tiling = crate::decomp::Tiling::new(&layout.decomp, &layout.tiling.reduced);
    }
    let weights = weights::resolve(req, &source, &meta, &layout.sel)?;
    let inputs: Vec<PathBuf> = match &source {
        Source::Multi { plan, .. } => plan.parts.iter().map(|p| PathBuf::from(&p.path)).collect(),
        _ => vec![req.input.path.clone()],
    };
    if let Some(out) = &req.output {
        super::output::check_output(
            out,
            req.force,
            &inputs.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
        )?;
    }
    Ok(ReducePlan {
        file: match &source {
            Source::Multi { plan, .. } => PathBuf::from(format!(
                "{} ({} files)",
                req.input.path.display(),
                plan.parts.len()
            )),
            _ => req.input.path.clone(),
        },
        var: source.var_name(),
        source,
        ops: req.ops.clone(),
        dtype: meta.dtype,
        meta,
        layout,
        threads,
        output: req.output.clone(),
        quantiles: req.quantiles.clone(),
        weights,
        groups,
    })
}

/// Run `reduce` on every rank; rank 0 prints the report.
pub fn run(comm: &Comm, req: &ReduceRequest) -> anyhow::Result<()> {
    match comm.agree(VarChoice::parse(req.input.var.as_deref()).map_err(Into::into))? {
        VarChoice::One => run_one(comm, req),
        VarChoice::List(names) => run_many(comm, req, names),
        VarChoice::All => {
            // Rank 0 lists the data variables of the (first) file that have
            // the reduced (and, over several files, the record) dimensions.
            let local = comm.is_root().then(|| {
                let reduced = match &req.over {
                    crate::selection::ReduceOver::Dims(d) => d.clone(),
                    _ => Vec::new(),
                };
                Ok(crate::source::multi::all_variables(&req.input, &reduced)?.join("\n"))
            });
            let names = comm.agree(comm.share_from_root(local))?;
            let names: Vec<String> = names.lines().map(String::from).collect();
            run_many(comm, req, names)
        }
    }
}

/// `--var A,B` or `--var all`: each variable reduced in turn (one read of
/// its blocks), the results printed as one report and written as one file.
fn run_many(comm: &Comm, req: &ReduceRequest, names: Vec<String>) -> anyhow::Result<()> {
    let mut done: Vec<(ReducePlan, Option<ReduceReport>)> = Vec::new();
    for name in &names {
        let mut r = req.clone();
        r.input.var = Some(name.clone());
        let described = super::describe_input(comm, &r.input);
        let planned = described
            .and_then(|d| validate_described(&r, d))
            .map_err(|e| e.context(format!("variable '{name}'")));
        let plan = comm.agree(planned)?;
        let result = execute_all(comm, &plan)?;
        done.push((plan, result));
    }
    if done.is_empty() {
        return comm.agree(Err(anyhow::anyhow!(
            "--var all: no variable in the input has the reduced dimensions"
        )));
    }
    if req.output.is_some() {
        // Every variable is read: only rank 0's write remains (see `run_one`).
        crate::interrupt::set_finishing();
    }
    // Rank 0 combines; a mismatch of result dimensions is agreed like a write error.
    let combined = if comm.is_root() {
        let reports: Vec<ReduceReport> = done.iter().filter_map(|(_, r)| r.clone()).collect();
        Some(crate::multi_var::combine_reports(reports))
    } else {
        None
    };
    let mut report = match combined {
        Some(Ok(r)) => comm.agree(Ok(Some(r)))?,
        Some(Err(e)) => comm.agree(Err(e.into()))?,
        None => comm.agree(Ok(None))?,
    };
    if let Some(out) = &req.output {
        let written = match &report {
            Some(_) => {
                let parts: Vec<(&ReducePlan, &ReduceReport)> = done
                    .iter()
                    .filter_map(|(p, r)| r.as_ref().map(|rep| (p, rep)))
                    .collect();
                output::write_output_many(&parts, out, req.force).map_err(Into::into)
            }
            None => Ok(()),
        };
        comm.agree(written)?;
        if let Some(r) = report.as_mut() {
            r.output = Some(out.display().to_string());
        }
    }
    if let Some(report) = report {
        if req.json {
            crate::outln!("{}", serde_json::to_string(&report)?)?;
        } else {
            crate::out!("{}", report.to_text())?;
        }
    }
    Ok(())
}

/// One variable.
fn run_one(comm: &Comm, req: &ReduceRequest) -> anyhow::Result<()> {
    // Checks on every rank, then agreement (comm::agree) before any
    // collective. A multi-file input is described on rank 0 and broadcast
    // (a collective every rank reaches: nothing before it can fail).
    let described = super::describe_input(comm, &req.input);
    let plan = comm.agree(described.and_then(|d| validate_described(req, d)))?;
    let result = execute_all(comm, &plan)?;
    if plan.output.is_some() {
        // Every rank has read its data; only rank 0's write of the (small)
        // result remains: a signal now waits for it (see `interrupt`).
        crate::interrupt::set_finishing();
    }
    let Some(mut report) = result else {
        // Non-root ranks only take part in agreeing on the output's fate.
        if plan.output.is_some() {
            comm.agree(Ok(()))?;
        }
        return Ok(());
    };
    if let Some(out) = &plan.output {
        // Rank 0 writes; the others wait in the matching agree above, so a
        // write error is agreed (one message, every rank exits non-zero).
        let written = output::write_output(&plan, &report, out, req.force);
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

/// Every statistic `plan` asks for: the plain ones ([`execute`]) or the
/// weighted ones ([`weights`]), then the quantiles ([`quantiles`]); the
/// report on rank 0.
pub fn execute_all(comm: &Comm, plan: &ReducePlan) -> anyhow::Result<Option<ReduceReport>> {
    let mut report = if plan.groups.is_some() {
        groups::execute(comm, plan)?
    } else if plan.weights.is_some() {
        weights::execute(comm, plan)?
    } else if !plan.ops.is_empty() {
        execute(comm, plan)?.map(|(r, _)| r)
    } else {
        None
    };
    if !plan.quantiles.is_empty() {
        let q = quantiles::execute(comm, plan)?;
        report = match (report, q) {
            (Some(mut r), Some(q)) => {
                facts::combine(&mut r, q);
                Some(r)
            }
            (None, q) => q,
            (r, None) => r,
        };
    }
    Ok(report)
}

/// Read, reduce and combine; returns the report and the result cells on rank 0.
pub fn execute(comm: &Comm, plan: &ReducePlan) -> anyhow::Result<Option<(ReduceReport, Vec<Acc>)>> {
    let t0 = Instant::now();
    // Collective open; the input was already described on every rank, so
    // a failure here is an MPI-IO problem and is agreed like the checks.
    let reader = Reader::open(comm, &plan.source)?;

    let (d, t) = (plan.decomp(), plan.tiling());
    let (range, mine) = blocks::rank_share(plan, comm.rank(), comm.size());
    let want_m2 = wants_m2(&plan.ops);
    let pool = crate::cmd::thread_pool(plan.threads)?;

    // Rank-local phase: a failure here aborts the job (other ranks may already
    // be waiting in the gather below).
    let total = d.shape.iter().product::<usize>() as u64 * plan.dtype.size() as u64;
    let progress = crate::progress::Progress::start(comm, "reduce", total);
    let (pieces, read_s, compute_s) = with_dtype!(plan.dtype, T => {
        comm.or_abort(stream::reduce_blocks::<T>(&reader, plan, &mine, range.clone(), &pool, want_m2, &progress))
    });

    // Collectives from here on: every rank arrives, because a failure in the
    // rank-local phase above aborted the job instead of returning.
    let t_comm = Instant::now();
    // Rank 0 waits here for the others' final counts, as it would in the
    // gather below (see `crate::progress`); counted as communication.
    progress.finish();
    // Pieces stream to rank 0, which completes the tiles as they arrive.
    let combined = comm.or_abort(combine::to_root::<Acc>(comm, d, t, pieces));
    let my_bytes = (mine.iter().map(|b| b.len()).sum::<usize>() * plan.dtype.size()) as u64;
    let bytes_read = comm.sum_all(&[my_bytes])[0];
    let hosts = comm.hosts();
    let Some(cells) = combined else {
        comm.max_to_root(&[
            read_s,
            compute_s,
            t_comm.elapsed().as_secs_f64(),
            t0.elapsed().as_secs_f64(),
            crate::procinfo::peak_rss_bytes() as f64,
        ]);
        return Ok(None);
    };
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
