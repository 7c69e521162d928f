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

use crate::accum::{ACC_WORDS, Acc, Finish};
use crate::axis_kernel::{kept_cells, reduce_block_axes};
use crate::cli::ReduceArgs;
use crate::comm::Comm;
use crate::decomp::{Block, Decomposition, Tiling, for_each_row, split_range};
use crate::element::{Dtype, Element};
use crate::error::CwError;
use crate::h5io::VariableMeta;
use crate::nc_out::{OutDim, OutVar, Values};
use crate::parse::{Op, parse_bytes, parse_ops};
use crate::report::{ReduceReport, Stat, Timings};
use crate::selection::{AxisRange, parse_select, resolve_reduced, resolve_selection};
use crate::source::{Reader, Source};
use crate::{tree, with_dtype};
use std::path::PathBuf;
use std::sync::mpsc::sync_channel;
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
    /// Finalisation settings.
    pub finish: Finish,
    /// Element type of the variable.
    pub dtype: Dtype,
    /// What the file says about the variable (dimensions, CF attributes).
    pub meta: VariableMeta,
    /// Selected range along each axis.
    pub sel: Vec<AxisRange>,
    /// Block decomposition of the selected part.
    pub decomp: Decomposition,
    /// Order of the blocks for the reduction (which axes are reduced).
    pub tiling: Tiling,
    /// Threads per rank.
    pub threads: usize,
    /// NetCDF-4 output, if asked for.
    pub output: Option<PathBuf>,
}

/// Validate arguments and the input on this rank (no collective calls).
pub fn validate(args: &ReduceArgs) -> anyhow::Result<ReducePlan> {
    let ops = parse_ops(&args.op)?;
    let explicit_block = match args.block_bytes.as_deref().map(str::trim) {
        None | Some("auto") => None,
        Some(b) => {
            let v = parse_bytes(b).map_err(|e| CwError::Parse(format!("--block-bytes: {e}")))?;
            if v == 0 {
                return Err(CwError::Parse("--block-bytes must be positive".into()).into());
            }
            Some(v)
        }
    };
    let threads = super::resolve_threads(args.threads)?;
    let specs = args
        .select
        .iter()
        .map(|s| parse_select(s))
        .collect::<Result<Vec<_>, _>>()?;
    let (source, meta) = crate::source::describe(&args.raw.spec(&args.file, args.var.as_deref()))?;
    let sel = resolve_selection(&meta.dims, &specs)?;
    let reduced = resolve_reduced(&meta.dims, args.dim.as_deref(), args.axis.as_deref())?;
    if let Some(out) = &args.output {
        super::output::check_output(out, args.force, &[&args.file])?;
    }
    let sel_shape: Vec<usize> = sel.iter().map(|r| r.count).collect();
    let block_bytes = explicit_block.unwrap_or_else(|| {
        crate::blocksize::auto_block_bytes(meta.filtered, crate::blocksize::mem_per_rank_from_env())
    });
    // Blocks are made of whole chunks of the selected index space, or of
    // equal parts of big unfiltered chunks (see `blocksize`).
    let chunk_in_sel: Option<Vec<usize>> = meta.chunk.as_ref().map(|c| {
        c.iter()
            .zip(&sel)
            .map(|(&c, r)| (c / r.step).max(1))
            .collect()
    });
    let unit = crate::blocksize::read_unit(
        chunk_in_sel.as_deref(),
        meta.filtered,
        meta.dtype.size(),
        block_bytes,
    );
    let decomp = Decomposition::new(&sel_shape, unit.as_deref(), meta.dtype.size(), block_bytes);
    let tiling = Tiling::new(&decomp, &reduced);
    let finish = Finish {
        ddof: args.ddof,
        keep_nan: args.keep_nan,
        integer: !meta.dtype.is_float() && meta.decode.is_identity(),
    };
    Ok(ReducePlan {
        file: args.file.clone(),
        var: source.var_name(),
        source,
        ops,
        finish,
        dtype: meta.dtype,
        meta,
        sel,
        decomp,
        tiling,
        threads,
        output: args.output.clone(),
    })
}

