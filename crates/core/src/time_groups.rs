//! Calendar groups (`--groupby time.month`, …) and resampling periods
//! (`--resample time=1MS`, …): which group or period each time step belongs
//! to, and how it is labelled — as xarray's `groupby("time.<field>")` and
//! `resample(time=…)` do it (default `closed="left"`, `label="left"`,
//! `origin="start_day"`).
//!
//! Pure arithmetic on decoded dates ([`crate::cftime`]); a group key is an
//! `i64` so that partial results of any block can be merged by key.

use crate::CwError;
use crate::cftime::{Calendar, DateTime};

/// A calendar field to group by (climatologies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupField {
    /// Month of the year, 1–12 (`ymonmean`).
    Month,
    /// Meteorological season: DJF, MAM, JJA, SON, keys 0–3 in that order
    /// (`yseasmean`; December counts with the following January/February
    /// of the climatology, as xarray and CDO group it).
    Season,
    /// The year (`yearmean`).
    Year,
    /// Day of the year, 1-based (`ydaymean`).
    DayOfYear,
    /// Hour of the day, 0–23 (`yhourmean`'s hour part).
    Hour,
}

/// Season labels in key order.
pub const SEASONS: [&str; 4] = ["DJF", "MAM", "JJA", "SON"];

impl GroupField {
    /// Parses `DIM.FIELD` (`time.month`, `time.season`, `time.year`,
    /// `time.dayofyear`, `time.hour`) into the dimension and the field.
    pub fn parse(spec: &str) -> Result<(String, GroupField), CwError> {
        let (dim, field) = spec.split_once('.').ok_or_else(|| {
            CwError::Parse(format!(
                "--groupby '{spec}': expected DIM.FIELD, e.g. time.month"
            ))
        })?;
        let field = match field {
            "month" => GroupField::Month,
            "season" => GroupField::Season,
            "year" => GroupField::Year,
            "dayofyear" => GroupField::DayOfYear,
            "hour" => GroupField::Hour,
            other => {
                return Err(CwError::Parse(format!(
                    "--groupby '{spec}': unknown field '{other}' (month, season, year, dayofyear, hour)"
                )));
            }
        };
        if dim.is_empty() {
            return Err(CwError::Parse(format!(
                "--groupby '{spec}': no dimension before the '.'"
            )));
        }
        Ok((dim.to_string(), field))
    }

    /// The name of the dimension that replaces the grouped one.
    pub fn dim_name(self) -> &'static str {
        match self {
            GroupField::Month => "month",
            GroupField::Season => "season",
            GroupField::Year => "year",
            GroupField::DayOfYear => "dayofyear",
            GroupField::Hour => "hour",
        }
    }

    /// The group key of a date.
    pub fn key(self, d: &DateTime, cal: Calendar) -> i64 {
        match self {
            GroupField::Month => i64::from(d.month),
            GroupField::Season => i64::from(d.month % 12 / 3),
            GroupField::Year => d.year,
            GroupField::DayOfYear => i64::from(d.day_of_year(cal)),
            GroupField::Hour => i64::from(d.hour),
        }
    }

    /// The label of a key as text (`"DJF"` for seasons, the number otherwise).
    pub fn label(self, key: i64) -> String {
        match self {
            GroupField::Season => SEASONS[key.rem_euclid(4) as usize].to_string(),
            _ => key.to_string(),
        }
    }

    /// CF `cell_methods` of a climatology of `op` (e.g. `mean`) over `dim`.
    pub fn cell_methods(self, dim: &str, op: &str) -> String {
        let within = match self {
            GroupField::Month | GroupField::Season | GroupField::DayOfYear => "years",
            GroupField::Year => return format!("{dim}: {op}"),
            GroupField::Hour => "days",
        };
        format!("{dim}: {op} within {within} {dim}: {op} over {within}")
    }
}

