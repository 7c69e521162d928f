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
) -> Result<(), CwError> {
    let meta = &plan.meta;
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
            // A 0-d variable reduces over no dimension: no cell_methods.
            let over = report.reduced_dims.join(", ");
            if op == Op::Count {
                let long_name = if over.is_empty() {
                    format!("number of valid values of {base}")
                } else {
                    format!("number of valid values of {base} over {over}")
                };
                attrs.push(("long_name".into(), long_name));
            } else if !over.is_empty() {
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
    let tmp = crate::cmd::output::temp_path(out);
    let _ = std::fs::remove_file(&tmp);
    crate::interrupt::set_temp(Some(tmp.clone()));
    let r = crate::nc_out::write_netcdf(&tmp, &dims, &vars, &globals)
        .map_err(CwError::from)
        .and_then(|()| {
            crate::testhooks::before_commit();
            crate::cmd::output::commit(&tmp, out)
        });
    crate::interrupt::set_temp(None);
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}
