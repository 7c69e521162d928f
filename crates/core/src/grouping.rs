//! `--groupby DIM.FIELD` and `--resample DIM=FREQ`: which result group each
//! selected step of the time dimension belongs to, the groups' labels,
//! coordinates and bounds, and the CF `cell_methods` of a grouped result.
//!
//! Groups follow xarray: `groupby("time.month")` keeps the groups present
//! in the data, sorted by key (seasons in the order DJF, MAM, JJA, SON);
//! `resample(time=…)` makes one period for every period start from the
//! first step's to the last step's, empty periods included (their mean is
//! NaN, their count 0), labelled at the period start ([`crate::time_groups`]).
//! Pure: the time coordinate comes from the variable's metadata.

use crate::CwError;
use crate::cftime::{Calendar, TimeUnits};
use crate::selection::{AxisRange, ReduceOver};
use crate::time_groups::{Freq, GroupField};
use crate::variable::VariableMeta;

/// Most groups (periods) a result may have.
pub const MAX_GROUPS: usize = 10_000_000;

/// A grouping of the time dimension, as asked on the command line.
#[derive(Clone, Debug, PartialEq)]
pub enum Grouping {
    /// `--groupby DIM.FIELD` (a climatology: month, season, …).
    By {
        /// The grouped dimension (`time`).
        dim: String,
        /// The calendar field.
        field: GroupField,
    },
    /// `--resample DIM=FREQ` (one result per period).
    Resample {
        /// The resampled dimension (`time`).
        dim: String,
        /// The period length.
        freq: Freq,
        /// The frequency as given (`1MS`).
        text: String,
    },
}

impl Grouping {
    /// Parses `--groupby` / `--resample` (at most one is given).
    pub fn parse(
        groupby: Option<&str>,
        resample: Option<&str>,
    ) -> Result<Option<Grouping>, CwError> {
        match (groupby, resample) {
            (Some(_), Some(_)) => Err(CwError::Parse(
                "--groupby and --resample cannot be combined".into(),
            )),
            (Some(g), None) => {
                let (dim, field) = GroupField::parse(g)?;
                Ok(Some(Grouping::By { dim, field }))
            }
            (None, Some(r)) => {
                let (dim, f) = r.split_once('=').ok_or_else(|| {
                    CwError::Parse(format!(
                        "--resample '{r}': expected DIM=FREQ, e.g. time=1MS"
                    ))
                })?;
                if dim.is_empty() {
                    return Err(CwError::Parse(format!(
                        "--resample '{r}': no dimension before the '='"
                    )));
                }
                Ok(Some(Grouping::Resample {
                    dim: dim.to_string(),
                    freq: Freq::parse(f)?,
                    text: f.trim().to_string(),
                }))
            }
            (None, None) => Ok(None),
        }
    }

    /// The grouped dimension.
    pub fn dim(&self) -> &str {
        match self {
            Grouping::By { dim, .. } | Grouping::Resample { dim, .. } => dim,
        }
    }

    /// The flag as it is written on the command line.
    pub fn to_argv(&self) -> [String; 2] {
        match self {
            Grouping::By { dim, field } => {
                ["--groupby".into(), format!("{dim}.{}", field.dim_name())]
            }
            Grouping::Resample { dim, text, .. } => ["--resample".into(), format!("{dim}={text}")],
        }
    }

    /// The dimensions reduced with this grouping: the grouped one alone
    /// when none are named (as xarray's `groupby(...).mean()`), otherwise
    /// the named ones, which must include it.
    pub fn reduce_over(&self, over: ReduceOver) -> Result<ReduceOver, CwError> {
        let flag = &self.to_argv()[0];
        match over {
            ReduceOver::All => Ok(ReduceOver::Dims(vec![self.dim().to_string()])),
            ReduceOver::Dims(d) if d.iter().any(|n| n == self.dim()) => Ok(ReduceOver::Dims(d)),
            ReduceOver::Dims(d) => Err(CwError::Parse(format!(
                "{flag} groups '{}', which --dim {} does not reduce; add it to --dim",
                self.dim(),
                d.join(",")
            ))),
            ReduceOver::Axes(_) => Err(CwError::Parse(format!(
                "{flag} takes --dim (names), not --axis"
            ))),
        }
    }
}

