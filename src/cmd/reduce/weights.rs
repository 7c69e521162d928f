//! `reduce --weights`: the weights are resolved on every rank before any
//! collective (so a bad weight is one agreed message), then the blocks are
//! reduced with the weighted kernel ([`crate::weighted_kernel`]) and
//! combined along the same fixed merge trees as the plain statistics
//! ([`crate::pieces`]), so results are bit-identical for every P.

use super::ReducePlan;
use super::blocks::with_blocks;
use super::facts::{Phase, base_report, stat};
use crate::comm::Comm;
use crate::decomp::Block;
use crate::element::Element;
use crate::error::CwError;
use crate::reduce_layout::wants_m2;
use crate::report::ReduceReport;
use crate::request::ReduceRequest;
use crate::selection::AxisRange;
use crate::source::{Reader, Source};
use crate::variable::VariableMeta;
use crate::weighted_kernel::{WAcc, reduce_block_weighted};
use crate::weights::{
    WeightSpec, Weights, bound_pairs, cell_areas, coslat, latitude_axis, longitude_axis,
    match_dims, midpoint_bounds,
};
use crate::with_dtype;
use std::time::Instant;

/// Resolve `req.weights` over the selection `sel` of the variable (on
/// every rank, no collective call).
pub fn resolve(
    req: &ReduceRequest,
    source: &Source,
    meta: &VariableMeta,
    sel: &[AxisRange],
) -> anyhow::Result<Option<Weights>> {
    let Some(spec) = &req.weights else {
        return Ok(None);
    };
    if req.ddof != 0 {
        return Err(CwError::Parse(
            "--weights with --ddof: the weighted variance is xarray's, Σw(x−mean)²/Σw, without a degrees-of-freedom correction; leave --ddof at 0".into(),
        )
        .into());
    }
    if !req.quantiles.is_empty() {
        return Err(CwError::Parse(
            "--weights and --quantile together: weighted quantiles are not supported".into(),
        )
        .into());
    }
    let h5 = match source {
        Source::Hdf5 { path, .. } => Some(path.clone()),
        _ => None,
    };
    let what = format!("--weights {}", spec.text());
    let w = match spec {
        WeightSpec::CosLat => {
            let a = latitude_axis(meta, "coslat")?;
            let lat = meta.dims.coords[a]
                .as_deref()
                .expect("latitude has coordinates");
            Weights::lay_out(&coslat(lat), &[a], &meta.dims, sel, &what)?
        }
        WeightSpec::Area => {
            let la = latitude_axis(meta, "area")?;
            let lo = longitude_axis(meta);
            let bounds = |a: usize, clamp: Option<f64>| -> anyhow::Result<Vec<(f64, f64)>> {
                let name = &meta.dims.names[a];
                let c = meta.dims.coords[a]
                    .as_deref()
                    .expect("axis has coordinates");
                if let Some(path) = &h5
                    && let Some(b) = crate::aux_var::bounds_name(path, name)
                {
                    let v = crate::aux_var::read_aux(path, &b)?;
                    return bound_pairs(&v.values, &v.shape, c.len()).ok_or_else(|| {
                        anyhow::anyhow!(
                            "{what}: bounds variable '{b}' has shape {:?}, expected [{}, 2]",
                            v.shape,
                            c.len()
                        )
                    });
                }
                Ok(midpoint_bounds(c, clamp))
            };
            let lat_b = bounds(la, Some(90.0))?;
            match lo {
                Some(lo) => {
                    let lon_b = bounds(lo, None)?;
                    Weights::lay_out(
                        &cell_areas(&lat_b, Some(&lon_b)),
                        &[la, lo],
                        &meta.dims,
                        sel,
                        &what,
                    )?
                }
                None => Weights::lay_out(&cell_areas(&lat_b, None), &[la], &meta.dims, sel, &what)?,
            }
        }
        WeightSpec::Var { file, var } => {
            let path = match (file, &h5) {
                (Some(f), _) => f.clone(),
                (None, Some(p)) => p.clone(),
                (None, None) => {
                    return Err(CwError::Input(format!(
                        "{what}: the input is not an HDF5/NetCDF-4 file; name the weights' file as --weights FILE:{var}"
                    ))
                    .into());
                }
            };
            let v = crate::aux_var::read_aux(&path, var)?;
            let axes = match_dims(&v.names, &v.shape, &meta.dims, &what)?;
            Weights::lay_out(&v.values, &axes, &meta.dims, sel, &what)?
        }
    };
    Ok(Some(w))
}

