//! CF time: `units = "<unit> since <date>"` with every CF calendar, decoded
//! exactly as cftime (and so xarray) decodes it.
//!
//! # Representation
//! An instant is an `i64` count of microseconds since 0001-01-01 00:00 *of
//! its calendar's own day count* ([`Calendar::day_number`]): the Julian day
//! number for the Gregorian family, a plain count for the model calendars.
//! Microseconds are cftime's resolution: a value `v` in units `u` becomes
//! `round(v · µs(u))`, rounded half away from zero, added to the reference
//! instant — exact integer arithmetic from there on, so a date never drifts
//! with the size of `v`.
//!
//! # Calendars
//! * `standard` / `gregorian`: Julian before 1582-10-15, Gregorian from it
//!   (1582-10-05 … 14 do not exist); no year zero (year −1 precedes 1), as
//!   cftime's default for real-world calendars.
//! * `proleptic_gregorian`: Gregorian rules for every year; year zero exists
//!   (ISO 8601).
//! * `julian`: every fourth year a leap year; no year zero.
//! * `noleap` / `365_day`, `all_leap` / `366_day`, `360_day` (twelve months
//!   of 30 days): year zero exists.

use crate::CwError;

/// A CF calendar (the `calendar` attribute; `standard` when absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Calendar {
    /// Mixed Julian/Gregorian (`standard`, `gregorian`).
    Standard,
    /// Gregorian rules extended to all years.
    ProlepticGregorian,
    /// 365 days every year (`noleap`, `365_day`).
    NoLeap,
    /// 366 days every year (`all_leap`, `366_day`).
    AllLeap,
    /// Twelve 30-day months.
    Day360,
    /// Julian rules for all years.
    Julian,
}

/// Days before each month in a common and in a leap year.
const CUM_DAYS: [[i64; 13]; 2] = [
    [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365],
    [0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366],
];

/// Julian day number of 1582-10-15, the first Gregorian day of `standard`.
const GREGORIAN_START_JDN: i64 = 2_299_161;

const US_PER_DAY: i64 = 86_400_000_000;

