//! Which part of a variable `reduce` reads (`--select`) and which dimensions
//! it reduces over (`--dim` / `--axis`). Pure: works on dimension names,
//! extents and coordinate values that the caller has read.

use crate::error::CwError;

/// Which dimensions `reduce` reduces over.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum ReduceOver {
    /// All of them (the default).
    #[default]
    All,
    /// `--dim NAME[,NAME…]`.
    Dims(Vec<String>),
    /// `--axis I[,I…]` (negative counts from the end).
    Axes(Vec<i64>),
}

impl ReduceOver {
    /// Parse `--dim` / `--axis` (at most one of them is given).
    pub fn parse(dim: Option<&str>, axis: Option<&str>) -> Result<ReduceOver, CwError> {
        Ok(match (dim, axis) {
            (None, None) => ReduceOver::All,
            (Some(d), _) => ReduceOver::Dims(
                split_list(d, "--dim")?
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            ),
            (None, Some(a)) => ReduceOver::Axes(
                split_list(a, "--axis")?
                    .into_iter()
                    .map(|t| {
                        t.parse::<i64>()
                            .map_err(|_| CwError::Parse(format!("--axis '{t}' is not an integer")))
                    })
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

/// Split a comma-separated list of names; empty names are an error.
pub fn split_list<'a>(s: &'a str, flag: &str) -> Result<Vec<&'a str>, CwError> {
    let v: Vec<&str> = s.split(',').map(str::trim).collect();
    if v.iter().any(|t| t.is_empty()) {
        return Err(CwError::Parse(format!("{flag} '{s}': empty name in list")));
    }
    Ok(v)
}

/// One `--select` argument, parsed but not yet checked against the variable.
#[derive(Clone, Debug, PartialEq)]
pub enum SelectSpec {
    /// `NAME=START:STOP[:STEP]`: indices, Python slice rules (negative
    /// counts from the end, missing START/STOP mean the ends, STEP ≥ 1).
    Index {
        /// Dimension name.
        dim: String,
        /// First index (may be negative).
        start: Option<i64>,
        /// One past the last index (may be negative).
        stop: Option<i64>,
        /// Stride (≥ 1).
        step: usize,
    },
    /// `NAME=DATE..DATE` on a CF time coordinate (`time=1991-01-01..2020-12-31`;
    /// dates may be partial: `1991`, `1991-06`), resolved to a value range
    /// by the `date_select` module once the coordinate's units are known.
    Date {
        /// Dimension name.
        dim: String,
        /// First date, as given.
        lo: String,
        /// Last date, as given (a partial date includes all of its period).
        hi: String,
    },
    /// `NAME=LO..HI`: every index whose coordinate value lies in `[LO, HI]`.
    Value {
        /// Dimension name.
        dim: String,
        /// Lower bound (inclusive).
        lo: f64,
        /// Upper bound (inclusive).
        hi: f64,
    },
}

impl SelectSpec {
    /// The dimension this selection applies to.
    pub fn dim(&self) -> &str {
        match self {
            SelectSpec::Index { dim, .. }
            | SelectSpec::Value { dim, .. }
            | SelectSpec::Date { dim, .. } => dim,
        }
    }
}

impl std::fmt::Display for SelectSpec {
    /// The `--select` text that parses back to this selection.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SelectSpec::Index {
                dim,
                start,
                stop,
                step,
            } => {
                let o = |v: &Option<i64>| v.map(|x| x.to_string()).unwrap_or_default();
                write!(f, "{dim}={}:{}:{step}", o(start), o(stop))
            }
            SelectSpec::Value { dim, lo, hi } => write!(f, "{dim}={lo:?}..{hi:?}"),
            SelectSpec::Date { dim, lo, hi } => write!(f, "{dim}={lo}..{hi}"),
        }
    }
}

