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
