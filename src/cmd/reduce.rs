//! `chunkwise reduce`: whole-array statistics of one variable.
//!
//! Flow: validate on every rank (agreed) → open with MPI-IO → each rank reads
//! its contiguous range of chunk-aligned blocks on one reader thread into two
//! reused buffers (double buffering) while the rayon pool reduces the other →
//! per-block partial statistics are gathered on rank 0 and merged in block
//! order → rank 0 prints.

use crate::accum::{ACC_WORDS, Acc, Finish};
use crate::cli::ReduceArgs;
use crate::comm::Comm;
use crate::decomp::{Block, Decomposition};
use crate::element::{Dtype, Element};
use crate::error::CwError;
use crate::parse::{Op, parse_bytes, parse_ops};
use crate::report::{ReduceReport, Timings};
use crate::{h5io, kernels, with_dtype};
use std::path::PathBuf;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

/// Everything `reduce` needs, validated.
#[derive(Clone, Debug)]
pub struct ReducePlan {
    /// Input file.
    pub file: PathBuf,
    /// Variable path.
    pub var: String,
    /// Requested statistics.
    pub ops: Vec<Op>,
    /// Finalisation settings.
    pub finish: Finish,
    /// Element type of the variable.
    pub dtype: Dtype,
    /// Block decomposition of the variable.
    pub decomp: Decomposition,
    /// Threads per rank.
    pub threads: usize,
}

/// Validate arguments and the input on this rank (no collective calls).
fn validate(args: &ReduceArgs) -> anyhow::Result<ReducePlan> {
    let ops = parse_ops(&args.op)?;
    let block_bytes = parse_bytes(&args.block_bytes)
        .map_err(|e| CwError::Parse(format!("--block-bytes: {e}")))?;
    if block_bytes == 0 {
        return Err(CwError::Parse("--block-bytes must be positive".into()).into());
    }
    let threads = super::resolve_threads(args.threads)?;
    let h5io::VariableMeta {
        dtype,
        shape,
        chunk,
    } = h5io::variable_meta(&args.file, &args.var)?;
    let decomp = Decomposition::new(&shape, chunk.as_deref(), dtype.size(), block_bytes);
    let finish = Finish {
        ddof: args.ddof,
        keep_nan: args.keep_nan,
        integer: !dtype.is_float(),
    };
    Ok(ReducePlan {
        file: args.file.clone(),
        var: args.var.clone(),
        ops,
        finish,
        dtype,
        decomp,
        threads,
    })
}

/// Run `reduce` on every rank; rank 0 prints the report.
pub fn run(comm: &Comm, args: &ReduceArgs) -> anyhow::Result<()> {
    let plan = comm.agree(validate(args))?;
    let report = execute(comm, &plan)?;
    if let Some(r) = report {
        if args.json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            print!("{}", r.to_text());
        }
    }
    Ok(())
}

/// Read, reduce and combine; returns the report on rank 0.
pub fn execute(comm: &Comm, plan: &ReducePlan) -> anyhow::Result<Option<ReduceReport>> {
    let t0 = Instant::now();
    // Collective open; the file was already opened serially on every rank, so
    // a failure here is an MPI-IO problem and is agreed like the checks.
    let file = comm.agree(h5io::open_mpio(&plan.file, comm.raw()).map_err(Into::into))?;
    let ds = comm.agree(
        file.dataset(&plan.var)
            .map_err(|e| anyhow::anyhow!("cannot open '{}': {e}", plan.var)),
    )?;

    let d = &plan.decomp;
    let mine: Vec<Block> = d
        .rank_range(comm.rank(), comm.size())
        .map(|i| d.block(i))
        .collect();
    let want_m2 = plan.ops.iter().any(|o| matches!(o, Op::Var | Op::Std));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(plan.threads)
        .build()?;

    // Rank-local phase: a failure here aborts the job (other ranks may already
    // be waiting in the gather below).
    let (accs, read_s, compute_s) = with_dtype!(plan.dtype, T => {
        comm.or_abort(reduce_blocks::<T>(&ds, &mine, d.block_elems(), &pool, want_m2))
    });

    let t_comm = Instant::now();
    let words: Vec<u64> = accs.iter().flat_map(|a| a.to_words()).collect();
    let counts: Vec<usize> = (0..comm.size())
        .map(|r| d.rank_range(r, comm.size()).len() * ACC_WORDS)
        .collect();
    let gathered = comm.gather_words(&words, &counts);
    let my_bytes = (mine.iter().map(|b| b.len()).sum::<usize>() * plan.dtype.size()) as u64;
    let bytes_read = comm.sum_all(&[my_bytes])[0];
    let comm_s = t_comm.elapsed().as_secs_f64();
    let total_s = t0.elapsed().as_secs_f64();
    let maxes = comm.max_to_root(&[read_s, compute_s, comm_s, total_s]);
    drop(ds);
    drop(file);

    let Some(words) = gathered else {
        return Ok(None);
    };
    // Merge in block-index order: ranks own contiguous ascending ranges, so
    // rank-ordered concatenation is block order.
    let total = Acc::merge_all(
        &words
            .chunks(ACC_WORDS)
            .map(Acc::from_words)
            .collect::<Vec<_>>(),
    );
    let results = plan
        .ops
        .iter()
        .map(|&op| (op.name().to_string(), total.value(op, &plan.finish)))
        .collect();
    let timings = Timings {
        read_s: maxes[0],
        compute_s: maxes[1],
        comm_s: maxes[2],
        total_s: maxes[3],
    };
    Ok(Some(ReduceReport {
        file: plan.file.display().to_string(),
        var: plan.var.clone(),
        shape: d.shape.clone(),
        dtype: plan.dtype.name().into(),
        ranks: comm.size(),
        threads: plan.threads,
        results,
        count: if plan.finish.keep_nan {
            total.n + total.nan
        } else {
            total.n
        },
        bytes_read,
        block_shape: d.block_shape.clone(),
        n_blocks: d.n_blocks(),
        throughput_gbs: bytes_read as f64 / timings.total_s.max(1e-12) / 1e9,
        timings,
    }))
}