/// Parse one `--select` value.
pub fn parse_select(s: &str) -> Result<SelectSpec, CwError> {
    let bad = |why: &str| {
        CwError::Parse(format!(
            "--select '{s}': {why} (expected NAME=START:STOP[:STEP] or NAME=LO..HI)"
        ))
    };
    let (dim, rhs) = s.split_once('=').ok_or_else(|| bad("missing '='"))?;
    let dim = dim.trim();
    if dim.is_empty() {
        return Err(bad("empty dimension name"));
    }
    let rhs = rhs.trim();
    if let Some((lo, hi)) = rhs.split_once("..") {
        // Dates (`1991-01-01`, `1991-06`, `1991`): a '-' after the first
        // digit, or a time of day. Plain numbers stay value bounds.
        let datelike = |t: &str| {
            let t = t.trim();
            t.parse::<f64>().is_err()
                && t.starts_with(|c: char| c.is_ascii_digit())
                && (t.contains('-') || t.contains(':'))
        };
        if datelike(lo) || datelike(hi) {
            return Ok(SelectSpec::Date {
                dim: dim.into(),
                lo: lo.trim().into(),
                hi: hi.trim().into(),
            });
        }
        let num = |t: &str| -> Result<f64, CwError> {
            let v: f64 = t
                .trim()
                .parse()
                .map_err(|_| bad(&format!("'{t}' is not a number")))?;
            if v.is_nan() {
                return Err(bad("NaN bound"));
            }
            Ok(v)
        };
        // LO > HI is only meaningful on a periodic longitude (`350..10`);
        // resolving it against the coordinate decides.
        let (lo, hi) = (num(lo)?, num(hi)?);
        return Ok(SelectSpec::Value {
            dim: dim.into(),
            lo,
            hi,
        });
    }
    let parts: Vec<&str> = rhs.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return Err(bad("expected one or two ':'"));
    }
    let idx = |t: &str| -> Result<Option<i64>, CwError> {
        let t = t.trim();
        if t.is_empty() {
            return Ok(None);
        }
        t.parse::<i64>()
            .map(Some)
            .map_err(|_| bad(&format!("'{t}' is not an integer index")))
    };
    let step = match parts.get(2).map(|t| t.trim()) {
        None | Some("") => 1,
        Some(t) => match t.parse::<i64>() {
            Ok(v) if v >= 1 => v as usize,
            _ => return Err(bad(&format!("step '{t}' must be an integer ≥ 1"))),
        },
    };
    Ok(SelectSpec::Index {
        dim: dim.into(),
        start: idx(parts[0])?,
        stop: idx(parts[1])?,
        step,
    })
}

pub use crate::axis_range::{AxisRange, Wrap};

/// A variable's dimensions as `reduce` sees them.
#[derive(Clone, Debug, Default)]
pub struct Dims {
    /// One name per axis (`dim_0, dim_1, …` when the file has no dimension scales).
    pub names: Vec<String>,
    /// Extents.
    pub shape: Vec<usize>,
    /// Coordinate values per axis, when a numeric coordinate variable exists.
    pub coords: Vec<Option<Vec<f64>>>,
}

impl Dims {
    /// Axis of dimension `name`, or an error listing the dimensions.
    pub fn axis_of(&self, name: &str, what: &str) -> Result<usize, CwError> {
        self.names.iter().position(|n| n == name).ok_or_else(|| {
            CwError::Input(format!(
                "{what}: no dimension '{name}' (dimensions: {})",
                self.names.join(", ")
            ))
        })
    }
}

/// Resolve `--select` arguments to one range per axis (whole axes where no
/// selection is given); `longitude[a]` says axis `a`'s coordinate is a CF
/// longitude (see [`crate::periodic`]; may be empty: none is). Errors name
/// the dimension and what is wrong.
pub fn resolve_selection(
    dims: &Dims,
    longitude: &[bool],
    specs: &[SelectSpec],
) -> Result<Vec<AxisRange>, CwError> {
    let mut out: Vec<AxisRange> = dims.shape.iter().map(|&d| AxisRange::all(d)).collect();
    let mut seen = vec![false; dims.shape.len()];
    for spec in specs {
        let ax = dims.axis_of(spec.dim(), "--select")?;
        if std::mem::replace(&mut seen[ax], true) {
            return Err(CwError::Parse(format!(
                "--select: dimension '{}' selected twice",
                spec.dim()
            )));
        }
        let len = dims.shape[ax];
        out[ax] = match spec {
            SelectSpec::Index {
                dim,
                start,
                stop,
                step,
            } => resolve_index(dim, len, *start, *stop, *step)?,
            SelectSpec::Value { dim, lo, hi } => {
                let coords = dims.coords[ax].as_ref().ok_or_else(|| {
                    CwError::Input(format!(
                        "--select {dim}={lo}..{hi}: dimension '{dim}' has no numeric coordinate variable; select by index ({dim}=START:STOP)"
                    ))
                })?;
                if !longitude.get(ax).copied().unwrap_or(false) {
                    resolve_value(dim, coords, *lo, *hi)?
                } else if crate::periodic::global_step(coords).is_some() {
                    crate::periodic::resolve_periodic(dim, coords, *lo, *hi)?
                } else {
                    crate::periodic::check_not_wrapping(dim, coords, *lo, *hi)?;
                    resolve_value(dim, coords, *lo, *hi)?
                }
            }
            SelectSpec::Date { dim, lo, hi } => {
                return Err(CwError::Input(format!(
                    "--select {dim}={lo}..{hi}: dimension '{dim}' has no CF time units ('<unit> since <date>') to place dates on"
                )));
            }
        };
    }
    Ok(out)
}

