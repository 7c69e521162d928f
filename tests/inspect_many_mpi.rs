//! `inspect` and `convert` on calendar time and many files: the first and
//! last dates of every CF time coordinate (several calendars, against
//! cftime), a dataset of several files (or a quoted glob) described as one,
//! and converted into one file equal to `ncrcat`'s and xarray's
//! concatenation, for P = 1..3.

mod common;
use common::*;
use serde_json::Value as J;
use std::path::Path;
use std::process::Command;

/// Writes one file per case with netCDF4-python (any calendar attribute,
/// also one cftime does not know) and prints, per file, cftime's dates of
/// the first and last time value (`-` when cftime cannot decode them).
const TIME_WRITER: &str = r#"
import sys, numpy as np, netCDF4, cftime
d = sys.argv[1]
cases = [
    ("standard", "days since 1500-02-27 06:00:00", "standard", [0.25, 40000.5, 200000.75]),
    ("gregorian_h", "hours since 1970-01-01T00:00:00Z", "gregorian", [-1.5, 470000.25]),
    ("noleap", "days since 1990-01-01", "noleap", [0.5, 365 * 30 + 58.5]),
    ("d360", "hours since 2000-01-01 12:00", "360_day", [0, 360 * 24 * 7 + 5.5]),
    ("julian", "days since 1000-01-01", "julian", [3.0, 500000.0]),
    ("proleptic", "seconds since 0001-01-01", "proleptic_gregorian", [1.0, 6.3e10]),
    ("nocal", "minutes since 2001-03-01", None, [0.0, 525600.0 * 3]),
    ("martian", "days since 2000-01-01", "martian", [0.0, 10.0]),
    ("badunits", "days since the flood", "standard", [0.0, 10.0]),
]
for name, units, cal, t in cases:
    with netCDF4.Dataset(f"{d}/{name}.nc", "w") as f:
        f.createDimension("time", None)
        f.createDimension("x", 3)
        v = f.createVariable("time", "f8", ("time",))
        v.units = units
        if cal is not None:
            v.calendar = cal
        v[:] = np.asarray(t)
        tas = f.createVariable("tas", "f4", ("time", "x"))
        tas.units = "K"
        tas[:] = np.ones((len(t), 3), "f4")
    try:
        a, b = cftime.num2date([t[0], t[-1]], units, cal or "standard")
        print(name, cal or "standard", "|", str(a), "|", str(b))
    except Exception:
        print(name, cal or "standard", "| - | -")
"#;

/// A NetCDF-4 file from CDL by ncgen: a noleap time coordinate.
const CDL: &str = r#"netcdf gen {
dimensions:
    time = UNLIMITED ; lat = 2 ;
variables:
    double time(time) ;
        time:units = "days since 1850-01-01 00:00:00" ;
        time:calendar = "noleap" ;
    float lat(lat) ;
        lat:units = "degrees_north" ;
    float pr(time, lat) ;
data:
    time = 31.5, 59, 36499.75 ;
    lat = -10, 10 ;
    pr = 1, 2, 3, 4, 5, 6 ;
}
"#;

fn inspect_json(file: &Path) -> J {
    direct(&["inspect", file.to_str().unwrap(), "--json"])
        .ok()
        .json()
}

fn dataset<'a>(info: &'a J, path: &str) -> &'a J {
    info["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"] == path)
        .unwrap_or_else(|| panic!("no dataset {path} in {info}"))
}

#[test]
fn inspect_shows_first_and_last_dates_in_every_calendar_like_cftime() {
    let dir = scratch("inspect-dates");
    let py = python_with("netCDF4, cftime").expect("netCDF4, cftime (the test venv)");
    let out = Command::new(py)
        .args(["-c", TIME_WRITER, dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = String::from_utf8(out.stdout).unwrap();
    let mut decoded = 0;
    for line in want.lines() {
        let f: Vec<&str> = line.split(" | ").collect();
        let (name, cal) = f[0].split_once(' ').unwrap();
        let file = dir.join(format!("{name}.nc"));
        let info = inspect_json(&file);
        let t = &dataset(&info, "/time")["time"];
        // The rest of the file is described whatever the time coordinate.
        let nt = dataset(&info, "/time")["shape"][0].clone();
        assert_eq!(
            dataset(&info, "/tas")["shape"],
            serde_json::json!([nt, 3]),
            "{name}"
        );
        let text = direct(&["inspect", file.to_str().unwrap()]).ok().stdout;
        if f[1] == "-" {
            let e = t["error"].as_str().unwrap_or_else(|| panic!("{name}: {t}"));
            let needle = if name == "martian" {
                "unknown calendar 'martian'"
            } else {
                "time units 'days since the flood'"
            };
            assert!(e.contains(needle), "{name}: {e}");
            assert!(t.get("first").is_none(), "{name}: {t}");
            assert!(text.contains("time dates not decoded: "), "{name}:\n{text}");
            continue;
        }
        // cftime names `gregorian` `standard`.
        let cal = if cal == "gregorian" { "standard" } else { cal };
        assert_eq!(t["calendar"], cal, "{name}");
        assert_eq!(t["first"], f[1], "{name}");
        assert_eq!(t["last"], f[2], "{name}");
        assert!(t.get("error").is_none(), "{name}: {t}");
        assert!(
            text.contains(&format!("time {} .. {} ({cal})", f[1], f[2])),
            "{name}:\n{text}"
        );
        // Not a time coordinate: no dates.
        assert!(dataset(&info, "/tas").get("time").is_none(), "{name}");
        decoded += 1;
    }
    assert_eq!(decoded, 7);
    // ncgen's file: a noleap year has no 29 February; 36499.75 days is
    // 1949-12-31 18:00 there (cftime gives the same).
    std::fs::write(dir.join("gen.cdl"), CDL).unwrap();
    let generated = dir.join("gen.nc");
    let st = Command::new("ncgen")
        .args(["-4", "-o"])
        .arg(&generated)
        .arg(dir.join("gen.cdl"))
        .status()
        .expect("ncgen (netcdf-bin)");
    assert!(st.success());
    let info = inspect_json(&generated);
    let t = &dataset(&info, "/time")["time"];
    assert_eq!(t["first"], "1850-02-01 12:00:00");
    assert_eq!(t["last"], "1949-12-31 18:00:00");
    assert_eq!(t["calendar"], "noleap");
}