/// Test hook (see the failure tests): `CHUNKWISE_TEST_FAIL=RANK:N` makes rank
/// RANK fail when it reads its N-th block (1-based).
fn injected_failure(n_read: usize) -> Option<CwError> {
    let spec = std::env::var("CHUNKWISE_TEST_FAIL").ok()?;
    let (r, n) = spec.split_once(':')?;
    let rank: usize = std::env::var("OMPI_COMM_WORLD_RANK")
        .or_else(|_| std::env::var("PMI_RANK"))
        .ok()?
        .parse()
        .ok()?;
    (r.parse::<usize>().ok()? == rank && n.parse::<usize>().ok()? == n_read).then(|| {
        CwError::Input(format!(
            "injected test failure reading block {n_read} (CHUNKWISE_TEST_FAIL)"
        ))
    })
}

/// Reduce `blocks` of `ds` in order. One reader thread owns every HDF5 call
/// and fills one of two reusable buffers while the pool reduces the other.
/// Returns per-block statistics and the read and compute seconds.
fn reduce_blocks<T: Element>(
    ds: &hdf5::Dataset,
    blocks: &[Block],
    buf_elems: usize,
    pool: &rayon::ThreadPool,
    want_m2: bool,
) -> Result<(Vec<Acc>, f64, f64), CwError> {
    if blocks.is_empty() {
        return Ok((Vec::new(), 0.0, 0.0));
    }
    let n_bufs = blocks.len().min(2);
    let (free_tx, free_rx) = sync_channel::<Vec<T>>(n_bufs);
    let (full_tx, full_rx) = sync_channel::<Result<Vec<T>, CwError>>(n_bufs);
    for _ in 0..n_bufs {
        free_tx
            .send(vec![T::default(); buf_elems])
            .expect("channel has room");
    }
    std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut read_s = 0.0;
            for (i, b) in blocks.iter().enumerate() {
                let Ok(mut buf) = free_rx.recv() else { break };
                let t = Instant::now();
                let r = match injected_failure(i + 1) {
                    Some(e) => Err(e),
                    None => h5io::read_block(ds, b, &mut buf),
                };
                read_s += t.elapsed().as_secs_f64();
                let failed = r.is_err();
                if full_tx.send(r.map(|()| buf)).is_err() || failed {
                    break;
                }
            }
            read_s
        });
        let mut accs = Vec::with_capacity(blocks.len());
        let mut compute_s = 0.0;
        let mut result = Ok(());
        for b in blocks {
            match full_rx.recv() {
                Ok(Ok(buf)) => {
                    let t = Instant::now();
                    accs.push(pool.install(|| kernels::reduce_block(&buf[..b.len()], want_m2)));
                    compute_s += t.elapsed().as_secs_f64();
                    let _ = free_tx.send(buf);
                }
                Ok(Err(e)) => {
                    result = Err(e);
                    break;
                }
                Err(_) => {
                    result = Err(CwError::Hdf5("reader thread stopped unexpectedly".into()));
                    break;
                }
            }
        }
        drop(free_tx);
        drop(full_rx);
        let read_s = reader.join().unwrap_or(0.0);
        result.map(|()| (accs, read_s, compute_s))
    })
}
