//! `reduce --output`: the result as a NetCDF-4 file (dimension scales,
//! coordinate variables, CF `cell_methods`, a `history` line), written by
//! rank 0 under a temporary name and renamed.

use super::ReducePlan;
use crate::error::CwError;
use crate::nc_out::{OutDim, OutVar, Values};
use crate::parse::Op;
use crate::reduce_layout::{cell_method, result_coords};
use crate::report::{ReduceReport, Stat};

/// Rank 0: write the result as NetCDF-4 under a temporary name, then
/// rename: one variable per statistic of the report (quantiles too, as
/// `tas_q0.95`).
pub fn write_output(
    plan: &ReducePlan,
    report: &ReduceReport,
    out: &std::path::Path,
    force: bool,
) -> Result<(), CwError> {
    write_output_many(&[(plan, report)], out, force)
}

/// Rank 0: the results of one or more variables (over the same result
/// dimensions) as one NetCDF-4 file, written under a temporary name, then
/// renamed.
pub fn write_output_many(
    parts: &[(&ReducePlan, &ReduceReport)],
    out: &std::path::Path,
    force: bool,
) -> Result<(), CwError> {
    let (plan, _) = parts[0];
    let meta = &plan.meta;
    let vars: Vec<OutVar> = parts.iter().flat_map(|&(p, r)| out_vars(p, r)).collect();
    let kept: Vec<usize> = (0..plan.decomp().shape.len())
        .filter(|&a| !plan.tiling().reduced[a])
        .collect();
    let mut dims: Vec<OutDim> = kept
        .iter()
        .map(|&a| OutDim {
            name: meta.dims.names[a].clone(),
            coords: result_coords(meta, plan.sel(), a),
            attrs: meta.coord_attrs[a].clone(),
            bounds: None,
        })
        .collect();
    if let Some(g) = &plan.groups {
        // The groups (periods) lead the result's dimensions.
        dims.insert(
            0,
            OutDim {
                name: g.dim.clone(),
                coords: g.coords.clone(),
                attrs: g.coord_attrs.clone(),
                bounds: g.bounds.clone(),
            },
        );
    }
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
    // Every input file, so that none of them is ever the output.
    let inputs: Vec<std::path::PathBuf> = match &plan.source {
        crate::source::Source::Multi { plan: files, .. } => {
            files.parts.iter().map(|p| p.path.clone().into()).collect()
        }
        _ => vec![plan.file.clone()],
    };
    let inputs: Vec<&std::path::Path> = inputs.iter().map(|p| p.as_path()).collect();
    let kind = crate::cmd::output::Kind::File;
    let tmp = crate::cmd::output::TempOutput::create(out, force, kind, &inputs, true)?;
    crate::nc_out::write_netcdf(tmp.path(), &dims, &vars, &globals)
        .map_err(|e| crate::cmd::output::write_failed(out, e))?;
    tmp.commit()
}

/// The output variables of one reduced variable: one per statistic of its
/// report, named `VAR` for a single statistic and `VAR_KEY` for several.
fn out_vars(plan: &ReducePlan, report: &ReduceReport) -> Vec<OutVar> {
    let meta = &plan.meta;
    let base = plan.var.rsplit('/').next().unwrap_or(&plan.var).to_string();
    let methods = format!("{}:", report.reduced_dims.join(": "));
    report
        .results
        .iter()
        .map(|(key, stat)| {
            let op = Op::ALL.iter().copied().find(|o| o.name() == key);
            let name = if report.results.len() == 1 {
                base.clone()
            } else {
                format!("{base}_{key}")
            };
            let values_f64: Vec<f64> = match stat {
                Stat::Scalar(v) => vec![v.as_f64()],
                Stat::Array(vs) => vs.iter().map(|v| v.as_f64()).collect(),
            };
            let mut attrs: Vec<(String, String)> = meta
                .attrs
                .iter()
                .filter(|(k, _)| match op {
                    Some(Op::Count) => false,
                    Some(Op::Var) => k != "units",
                    _ => true,
                })
                .cloned()
                .collect();
            if let Some(q) = key.strip_prefix('q') {
                attrs.push(("quantile".into(), q.to_string()));
                attrs.push((
                    "cell_methods".into(),
                    format!("{methods} quantile {q} (NumPy linear method)"),
                ));
            } else if op == Some(Op::Count) {
                // A 0-d variable reduces over no dimension.
                let over = report.reduced_dims.join(", ");
                let long_name = if over.is_empty() {
                    format!("number of valid values of {base}")
                } else {
                    format!("number of valid values of {base} over {over}")
                };
                attrs.push(("long_name".into(), long_name));
            } else if let Some(op) = op.filter(|_| !report.reduced_dims.is_empty()) {
                let weighted = if plan.weights.is_some() && op != Op::Min && op != Op::Max {
                    " (weighted)"
                } else {
                    ""
                };
                let method = match &plan.groups {
                    // `time: mean within years time: mean over years` for a
                    // climatology, `time: mean` per period.
                    Some(g) => {
                        let grouped = &plan.meta.dims.names[g.axis];
                        let others: Vec<String> = report
                            .reduced_dims
                            .iter()
                            .filter(|d| *d != grouped)
                            .cloned()
                            .collect();
                        g.cell_methods(grouped, &others, cell_method(op))
                    }
                    None => format!("{methods} {}{weighted}", cell_method(op)),
                };
                attrs.push(("cell_methods".into(), method));
            }
            let values = if op == Some(Op::Count) {
                Values::I64(values_f64.iter().map(|&v| v as i64).collect())
            } else {
                Values::F64(values_f64)
            };
            OutVar {
                name,
                values,
                attrs,
            }
        })
        .collect()
}
