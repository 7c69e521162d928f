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

/// The rank's rayon pool of `threads` threads, pool thread i bound to the
/// i-th CPU (cyclically) of those the rank may use, when it may use more
/// than one — as `mpirun` binds ranks to cores. Where the rank may use more
/// CPUs than it has threads (ranks not bound by the launcher, sharing the
/// node's CPUs), the ranks of a node start at different CPUs (local rank ×
/// threads), so they do not all pile onto the first ones. Unbound, the kernel places
/// woken threads beside their waker when the other CPUs are busy (with
/// other processes), so a pool whose threads wake each other per block
/// ran both threads on one CPU on a shared machine and `-n 1 --threads 2`
/// was no faster than `--threads 1` (issue 14).
pub fn thread_pool(threads: usize) -> Result<rayon::ThreadPool, rayon::ThreadPoolBuildError> {
    let cpus = crate::procinfo::allowed_cpus();
    let mut b = rayon::ThreadPoolBuilder::new().num_threads(threads);
    if threads > 1 && cpus.len() > 1 {
        let local = crate::launcher_local_rank();
        b = b.start_handler(move |i| {
            crate::procinfo::bind_to_cpu(pool_cpu(&cpus, threads, local, i))
        });
    }
    b.build()
}

/// The CPU pool thread `i` of local rank `local` binds to, of the rank's
/// allowed `cpus`, for pools of `threads` threads (see [`thread_pool`]).
fn pool_cpu(cpus: &[usize], threads: usize, local: usize, i: usize) -> usize {
    let first = if cpus.len() > threads {
        local * threads
    } else {
        0
    };
    cpus[(first + i) % cpus.len()]
}

/// Reduction threads per rank: `--threads`, else `SLURM_CPUS_PER_TASK`, else
/// the cores this process may run on (its CPU affinity / cgroup quota).
///
/// More threads than the machine has CPUs can never run at once and only
/// add start-up and switching cost (ten thousand threads took minutes on a
/// small file), so a larger value from either source is capped at the
/// machine's online CPUs with a warning. A value above the CPUs the rank is
/// bound to is kept, and the rank's CPU affinity is widened to every CPU the
/// process may use ([`crate::procinfo::widen_affinity`]): `mpirun` binds a
/// rank to one core by default (for up to two ranks), which would run all
/// its threads on that core — `-n 1 --threads 2` would be no faster than
/// `--threads 1`. A `SLURM_CPUS_PER_TASK` that is not a positive integer is
/// ignored with a warning. Warnings come from the launcher's rank 0 only.
pub fn resolve_threads(flag: Option<usize>) -> Result<usize, crate::error::CwError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpus = crate::procinfo::online_cpus().max(cores);
    let warn = |msg: String| {
        if crate::launcher_rank() == 0 {
            crate::error::say(&format!("chunkwise: warning: {msg}"));
        }
    };
    let (wanted, from) = match flag {
        Some(0) => {
            return Err(crate::error::CwError::Parse(
                "--threads must be at least 1".into(),
            ));
        }
        Some(t) => (t, "--threads"),
        None => match std::env::var("SLURM_CPUS_PER_TASK") {
            Err(_) => return Ok(cores),
            Ok(v) => match v.trim().parse::<usize>() {
                Ok(t) if t > 0 => (t, "SLURM_CPUS_PER_TASK"),
                _ => {
                    warn(format!(
                        "SLURM_CPUS_PER_TASK='{v}' is not a positive integer; ignored (using the {cores} cores available)"
                    ));
                    return Ok(cores);
                }
            },
        },
    };
    if wanted > cpus {
        warn(format!(
            "{from} {wanted} is more than the {cpus} CPUs of this machine; using {cpus} threads"
        ));
        return Ok(cpus);
    }
    if wanted > crate::procinfo::affinity_cpus() {
        crate::procinfo::widen_affinity();
    }
    Ok(wanted)
}

#[cfg(test)]
mod tests {
    use super::pool_cpu;

    #[test]
    fn ranks_sharing_cpus_start_at_different_ones() {
        // Bound ranks (two CPUs each, two threads): their own CPUs.
        assert_eq!(pool_cpu(&[6, 7], 2, 3, 0), 6);
        assert_eq!(pool_cpu(&[6, 7], 2, 3, 1), 7);
        // Unbound ranks on an 8-CPU node, two threads each: 0-1, 2-3, …
        let all: Vec<usize> = (0..8).collect();
        let used: Vec<usize> = (0..4)
            .flat_map(|r| (0..2).map(move |i| (r, i)))
            .map(|(r, i)| pool_cpu(&all, 2, r, i))
            .collect();
        assert_eq!(used, (0..8).collect::<Vec<_>>());
        // More ranks than fit: wrap around.
        assert_eq!(pool_cpu(&all, 2, 4, 1), 1);
    }
}