impl Calendar {
    /// The calendar named by a CF `calendar` attribute (case-insensitive;
    /// an empty name is `standard`).
    pub fn parse(name: &str) -> Result<Calendar, CwError> {
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "" | "standard" | "gregorian" => Calendar::Standard,
            "proleptic_gregorian" => Calendar::ProlepticGregorian,
            "noleap" | "365_day" => Calendar::NoLeap,
            "all_leap" | "366_day" => Calendar::AllLeap,
            "360_day" => Calendar::Day360,
            "julian" => Calendar::Julian,
            other => {
                return Err(CwError::Input(format!(
                    "unknown calendar '{other}' (CF calendars: standard, gregorian, proleptic_gregorian, \
                     noleap, 365_day, all_leap, 366_day, 360_day, julian)"
                )));
            }
        })
    }

    /// The CF name written to outputs.
    pub fn name(self) -> &'static str {
        match self {
            Calendar::Standard => "standard",
            Calendar::ProlepticGregorian => "proleptic_gregorian",
            Calendar::NoLeap => "noleap",
            Calendar::AllLeap => "all_leap",
            Calendar::Day360 => "360_day",
            Calendar::Julian => "julian",
        }
    }

    /// Whether year zero exists (cftime's default `has_year_zero`).
    pub fn has_year_zero(self) -> bool {
        !matches!(self, Calendar::Standard | Calendar::Julian)
    }

    /// Whether `year` (astronomical numbering) is a leap year.
    fn is_leap(self, year: i64, jdn_hint_gregorian: bool) -> bool {
        let julian = year.rem_euclid(4) == 0;
        let gregorian = julian && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0);
        match self {
            Calendar::NoLeap | Calendar::Day360 => false,
            Calendar::AllLeap => true,
            Calendar::Julian => julian,
            Calendar::ProlepticGregorian => gregorian,
            Calendar::Standard => {
                if jdn_hint_gregorian {
                    gregorian
                } else {
                    julian
                }
            }
        }
    }

    /// Number of days of `month` in `year` (astronomical numbering).
    pub fn days_in_month(self, year: i64, month: u32) -> u32 {
        if self == Calendar::Day360 {
            return 30;
        }
        let leap = self.is_leap(year, year > 1582);
        let m = month as usize;
        (CUM_DAYS[usize::from(leap)][m] - CUM_DAYS[usize::from(leap)][m - 1]) as u32
    }

    /// Days in `year` (astronomical numbering).
    pub fn days_in_year(self, year: i64) -> u32 {
        match self {
            Calendar::Day360 => 360,
            _ if self.is_leap(year, year > 1582) => 366,
            _ => 365,
        }
    }

    /// The day count of a valid date (astronomical year numbering).
    fn day_number(self, y: i64, m: u32, d: u32) -> i64 {
        let (m, d) = (i64::from(m), i64::from(d));
        match self {
            Calendar::NoLeap => 365 * y + CUM_DAYS[0][(m - 1) as usize] + d - 1,
            Calendar::AllLeap => 366 * y + CUM_DAYS[1][(m - 1) as usize] + d - 1,
            Calendar::Day360 => 360 * y + 30 * (m - 1) + d - 1,
            Calendar::ProlepticGregorian => gregorian_jdn(y, m, d),
            Calendar::Julian => julian_jdn(y, m, d),
            Calendar::Standard => {
                let g = gregorian_jdn(y, m, d);
                if g >= GREGORIAN_START_JDN {
                    g
                } else {
                    julian_jdn(y, m, d)
                }
            }
        }
    }

    /// The date `(year, month, day)` (astronomical year) of a day count.
    fn date_of(self, n: i64) -> (i64, u32, u32) {
        let from_cum = |n: i64, len: i64, cum: &[i64; 13]| {
            let y = n.div_euclid(len);
            let doy = n.rem_euclid(len);
            let m = (1..=12).rev().find(|&m| cum[m - 1] <= doy).unwrap_or(1);
            (y, m as u32, (doy - cum[m - 1] + 1) as u32)
        };
        match self {
            Calendar::NoLeap => from_cum(n, 365, &CUM_DAYS[0]),
            Calendar::AllLeap => from_cum(n, 366, &CUM_DAYS[1]),
            Calendar::Day360 => {
                let y = n.div_euclid(360);
                let doy = n.rem_euclid(360);
                (y, (doy / 30 + 1) as u32, (doy % 30 + 1) as u32)
            }
            Calendar::ProlepticGregorian => gregorian_date(n),
            Calendar::Julian => julian_date(n),
            Calendar::Standard => {
                if n >= GREGORIAN_START_JDN {
                    gregorian_date(n)
                } else {
                    julian_date(n)
                }
            }
        }
    }
}

/// Julian day number of a proleptic Gregorian date (astronomical year).
fn gregorian_jdn(y: i64, m: i64, d: i64) -> i64 {
    let a = (14 - m) / 12;
    let yy = y + 4800 - a;
    let mm = m + 12 * a - 3;
    d + (153 * mm + 2) / 5 + 365 * yy + yy.div_euclid(4) - yy.div_euclid(100) + yy.div_euclid(400)
        - 32045
}

/// Julian day number of a Julian-calendar date (astronomical year).
fn julian_jdn(y: i64, m: i64, d: i64) -> i64 {
    let a = (14 - m) / 12;
    let yy = y + 4800 - a;
    let mm = m + 12 * a - 3;
    d + (153 * mm + 2) / 5 + 365 * yy + yy.div_euclid(4) - 32083
}

