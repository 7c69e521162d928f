//! The commands. Each validates everything it can on every rank, agrees on
//! the outcome (see `comm`), and only then enters collective work.

pub mod completions;
pub mod convert;
pub mod formats;
pub mod generate;
pub mod inspect;
pub mod jobscript;
pub mod output;
pub mod parallel_write;
pub mod plan;
pub mod plot;
pub mod reduce;
pub mod scaling;
pub mod zarr_store;

/// Collective: describe the input on every rank. One file (or store) is
/// described by each rank itself (no collective call inside; the caller
/// agrees on the outcome). A multi-file input is expanded and described on
/// rank 0 alone — every file opened once, not once per rank — and the plan
/// broadcast; an error there is an error on every rank.
pub fn describe_input(
    comm: &crate::comm::Comm,
    spec: &crate::request::InputSpec,
) -> anyhow::Result<(crate::source::Source, crate::variable::VariableMeta)> {
    if !spec.is_multi() {
        return Ok(crate::source::describe(spec)?);
    }
    let local = comm.is_root().then(|| {
        crate::source::multi::describe_many(spec)
            .map(|plan| plan.to_wire())
            .map_err(anyhow::Error::from)
    });
    let plan = chunkwise_core::concat::Concat::from_wire(&comm.share_from_root(local)?)?;
    let meta = plan.meta.clone();
    let var = spec.var.clone().unwrap_or_default();
    Ok((
        crate::source::Source::Multi {
            plan: Box::new(plan),
            var,
        },
        meta,
    ))
}

/// Reduction threads per rank: `--threads`, else `SLURM_CPUS_PER_TASK`, else
/// the cores this process may run on (its CPU affinity / cgroup quota).
pub fn resolve_threads(flag: Option<usize>) -> Result<usize, crate::error::CwError> {
    match flag {
        Some(0) => Err(crate::error::CwError::Parse(
            "--threads must be at least 1".into(),
        )),
        Some(t) => Ok(t),
        None => Ok(std::env::var("SLURM_CPUS_PER_TASK")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&t| t > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))),
    }
}
