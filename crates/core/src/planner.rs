//! Resource planning for `reduce`: from the data size (and storage chunks),
//! a node type and a time target to nodes, ranks, threads, memory per core,
//! block size and an estimated run time. Pure; every constant of the model is
//! stated here and printed in the plan's reasoning.
//!
//! The block size and shape are not chosen here: they come from the same
//! policy `reduce` applies at run time ([`crate::blocksize::auto_block_bytes`]
//! capped by the memory the job gets per rank, and
//! [`crate::reduce_layout::decomposition`]), so the plan predicts exactly the
//! blocks the job will read, and the job script passes no `--block-bytes`.
//!
//! Units: sizes of data and bandwidths in decimal units (GB = 10^9 B,
//! GB/s); memory requests in binary units (MiB/GiB = 2^20/2^30 B), because
//! Slurm's `--mem-per-cpu=1024M` means 1024 MiB.

use crate::blocksize::auto_block_bytes;
use crate::cluster::{Cluster, NodeType};
use crate::reduce_layout::decomposition;
use crate::selection::AxisRange;
use serde::Serialize;

/// Memory a rank needs besides its block buffers (MPI, HDF5, binary), bytes.
pub const RANK_OVERHEAD_BYTES: u64 = 64 << 20;
/// Block buffers in flight per rank (double buffering: one read, one reduced).
pub const BUFFERS_PER_RANK: u64 = 2;
/// Reduction kernel throughput per core, GB/s (conservative; measured 3–4 GB/s
/// per core for mean/std/min/max on the development machine).
pub const KERNEL_GBS_PER_CORE: f64 = 2.0;
/// Cost of one block (task) besides reading it. Measured: a 2 GiB reduce
/// with 1 MiB blocks (2048 blocks) takes at most 0.01 s longer than with
/// 4 MiB blocks (512 blocks), under 10 µs per block (`benches/speed.sh`
/// block sweep); 100 µs keeps a margin for parallel file systems.
pub const TASK_OVERHEAD_S: f64 = 1e-4;
/// Job start-up: MPI launch and file open on every rank, seconds.
pub const STARTUP_S: f64 = 2.0;
/// The lesson's guidance for storage chunk sizes: 10 MB to 1 GB (used for
/// advice on the file's chunking, not for the block size).
pub const MIN_CHUNK_BYTES: u64 = 10_000_000;
/// Upper end of the lesson's guidance.
pub const MAX_CHUNK_BYTES: u64 = 1_000_000_000;
/// Threads per rank when not given.
pub const DEFAULT_THREADS: u32 = 4;

/// What is being planned for.
#[derive(Clone, Debug)]
pub struct PlanInput {
    /// Bytes of data to read.
    pub data_bytes: u64,
    /// Array shape and storage chunk shape, when a file was given.
    pub layout: Option<(Vec<usize>, Option<Vec<usize>>)>,
    /// Element size in bytes.
    pub elem_size: usize,
    /// Storage with filters (compression): blocks are whole chunks.
    pub filtered: bool,
    /// Wall-time target for the run, seconds.
    pub time_target_s: u64,
    /// Threads per rank, if fixed by the user.
    pub threads: Option<u32>,
}

/// A recommended allocation.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Plan {
    /// Cluster profile name.
    pub cluster: String,
    /// Node type.
    pub node_type: String,
    /// Nodes.
    pub nodes: u32,
    /// MPI ranks per node.
    pub ranks_per_node: u32,
    /// Threads per rank (`--cpus-per-task`).
    pub threads_per_rank: u32,
    /// Total ranks.
    pub ranks: u32,
    /// Memory to request per core, MiB (`--mem-per-cpu`).
    pub mem_per_cpu_mib: u64,
    /// The node's per-core share (RAM ÷ cores), MiB.
    pub node_mem_per_core_mib: u64,
    /// Peak memory one rank needs, bytes.
    pub mem_per_rank_bytes: u64,
    /// Block budget for `--block-bytes`, bytes.
    pub block_bytes: u64,
    /// Block shape after aligning to the storage chunks (file input only).
    pub block_shape: Option<Vec<usize>>,
    /// Number of blocks (tasks).
    pub n_blocks: u64,
    /// Share of the run spent on per-task overhead.
    pub task_overhead_share: f64,
    /// Aggregate read bandwidth assumed, GB/s.
    pub bandwidth_gbs: f64,
    /// Estimated wall time of the run, seconds.
    pub est_seconds: f64,
    /// Time to request (`--time`), seconds.
    pub time_request_s: u64,
    /// The reasoning, one sentence per step.
    pub reasoning: Vec<String>,
    /// Things the user should know.
    pub warnings: Vec<String>,
}