/// The groups of one reduction: for each selected step of the grouped
/// axis its group, and per group its label, coordinate and bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupAxis {
    /// Axis of the grouped dimension in the variable.
    pub axis: usize,
    /// Name of the result dimension that replaces it (`month`, `season`,
    /// …; the dimension's own name when resampling).
    pub dim: String,
    /// What grouped it, as written (`time.month`, `time=1MS`).
    pub by: String,
    /// Group of each selected step (index into the groups).
    pub step_group: Vec<u32>,
    /// Label of each group (`1`, `DJF`, or the period start as a date).
    pub labels: Vec<String>,
    /// Coordinate value of each group (the key; for periods the start in
    /// the time coordinate's units).
    pub coords: Vec<f64>,
    /// Period bounds `[start, next start)` in the time units (resampling).
    pub bounds: Option<Vec<[f64; 2]>>,
    /// Attributes of the group coordinate variable.
    pub coord_attrs: Vec<(String, String)>,
    /// `Some(field)` for a climatology, `None` for periods.
    pub field: Option<GroupField>,
}

impl GroupAxis {
    /// Number of groups.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no groups (never for a validated selection).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Runs of equal group among the selected steps `lo .. lo + n`:
    /// `(group, first, end)` with step offsets relative to `lo`.
    pub fn runs(&self, lo: usize, n: usize) -> Vec<(u32, usize, usize)> {
        let mut out: Vec<(u32, usize, usize)> = Vec::new();
        for (i, &g) in self.step_group[lo..lo + n].iter().enumerate() {
            match out.last_mut() {
                Some(last) if last.0 == g => last.2 = i + 1,
                _ => out.push((g, i, i + 1)),
            }
        }
        out
    }

    /// CF `cell_methods` of `op` (`mean`, `maximum`, …) over the grouped
    /// dimension `over`, with the other reduced dimensions `others` first.
    pub fn cell_methods(&self, over: &str, others: &[String], op: &str) -> String {
        let grouped = match self.field {
            Some(f) => f.cell_methods(over, op),
            None => format!("{over}: {op}"),
        };
        if others.is_empty() {
            grouped
        } else {
            format!("{}: {op} {grouped}", others.join(": "))
        }
    }
}

