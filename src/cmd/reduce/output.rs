//! `reduce --output`: the result as a NetCDF-4 file (dimension scales,
//! coordinate variables, CF `cell_methods`, a `history` line), written by
//! rank 0 under a temporary name and renamed.

use super::ReducePlan;
use crate::accum::Acc;
use crate::error::CwError;
use crate::nc_out::{OutDim, OutVar, Values};
use crate::parse::Op;
use crate::reduce_layout::{cell_method, result_coords};
use crate::report::ReduceReport;

/// Rank 0: write the result as NetCDF-4 under a temporary name, then rename.
pub fn write_output(
    plan: &ReducePlan,
    report: &ReduceReport,
    cells: &[Acc],
    out: &std::path::Path,
    force: bool,
) -> Result<(), CwError> {
    write_output_many(&[(plan, report, cells)], out, force)
}

/// Rank 0: the results of one or more variables (over the same result
/// dimensions) as one NetCDF-4 file, written under a temporary name, then
/// renamed.
pub fn write_output_many(
    parts: &[(&ReducePlan, &ReduceReport, &[Acc])],
    out: &std::path::Path,
    force: bool,
) -> Result<(), CwError> {
    let (plan, _, _) = parts[0];
    let meta = &plan.meta;
    let vars: Vec<OutVar> = parts
        .iter()
        .flat_map(|&(p, r, c)| out_vars(p, r, c))
        .collect();
    let kept: Vec<usize> = (0..plan.decomp().shape.len())
        .filter(|&a| !plan.tiling().reduced[a])
        .collect();
    let dims: Vec<OutDim> = kept
        .iter()
        .map(|&a| OutDim {
            name: meta.dims.names[a].clone(),
            coords: result_coords(meta, plan.sel(), a),
            attrs: meta.coord_attrs[a].clone(),
        })
        .collect();

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

/// The output variables of one reduced variable: one per statistic, named
/// `VAR` for a single statistic and `VAR_OP` for several.
fn out_vars(plan: &ReducePlan, report: &ReduceReport, cells: &[Acc]) -> Vec<OutVar> {
    let meta = &plan.meta;
    let base = plan.var.rsplit('/').next().unwrap_or(&plan.var).to_string();
    let methods = format!("{}:", report.reduced_dims.join(": "));
    plan.ops
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
                        .map(|c| c.value(op, plan.finish()).as_f64() as i64)
                        .collect(),
                )
            } else {
                Values::F64(
                    cells
                        .iter()
                        .map(|c| c.value(op, plan.finish()).as_f64())
                        .collect(),
                )
            };
            OutVar {
                name,
                values,
                attrs,
            }
        })
        .collect()
}