/// Read, reduce with weights and combine; the report on rank 0.
pub fn execute(comm: &Comm, plan: &ReducePlan) -> anyhow::Result<Option<ReduceReport>> {
    let t0 = Instant::now();
    let reader = Reader::open(comm, &plan.source)?;
    let (d, t) = (plan.decomp(), plan.tiling());
    let (range, mine) = super::blocks::rank_share(plan, comm.rank(), comm.size());
    let pool = crate::cmd::thread_pool(plan.threads)?;
    let total = d.shape.iter().product::<usize>() as u64 * plan.dtype.size() as u64;
    let progress = crate::progress::Progress::start(comm, "reduce", total);
    crate::interrupt::set_total(mine.len());
    // Rank-local phase: a failure aborts the job (others may be in the gather).
    let (pieces, phase) = with_dtype!(plan.dtype, T => {
        comm.or_abort(weighted_blocks::<T>(&reader, plan, &mine, range.clone(), &pool, &progress))
    });
    let t_comm = Instant::now();
    progress.finish();
    let cells: Option<Vec<WAcc>> = comm.or_abort(super::combine::to_root(comm, d, t, pieces));
    let report = base_report(comm, plan, phase, t0, t_comm);
    reader.close();
    let (Some(mut report), Some(cells)) = (report, cells) else {
        return Ok(None);
    };
    let keep_nan = plan.finish().keep_nan;
    report.results = plan
        .ops
        .iter()
        .map(|&op| {
            let vals = cells.iter().map(|c| c.value(op, keep_nan)).collect();
            (op.name().to_string(), stat(plan, vals))
        })
        .collect();
    report.count = cells
        .iter()
        .map(|c| c.n + if keep_nan { c.nan } else { 0 })
        .sum();
    Ok(Some(report))
}

/// This rank's blocks (those of work positions `leaves`), reduced with
/// weights, the blocks of each leaf merged in order, and folded along each
/// tile's merge tree into wire pieces.
fn weighted_blocks<T: Element>(
    reader: &Reader,
    plan: &ReducePlan,
    blocks: &[Block],
    leaves: std::ops::Range<usize>,
    pool: &rayon::ThreadPool,
    progress: &crate::progress::Progress,
) -> Result<(Vec<Vec<u64>>, Phase), CwError> {
    let wts = plan.weights.as_ref().expect("weighted plan");
    let want_m2 = wants_m2(&plan.ops);
    let reduced = &plan.tiling().reduced;
    let mut compute_s = 0.0;
    let (pieces, read_s) = with_blocks::<T, _>(
        reader,
        plan.sel(),
        plan.decomp().block_elems(),
        blocks,
        pool,
        progress,
        |feed| {
            let mut next_leaf = leaves.start;
            let mut leaf = |_: usize| -> Result<Vec<WAcc>, CwError> {
                let n_blocks = plan.tiling().leaf_blocks(next_leaf).len();
                next_leaf += 1;
                let mut cells: Option<Vec<WAcc>> = None;
                for _ in 0..n_blocks {
                    let Some((b, buf)) = feed.next()? else {
                        return Err(CwError::Internal("fewer blocks than leaves".into()));
                    };
                    let t = Instant::now();
                    let part = pool.install(|| {
                        reduce_block_weighted(
                            &buf[..b.len()],
                            &b.start,
                            &b.count,
                            reduced,
                            &plan.meta.decode,
                            wts,
                            want_m2,
                        )
                    });
                    cells = Some(match cells {
                        None => part,
                        Some(acc) => crate::pieces::merge_cells(acc, &part),
                    });
                    compute_s += t.elapsed().as_secs_f64();
                    crate::interrupt::tick();
                    feed.give_back(buf);
                }
                cells.ok_or_else(|| CwError::Internal("a leaf without blocks".into()))
            };
            crate::pieces::fold_tiles(plan.tiling(), leaves.start, leaves.len(), &mut leaf)
        },
    )?;
    let bytes = (blocks.iter().map(|b| b.len()).sum::<usize>() * plan.dtype.size()) as u64;
    Ok((
        pieces,
        Phase {
            read_s,
            compute_s,
            bytes,
        },
    ))
}