/// Run `reduce` on every rank; rank 0 prints the report.
pub fn run(comm: &Comm, args: &ReduceArgs) -> anyhow::Result<()> {
    // Checks on every rank, then agreement (comm::agree) before any collective.
    let plan = comm.agree(validate(args))?;
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
        let written = write_output(&plan, &report, &cells, out);
        comm.agree(written.map_err(Into::into))?;
        report.output = Some(out.display().to_string());
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

/// One tree piece of a tile as sent to rank 0: `[tile, lo, hi, cells…]`.
const PIECE_HEADER: usize = 3;

/// Read, reduce and combine; returns the report and the result cells on rank 0.
pub fn execute(comm: &Comm, plan: &ReducePlan) -> anyhow::Result<Option<(ReduceReport, Vec<Acc>)>> {
    let t0 = Instant::now();
    // Collective open; the input was already described on every rank, so
    // a failure here is an MPI-IO problem and is agreed like the checks.
    let reader = Reader::open(comm, &plan.source)?;

    let (d, t) = (&plan.decomp, &plan.tiling);
    let range = split_range(t.n_positions(), comm.rank(), comm.size());
    let mine: Vec<Block> = range
        .clone()
        .map(|p| d.block(t.block_index(d, p)))
        .collect();
    let want_m2 = plan.ops.iter().any(|o| matches!(o, Op::Var | Op::Std));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(plan.threads)
        .build()?;

    // Rank-local phase: a failure here aborts the job (other ranks may already
    // be waiting in the gather below).
    let (pieces, read_s, compute_s) = with_dtype!(plan.dtype, T => {
        comm.or_abort(reduce_blocks::<T>(&reader, plan, &mine, range.start, &pool, want_m2))
    });

    // Collectives from here on: every rank arrives, because a failure in the
    // rank-local phase above aborted the job instead of returning.
    let t_comm = Instant::now();
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
    let cells = comm.or_abort(assemble(plan, &words));
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
    let mut report = report(plan, &cells, comm.size(), hosts, bytes_read, timings);
    report.peak_rss_mib = maxes[4] / (1u64 << 20) as f64;
    Ok(Some((report, cells)))
}

/// Rank 0: complete every tile from the gathered tree pieces (which arrive
/// tile-ascending, in rank order) and place it in the result array.
fn assemble(plan: &ReducePlan, words: &[u64]) -> Result<Vec<Acc>, CwError> {
    let (d, t) = (&plan.decomp, &plan.tiling);
    let shape = t.result_shape(d);
    let mut cells = vec![Acc::default(); shape.iter().product()];
    let merge = |a: Vec<Acc>, b: Vec<Acc>| merge_cells(a, &b);
    let mut current: Option<usize> = None;
    let mut pieces: Vec<(usize, usize, Vec<Acc>)> = Vec::new();
    let mut finish_tile = |tile: usize, pieces: Vec<(usize, usize, Vec<Acc>)>| {
        let tile_cells = tree::complete(t.n_leaves, pieces, &merge)
            .ok_or_else(|| CwError::Hdf5(format!("internal error: tile {tile} is incomplete")))?;
        let (start, count) = t.tile_region(d, tile);
        let row = count.last().copied().unwrap_or(1);
        for_each_row(&shape, &start, &count, |r, off| {
            let off = off as usize;
            cells[off..off + row].copy_from_slice(&tile_cells[r * row..(r + 1) * row]);
        });
        Ok::<(), CwError>(())
    };
    let mut at = 0;
    while at < words.len() {
        let (tile, lo, hi) = (
            words[at] as usize,
            words[at + 1] as usize,
            words[at + 2] as usize,
        );
        let n = tile_cells_count(plan, tile);
        let body = &words[at + PIECE_HEADER..at + PIECE_HEADER + n * ACC_WORDS];
        at += PIECE_HEADER + n * ACC_WORDS;
        if current.is_some_and(|c| c != tile) {
            finish_tile(current.unwrap(), std::mem::take(&mut pieces))?;
        }
        current = Some(tile);
        pieces.push((
            lo,
            hi,
            body.chunks(ACC_WORDS).map(Acc::from_words).collect(),
        ));
    }
    if let Some(c) = current {
        finish_tile(c, pieces)?;
    }
    Ok(cells)
}

/// Kept cells in one tile.
fn tile_cells_count(plan: &ReducePlan, tile: usize) -> usize {
    plan.tiling
        .tile_region(&plan.decomp, tile)
        .1
        .iter()
        .product()
}

/// Element-wise merge of two partial results of the same cells (`a` earlier).
fn merge_cells(mut a: Vec<Acc>, b: &[Acc]) -> Vec<Acc> {
    for (x, y) in a.iter_mut().zip(b) {
        *x = x.merge(y);
    }
    a
}

/// The report for rank 0 from the combined result cells.
fn report(
    plan: &ReducePlan,
    cells: &[Acc],
    ranks: usize,
    hosts: Vec<String>,
    bytes_read: u64,
    timings: Timings,
) -> ReduceReport {
    let (d, t) = (&plan.decomp, &plan.tiling);
    let dims = &plan.meta.dims;
    let kept: Vec<usize> = (0..d.shape.len()).filter(|&a| !t.reduced[a]).collect();
    let scalar = kept.is_empty();
    let results = plan
        .ops
        .iter()
        .map(|&op| {
            let vals: Vec<_> = cells.iter().map(|c| c.value(op, &plan.finish)).collect();
            let stat = if scalar {
                Stat::Scalar(vals[0])
            } else {
                Stat::Array(vals)
            };
            (op.name().to_string(), stat)
        })
        .collect();
    let count = cells
        .iter()
        .map(|c| {
            if plan.finish.keep_nan {
                c.n + c.nan
            } else {
                c.n
            }
        })
        .sum();
    ReduceReport {
        file: plan.file.display().to_string(),
        var: plan.var.clone(),
        shape: dims.shape.clone(),
        dims: dims.names.clone(),
        dtype: plan.dtype.name().into(),
        selection: plan
            .sel
            .iter()
            .enumerate()
            .filter(|(a, r)| **r != AxisRange::all(dims.shape[*a]))
            .map(|(a, r)| {
                (
                    dims.names[a].clone(),
                    [r.start, r.index(r.count - 1) + 1, r.step],
                )
            })
            .collect(),
        selected_shape: d.shape.clone(),
        reduced_dims: (0..d.shape.len())
            .filter(|&a| t.reduced[a])
            .map(|a| dims.names[a].clone())
            .collect(),
        result_dims: kept.iter().map(|&a| dims.names[a].clone()).collect(),
        result_shape: t.result_shape(d),
        coords: kept
            .iter()
            .map(|&a| (dims.names[a].clone(), result_coords(plan, a)))
            .collect(),
        decode: plan.meta.decode.clone(),
        ranks,
        nodes: hosts.len(),
        hosts,
        threads: plan.threads,
        results,
        count,
        bytes_read,
        block_shape: d.block_shape.clone(),
        n_blocks: d.n_blocks(),
        output: None,
        throughput_gbs: bytes_read as f64 / timings.total_s.max(1e-12) / 1e9,
        peak_rss_mib: 0.0,
        timings,
    }
}

/// Coordinates of the selected indices along axis `a` (the indices
/// themselves where the file has no coordinate variable).
fn result_coords(plan: &ReducePlan, a: usize) -> Vec<f64> {
    let r = plan.sel[a];
    (0..r.count)
        .map(|i| match &plan.meta.dims.coords[a] {
            Some(c) => c[r.index(i)],
            None => r.index(i) as f64,
        })
        .collect()
}

/// CF `cell_methods` name of a statistic.
fn cell_method(op: Op) -> &'static str {
    match op {
        Op::Sum => "sum",
        Op::Mean => "mean",
        Op::Min => "minimum",
        Op::Max => "maximum",
        Op::Var => "variance",
        Op::Std => "standard_deviation",
        Op::Count => "point",
    }
}