/// The groups of `spec` over the selection `sel` of `meta`'s variable.
pub fn group_axis(
    spec: &Grouping,
    meta: &VariableMeta,
    sel: &[AxisRange],
) -> Result<GroupAxis, CwError> {
    let flag = spec.to_argv().join(" ");
    let axis = meta.dims.axis_of(spec.dim(), &flag)?;
    let attrs = meta.coord_attrs.get(axis).map(Vec::as_slice).unwrap_or(&[]);
    let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let units = get("units").filter(|u| u.contains(" since ")).ok_or_else(|| {
        CwError::Input(format!(
            "{flag}: dimension '{}' has no time units (a coordinate variable with units \"<unit> since <date>\" is needed)",
            spec.dim()
        ))
    })?;
    let tu = TimeUnits::parse(units, get("calendar").unwrap_or(""))
        .map_err(|e| CwError::Input(format!("{flag}: {e}")))?;
    let values = meta.dims.coords[axis].as_ref().ok_or_else(|| {
        CwError::Input(format!(
            "{flag}: dimension '{}' has no numeric coordinate values",
            spec.dim()
        ))
    })?;
    let r = &sel[axis];
    let instants: Vec<i64> = (0..r.count)
        .map(|i| {
            let v = values[r.index(i)];
            tu.instant_of(v).ok_or_else(|| {
                CwError::Input(format!(
                    "{flag}: time value {v} at index {} cannot be decoded as a date ({units})",
                    r.index(i)
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    let cal = tu.calendar;
    match spec {
        Grouping::By { dim, field } => {
            let keys: Vec<i64> = instants
                .iter()
                .map(|&t| field.key(&crate::cftime::DateTime::from_instant(t, cal), cal))
                .collect();
            let mut distinct = keys.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let step_group = keys
                .iter()
                .map(|k| distinct.binary_search(k).expect("key is present") as u32)
                .collect();
            Ok(GroupAxis {
                axis,
                dim: field.dim_name().to_string(),
                by: format!("{dim}.{}", field.dim_name()),
                step_group,
                labels: distinct.iter().map(|&k| field.label(k)).collect(),
                coords: distinct.iter().map(|&k| k as f64).collect(),
                bounds: None,
                coord_attrs: group_coord_attrs(*field),
                field: Some(*field),
            })
        }
        Grouping::Resample { dim, freq, text } => {
            let (Some(&first), Some(&last)) = (instants.first(), instants.last()) else {
                return Err(CwError::Input(format!("{flag}: no time steps selected")));
            };
            if instants.windows(2).any(|w| w[1] < w[0]) {
                return Err(CwError::Input(format!(
                    "{flag}: the time coordinate is not increasing; resampling needs ordered time"
                )));
            }
            let starts = period_starts(*freq, first, last, cal, &flag)?;
            let mut step_group = Vec::with_capacity(instants.len());
            let mut g = 0usize;
            for &t in &instants {
                while g + 1 < starts.len() && starts[g + 1] <= t {
                    g += 1;
                }
                step_group.push(g as u32);
            }
            let next_of_last = freq.next_start(*starts.last().expect("one period"), cal);
            let ends: Vec<i64> = starts[1..]
                .iter()
                .copied()
                .chain(std::iter::once(next_of_last))
                .collect();
            let mut coord_attrs: Vec<(String, String)> = attrs
                .iter()
                .filter(|(k, _)| k != "bounds" && k != "_FillValue")
                .cloned()
                .collect();
            coord_attrs.push(("bounds".into(), format!("{dim}_bnds")));
            Ok(GroupAxis {
                axis,
                dim: dim.clone(),
                by: format!("{dim}={text}"),
                step_group,
                labels: starts
                    .iter()
                    .map(|&s| crate::cftime::DateTime::from_instant(s, cal).iso())
                    .collect(),
                coords: starts.iter().map(|&s| tu.encode_instant(s)).collect(),
                bounds: Some(
                    starts
                        .iter()
                        .zip(&ends)
                        .map(|(&s, &e)| [tu.encode_instant(s), tu.encode_instant(e)])
                        .collect(),
                ),
                coord_attrs,
                field: None,
            })
        }
    }
}

/// Every period start from the one holding `first` to the one holding
/// `last`, refusing more than [`MAX_GROUPS`].
fn period_starts(
    freq: Freq,
    first: i64,
    last: i64,
    cal: Calendar,
    flag: &str,
) -> Result<Vec<i64>, CwError> {
    let end = freq.period_start(last, first, cal);
    let mut s = freq.period_start(first, first, cal);
    let mut out = vec![s];
    while s < end {
        s = freq.next_start(s, cal);
        out.push(s);
        if out.len() > MAX_GROUPS {
            return Err(CwError::Input(format!(
                "{flag}: more than {MAX_GROUPS} periods between the first and the last step; choose a longer frequency"
            )));
        }
    }
    Ok(out)
}

/// Attributes of a climatology's group coordinate.
fn group_coord_attrs(field: GroupField) -> Vec<(String, String)> {
    let long = match field {
        GroupField::Month => "month of the year",
        GroupField::Season => "meteorological season",
        GroupField::Year => "year",
        GroupField::DayOfYear => "day of the year",
        GroupField::Hour => "hour of the day",
    };
    let mut a = vec![("long_name".to_string(), long.to_string())];
    if field == GroupField::Season {
        a.push(("flag_values".into(), "0 1 2 3".into()));
        a.push((
            "flag_meanings".into(),
            crate::time_groups::SEASONS.join(" "),
        ));
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selection::Dims;

    fn meta(values: Vec<f64>, units: &str, calendar: &str) -> VariableMeta {
        let n = values.len();
        VariableMeta {
            dtype: crate::element::Dtype::F64,
            shape: vec![n, 2],
            chunk: None,
            filtered: false,
            dims: Dims {
                names: vec!["time".into(), "x".into()],
                shape: vec![n, 2],
                coords: vec![Some(values), None],
            },
            decode: Default::default(),
            attrs: vec![],
            globals: vec![],
            coord_attrs: vec![
                vec![
                    ("units".into(), units.into()),
                    ("calendar".into(), calendar.into()),
                ],
                vec![],
            ],
        }
    }

    #[test]
    fn months_of_daily_noleap_data_group_by_calendar_month() {
        // 730 days from 2001-01-01 in a 365-day calendar: every month twice.
        let m = meta(
            (0..730).map(f64::from).collect(),
            "days since 2001-01-01",
            "noleap",
        );
        let sel = vec![AxisRange::all(730), AxisRange::all(2)];
        let spec = Grouping::parse(Some("time.month"), None).unwrap().unwrap();
        let g = group_axis(&spec, &m, &sel).unwrap();
        assert_eq!(
            g.labels,
            (1..=12).map(|k| k.to_string()).collect::<Vec<_>>()
        );
        let days = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        for (k, d) in days.iter().enumerate() {
            let n = g.step_group.iter().filter(|&&x| x as usize == k).count();
            assert_eq!(n, 2 * d, "month {}", k + 1);
        }
        // Runs inside a slice of steps: Jan 30..Feb 2 = two runs.
        assert_eq!(g.runs(29, 4), vec![(0, 0, 2), (1, 2, 4)]);
    }

    #[test]
    fn monthly_periods_include_empty_ones_and_carry_bounds() {
        // Days 0, 1 (Jan 2000) and 70 (mid-March, 360-day calendar).
        let m = meta(vec![0.0, 1.0, 70.0], "days since 2000-01-01", "360_day");
        let sel = vec![AxisRange::all(3), AxisRange::all(2)];
        let spec = Grouping::parse(None, Some("time=1MS")).unwrap().unwrap();
        let g = group_axis(&spec, &m, &sel).unwrap();
        assert_eq!(g.labels.len(), 3);
        assert!(g.labels[1].starts_with("2000-02-01"), "{:?}", g.labels);
        assert_eq!(g.step_group, vec![0, 0, 2]);
        assert_eq!(g.coords, vec![0.0, 30.0, 60.0]);
        assert_eq!(g.bounds.as_ref().unwrap()[2], [60.0, 90.0]);
    }

    #[test]
    fn bad_groupings_are_clear_errors() {
        let m = meta(vec![0.0, 1.0], "days", "standard");
        let sel = vec![AxisRange::all(2), AxisRange::all(2)];
        let spec = Grouping::parse(Some("time.month"), None).unwrap().unwrap();
        let e = group_axis(&spec, &m, &sel).unwrap_err().to_string();
        assert!(e.contains("no time units"), "{e}");
        assert!(Grouping::parse(Some("time.week"), None).is_err());
        assert!(Grouping::parse(None, Some("time=1W")).is_err());
        assert!(Grouping::parse(None, Some("1MS")).is_err());
        assert!(Grouping::parse(Some("time.month"), Some("time=1MS")).is_err());
        let e = spec
            .reduce_over(ReduceOver::Dims(vec!["x".into()]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("add it to --dim"), "{e}");
        assert_eq!(
            spec.reduce_over(ReduceOver::All).unwrap(),
            ReduceOver::Dims(vec!["time".into()])
        );
        let m = meta(vec![0.0, 1.0], "days since 2000-01-01", "martian");
        assert!(group_axis(&spec, &m, &sel).is_err());
    }
}