fn resolve_index(
    dim: &str,
    len: usize,
    start: Option<i64>,
    stop: Option<i64>,
    step: usize,
) -> Result<AxisRange, CwError> {
    let shown = format!(
        "{}:{}:{step}",
        start.map(|v| v.to_string()).unwrap_or_default(),
        stop.map(|v| v.to_string()).unwrap_or_default()
    );
    let abs = |v: i64| -> Result<usize, CwError> {
        let a = if v < 0 { len as i64 + v } else { v };
        if a < 0 || a > len as i64 {
            Err(CwError::Input(format!(
                "--select {dim}={shown}: index {v} is out of range for dimension '{dim}' of length {len}"
            )))
        } else {
            Ok(a as usize)
        }
    };
    let a = start.map(abs).transpose()?.unwrap_or(0);
    let b = stop.map(abs).transpose()?.unwrap_or(len);
    if a >= b || a >= len {
        return Err(CwError::Input(format!(
            "--select {dim}={shown} selects nothing from dimension '{dim}' of length {len}"
        )));
    }
    Ok(AxisRange {
        start: a,
        count: (b - a).div_ceil(step),
        step,
        wrap: None,
    })
}

fn resolve_value(dim: &str, coords: &[f64], lo: f64, hi: f64) -> Result<AxisRange, CwError> {
    if lo > hi {
        return Err(CwError::Parse(format!(
            "--select {dim}={lo}..{hi}: lower bound {lo} is above upper bound {hi}"
        )));
    }
    let inside: Vec<usize> = coords
        .iter()
        .enumerate()
        .filter(|(_, c)| **c >= lo && **c <= hi)
        .map(|(i, _)| i)
        .collect();
    let (Some(&first), Some(&last)) = (inside.first(), inside.last()) else {
        let (mn, mx) = coords
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &c| {
                (a.min(c), b.max(c))
            });
        return Err(CwError::Input(format!(
            "--select {dim}={lo}..{hi} selects nothing: coordinate '{dim}' spans {mn}..{mx}"
        )));
    };
    if last - first + 1 != inside.len() {
        return Err(CwError::Input(format!(
            "--select {dim}={lo}..{hi}: coordinate '{dim}' is not monotonic, the values in range are not contiguous; select by index"
        )));
    }
    Ok(AxisRange {
        start: first,
        count: inside.len(),
        step: 1,
        wrap: None,
    })
}