/// A resampling frequency (xarray's offset aliases).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freq {
    /// A fixed length in microseconds (`nD`, `nh`, `nmin`, `ns`), bins
    /// anchored at midnight of the first time step's day.
    Fixed(i64),
    /// `n` months per period; with an anchor month (0-based) the periods
    /// start in months `anchor + k·n` (`QS-DEC`: Dec, Mar, Jun, Sep;
    /// `YS`: January), without one they start at the first time step's
    /// month (`nMS`).
    Months {
        /// Months per period.
        n: i64,
        /// First month of some period, 0-based, or none (from the data).
        anchor: Option<i64>,
    },
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

impl Freq {
    /// Parses `[n]D`, `[n]h`, `[n]min`, `[n]s`, `[n]MS`, `QS[-MON]`,
    /// `YS[-MON]` (`H`, `T`, `S`, `AS` accepted as older spellings).
    pub fn parse(text: &str) -> Result<Freq, CwError> {
        let bad = |why: &str| CwError::Parse(format!("--resample frequency '{text}': {why}"));
        let t = text.trim();
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        let n: i64 = if digits == 0 {
            1
        } else {
            t[..digits].parse().map_err(|_| bad("count too large"))?
        };
        if n == 0 {
            return Err(bad("the count must be at least 1"));
        }
        let (alias, anchor) = match t[digits..].split_once('-') {
            Some((a, m)) => (a, Some(m)),
            None => (&t[digits..], None),
        };
        let anchor_month = |default: i64| -> Result<i64, CwError> {
            match anchor {
                None => Ok(default),
                Some(m) => MONTHS
                    .iter()
                    .position(|x| x.eq_ignore_ascii_case(m))
                    .map(|i| i as i64)
                    .ok_or_else(|| bad(&format!("unknown month '{m}'"))),
            }
        };
        let fixed = |unit_us: i64| -> Result<Freq, CwError> {
            if anchor.is_some() {
                return Err(bad("no anchor month for a fixed frequency"));
            }
            n.checked_mul(unit_us)
                .map(Freq::Fixed)
                .ok_or_else(|| bad("period too long"))
        };
        match alias {
            "D" => fixed(86_400_000_000),
            "h" | "H" => fixed(3_600_000_000),
            "min" | "T" => fixed(60_000_000),
            "s" | "S" => fixed(1_000_000),
            "MS" if anchor.is_none() => Ok(Freq::Months { n, anchor: None }),
            "QS" => Ok(Freq::Months {
                n: 3 * n,
                anchor: Some(anchor_month(0)?),
            }),
            "YS" | "AS" => Ok(Freq::Months {
                n: 12 * n,
                anchor: Some(anchor_month(0)?),
            }),
            "M" | "ME" | "Q" | "QE" | "Y" | "YE" | "A" => Err(bad(
                "period-end labels are not supported; use the start form (MS, QS, YS)",
            )),
            _ => Err(bad("expected nD, nh, nmin, ns, nMS, QS[-MON] or YS[-MON]")),
        }
    }

    /// The instant at which the period holding `t` starts, given the
    /// first time step of the data (`first`), all in microseconds of `cal`.
    pub fn period_start(self, t: i64, first: i64, cal: Calendar) -> i64 {
        match self {
            Freq::Fixed(len) => {
                let origin = first.div_euclid(86_400_000_000) * 86_400_000_000;
                origin + (t - origin).div_euclid(len) * len
            }
            Freq::Months { n, anchor } => {
                let d = DateTime::from_instant(t, cal);
                let m = month_index(&d);
                let start = match anchor {
                    Some(a) => m - (m - a).rem_euclid(n),
                    None => {
                        let f = month_index(&DateTime::from_instant(first, cal));
                        f + (m - f).div_euclid(n) * n
                    }
                };
                month_start(start, cal)
            }
        }
    }

    /// The start of the period after the one starting at `start`.
    pub fn next_start(self, start: i64, cal: Calendar) -> i64 {
        match self {
            Freq::Fixed(len) => start + len,
            Freq::Months { n, .. } => {
                month_start(month_index(&DateTime::from_instant(start, cal)) + n, cal)
            }
        }
    }
}

