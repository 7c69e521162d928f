//! CF time decoding (`chunkwise_core::cftime`) against cftime itself, the
//! library xarray uses: random values, every CF calendar and unit, reference
//! dates in the forms files carry. Every decoded field must be equal.

mod common;
use chunkwise_core::cftime::{DateTime, TimeUnits};
use std::process::Command;

const ORACLE: &str = r#"
import sys, random, warnings
import cftime
warnings.simplefilter("ignore")
random.seed(20261203)
cals = ["standard", "gregorian", "proleptic_gregorian", "noleap", "365_day",
        "all_leap", "366_day", "360_day", "julian"]
refs = ["1970-01-01", "1850-01-01 00:00:00", "0001-01-01", "1-1-1 0:0:0",
        "2000-02-28T06:30:00Z", "1582-10-15", "1582-10-04 12:00", "1900-01-01 00:00:00.0",
        "1979-01-01 00:00:00 +03:00", "2100-12-31 23:59:59"]
units = ["days", "hours", "minutes", "seconds", "milliseconds", "microseconds"]
for cal in cals:
    for ref in refs:
        for unit in units:
            u = f"{unit} since {ref}"
            span = {"days": 3e5, "hours": 7e6, "minutes": 4e8, "seconds": 2.5e10,
                    "milliseconds": 2.5e13, "microseconds": 2.5e16}[unit]
            vals = [0.0, 1.0, -1.0, 0.5]
            vals += [float(random.randint(-int(span), int(span))) for _ in range(6)]
            vals += [random.uniform(-span, span) for _ in range(6)]
            vals += [random.uniform(-3, 3) for _ in range(3)]
            for v in vals:
                try:
                    d = cftime.num2date(v, u, cal)
                except Exception as e:
                    print(f"ERR|{cal}|{u}|{v!r}|{type(e).__name__}")
                    continue
                print(f"OK|{cal}|{u}|{v!r}|{d.year}|{d.month}|{d.day}|{d.hour}|{d.minute}|{d.second}|{d.microsecond}|{d.dayofyr}")
"#;