/// Proleptic Gregorian date of a Julian day number (Richards' algorithm,
/// with floor divisions so it holds for any day number).
fn gregorian_date(j: i64) -> (i64, u32, u32) {
    let a = j + 32044;
    let b = (4 * a + 3).div_euclid(146_097);
    let c = a - (146_097 * b).div_euclid(4);
    let d = (4 * c + 3).div_euclid(1461);
    let e = c - (1461 * d).div_euclid(4);
    let m = (5 * e + 2) / 153;
    let day = e - (153 * m + 2) / 5 + 1;
    let month = m + 3 - 12 * (m / 10);
    let year = 100 * b + d - 4800 + m / 10;
    (year, month as u32, day as u32)
}

/// Julian-calendar date of a Julian day number.
fn julian_date(j: i64) -> (i64, u32, u32) {
    let c = j + 32082;
    let d = (4 * c + 3).div_euclid(1461);
    let e = c - (1461 * d).div_euclid(4);
    let m = (5 * e + 2) / 153;
    let day = e - (153 * m + 2) / 5 + 1;
    let month = m + 3 - 12 * (m / 10);
    let year = d - 4800 + m / 10;
    (year, month as u32, day as u32)
}

/// A date and time of day in some calendar, as written (no year zero in
/// `standard` and `julian`: year −1 precedes year 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    /// Year as written.
    pub year: i64,
    /// 1–12.
    pub month: u32,
    /// 1–31 (1–30 in `360_day`).
    pub day: u32,
    /// 0–23.
    pub hour: u32,
    /// 0–59.
    pub minute: u32,
    /// 0–59.
    pub second: u32,
    /// 0–999 999.
    pub microsecond: u32,
}

impl DateTime {
    /// Midnight of a date.
    pub fn date(year: i64, month: u32, day: u32) -> DateTime {
        DateTime {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
            microsecond: 0,
        }
    }

