//! `chunkwise plan`: resources for a reduce of a file (or a size) on a cluster.

use crate::cli::{JobscriptArgs, PlanArgs};
use crate::cluster::Cluster;
use crate::cmd::jobscript::render_args;
use crate::error::CwError;
use crate::parse::{parse_bytes, parse_duration, parse_ops, slurm_time};
use crate::planner;
use crate::planner::{PlanInput, recommend};
use crate::reduce_layout::ResultMemory;
use crate::request::{InputSpec, ReduceRequest};

/// The request the planned job runs: `reduce FILE` with the plan's
/// `--op`, `--dim`/`--axis` and `--select`.
fn job_request(a: &PlanArgs, file: &std::path::Path) -> Result<ReduceRequest, CwError> {
    let input = InputSpec {
        path: file.into(),
        var: a.var.clone(),
        raw: crate::request::RawSpec::parse(
            a.raw.raw_dtype.as_deref(),
            a.raw.raw_shape.as_deref(),
        )?,
        ..InputSpec::default()
    };
    ReduceRequest::parse_parts(
        input,
        &a.op,
        None,
        a.dim.as_deref(),
        a.axis.as_deref(),
        &a.select,
    )
}

/// The memory of the job's result (see `reduce_layout::result_memory`),
/// with a file; `None` for a size alone (whole-array statistics, one cell).
fn result_memory(a: &PlanArgs) -> Result<Option<ResultMemory>, CwError> {
    let Some(f) = &a.file else { return Ok(None) };
    let req = job_request(a, f)?;
    let meta = describe_meta(&req.input)?;
    let layout = crate::reduce_layout::layout(&req, &meta, None)?;
    Ok(Some(crate::reduce_layout::result_memory(
        &layout,
        req.ops.len(),
    )))
}

/// The same description `reduce` makes, for every input format and for a
/// quoted pattern of many files (one dataset).
fn describe_meta(spec: &InputSpec) -> Result<crate::variable::VariableMeta, CwError> {
    Ok(if spec.is_multi() {
        crate::source::multi::describe_many(spec)?.meta
    } else {
        crate::source::describe(spec)?.1
    })
}

/// Build the planner's input from a file's variable or a size.
fn input(a: &PlanArgs) -> Result<PlanInput, CwError> {
    let time_target_s = parse_duration(&a.time_target)
        .map_err(|e| CwError::Parse(format!("--time-target: {e}")))?;
    if a.threads == Some(0) {
        return Err(CwError::Parse("--threads must be at least 1".into()));
    }
    match (&a.file, &a.bytes) {
        (Some(f), _) => {
            // The same description `reduce` makes, for every input format
            // and for a quoted pattern of many files (one dataset).
            let m = describe_meta(&a.raw.input(f, a.var.as_deref())?)?;
            let dtype = m.dtype;
            Ok(PlanInput {
                data_bytes: (m.shape.iter().product::<usize>() * dtype.size()) as u64,
                layout: Some((m.shape, m.chunk)),
                elem_size: dtype.size(),
                filtered: m.filtered,
                time_target_s,
                threads: a.threads,
            })
        }
        (None, Some(b)) => {
            let bytes = parse_bytes(b).map_err(|e| CwError::Parse(format!("--bytes: {e}")))?;
            if bytes == 0 {
                return Err(CwError::Parse("--bytes must be positive".into()));
            }
            Ok(PlanInput {
                data_bytes: bytes,
                layout: None,
                elem_size: 8,
                // A size alone: assume uncompressed data (the common case for
                // the fastest plan; compressed files are planned from --file).
                filtered: false,
                time_target_s,
                threads: a.threads,
            })
        }
        (None, None) => Err(CwError::Parse(
            "give --file F (with --var V for HDF5) or --bytes SIZE".into(),
        )),
    }
}

/// Run `plan`.
pub fn run(a: &PlanArgs) -> anyhow::Result<()> {
    parse_ops(&a.op)?;
    let cluster = Cluster::load(&a.cluster)?;
    let mut p = recommend(&cluster, a.node.as_deref(), &input(a)?)?;
    let result = result_memory(a)?;
    if let Some(r) = &result {
        let node = cluster.node_or_default(Some(&p.node_type))?;
        let node_bytes = node.mem_gib as u64 * (1 << 30);
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        if r.cells > 1 {
            p.reasoning.push(format!(
                "The result has {} cells: rank 0 needs about {:.2} GiB to combine them, every rank {:.2} GiB of partial results.",
                r.cells,
                gib(r.rank0_bytes),
                gib(r.per_rank_bytes)
            ));
        }
        if r.rank0_bytes > node_bytes {
            p.warnings.push(format!(
                "The result ({} cells, about {:.1} GiB on rank 0) does not fit the {} GiB of a {} node: reduce refuses it; select less or reduce over more dimensions.",
                r.cells,
                gib(r.rank0_bytes),
                node.mem_gib,
                node.name
            ));
        }
    }
    let node = cluster.node_or_default(Some(&p.node_type))?;
    let script = if a.jobscript {
        let file = a
            .file
            .as_ref()
            .expect("clap requires --file")
            .display()
            .to_string();
        // The job's reduce: no --block-bytes, so it applies the same
        // automatic block policy the plan predicted its blocks with.
        let request = job_request(a, std::path::Path::new(&file))?;
        let args = request.to_argv();
        let account = a.account.clone().expect("clap requires --account");
        let time = slurm_time(p.time_request_s);
        let mem_per_cpu = format!("{}MiB", p.mem_per_cpu_mib);
        let mut from = vec![
            "--cluster".to_string(),
            a.cluster.clone(),
            "--account".into(),
            account.clone(),
            "--node".into(),
            node.name.clone(),
            "--nodes".into(),
            p.nodes.to_string(),
            "--ntasks-per-node".into(),
            p.ranks_per_node.to_string(),
            "--cpus-per-task".into(),
            p.threads_per_rank.to_string(),
            "--time".into(),
            time.clone(),
            "--mem-per-cpu".into(),
            mem_per_cpu.clone(),
            "--".into(),
        ];
        from.extend(args.iter().cloned());
        // The same path as `chunkwise jobscript` with those arguments.
        let js = JobscriptArgs {
            cluster: a.cluster.clone(),
            account,
            node: Some(node.name.clone()),
            nodes: p.nodes,
            ntasks_per_node: Some(p.ranks_per_node),
            cpus_per_task: p.threads_per_rank,
            time,
            mem_per_cpu: Some(mem_per_cpu),
            stage: false,
            job_name: "chunkwise".into(),
            output: None,
            force: false,
            args,
        };
        Some(render_args(&js, from)?)
    } else {
        None
    };
    if a.json {
        let v = serde_json::json!({ "plan": p, "jobscript": script, "result_memory": result, "model": {
            "rank_overhead_bytes": planner::RANK_OVERHEAD_BYTES,
            "buffers_per_rank": planner::BUFFERS_PER_RANK,
            "kernel_gbs_per_core": planner::KERNEL_GBS_PER_CORE,
            "task_overhead_s": planner::TASK_OVERHEAD_S,
            "startup_s": planner::STARTUP_S,
            "node_read_gbs": cluster.node_read_gbs,
            "fs_read_gbs": cluster.fs_read_gbs,
        }});
        crate::outln!("{}", serde_json::to_string_pretty(&v)?)?;
    } else if let Some(s) = script {
        crate::out!("{s}")?;
        crate::error::say(p.to_text().trim_end());
    } else {
        crate::out!("{}", p.to_text())?;
    }
    Ok(())
}