#[test]
fn decoding_equals_cftime_field_by_field() {
    let py =
        common::python_with("cftime").expect("cftime (the test venv made by modules/local.sh)");
    let out = Command::new(py).args(["-c", ORACLE]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (mut checked, mut mismatches) = (0, Vec::new());
    for line in text.lines() {
        let f: Vec<&str> = line.split('|').collect();
        let (cal, units, value) = (f[1], f[2], f[3].parse::<f64>().unwrap());
        let ours = TimeUnits::parse(units, cal).and_then(|u| {
            u.decode(value)
                .map(|d| (u, d))
                .ok_or_else(|| chunkwise_core::CwError::Input("range".into()))
        });
        match (f[0], ours) {
            ("OK", Ok((u, d))) => {
                let want: Vec<i64> = f[4..12].iter().map(|x| x.parse().unwrap()).collect();
                let got = [
                    d.year,
                    d.month.into(),
                    d.day.into(),
                    d.hour.into(),
                    d.minute.into(),
                    d.second.into(),
                    d.microsecond.into(),
                    d.day_of_year(u.calendar).into(),
                ];
                if got[..] != want[..] {
                    mismatches.push(format!(
                        "{cal} '{units}' {value:?}: cftime {want:?}, ours {got:?}"
                    ));
                }
                checked += 1;
            }
            ("OK", Err(e)) => mismatches.push(format!(
                "{cal} '{units}' {value:?}: cftime decodes, we fail: {e}"
            )),
            // cftime refuses (e.g. a date before its range): ours may decode
            // or refuse, but must never panic — reaching here is enough.
            _ => {}
        }
    }
    assert!(checked > 5000, "only {checked} comparisons");
    assert!(
        mismatches.is_empty(),
        "{} of {checked} differ:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(30)].join("\n")
    );
}

#[test]
fn encoding_a_date_gives_the_value_cftime_gives() {
    let py = common::python_with("cftime").expect("cftime");
    let script = r#"
import cftime
for cal in ["standard", "proleptic_gregorian", "noleap", "all_leap", "360_day", "julian"]:
    for ymd in [(1991, 1, 1), (2020, 12, 30), (1850, 2, 28), (1600, 2, 28)]:
        d = cftime.datetime(*ymd, calendar=cal)
        print(cal, *ymd, repr(float(cftime.date2num(d, "hours since 1850-01-01", cal))))
"#;
    let out = Command::new(py).args(["-c", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 24);
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let u = TimeUnits::parse("hours since 1850-01-01", f[0]).unwrap();
        let d = DateTime::date(
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
            f[3].parse().unwrap(),
        );
        assert_eq!(u.encode(&d), f[4].parse::<f64>().unwrap(), "{line}");
    }
}

/// Group and period keys against xarray's `groupby("time.<field>")` and
/// `resample(time=…)` on 3-hourly data with a gap, in four calendars: for
/// every non-empty group, the label and the sum of the step numbers in it.
#[test]
fn groups_and_periods_equal_xarrays() {
    use chunkwise_core::time_groups::{Freq, GroupField};
    use std::collections::BTreeMap;
    let py = common::python_with("xarray, cftime").expect("xarray and cftime (the test venv)");
    let script = r#"
import warnings, numpy as np, xarray as xr, cftime
warnings.simplefilter("ignore")
units = "hours since 1999-11-30 00:00"
for cal in ["standard", "noleap", "360_day", "julian"]:
    t = np.arange(29.0, 29.0 + 3 * 4400, 3.0)
    t = np.concatenate([t[:2000], t[2400:]])       # a gap of 50 days
    ds = xr.Dataset({"x": ("time", np.arange(t.size, dtype="f8"))},
                    coords={"time": ("time", t, {"units": units, "calendar": cal})})
    ds = xr.decode_cf(ds, use_cftime=True)
    print("T", cal, " ".join(repr(float(v)) for v in t))
    for f in ["1D", "6h", "2D", "MS", "2MS", "QS-DEC", "QS", "YS"]:
        r = ds.x.resample(time=f)
        s, c = r.sum(), r.count()
        for lab, sv, cv in zip(s.time.values, s.values, c.values):
            if cv > 0:
                print("R", cal, f, repr(float(cftime.date2num(lab, units, cal))), repr(float(sv)))
    for g in ["month", "season", "year", "dayofyear", "hour"]:
        s = ds.x.groupby("time." + g).sum()
        for lab, sv in zip(s[g].values, s.values):
            print("G", cal, g, lab, repr(float(sv)))
"#;
    let out = Command::new(py).args(["-c", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut times: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut checked = 0;
    let mut expected: BTreeMap<(String, String), BTreeMap<String, f64>> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f[0] {
            "T" => {
                times.insert(
                    f[1].into(),
                    f[2..].iter().map(|v| v.parse().unwrap()).collect(),
                );
            }
            "R" | "G" => {
                expected
                    .entry((f[1].into(), f[2].into()))
                    .or_default()
                    .insert(f[3].into(), f[4].parse().unwrap());
            }
            _ => unreachable!(),
        }
    }
    for ((cal, what), want) in &expected {
        let u = TimeUnits::parse("hours since 1999-11-30 00:00", cal).unwrap();
        let t = &times[cal];
        let first = u.instant_of(t[0]).unwrap();
        let mut got: BTreeMap<String, f64> = BTreeMap::new();
        for (i, &v) in t.iter().enumerate() {
            let us = u.instant_of(v).unwrap();
            let label = match GroupField::parse(&format!("time.{what}")) {
                Ok((_, g)) => g.label(g.key(&DateTime::from_instant(us, u.calendar), u.calendar)),
                Err(_) => {
                    let start = Freq::parse(what)
                        .unwrap()
                        .period_start(us, first, u.calendar);
                    format!("{:?}", u.encode_instant(start))
                }
            };
            *got.entry(label).or_default() += i as f64;
        }
        assert_eq!(&got, want, "{cal} {what}");
        checked += want.len();
    }
    assert_eq!(expected.len(), 4 * 13);
    assert!(checked > 1500, "{checked}");
}
