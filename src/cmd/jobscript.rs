//! `chunkwise jobscript`: render an sbatch script for a cluster profile.

use super::output;
use crate::cli::JobscriptArgs;
use crate::cluster::Cluster;
use crate::error::CwError;
use crate::jobscript::{JobSpec, render};
use crate::parse::{parse_bytes, parse_duration, slurm_time};

/// Render the script described by `a`; `raw` are the arguments as given
/// (recorded in the script so it can be re-rendered).
pub fn render_args(a: &JobscriptArgs, raw: Vec<String>) -> Result<String, CwError> {
    let cluster = Cluster::load(&a.cluster)?;
    let node = cluster.node_or_default(a.node.as_deref())?;
    let secs = parse_duration(&a.time).map_err(|e| CwError::Parse(format!("--time: {e}")))?;
    if secs > cluster.max_time_hours as u64 * 3600 {
        return Err(CwError::Parse(format!(
            "--time {} exceeds {}'s limit of {} h",
            a.time, cluster.name, cluster.max_time_hours
        )));
    }
    let mem = a
        .mem_per_cpu
        .as_deref()
        .map(|m| {
            parse_bytes(m)
                .map(|b| b.div_ceil(1 << 20))
                .map_err(|e| CwError::Parse(format!("--mem-per-cpu: {e}")))
        })
        .transpose()?;
    let spec = JobSpec {
        cluster: &cluster,
        node,
        account: a.account.clone(),
        job_name: a.job_name.clone(),
        nodes: a.nodes,
        ntasks_per_node: a
            .ntasks_per_node
            .unwrap_or((node.cores / a.cpus_per_task.max(1)).max(1)),
        cpus_per_task: a.cpus_per_task,
        time: slurm_time(secs),
        mem_per_cpu_mib: mem,
        stage: a.stage,
        args: a.args.clone(),
        rendered_from: raw,
    };
    render(&spec)
}

/// Run `jobscript`.
pub fn run(a: &JobscriptArgs) -> anyhow::Result<()> {
    // Record the arguments after the subcommand, minus where the script is written.
    let all: Vec<String> = std::env::args().skip(2).collect();
    let split = all.iter().position(|x| x == "--").unwrap_or(all.len());
    let mut raw: Vec<String> = Vec::new();
    let mut skip_next = false;
    for x in &all[..split] {
        if std::mem::take(&mut skip_next) {
            continue;
        }
        match x.as_str() {
            "-o" | "--output" => skip_next = true,
            "--force" => {}
            _ if x.starts_with("--output=") => {}
            _ => raw.push(x.clone()),
        }
    }
    raw.extend_from_slice(&all[split..]);
    let text = render_args(a, raw)?;
    match &a.output {
        None => crate::out!("{text}")?,
        Some(out) => {
            output::check_output(out, a.force, &[])?;
            output::write_atomic(out, text.as_bytes(), a.force)?;
        }
    }
    Ok(())
}