fn gb(b: f64) -> String {
    format!("{:.3} GB", b / 1e9)
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / 1048576.0)
}

/// The blocks of `input` at block size `target`: the decomposition reduce
/// makes of the whole variable (file input), or equal blocks (a size only).
/// Returns the block bytes, shape and count; notes go to `why` and `warn`.
fn layout_blocks(
    input: &PlanInput,
    target: u64,
    why: &mut Vec<String>,
    warn: &mut Vec<String>,
) -> (u64, Option<Vec<usize>>, u64) {
    let Some((shape, chunk)) = &input.layout else {
        return (
            target,
            None,
            input.data_bytes.div_ceil(target.max(1)).max(1),
        );
    };
    let all: Vec<AxisRange> = shape.iter().map(|&d| AxisRange::all(d)).collect();
    let dec = decomposition(
        chunk.as_deref(),
        input.filtered,
        input.elem_size,
        &all,
        target,
    );
    let bb = (dec.block_elems() * input.elem_size) as u64;
    if let Some(c) = chunk {
        let cb = c.iter().product::<usize>() as u64 * input.elem_size as u64;
        if cb < 1 << 20 {
            warn.push(format!(
                "Storage chunks {c:?} hold only {} each: every chunk is a separate index lookup and read request, so whole-array statistics read slower than with chunks of 10 MB–1 GB. Consider rechunking.",
                mib(cb)
            ));
        } else if cb > MAX_CHUNK_BYTES {
            warn.push(format!(
                "Storage chunks {c:?} hold {} each, more than 1 GB: a compressed chunk must be decoded whole, so each rank needs more memory. Consider rechunking to 10 MB–1 GB.",
                gb(cb as f64)
            ));
        }
    } else {
        why.push("The dataset is contiguous: blocks are runs of whole rows.".into());
    }
    why.push(format!(
        "Aligned to the storage chunks, a block is {:?} elements = {}, {} blocks (the decomposition reduce makes).",
        dec.block_shape,
        mib(bb),
        dec.n_blocks()
    ));
    (bb, Some(dec.block_shape.clone()), dec.n_blocks() as u64)
}

