//! Several variables in one `reduce` (`--var t2m,msl` or `--var all`): each
//! variable's blocks are read once, and the results form one report and
//! one output file, named `VAR_OP` (`t2m_mean`, `msl_mean`, …).

use crate::CwError;
use crate::report::ReduceReport;

/// `--var` as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VarChoice {
    /// One variable (or none, for inputs that hold one array).
    One,
    /// A comma-separated list.
    List(Vec<String>),
    /// `all`: every data variable that has the reduced dimensions.
    All,
}

impl VarChoice {
    /// Reads `--var`.
    pub fn parse(var: Option<&str>) -> Result<VarChoice, CwError> {
        match var {
            Some("all") => Ok(VarChoice::All),
            Some(v) if v.contains(',') => {
                let names: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
                if names.iter().any(String::is_empty) {
                    return Err(CwError::Parse(format!(
                        "--var '{v}': an empty name in the list"
                    )));
                }
                let mut seen = std::collections::HashSet::new();
                if let Some(d) = names.iter().find(|n| !seen.insert(n.as_str())) {
                    return Err(CwError::Parse(format!("--var '{v}': '{d}' twice")));
                }
                Ok(VarChoice::List(names))
            }
            _ => Ok(VarChoice::One),
        }
    }
}

/// The short name of a variable path (`grp/t2m` → `t2m`).
pub fn short_name(var: &str) -> &str {
    var.trim_matches('/').rsplit('/').next().unwrap_or(var)
}

/// One report of several variables' reports: results keyed `VAR_OP`, in
/// variable then statistic order; counts, bytes and phase times summed
/// (the variables are reduced one after the other). All variables must
/// give results over the same dimensions and coordinates.
pub fn combine_reports(reports: Vec<ReduceReport>) -> Result<ReduceReport, CwError> {
    let mut it = reports.into_iter();
    let mut out = it
        .next()
        .ok_or_else(|| CwError::Internal("no variable reduced".into()))?;
    let first_var = out.var.clone();
    out.results = out
        .results
        .into_iter()
        .map(|(op, v)| (format!("{}_{op}", short_name(&first_var)), v))
        .collect();
    for r in it {
        if r.result_dims != out.result_dims
            || r.result_shape != out.result_shape
            || r.coords != out.coords
        {
            return Err(CwError::Input(format!(
                "variables '{}' and '{}' give results over different dimensions ({} vs {}); reduce them in separate runs",
                first_var,
                r.var,
                out.result_dims.join(", "),
                r.result_dims.join(", ")
            )));
        }
        out.var = format!("{},{}", out.var, r.var);
        out.results.extend(
            r.results
                .into_iter()
                .map(|(op, v)| (format!("{}_{op}", short_name(&r.var)), v)),
        );
        out.count += r.count;
        out.bytes_read += r.bytes_read;
        out.n_blocks += r.n_blocks;
        out.timings.read_s += r.timings.read_s;
        out.timings.compute_s += r.timings.compute_s;
        out.timings.comm_s += r.timings.comm_s;
        out.timings.total_s += r.timings.total_s;
        out.peak_rss_mib = out.peak_rss_mib.max(r.peak_rss_mib);
    }
    out.throughput_gbs = out.bytes_read as f64 / out.timings.total_s.max(1e-12) / 1e9;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_choices() {
        assert_eq!(VarChoice::parse(Some("t2m")).unwrap(), VarChoice::One);
        assert_eq!(VarChoice::parse(None).unwrap(), VarChoice::One);
        assert_eq!(VarChoice::parse(Some("all")).unwrap(), VarChoice::All);
        assert_eq!(
            VarChoice::parse(Some("t2m, msl")).unwrap(),
            VarChoice::List(vec!["t2m".into(), "msl".into()])
        );
        assert!(VarChoice::parse(Some("t2m,,msl")).is_err());
        assert!(VarChoice::parse(Some("t2m,t2m")).is_err());
        assert_eq!(short_name("/grp/t2m"), "t2m");
    }
}