    /// ISO 8601 text (`YYYY-MM-DD HH:MM:SS`, with `.ffffff` when there
    /// are microseconds), as cftime prints a date.
    pub fn iso(&self) -> String {
        let frac = if self.microsecond > 0 {
            format!(".{:06}", self.microsecond)
        } else {
            String::new()
        };
        let year = if self.year < 0 {
            format!("-{:04}", -self.year)
        } else {
            format!("{:04}", self.year)
        };
        format!(
            "{year}-{:02}-{:02} {:02}:{:02}:{:02}{frac}",
            self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// Parses `YYYY-MM-DD[( |T)hh[:mm[:ss[.f]]]][ ][Z|UTC|±hh[:mm]]` (a
    /// leading `-` for years before the era). The time-zone offset is
    /// applied (the result is UTC); the date must exist in `cal`.
    pub fn parse(text: &str, cal: Calendar) -> Result<DateTime, CwError> {
        let bad = |why: &str| CwError::Parse(format!("date '{text}': {why}"));
        let s = text.trim();
        let (neg, rest) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let (date, time) = match rest.find(['T', 't', ' ']) {
            Some(i) => (&rest[..i], rest[i + 1..].trim()),
            None => (rest, ""),
        };
        let parts: Vec<&str> = date.split('-').collect();
        if parts.len() != 3
            || parts
                .iter()
                .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(bad("expected YYYY-MM-DD"));
        }
        let num = |p: &str| p.parse::<i64>().map_err(|_| bad("number out of range"));
        let mut year = num(parts[0])?;
        if neg {
            year = -year;
        }
        let (month, day) = (num(parts[1])?, num(parts[2])?);
        // The time of day, then an optional zone.
        let (clock, zone) = split_zone(time);
        let mut hms = [0i64; 3];
        let mut micro = 0i64;
        if !clock.is_empty() {
            let fields: Vec<&str> = clock.split(':').collect();
            if fields.len() > 3 {
                return Err(bad("expected hh:mm:ss"));
            }
            for (k, f) in fields.iter().enumerate() {
                let (whole, frac) = match f.split_once('.') {
                    Some((w, fr)) if k == fields.len() - 1 => (w, Some(fr)),
                    Some(_) => return Err(bad("a fraction only on the last time field")),
                    None => (*f, None),
                };
                if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("expected hh:mm:ss"));
                }
                hms[k] = num(whole)?;
                if let Some(fr) = frac {
                    if fr.is_empty() || fr.len() > 6 || !fr.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(bad("fraction of at most 6 digits"));
                    }
                    let scale = [3_600_000_000i64, 60_000_000, 1_000_000][k];
                    micro = num(fr)? * scale / 10i64.pow(fr.len() as u32);
                }
            }
        }
        let offset_minutes = parse_zone(zone).ok_or_else(|| bad("unknown time zone"))?;
        if !(1..=12).contains(&month) {
            return Err(bad("month outside 1-12"));
        }
        if year == 0 && !cal.has_year_zero() {
            return Err(bad(&format!(
                "year 0 does not exist in the {} calendar",
                cal.name()
            )));
        }
        let astro = to_astronomical(year, cal);
        if day < 1 || day > i64::from(cal.days_in_month(astro, month as u32)) {
            return Err(bad(&format!("no such day in the {} calendar", cal.name())));
        }
        if cal == Calendar::Standard && astro == 1582 && month == 10 && (5..15).contains(&day) {
            return Err(bad("1582-10-05..14 do not exist in the standard calendar"));
        }
        if hms[0] > 24 || hms[1] > 59 || hms[2] > 60 {
            return Err(bad("time of day out of range"));
        }
        let d = DateTime::date(year, month as u32, day as u32);
        let us = d.instant(cal)
            + hms[0] * 3_600_000_000
            + hms[1] * 60_000_000
            + hms[2] * 1_000_000
            + micro
            - offset_minutes * 60_000_000;
        Ok(DateTime::from_instant(us, cal))
    }

    /// Microseconds since the calendar's day 0 (see the module doc).
    pub fn instant(&self, cal: Calendar) -> i64 {
        let day = cal.day_number(to_astronomical(self.year, cal), self.month, self.day);
        day * US_PER_DAY
            + i64::from(self.hour) * 3_600_000_000
            + i64::from(self.minute) * 60_000_000
            + i64::from(self.second) * 1_000_000
            + i64::from(self.microsecond)
    }

    /// The date and time of an instant.
    pub fn from_instant(us: i64, cal: Calendar) -> DateTime {
        let day = us.div_euclid(US_PER_DAY);
        let rem = us.rem_euclid(US_PER_DAY);
        let (y, month, d) = cal.date_of(day);
        DateTime {
            year: from_astronomical(y, cal),
            month,
            day: d,
            hour: (rem / 3_600_000_000) as u32,
            minute: (rem / 60_000_000 % 60) as u32,
            second: (rem / 1_000_000 % 60) as u32,
            microsecond: (rem % 1_000_000) as u32,
        }
    }

    /// Day of the year, 1-based (as cftime's `dayofyr` and xarray's
    /// `time.dayofyear`: by month lengths, so the `standard` calendar's
    /// 1582-10-15 is day 288 despite the ten days dropped before it).
    pub fn day_of_year(&self, cal: Calendar) -> u32 {
        if cal == Calendar::Day360 {
            return 30 * (self.month - 1) + self.day;
        }
        let astro = to_astronomical(self.year, cal);
        let leap = cal.days_in_year(astro) == 366;
        CUM_DAYS[usize::from(leap)][self.month as usize - 1] as u32 + self.day
    }
}

/// Astronomical year (year zero exists) of a year as written.
fn to_astronomical(year: i64, cal: Calendar) -> i64 {
    if !cal.has_year_zero() && year < 0 {
        year + 1
    } else {
        year
    }
}

/// Year as written of an astronomical year.
fn from_astronomical(year: i64, cal: Calendar) -> i64 {
    if !cal.has_year_zero() && year <= 0 {
        year - 1
    } else {
        year
    }
}

