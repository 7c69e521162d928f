//! The end of a read phase that is not the plain statistics (weighted
//! statistics, quantile passes): phase times and peak memory to rank 0,
//! bytes read, host names, and the report skeleton the results go into.

use super::ReducePlan;
use crate::comm::Comm;
use crate::report::{ReduceReport, RunFacts, Stat, Timings};
use std::time::Instant;

/// Seconds of one rank's phases.
#[derive(Clone, Copy, Debug, Default)]
pub struct Phase {
    /// Reading.
    pub read_s: f64,
    /// Kernels.
    pub compute_s: f64,
    /// Bytes this rank read.
    pub bytes: u64,
}

/// Collective: combine the ranks' phase facts. On rank 0, a report of
/// `plan` without results (timings from `t0`, communication from
/// `t_comm`); `None` elsewhere.
pub fn base_report(
    comm: &Comm,
    plan: &ReducePlan,
    phase: Phase,
    t0: Instant,
    t_comm: Instant,
) -> Option<ReduceReport> {
    let bytes_read = comm.sum_all(&[phase.bytes])[0];
    let hosts = comm.hosts();
    let comm_s = t_comm.elapsed().as_secs_f64();
    let total_s = t0.elapsed().as_secs_f64();
    let rss = crate::procinfo::peak_rss_bytes() as f64;
    let maxes = comm.max_to_root(&[phase.read_s, phase.compute_s, comm_s, total_s, rss]);
    if !comm.is_root() {
        return None;
    }
    let mut report = ReduceReport::build_grouped(
        &plan.file.display().to_string(),
        &plan.var,
        &plan.meta,
        &[],
        &plan.layout,
        // No statistics yet (the caller adds them): no cells needed.
        &[],
        RunFacts {
            ranks: comm.size(),
            hosts,
            threads: plan.threads,
            bytes_read,
            timings: Timings {
                read_s: maxes[0],
                compute_s: maxes[1],
                comm_s: maxes[2],
                total_s: maxes[3],
            },
        },
        plan.groups.as_ref(),
    );
    report.peak_rss_mib = maxes[4] / (1u64 << 20) as f64;
    Some(report)
}

/// A statistic's values as a report entry: a number for a whole-array
/// reduction, else an array (one value per group for a grouped one).
pub fn stat(plan: &ReducePlan, values: Vec<crate::accum::Value>) -> Stat {
    if plan.tiling().reduced.iter().all(|&r| r) && plan.groups.is_none() {
        Stat::Scalar(values[0])
    } else {
        Stat::Array(values)
    }
}

/// Add the phases of a later run (`b`) to report `a`: times, bytes, peak
/// memory and results add up.
pub fn combine(a: &mut ReduceReport, b: ReduceReport) {
    a.timings.read_s += b.timings.read_s;
    a.timings.compute_s += b.timings.compute_s;
    a.timings.comm_s += b.timings.comm_s;
    a.timings.total_s += b.timings.total_s;
    a.bytes_read += b.bytes_read;
    a.peak_rss_mib = a.peak_rss_mib.max(b.peak_rss_mib);
    a.throughput_gbs = a.bytes_read as f64 / a.timings.total_s.max(1e-12) / 1e9;
    a.results.extend(b.results);
}