/// Which axes `reduce` reduces over: `--dim` names or `--axis` indices
/// (negative counts from the end); all axes when neither is given.
/// Returns one flag per axis (true = reduced).
pub fn resolve_reduced(dims: &Dims, over: &ReduceOver) -> Result<Vec<bool>, CwError> {
    let n = dims.shape.len();
    let mut reduced = vec![false; n];
    let axes: Vec<usize> = match over {
        ReduceOver::All => return Ok(vec![true; n]),
        ReduceOver::Dims(d) => d
            .iter()
            .map(|name| dims.axis_of(name, "--dim"))
            .collect::<Result<_, _>>()?,
        ReduceOver::Axes(a) => a
            .iter()
            .map(|&v| {
                let a = if v < 0 { n as i64 + v } else { v };
                if a < 0 || a >= n as i64 {
                    return Err(CwError::Input(format!(
                        "--axis {v} is out of range for a {n}-d variable (dimensions: {})",
                        dims.names.join(", ")
                    )));
                }
                Ok(a as usize)
            })
            .collect::<Result<_, _>>()?,
    };
    for a in axes {
        if std::mem::replace(&mut reduced[a], true) {
            return Err(CwError::Parse(format!(
                "dimension '{}' is listed twice in --dim/--axis",
                dims.names[a]
            )));
        }
    }
    Ok(reduced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longitude_ranges_wrap_only_on_cf_longitudes() {
        let lon: Vec<f64> = (0..180).map(|i| i as f64 * 2.0).collect(); // 0..358
        let d = Dims {
            names: vec!["x".into()],
            shape: vec![180],
            coords: vec![Some(lon)],
        };
        let sel = |longitude: &[bool], s: &str| {
            resolve_selection(&d, longitude, &[parse_select(s).unwrap()]).map(|v| v[0])
        };
        // Marked a longitude by its attributes (whatever its name): wraps.
        let r = sel(&[true], "x=-10..10").unwrap();
        assert_eq!((r.start, r.count, r.seam()), (175, 11, Some(5)));
        assert_eq!(sel(&[true], "x=350..10").unwrap().count, 11);
        // Not a longitude: clipped to what exists, as xarray's sel does;
        // LO > HI is an error.
        let r = sel(&[false], "x=-10..10").unwrap();
        assert_eq!((r.start, r.count, r.wrap), (0, 6, None));
        assert!(sel(&[], "x=-10..10").unwrap().wrap.is_none());
        let e = sel(&[false], "x=350..10").unwrap_err().to_string();
        assert!(e.contains("above upper bound"), "{e}");
        // Index selections never wrap.
        assert!(sel(&[true], "x=175:186").is_err());
    }

    #[test]
    fn seam_position_of_wrapped_ranges() {
        let w = |start, count| AxisRange {
            start,
            count,
            step: 1,
            wrap: Some(Wrap {
                len: 10,
                turns: [-1, 0],
            }),
        };
        assert_eq!(w(7, 5).seam(), Some(3));
        assert_eq!(w(7, 3).seam(), None);
        assert_eq!(w(0, 10).seam(), None);
        assert_eq!(w(7, 5).index(4), 1);
        assert_eq!(
            (w(7, 5).coord_shift(2), w(7, 5).coord_shift(3)),
            (-360.0, 0.0)
        );
        assert_eq!(AxisRange::all(10).seam(), None);
    }

    fn dims() -> Dims {
        Dims {
            names: vec!["time".into(), "lat".into(), "lon".into()],
            shape: vec![10, 4, 6],
            coords: vec![
                Some((0..10).map(|i| i as f64 * 24.0).collect()),
                Some(vec![45.0, 15.0, -15.0, -45.0]),
                None,
            ],
        }
    }

    #[test]
    fn index_selections_follow_python_slices() {
        let d = dims();
        let sel = |s: &str| resolve_selection(&d, &[], &[parse_select(s).unwrap()]);
        assert_eq!(
            sel("time=2:8:3").unwrap()[0],
            AxisRange {
                start: 2,
                count: 2,
                step: 3,
                wrap: None,
            }
        );
        assert_eq!(sel("time=-3:").unwrap()[0].start, 7);
        assert_eq!(sel("lon=:").unwrap()[2], AxisRange::all(6));
        assert!(
            sel("lat=0:5")
                .unwrap_err()
                .to_string()
                .contains("out of range")
        );
        assert!(
            sel("lat=3:3")
                .unwrap_err()
                .to_string()
                .contains("selects nothing")
        );
        assert!(
            sel("depth=0:1")
                .unwrap_err()
                .to_string()
                .contains("time, lat, lon")
        );
    }

    #[test]
    fn value_selections_use_coordinates_either_direction() {
        let d = dims();
        let sel = |s: &str| resolve_selection(&d, &[], &[parse_select(s).unwrap()]);
        // lat is descending: 0..90 picks 45 and 15 (indices 0, 1).
        assert_eq!(
            sel("lat=0..90").unwrap()[1],
            AxisRange {
                start: 0,
                count: 2,
                step: 1,
                wrap: None,
            }
        );
        assert_eq!(sel("time=24..72").unwrap()[0].count, 3);
        assert!(sel("lat=50..60").unwrap_err().to_string().contains("spans"));
        assert!(sel("lat=60..50").unwrap_err().to_string().contains("above"));
        assert!(
            sel("lon=1..2")
                .unwrap_err()
                .to_string()
                .contains("no numeric")
        );
    }

    #[test]
    fn malformed_selections() {
        for s in [
            "lat",
            "=1:2",
            "lat=1",
            "lat=a:2",
            "lat=1:2:0",
            "lat=1:2:3:4",
        ] {
            assert!(parse_select(s).is_err(), "{s}");
        }
    }

    #[test]
    fn reduced_axes_by_name_or_index() {
        let d = dims();
        assert_eq!(
            resolve_reduced(&d, &ReduceOver::parse(None, None).unwrap()).unwrap(),
            vec![true; 3]
        );
        assert_eq!(
            resolve_reduced(&d, &ReduceOver::parse(Some("lat,lon"), None).unwrap()).unwrap(),
            vec![false, true, true]
        );
        assert_eq!(
            resolve_reduced(&d, &ReduceOver::parse(None, Some("-3")).unwrap()).unwrap(),
            vec![true, false, false]
        );
        assert!(resolve_reduced(&d, &ReduceOver::parse(Some("depth"), None).unwrap()).is_err());
        assert!(resolve_reduced(&d, &ReduceOver::parse(None, Some("3")).unwrap()).is_err());
        assert!(resolve_reduced(&d, &ReduceOver::parse(Some("lat,lat"), None).unwrap()).is_err());
    }
}