/// Splits `hh:mm:ss[zone]` into the clock and the zone text.
fn split_zone(time: &str) -> (&str, &str) {
    let t = time.trim();
    if let Some(i) = t.find(|c: char| {
        c == 'Z' || c == 'z' || c == '+' || c == '-' || c.is_ascii_alphabetic() || c == ' '
    }) {
        (t[..i].trim(), t[i..].trim())
    } else {
        (t, "")
    }
}

/// Offset east of UTC in minutes of a zone text (`""`, `Z`, `UTC`, `GMT`,
/// `±hh`, `±hh:mm`, `±hhmm`).
fn parse_zone(zone: &str) -> Option<i64> {
    let z = zone.trim();
    if z.is_empty()
        || z.eq_ignore_ascii_case("z")
        || z.eq_ignore_ascii_case("utc")
        || z.eq_ignore_ascii_case("gmt")
    {
        return Some(0);
    }
    let (sign, rest) = match z.as_bytes()[0] {
        b'+' => (1, &z[1..]),
        b'-' => (-1, &z[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = if digits.len() <= 2 {
        (digits.parse::<i64>().ok()?, 0)
    } else {
        let split = digits.len() - 2;
        (
            digits[..split].parse::<i64>().ok()?,
            digits[split..].parse::<i64>().ok()?,
        )
    };
    (h <= 14 && m < 60).then_some(sign * (h * 60 + m))
}

/// A decoded CF time encoding: the unit, the reference instant and the
/// calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeUnits {
    /// Microseconds per unit.
    pub unit_us: i64,
    /// The reference instant (`since …`), see [`DateTime::instant`].
    pub epoch_us: i64,
    /// The calendar.
    pub calendar: Calendar,
}

impl TimeUnits {
    /// Parses a CF `units` (`"days since 1970-01-01"`) with a `calendar`
    /// attribute (empty for `standard`). `months` and `years` are accepted
    /// only in the `360_day` calendar, where they have a fixed length (as
    /// cftime).
    pub fn parse(units: &str, calendar: &str) -> Result<TimeUnits, CwError> {
        let cal = Calendar::parse(calendar)?;
        let bad = |why: &str| CwError::Input(format!("time units '{units}': {why}"));
        let lower = units.trim();
        let (unit, reference) = match lower.split_once(" since ") {
            Some((u, r)) => (u.trim().to_ascii_lowercase(), r.trim()),
            None => return Err(bad("expected '<unit> since <date>'")),
        };
        let unit_us: i64 = match unit.as_str() {
            "microseconds" | "microsecond" | "us" | "usec" | "usecs" => 1,
            "milliseconds" | "millisecond" | "ms" | "msec" | "msecs" => 1_000,
            "seconds" | "second" | "s" | "sec" | "secs" => 1_000_000,
            "minutes" | "minute" | "min" | "mins" => 60_000_000,
            "hours" | "hour" | "h" | "hr" | "hrs" => 3_600_000_000,
            "days" | "day" | "d" => US_PER_DAY,
            "months" | "month" if cal == Calendar::Day360 => 30 * US_PER_DAY,
            "years" | "year" if cal == Calendar::Day360 => 360 * US_PER_DAY,
            "months" | "month" | "years" | "year" => {
                return Err(bad(
                    "months and years have no fixed length except in the 360_day calendar",
                ));
            }
            other => return Err(bad(&format!("unknown time unit '{other}'"))),
        };
        let epoch = DateTime::parse(reference, cal).map_err(|e| bad(&e.to_string()))?;
        Ok(TimeUnits {
            unit_us,
            epoch_us: epoch.instant(cal),
            calendar: cal,
        })
    }

    /// The instant of a coordinate value: the exact product `value · unit`
    /// (of the binary value, as cftime computes it) rounded to the nearest
    /// microsecond, ties to even, after the reference. `None` for NaN,
    /// infinite or out-of-range values.
    pub fn instant_of(&self, value: f64) -> Option<i64> {
        let us = exact_product_rounded(value, self.unit_us)?;
        // Keep well inside i64 so the addition cannot overflow.
        (us.abs() < 4_000_000_000_000_000_000).then(|| self.epoch_us + us as i64)
    }

    /// The date of a coordinate value (`None` as [`TimeUnits::instant_of`]).
    pub fn decode(&self, value: f64) -> Option<DateTime> {
        self.instant_of(value)
            .map(|us| DateTime::from_instant(us, self.calendar))
    }

    /// The coordinate value of an instant, in these units.
    pub fn encode_instant(&self, us: i64) -> f64 {
        let delta = us - self.epoch_us;
        // Whole units exactly, the remainder as a fraction.
        (delta.div_euclid(self.unit_us)) as f64
            + (delta.rem_euclid(self.unit_us)) as f64 / self.unit_us as f64
    }

    /// The coordinate value of a date, in these units.
    pub fn encode(&self, date: &DateTime) -> f64 {
        self.encode_instant(date.instant(self.calendar))
    }
}

/// The first and last dates of a time coordinate, as `inspect` shows them:
/// its `units` and `calendar` as written, the calendar's CF name and the two
/// dates (ISO text, as cftime prints them), or why they cannot be decoded
/// (an unknown calendar, unparsable units, a value that is not a date) — a
/// message in the description, never a failure of it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TimeSpan {
    /// The `units` attribute.
    pub units: String,
    /// The calendar's CF name (`standard` when there is no `calendar`
    /// attribute); the attribute as written when it is not understood.
    pub calendar: String,
    /// Date of the first value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first: Option<String>,
    /// Date of the last value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
    /// Why the dates cannot be shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl TimeSpan {
    /// Whether `units` is a CF time encoding (`<unit> since <date>`).
    pub fn is_time_units(units: &str) -> bool {
        units.to_ascii_lowercase().contains(" since ")
    }

    /// The span of a coordinate whose first and last values are `ends`
    /// (`None` for an empty one), or `None` when `units` is not a CF time
    /// encoding (see [`TimeSpan::is_time_units`]).
    pub fn describe(
        units: &str,
        calendar: Option<&str>,
        ends: Option<(f64, f64)>,
    ) -> Option<TimeSpan> {
        if !TimeSpan::is_time_units(units) {
            return None;
        }
        let written = calendar.unwrap_or("standard");
        let mut span = TimeSpan {
            units: units.to_string(),
            calendar: written.to_string(),
            first: None,
            last: None,
            error: None,
        };
        let tu = match TimeUnits::parse(units, calendar.unwrap_or("")) {
            Ok(tu) => tu,
            Err(e) => {
                span.error = Some(e.to_string());
                return Some(span);
            }
        };
        span.calendar = tu.calendar.name().to_string();
        if let Some((a, b)) = ends {
            match (tu.decode(a), tu.decode(b)) {
                (Some(x), Some(y)) => {
                    span.first = Some(x.iso());
                    span.last = Some(y.iso());
                }
                _ => {
                    let v = if tu.decode(a).is_none() { a } else { b };
                    span.error = Some(format!(
                        "value {v} is not a date in '{units}' ({} calendar)",
                        tu.calendar.name()
                    ));
                }
            }
        }
        Some(span)
    }

    /// One line of text: `2000-01-01 00:00:00 .. 2000-12-30 00:00:00
    /// (360_day)`, or the reason the dates cannot be shown.
    pub fn text(&self) -> String {
        match (&self.first, &self.last, &self.error) {
            (_, _, Some(e)) => format!("dates not decoded: {e}"),
            (Some(a), Some(b), None) => format!("{a} .. {b} ({})", self.calendar),
            _ => format!("no values ({})", self.calendar),
        }
    }
}

/// `value · factor` computed exactly on the binary value (`m · 2^e`) and
/// rounded to an integer, ties to even; `None` when not finite or too large.
fn exact_product_rounded(value: f64, factor: i64) -> Option<i128> {
    if !value.is_finite() {
        return None;
    }
    if value == 0.0 {
        return Some(0);
    }
    let bits = value.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = (bits & ((1u64 << 52) - 1)) as i128;
    // value = ±mant · 2^shift
    let (mant, shift) = if exp == 0 {
        (frac, -1074)
    } else {
        (frac | (1i128 << 52), exp - 1075)
    };
    let prod = mant * i128::from(factor); // < 2^53 · 2^63 = 2^116
    let sign: i128 = if value < 0.0 { -1 } else { 1 };
    if shift >= 0 {
        if shift > 10 {
            return None;
        }
        return Some(sign * (prod << shift));
    }
    let s = -shift;
    if s >= 120 {
        return Some(0);
    }
    let q = prod >> s;
    let r = prod - (q << s);
    let half = 1i128 << (s - 1);
    let rounded = if r > half || (r == half && q & 1 == 1) {
        q + 1
    } else {
        q
    };
    Some(sign * rounded)
}

#[cfg(test)]
mod tests {

    #[test]
    fn time_span_decodes_the_ends_or_says_why_not() {
        let s = TimeSpan::describe("days since 2000-01-01", Some("360_day"), Some((0.0, 359.5)))
            .unwrap();
        assert_eq!(s.calendar, "360_day");
        assert_eq!(s.first.as_deref(), Some("2000-01-01 00:00:00"));
        assert_eq!(s.last.as_deref(), Some("2000-12-30 12:00:00"));
        assert_eq!(
            s.text(),
            "2000-01-01 00:00:00 .. 2000-12-30 12:00:00 (360_day)"
        );
        let s = TimeSpan::describe("hours since 1970-01-01", None, Some((0.0, 24.0))).unwrap();
        assert_eq!(s.calendar, "standard");
        assert_eq!(s.last.as_deref(), Some("1970-01-02 00:00:00"));
        assert!(TimeSpan::describe("K", None, Some((0.0, 1.0))).is_none());
        let bad =
            TimeSpan::describe("days since 2000-01-01", Some("martian"), Some((0.0, 1.0))).unwrap();
        assert!(
            bad.error
                .as_deref()
                .unwrap()
                .contains("unknown calendar 'martian'")
        );
        assert_eq!(bad.calendar, "martian");
        assert!(bad.first.is_none());
        let bad = TimeSpan::describe("days since banana", None, Some((0.0, 1.0))).unwrap();
        assert!(
            bad.text()
                .starts_with("dates not decoded: time units 'days since banana'")
        );
        let nan = TimeSpan::describe("days since 2000-01-01", None, Some((0.0, f64::NAN))).unwrap();
        assert!(nan.error.as_deref().unwrap().contains("NaN is not a date"));
    }
    use super::*;

    fn units(u: &str, c: &str) -> TimeUnits {
        TimeUnits::parse(u, c).unwrap()
    }

    #[test]
    fn unix_epoch_days_in_every_calendar() {
        // 365 days after 1970-01-01 is 1971-01-01 (1970 is common) in all
        // but all_leap and 360_day.
        for (cal, want) in [
            ("standard", (1971, 1, 1)),
            ("proleptic_gregorian", (1971, 1, 1)),
            ("noleap", (1971, 1, 1)),
            ("julian", (1971, 1, 1)),
            ("all_leap", (1970, 12, 31)),
            ("360_day", (1971, 1, 6)),
        ] {
            let d = units("days since 1970-01-01", cal).decode(365.0).unwrap();
            assert_eq!((d.year, d.month, d.day), want, "{cal}");
        }
    }

    #[test]
    fn gregorian_reform_and_leap_rules() {
        let u = units("days since 1582-10-04", "standard");
        assert_eq!(u.decode(1.0).unwrap(), DateTime::date(1582, 10, 15));
        let p = units("days since 1582-10-04", "proleptic_gregorian");
        assert_eq!(p.decode(1.0).unwrap(), DateTime::date(1582, 10, 5));
        // 1900 is a leap year in the Julian calendar only.
        let j = units("days since 1900-02-28", "julian");
        assert_eq!(j.decode(1.0).unwrap(), DateTime::date(1900, 2, 29));
        let g = units("days since 1900-02-28", "standard");
        assert_eq!(g.decode(1.0).unwrap(), DateTime::date(1900, 3, 1));
        let n = units("days since 2000-02-28", "noleap");
        assert_eq!(n.decode(1.0).unwrap(), DateTime::date(2000, 3, 1));
        let d = units("days since 2000-02-29", "360_day");
        assert_eq!(d.decode(1.0).unwrap(), DateTime::date(2000, 2, 30));
        assert!(TimeUnits::parse("days since 2001-02-29", "noleap").is_err());
        assert!(TimeUnits::parse("days since 1582-10-10", "standard").is_err());
    }

    #[test]
    fn day_counts_round_trip_every_calendar() {
        for cal in [
            Calendar::Standard,
            Calendar::ProlepticGregorian,
            Calendar::NoLeap,
            Calendar::AllLeap,
            Calendar::Day360,
            Calendar::Julian,
        ] {
            // Consecutive day numbers give consecutive valid dates.
            let start = DateTime::date(-100, 1, 1).instant(cal) / US_PER_DAY;
            let mut prev: Option<DateTime> = None;
            for n in start..start + 800_000 {
                let d = DateTime::from_instant(n * US_PER_DAY, cal);
                assert_eq!(d.instant(cal) / US_PER_DAY, n, "{cal:?} {d:?}");
                if let Some(p) = prev {
                    assert!(
                        d > p || (p.year == -1 && d.year == 1) || d.year > p.year,
                        "{cal:?} {p:?} {d:?}"
                    );
                }
                prev = Some(d);
            }
        }
    }

    #[test]
    fn units_and_zones() {
        let u = units("hours since 1900-01-01 00:00:00.0", "");
        assert_eq!(
            u.decode(24.0 * 365.0 + 6.5).unwrap().iso(),
            "1901-01-01 06:30:00"
        );
        let z = units(
            "seconds since 2000-01-01T12:00:00+02:00",
            "proleptic_gregorian",
        );
        assert_eq!(z.decode(0.0).unwrap().iso(), "2000-01-01 10:00:00");
        let m = units("months since 2000-01-01", "360_day");
        assert_eq!(m.decode(13.0).unwrap(), DateTime::date(2001, 2, 1));
        assert!(TimeUnits::parse("months since 2000-01-01", "standard").is_err());
        assert!(TimeUnits::parse("fortnights since 2000-01-01", "standard").is_err());
        assert!(TimeUnits::parse("days after 2000-01-01", "standard").is_err());
        assert!(TimeUnits::parse("days since 2000-01-01", "martian").is_err());
        // Microsecond rounding of the exact binary value, ties to even:
        // 2.5e-6 is slightly above 2.5 µs in binary, 3.5e-6 slightly below.
        let s = units("seconds since 2000-01-01", "standard");
        assert_eq!(s.decode(2.5e-6).unwrap().microsecond, 3);
        assert_eq!(s.decode(3.5e-6).unwrap().microsecond, 3);
        let us = units("microseconds since 2000-01-01", "standard");
        assert_eq!(us.decode(0.5).unwrap().microsecond, 0);
        assert_eq!(us.decode(2.5).unwrap().microsecond, 2);
        assert_eq!(us.decode(-1.5).unwrap().microsecond, 999_998);
    }

    #[test]
    fn encode_inverts_decode() {
        let u = units("hours since 1850-01-01", "noleap");
        for v in [0.0, 1.0, 8759.0, 1_500_000.5] {
            let d = u.decode(v).unwrap();
            assert_eq!(u.encode(&d), v);
        }
        let d = u.decode(24.0 * 59.0).unwrap();
        assert_eq!(
            (d.month, d.day, d.day_of_year(Calendar::NoLeap)),
            (3, 1, 60)
        );
    }
}