/// Plan a `reduce` of `input` on `node` of `cluster`.
pub fn plan(cluster: &Cluster, node: &NodeType, input: &PlanInput) -> Plan {
    let mut why = Vec::new();
    let mut warn = Vec::new();
    let d = input.data_bytes as f64;
    let cores = node.cores;
    let threads = input.threads.unwrap_or(DEFAULT_THREADS).clamp(1, cores);
    let mut rpn = (cores / threads).max(1);
    why.push(format!(
        "Node type {} has {} cores and {} GiB; {} threads per rank leaves {} ranks per node.",
        node.name, cores, node.mem_gib, threads, rpn
    ));

    let node_bw = cluster
        .node_read_gbs
        .min(cores as f64 * KERNEL_GBS_PER_CORE);
    let budget_s = (input.time_target_s as f64 - STARTUP_S).max(1.0);
    let mut nodes = (d / (node_bw * 1e9 * budget_s)).ceil().max(1.0) as u32;
    why.push(format!(
        "Reading {} at an assumed {node_bw:.1} GB/s per node within {budget_s:.0} s (target minus {STARTUP_S} s start-up) needs {nodes} node(s).",
        gb(d)
    ));
    let fs_nodes = (cluster.fs_read_gbs / node_bw).floor().max(1.0) as u32;
    if nodes > fs_nodes {
        warn.push(format!(
            "The file system is assumed to deliver at most {:.0} GB/s in total, so more than {fs_nodes} node(s) would not read faster; the time target cannot be met.",
            cluster.fs_read_gbs
        ));
        nodes = fs_nodes;
    }
    let mut ranks = nodes * rpn;

    let share_mib = node.mem_per_core_mib();
    // The block size `reduce` will choose in the job: its automatic policy,
    // capped by the memory per rank (at most the node's share here; the
    // request below never lowers the cap under the block, see the check).
    let policy = |mem_per_rank: u64| auto_block_bytes(input.filtered, Some(mem_per_rank));
    let target = policy(threads as u64 * share_mib * 1048576);
    why.push(format!(
        "Block size: reduce's automatic policy, {} for {} data (two buffers per rank stay in cache while streaming), at most a quarter of the rank's memory.",
        mib(target),
        if input.filtered { "compressed (whole chunks)" } else { "uncompressed" }
    ));
    let (block_bytes, block_shape, n_blocks) = layout_blocks(input, target, &mut why, &mut warn);
    if n_blocks < ranks as u64 {
        let before = ranks;
        if n_blocks <= rpn as u64 {
            nodes = 1;
            rpn = n_blocks.max(1) as u32;
        } else {
            nodes = (n_blocks as u32).div_ceil(rpn);
        }
        ranks = nodes * rpn;
        warn.push(format!("Only {n_blocks} blocks: {before} ranks would leave some idle, so the plan uses {ranks}."));
    }

    let mem_per_rank = BUFFERS_PER_RANK * block_bytes + RANK_OVERHEAD_BYTES;
    let per_core = mem_per_rank.div_ceil(threads as u64) as f64 * 1.25 / 1048576.0;
    let mut mem_per_cpu = ((per_core / 256.0).ceil() as u64 * 256).max(1024);
    if mem_per_cpu > share_mib {
        warn.push(format!(
            "A rank needs {} (two blocks of {} plus {} overhead), more than {threads} core(s) × {share_mib} MiB: the request exceeds the per-core share, so the job is charged for more cores than it uses.",
            mib(mem_per_rank),
            mib(block_bytes),
            mib(RANK_OVERHEAD_BYTES)
        ));
    } else {
        mem_per_cpu = mem_per_cpu.min(share_mib);
    }
    why.push(format!(
        "Memory per rank = {BUFFERS_PER_RANK} × block + {} overhead = {}; per core with 25% headroom, rounded up to 256 MiB (at least 1 GiB): {mem_per_cpu} MiB of the node's {share_mib} MiB per core.",
        mib(RANK_OVERHEAD_BYTES),
        mib(mem_per_rank)
    ));

    if policy(threads as u64 * mem_per_cpu * 1048576) != target {
        warn.push(format!(
            "With {mem_per_cpu} MiB per core, reduce will choose blocks of {} instead of {}; the plan's block counts are approximate.",
            mib(policy(threads as u64 * mem_per_cpu * 1048576)),
            mib(target)
        ));
    }
    let bw = (nodes as f64 * node_bw)
        .min(cluster.fs_read_gbs)
        .min(ranks as f64 * threads as f64 * KERNEL_GBS_PER_CORE);
    let stream_s = d / (bw * 1e9);
    let est = STARTUP_S + stream_s;
    let overhead = (n_blocks as f64 / ranks as f64).ceil() * TASK_OVERHEAD_S;
    let share = if stream_s > 0.0 {
        overhead / stream_s
    } else {
        0.0
    };
    why.push(format!(
        "Estimated run time = {STARTUP_S} s + {} ÷ {bw:.1} GB/s = {est:.1} s; per-task overhead ({:.0} ms per block) is {:.3}% of it.",
        gb(d),
        TASK_OVERHEAD_S * 1e3,
        share * 100.0
    ));
    if share > 0.1 {
        warn.push(format!(
            "Per-task overhead is {:.0}% of the run: use bigger blocks (and chunks).",
            share * 100.0
        ));
    }
    let max_s = cluster.max_time_hours as u64 * 3600;
    let request = (((est * 2.0 + 300.0) / 300.0).ceil() as u64 * 300).min(max_s);
    why.push(format!(
        "Time request: twice the estimate plus 5 minutes, rounded up to 5 minutes: {}.",
        crate::parse::slurm_time(request)
    ));
    if est > input.time_target_s as f64 {
        warn.push(format!(
            "The estimate ({est:.0} s) exceeds the time target ({} s).",
            input.time_target_s
        ));
    }

    Plan {
        cluster: cluster.name.clone(),
        node_type: node.name.clone(),
        nodes,
        ranks_per_node: rpn,
        threads_per_rank: threads,
        ranks,
        mem_per_cpu_mib: mem_per_cpu,
        node_mem_per_core_mib: share_mib,
        mem_per_rank_bytes: mem_per_rank,
        block_bytes,
        block_shape,
        n_blocks,
        task_overhead_share: share,
        bandwidth_gbs: bw,
        est_seconds: est,
        time_request_s: request,
        reasoning: why,
        warnings: warn,
    }
}