/// Months since year 0 (as written) of a date.
fn month_index(d: &DateTime) -> i64 {
    d.year * 12 + i64::from(d.month) - 1
}

/// The instant of the first day of a month index.
fn month_start(m: i64, cal: Calendar) -> i64 {
    let (y, mo) = (m.div_euclid(12), m.rem_euclid(12) as u32 + 1);
    // Year 0 does not exist in every calendar; such a month index is never
    // produced from real dates there, but stay total: use year 1.
    let y = if y == 0 && !cal.has_year_zero() { 1 } else { y };
    DateTime::date(y, mo, 1).instant(cal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cftime::TimeUnits;

    #[test]
    fn group_keys_and_labels() {
        let d = DateTime::date(2001, 12, 31);
        assert_eq!(GroupField::Season.key(&d, Calendar::Standard), 0);
        assert_eq!(
            GroupField::Season.key(&DateTime::date(2001, 3, 1), Calendar::Standard),
            1
        );
        assert_eq!(
            GroupField::Season.key(&DateTime::date(2001, 8, 1), Calendar::Standard),
            2
        );
        assert_eq!(
            GroupField::Season.key(&DateTime::date(2001, 11, 30), Calendar::Standard),
            3
        );
        assert_eq!(GroupField::Season.label(2), "JJA");
        assert_eq!(GroupField::DayOfYear.key(&d, Calendar::Standard), 365);
        assert_eq!(
            GroupField::DayOfYear.key(&DateTime::date(2000, 12, 30), Calendar::Day360),
            360
        );
        assert_eq!(
            GroupField::parse("time.month").unwrap(),
            ("time".into(), GroupField::Month)
        );
        assert!(GroupField::parse("time.week").is_err());
        assert!(GroupField::parse("month").is_err());
        assert_eq!(
            GroupField::Month.cell_methods("time", "mean"),
            "time: mean within years time: mean over years"
        );
    }

    #[test]
    fn frequencies() {
        assert_eq!(Freq::parse("1D").unwrap(), Freq::Fixed(86_400_000_000));
        assert_eq!(Freq::parse("6h").unwrap(), Freq::Fixed(6 * 3_600_000_000));
        assert_eq!(
            Freq::parse("MS").unwrap(),
            Freq::Months { n: 1, anchor: None }
        );
        assert_eq!(
            Freq::parse("QS-DEC").unwrap(),
            Freq::Months {
                n: 3,
                anchor: Some(11)
            }
        );
        assert_eq!(
            Freq::parse("YS").unwrap(),
            Freq::Months {
                n: 12,
                anchor: Some(0)
            }
        );
        for bad in ["0D", "1W", "ME", "QS-XYZ", "6h-JAN", ""] {
            assert!(Freq::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn periods_and_their_starts() {
        let cal = Calendar::NoLeap;
        let u = TimeUnits::parse("hours since 2000-01-01", "noleap").unwrap();
        let at = |h: f64| u.instant_of(h).unwrap();
        let first = at(5.0);
        // Daily bins from midnight of the first day.
        let d = Freq::parse("1D").unwrap();
        assert_eq!(d.period_start(at(47.0), first, cal), at(24.0));
        // Seasons starting in December: Feb 2000 belongs to DJF of Dec 1999.
        let q = Freq::parse("QS-DEC").unwrap();
        let feb = DateTime::date(2000, 2, 10).instant(cal);
        let s = q.period_start(feb, first, cal);
        assert_eq!(DateTime::from_instant(s, cal), DateTime::date(1999, 12, 1));
        assert_eq!(
            DateTime::from_instant(q.next_start(s, cal), cal),
            DateTime::date(2000, 3, 1)
        );
        // Two-month bins from the first month.
        let m2 = Freq::parse("2MS").unwrap();
        let apr = DateTime::date(2000, 4, 30).instant(cal);
        assert_eq!(
            DateTime::from_instant(m2.period_start(apr, first, cal), cal),
            DateTime::date(2000, 3, 1)
        );
    }
}
