//! Date selections (`--select time=1991-01-01..2020-12-31`) turned into
//! value selections on the time coordinate, through its CF `units` and
//! `calendar` ([`crate::cftime`]). As xarray's partial-date strings: a
//! date given to the day (or month, or year) covers all of that day
//! (month, year), so `..2020-12-31` includes the steps of 31 December and
//! `1991..2020` thirty whole years.

use crate::CwError;
use crate::cftime::{DateTime, TimeUnits};
use crate::selection::SelectSpec;
use crate::variable::VariableMeta;

/// `specs` with every date range replaced by the value range it covers on
/// its dimension's time coordinate.
pub fn dates_to_values(
    meta: &VariableMeta,
    specs: &[SelectSpec],
) -> Result<Vec<SelectSpec>, CwError> {
    specs
        .iter()
        .map(|s| match s {
            SelectSpec::Date { dim, lo, hi } => {
                let ax = meta.dims.axis_of(dim, "--select")?;
                let attrs = meta.coord_attrs.get(ax).map(Vec::as_slice).unwrap_or(&[]);
                let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
                let Some(units) = get("units").filter(|u| u.contains(" since ")) else {
                    return Ok(s.clone());
                };
                let u = TimeUnits::parse(units, get("calendar").unwrap_or(""))
                    .map_err(|e| CwError::Input(format!("--select {s}: {e}")))?;
                let (a, _) =
                    period(lo, &u).map_err(|e| CwError::Parse(format!("--select {s}: {e}")))?;
                let (_, b) =
                    period(hi, &u).map_err(|e| CwError::Parse(format!("--select {s}: {e}")))?;
                if a > b {
                    return Err(CwError::Parse(format!(
                        "--select {s}: the first date is after the last"
                    )));
                }
                // A range that holds no step is named in dates, with the
                // dates the data span.
                if let Some(values) = &meta.dims.coords[ax] {
                    let inside = |v: &f64| u.instant_of(*v).is_some_and(|t| a <= t && t <= b);
                    if !values.iter().any(inside) {
                        let date = |v: Option<&f64>| {
                            v.and_then(|v| u.decode(*v))
                                .map_or_else(|| "?".to_string(), |d| d.iso())
                        };
                        return Err(CwError::Input(format!(
                            "--select {s}: no time step in that range; the data span {} .. {}",
                            date(values.iter().min_by(|x, y| x.total_cmp(y))),
                            date(values.iter().max_by(|x, y| x.total_cmp(y)))
                        )));
                    }
                }
                Ok(SelectSpec::Value {
                    dim: dim.clone(),
                    lo: u.encode_instant(a),
                    hi: u.encode_instant(b),
                })
            }
            other => Ok(other.clone()),
        })
        .collect()
}

/// First and last instant (inclusive, microseconds) of a possibly partial
/// date: `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or a full date and time.
fn period(text: &str, u: &TimeUnits) -> Result<(i64, i64), CwError> {
    let cal = u.calendar;
    let t = text.trim();
    let fields: Vec<&str> = t.split('-').collect();
    let all_digits = |f: &str| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit());
    let (start, next) = match fields.as_slice() {
        [y] if all_digits(y) => {
            let y: i64 = y
                .parse()
                .map_err(|_| CwError::Parse(format!("date '{t}'")))?;
            (
                DateTime::date(y, 1, 1).instant(cal),
                DateTime::date(y + 1, 1, 1).instant(cal),
            )
        }
        [y, m] if all_digits(y) && all_digits(m) => {
            let first = DateTime::parse(&format!("{t}-01"), cal)?;
            let (ny, nm) = if first.month == 12 {
                (first.year + 1, 1)
            } else {
                (first.year, first.month + 1)
            };
            let _ = y;
            let _ = m;
            (first.instant(cal), DateTime::date(ny, nm, 1).instant(cal))
        }
        [_, _, d] if all_digits(d) => {
            let day = DateTime::parse(t, cal)?.instant(cal);
            (day, day + 86_400_000_000)
        }
        _ => {
            let at = DateTime::parse(t, cal)?.instant(cal);
            (at, at + 1)
        }
    };
    Ok((start, next - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selection::{Dims, parse_select, resolve_selection};

    fn meta(values: Vec<f64>, units: &str, cal: &str) -> VariableMeta {
        let n = values.len();
        VariableMeta {
            dtype: crate::element::Dtype::F32,
            shape: vec![n],
            chunk: None,
            filtered: false,
            dims: Dims {
                names: vec!["time".into()],
                shape: vec![n],
                coords: vec![Some(values)],
            },
            decode: Default::default(),
            attrs: vec![],
            globals: vec![],
            coord_attrs: vec![vec![
                ("units".into(), units.into()),
                ("calendar".into(), cal.into()),
            ]],
        }
    }

    fn select(m: &VariableMeta, s: &str) -> Result<(usize, usize), CwError> {
        let specs = dates_to_values(m, &[parse_select(s)?])?;
        let r = resolve_selection(&m.dims, &[], &specs)?;
        Ok((r[0].start, r[0].count))
    }

    #[test]
    fn whole_days_months_and_years() {
        // 6-hourly steps from 2000-01-01 00:00, noleap, for three years.
        let m = meta(
            (0..4 * 365 * 3).map(|i| i as f64 * 6.0).collect(),
            "hours since 2000-01-01",
            "noleap",
        );
        assert_eq!(select(&m, "time=2000-01-02..2000-01-02").unwrap(), (4, 4));
        assert_eq!(
            select(&m, "time=2000-02..2000-02").unwrap(),
            (4 * 31, 4 * 28)
        );
        assert_eq!(
            select(&m, "time=2001-01..2001-12").unwrap(),
            (4 * 365, 4 * 365)
        );
        assert_eq!(
            select(&m, "time=2001..2001-12").unwrap(),
            (4 * 365, 4 * 365)
        );
        // Bare numbers are coordinate values, not years.
        assert_eq!(select(&m, "time=2004..2004").unwrap(), (334, 1));
        assert_eq!(
            select(&m, "time=2000-12-31T12:00..2001-01-01").unwrap(),
            (4 * 364 + 2, 2 + 4)
        );
        // 360_day: February has 30 days.
        let d = meta(
            (0..720).map(f64::from).collect(),
            "days since 2000-01-01",
            "360_day",
        );
        assert_eq!(select(&d, "time=2000-02-01..2000-02-30").unwrap(), (30, 30));
        assert!(select(&d, "time=2000-02-31..2000-03-01").is_err());
        assert!(select(&d, "time=2001-01-01..2000-01-01").is_err());
        assert!(
            select(&d, "time=2005-01-01..2006-01-01")
                .unwrap_err()
                .to_string()
                .contains("no time step in that range; the data span 2000-01-01")
        );
        // Plain numbers stay value selections; a dimension without time units refuses dates.
        assert_eq!(select(&d, "time=-5..9.5").unwrap(), (0, 10));
        let mut no_units = d.clone();
        no_units.coord_attrs = vec![vec![]];
        assert!(
            select(&no_units, "time=2000-01-01..2000-02-01")
                .unwrap_err()
                .to_string()
                .contains("no CF time units")
        );
    }
}