/// Plan on the node type asked for, or recommend one: the cluster's default
/// unless a rank's memory would exceed that node's per-core share, in which
/// case the node type with the most memory per core that avoids it.
pub fn recommend(
    cluster: &Cluster,
    node: Option<&str>,
    input: &PlanInput,
) -> Result<Plan, crate::error::CwError> {
    if node.is_some() {
        return Ok(plan(cluster, cluster.node_or_default(node)?, input));
    }
    let default = cluster.node_or_default(None)?;
    let first = plan(cluster, default, input);
    let over = |p: &Plan| p.mem_per_cpu_mib > p.node_mem_per_core_mib;
    if !over(&first) {
        return Ok(first);
    }
    let mut others: Vec<&NodeType> = cluster
        .nodes
        .iter()
        .filter(|n| n.name != default.name)
        .collect();
    others.sort_by_key(|n| std::cmp::Reverse(n.mem_per_core_mib()));
    for n in others {
        let mut p = plan(cluster, n, input);
        if !over(&p) {
            p.reasoning.insert(
                0,
                format!(
                    "Node type {} chosen instead of the default {}: a rank needs more memory than {} MiB per core, {} has {} MiB per core.",
                    n.name,
                    default.name,
                    default.mem_per_core_mib(),
                    n.name,
                    n.mem_per_core_mib()
                ),
            );
            return Ok(p);
        }
    }
    Ok(first)
}