/// Rank 0: write the result as NetCDF-4 under a temporary name, then rename.
fn write_output(
    plan: &ReducePlan,
    report: &ReduceReport,
    cells: &[Acc],
    out: &std::path::Path,
) -> Result<(), CwError> {
    let meta = &plan.meta;
    let kept: Vec<usize> = (0..plan.decomp.shape.len())
        .filter(|&a| !plan.tiling.reduced[a])
        .collect();
    let dims: Vec<OutDim> = kept
        .iter()
        .map(|&a| OutDim {
            name: meta.dims.names[a].clone(),
            coords: result_coords(plan, a),
            attrs: meta.coord_attrs[a].clone(),
        })
        .collect();
    let base = plan.var.rsplit('/').next().unwrap_or(&plan.var).to_string();
    let methods = format!("{}:", report.reduced_dims.join(": "));
    let vars = plan
        .ops
        .iter()
        .map(|&op| {
            let name = if plan.ops.len() == 1 {
                base.clone()
            } else {
                format!("{base}_{}", op.name())
            };
            let mut attrs: Vec<(String, String)> = meta
                .attrs
                .iter()
                .filter(|(k, _)| match op {
                    Op::Count => false,
                    Op::Var => k != "units",
                    _ => true,
                })
                .cloned()
                .collect();
            if op == Op::Count {
                attrs.push((
                    "long_name".into(),
                    format!(
                        "number of valid values of {base} over {}",
                        report.reduced_dims.join(", ")
                    ),
                ));
            } else {
                attrs.push((
                    "cell_methods".into(),
                    format!("{methods} {}", cell_method(op)),
                ));
            }
            let values = if op == Op::Count {
                Values::I64(
                    cells
                        .iter()
                        .map(|c| c.value(op, &plan.finish).as_f64() as i64)
                        .collect(),
                )
            } else {
                Values::F64(
                    cells
                        .iter()
                        .map(|c| c.value(op, &plan.finish).as_f64())
                        .collect(),
                )
            };
            OutVar {
                name,
                values,
                attrs,
            }
        })
        .collect::<Vec<_>>();
    let line = format!(
        "{}: {}",
        crate::nc_out::utc_timestamp(),
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    let history = match meta.globals.iter().find(|(k, _)| k == "history") {
        Some((_, old)) => format!("{line}\n{old}"),
        None => line,
    };
    let mut globals = vec![
        ("history".to_string(), history),
        ("source".to_string(), plan.file.display().to_string()),
    ];
    globals.extend(meta.globals.iter().filter(|(k, _)| k != "history").cloned());
    let tmp = super::output::temp_path(out);
    let _ = std::fs::remove_file(&tmp);
    crate::interrupt::set_temp(Some(tmp.clone()));
    let r = crate::nc_out::write_netcdf(&tmp, &dims, &vars, &globals).and_then(|()| {
        crate::testhooks::before_commit();
        super::output::commit(&tmp, out)
    });
    crate::interrupt::set_temp(None);
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// Reduce this rank's `blocks` (work positions `first..`) in order. One
/// reader thread owns every read call (HDF5 or `pread`) and fills one of two reusable buffers
/// while the pool reduces the other; blocks are folded along each tile's
/// merge tree. Returns the tree pieces (wire form, see [`PIECE_HEADER`]) and
/// the read and compute seconds.
fn reduce_blocks<T: Element>(
    reader: &Reader,
    plan: &ReducePlan,
    blocks: &[Block],
    first: usize,
    pool: &rayon::ThreadPool,
    want_m2: bool,
) -> Result<(Vec<u64>, f64, f64), CwError> {
    crate::interrupt::set_total(blocks.len());
    if blocks.is_empty() {
        return Ok((Vec::new(), 0.0, 0.0));
    }
    let buf_elems = plan.decomp.block_elems();
    let n_bufs = blocks.len().min(2);
    let (free_tx, free_rx) = sync_channel::<Vec<T>>(n_bufs);
    let (full_tx, full_rx) = sync_channel::<Result<Vec<T>, CwError>>(n_bufs);
    for _ in 0..n_bufs {
        free_tx
            .send(vec![T::default(); buf_elems])
            .expect("channel has room");
    }
    let sel = &plan.sel;
    std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut read_s = 0.0;
            for (i, b) in blocks.iter().enumerate() {
                let Ok(mut buf) = free_rx.recv() else { break };
                let t = Instant::now();
                let r = crate::testhooks::before_block(i + 1)
                    .and_then(|()| reader.read_block(b, sel, &mut buf));
                read_s += t.elapsed().as_secs_f64();
                let failed = r.is_err();
                if full_tx.send(r.map(|()| buf)).is_err() || failed {
                    break;
                }
            }
            read_s
        });
        let mut compute_s = 0.0;
        let mut next = 0usize;
        // The next leaf: reduce the next block read into its kept cells.
        let mut leaf = |_: usize| -> Result<Vec<Acc>, CwError> {
            let b = &blocks[next];
            next += 1;
            let buf = match full_rx.recv() {
                Ok(r) => r?,
                Err(_) => return Err(CwError::Hdf5("reader thread stopped unexpectedly".into())),
            };
            let t = Instant::now();
            let cells = pool.install(|| {
                reduce_block_axes(
                    &buf[..b.len()],
                    &b.count,
                    &plan.tiling.reduced,
                    &plan.meta.decode,
                    want_m2,
                )
            });
            debug_assert_eq!(cells.len(), kept_cells(&b.count, &plan.tiling.reduced));
            compute_s += t.elapsed().as_secs_f64();
            crate::interrupt::tick();
            let _ = free_tx.send(buf);
            Ok(cells)
        };
        let result = fold_tiles(&plan.tiling, first, blocks.len(), &mut leaf);
        drop(leaf);
        drop(free_tx);
        drop(full_rx);
        let read_s = reader.join().unwrap_or(0.0);
        result.map(|pieces| (pieces, read_s, compute_s))
    })
}

/// Fold work positions `first .. first + n` tile by tile along each tile's
/// merge tree, pulling leaves in order; returns the pieces in wire form.
fn fold_tiles(
    t: &Tiling,
    first: usize,
    n: usize,
    leaf: &mut impl FnMut(usize) -> Result<Vec<Acc>, CwError>,
) -> Result<Vec<u64>, CwError> {
    let mut out = Vec::new();
    let merge = |a: Vec<Acc>, b: Vec<Acc>| merge_cells(a, &b);
    let (end, nl) = (first + n, t.n_leaves);
    for tile in first / nl..end.div_ceil(nl) {
        let a = first.max(tile * nl) - tile * nl;
        let b = end.min((tile + 1) * nl) - tile * nl;
        for (lo, hi) in tree::cover(nl, a, b) {
            let cells = tree::fold(lo, hi, leaf, &merge)?;
            out.extend([tile as u64, lo as u64, hi as u64]);
            for c in &cells {
                out.extend(c.to_words());
            }
        }
    }
    Ok(out)
}