impl Plan {
    /// Human-readable plan.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "cluster {} / node type {}\n\n  nodes              {}\n  ranks per node     {}\n  threads per rank   {}\n  total ranks        {}\n  memory per core    {} MiB (node share {} MiB)\n  block size         {:.1} MB ({:.1} MiB){}\n  blocks (tasks)     {}\n  estimated time     {:.1} s at {:.1} GB/s\n  time to request    {}\n\nwhy:\n",
            self.cluster,
            self.node_type,
            self.nodes,
            self.ranks_per_node,
            self.threads_per_rank,
            self.ranks,
            self.mem_per_cpu_mib,
            self.node_mem_per_core_mib,
            self.block_bytes as f64 / 1e6,
            self.block_bytes as f64 / 1048576.0,
            self.block_shape
                .as_ref()
                .map(|b| format!(", shape {b:?}"))
                .unwrap_or_default(),
            self.n_blocks,
            self.est_seconds,
            self.bandwidth_gbs,
            crate::parse::slurm_time(self.time_request_s)
        );
        for r in &self.reasoning {
            s += &format!("  - {r}\n");
        }
        for w in &self.warnings {
            s += &format!("warning: {w}\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cluster: &str, node: &str, input: PlanInput) -> Plan {
        let c = Cluster::load(cluster).unwrap();
        let n = c.node(node).unwrap().clone();
        plan(&c, &n, &input)
    }

    /// The lesson's 20000×20000 f64 (3.2 GB) with 1000×1000 chunks on a Tetralith thin node.
    #[test]
    fn lesson_array_on_tetralith_thin() {
        let p = run(
            "tetralith",
            "thin",
            PlanInput {
                data_bytes: 3_200_000_000,
                layout: Some((vec![20000, 20000], Some(vec![1000, 1000]))),
                elem_size: 8,
                filtered: false,
                time_target_s: 900,
                threads: None,
            },
        );
        // 32 cores / 4 threads = 8 ranks; 3.2 GB / (1.5 GB/s * 898 s) < 1 -> 1 node.
        assert_eq!(
            (p.nodes, p.ranks_per_node, p.threads_per_rank, p.ranks),
            (1, 8, 4, 8)
        );
        // Unfiltered: 4 MiB blocks. An 8 MB chunk is halved along its leading
        // axis to 500 x 1000 (4,000,000 B <= 4 MiB); 40 x 20 = 800 blocks.
        assert_eq!(p.block_shape, Some(vec![500, 1000]));
        assert_eq!((p.block_bytes, p.n_blocks), (4_000_000, 800));
        // 2 x 4 MB + 64 MiB = 75,108,864 B per rank -> 1024 MiB floor.
        assert_eq!(p.mem_per_rank_bytes, 2 * 4_000_000 + (64 << 20));
        assert_eq!((p.mem_per_cpu_mib, p.node_mem_per_core_mib), (1024, 3072));
        // 2 s + 3.2 GB / 1.5 GB/s = 4.1333 s; request 2*4.13+300 = 308 s -> 600 s.
        assert!((p.est_seconds - (2.0 + 3.2 / 1.5)).abs() < 1e-9);
        assert_eq!(p.time_request_s, 600);
        // 100 blocks per rank * 100 us / 2.1333 s = 0.47 %.
        assert!((p.task_overhead_share - 100.0 * 1e-4 / (3.2 / 1.5)).abs() < 1e-12);
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    /// 2 TB on Kebnekaise zen3 nodes, size only.
    #[test]
    fn two_terabytes_on_kebnekaise_zen3() {
        let input = PlanInput {
            data_bytes: 2_000_000_000_000,
            layout: None,
            elem_size: 8,
            filtered: false,
            time_target_s: 900,
            threads: None,
        };
        let p = run("kebnekaise", "zen3", input.clone());
        // 2e12 / (3 GB/s * 898 s) = 0.74 -> 1 node, 128/4 = 32 ranks.
        assert_eq!((p.nodes, p.ranks), (1, 32));
        // reduce's policy for unfiltered data: 4 MiB blocks; ceil(2e12 / 4 MiB) blocks.
        assert_eq!(
            (p.block_bytes, p.n_blocks),
            (4 << 20, 2_000_000_000_000u64.div_ceil(4 << 20))
        );
        // 8 MiB + 64 MiB per rank -> 1024 MiB floor; node share 960 GiB/128 = 7680 MiB.
        assert_eq!((p.mem_per_cpu_mib, p.node_mem_per_core_mib), (1024, 7680));
        // 2 s + 2e12 / 3e9 = 668.67 s -> request 1637 s -> 1800 s.
        assert!((p.est_seconds - (2.0 + 2000.0 / 3.0)).abs() < 1e-6);
        assert_eq!(p.time_request_s, 1800);
        // A 5-minute target needs 2e12 / (3e9 * 298) = 2.24 -> 3 nodes, 96 ranks.
        let fast = run(
            "kebnekaise",
            "zen3",
            PlanInput {
                time_target_s: 300,
                ..input
            },
        );
        assert_eq!((fast.nodes, fast.ranks), (3, 96));
        assert!((fast.est_seconds - (2.0 + 2000.0 / 9.0)).abs() < 1e-6);
    }

    #[test]
    fn small_chunks_and_few_blocks_are_flagged() {
        // 8 MB file in 100x100 f64 chunks (80 KB): small chunks; 4 MiB blocks
        // of 500 x 1000 -> 2 blocks, so 2 ranks.
        let p = run(
            "cosmos",
            "lu48",
            PlanInput {
                data_bytes: 8_000_000,
                layout: Some((vec![1000, 1000], Some(vec![100, 100]))),
                elem_size: 8,
                filtered: false,
                time_target_s: 600,
                threads: None,
            },
        );
        assert!(
            p.warnings.iter().any(|w| w.contains("hold only")),
            "{:?}",
            p.warnings
        );
        assert_eq!(p.block_shape, Some(vec![500, 1000]));
        assert_eq!(p.n_blocks, 2);
        assert_eq!(p.ranks, 2);
    }

    #[test]
    fn huge_chunks_move_the_job_to_fat_nodes() {
        // 4 compressed chunks of 2 GB (1 x 250e6 f64; decoded whole, so a
        // block is one chunk) with 1 thread per rank: a rank needs
        // 2 x 2 GB + 64 MiB = 3.79 GiB, x1.25 = 4.74 GiB > thin's 3 GiB per core;
        // fat has 384 GiB / 32 = 12 GiB per core.
        let c = Cluster::load("tetralith").unwrap();
        let input = PlanInput {
            data_bytes: 8_000_000_000,
            layout: Some((vec![4, 250_000_000], Some(vec![1, 250_000_000]))),
            elem_size: 8,
            filtered: true,
            time_target_s: 900,
            threads: Some(1),
        };
        let thin = plan(&c, c.node("thin").unwrap(), &input);
        assert!(
            thin.mem_per_cpu_mib > 3072
                && thin.warnings.iter().any(|w| w.contains("per-core share"))
        );
        let p = recommend(&c, None, &input).unwrap();
        assert_eq!(p.node_type, "fat");
        assert_eq!(
            p.mem_per_cpu_mib,
            ((2 * 2_000_000_000u64 + (64 << 20)) as f64 * 1.25 / 1048576.0 / 256.0).ceil() as u64
                * 256
        );
        assert!(p.reasoning[0].contains("chosen instead of the default thin"));
        // Asked for explicitly, the node type is kept.
        assert_eq!(
            recommend(&c, Some("thin"), &input).unwrap().node_type,
            "thin"
        );
    }

    #[test]
    fn file_system_ceiling_caps_nodes() {
        // 100 TB in 10 minutes on Tetralith: 40 TB... needs far more than 20 GB/s.
        let p = run(
            "tetralith",
            "thin",
            PlanInput {
                data_bytes: 100_000_000_000_000,
                layout: None,
                elem_size: 8,
                filtered: false,
                time_target_s: 600,
                threads: Some(8),
            },
        );
        assert_eq!(p.nodes, (20.0f64 / 1.5).floor() as u32);
        assert!(p.warnings.iter().any(|w| w.contains("cannot be met")));
    }
}
