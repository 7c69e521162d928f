//! `reduce --groupby` / `--resample` against xarray's `groupby` /
//! `resample` (every statistic, element by element, relative difference
//! ≤ 1e-12) on files xarray and ncgen write in the standard, noleap and
//! 360_day calendars — daily data with missing values, 6-hourly data, a
//! month without data (an empty period), a packed int16 variable — and
//! against CDO's `ymonmean`, `yseasmean`, `monmean`, `yearmean`. Results are
//! bit-identical for P = 1..4, threads 1/2, and for the same data in one
//! file or split into 3, 12 (deflate+shuffle, decoded chunk-direct) and
//! 400 files. The written file (period or
//! group coordinate, `time_bnds`, `cell_methods`) is read by xarray, ncdump
//! and `cdo sinfo`. Bad groupings: one error on every rank, nothing written.

mod common;
use common::*;
use serde_json::Value as J;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

const OPS: &str = "count,sum,mean,var,std,min,max";

/// Writes the inputs into `dir` and prints xarray's answers, one line per
/// `case|grouping|statistic`, values in result order (the group dimension
/// first; seasons in the order DJF, MAM, JJA, SON).
const ORACLE: &str = r#"
import sys, os, warnings, numpy as np, xarray as xr
warnings.simplefilter("ignore")
d = sys.argv[1]
rng = np.random.default_rng(11)
STATS = ["count", "sum", "mean", "var", "std", "min", "max"]

def emit(case, by, obj, dim="time"):
    for s in STATS:
        r = getattr(obj, s)(dim) if s != "count" else obj.count(dim)
        if "season" in r.dims:
            r = r.sel(season=["DJF", "MAM", "JJA", "SON"])
        print(f"{case}|{by}|{s}", " ".join(repr(float(v)) for v in np.asarray(r, dtype="f8").ravel()))

def data(nt, nan=0.03):
    x = rng.normal(280, 12, (nt, 3, 4))
    x[rng.random(x.shape) < nan] = np.nan
    return x

def write(ds, path, units, cal, extra_enc=None):
    enc = {"time": {"units": units, "calendar": cal}}
    for v in ds.data_vars:
        enc[v] = {"chunksizes": (1, 3, 4)}
    enc.update(extra_enc or {})
    ds.to_netcdf(path, encoding=enc, unlimited_dims=["time"])

def coords(t):
    return {"time": t, "lat": ("lat", np.array([-30.0, 0.0, 30.0]), {"units": "degrees_north"}),
            "lon": ("lon", np.arange(4) * 90.0, {"units": "degrees_east"})}

# A: noleap daily from 1999-12-01, split into 3, 12 and 400 uneven files.
nt = 1130
t = xr.date_range("1999-12-01", periods=nt, freq="D", calendar="noleap", use_cftime=True)
a = xr.Dataset({"tas": (("time", "lat", "lon"), data(nt), {"units": "K"})}, coords=coords(t))
write(a, f"{d}/a.nc", "days since 1999-12-01", "noleap")
for n in [3, 12, 400]:
    os.makedirs(f"{d}/a{n}", exist_ok=True)
    cuts = np.sort(rng.choice(np.arange(1, nt), n - 1, replace=False))
    e = [0, *cuts, nt]
    # The 12 files are deflate+shuffle compressed (decoded chunk-direct).
    z = {"tas": {"chunksizes": (1, 3, 4), "zlib": True, "complevel": 1, "shuffle": True}} if n == 12 else None
    for i in range(n):
        write(a.isel(time=slice(e[i], e[i + 1])), f"{d}/a{n}/tas_{n - i:04d}.nc",
              "days since 1999-12-01", "noleap", z)
for f in ["month", "season", "year", "dayofyear"]:
    emit("a", f"time.{f}", a.tas.groupby(f"time.{f}"))
for fr in ["1MS", "QS-DEC", "YS", "10D"]:
    emit("a", f"time={fr}", a.tas.resample(time=fr))

# B: 360_day, 6-hourly.
nt = 2 * 360 * 4
t = xr.date_range("2000-01-01", periods=nt, freq="6h", calendar="360_day", use_cftime=True)
b = xr.Dataset({"tas": (("time", "lat", "lon"), data(nt), {"units": "K"})}, coords=coords(t))
write(b, f"{d}/b.nc", "hours since 2000-01-01 00:00:00", "360_day")
for f in ["hour", "month"]:
    emit("b", f"time.{f}", b.tas.groupby(f"time.{f}"))
for fr in ["1D", "1MS"]:
    emit("b", f"time={fr}", b.tas.resample(time=fr))

# C: standard calendar, daily, February 2001 missing; packed int16 `pr`.
t = xr.date_range("2000-01-01", "2002-12-31", freq="D", calendar="standard", use_cftime=True)
t = t[~((t.year == 2001) & (t.month == 2))]
x = data(len(t))
q = np.round(rng.uniform(0, 60, x.shape) / 0.01) * 0.01
q[rng.random(q.shape) < 0.05] = np.nan
c = xr.Dataset({"tas": (("time", "lat", "lon"), x, {"units": "K"}),
                "pr": (("time", "lat", "lon"), q, {"units": "mm"})}, coords=coords(t))
write(c, f"{d}/c.nc", "days since 2000-01-01", "standard",
      {"pr": {"chunksizes": (1, 3, 4), "dtype": "int16", "scale_factor": 0.01,
              "add_offset": 0.0, "_FillValue": np.int16(-32767)}})
c = xr.open_dataset(f"{d}/c.nc", use_cftime=True)
for v in ["tas", "pr"]:
    emit(f"c.{v}", "time.month", c[v].astype("f8").groupby("time.month"))
    for fr in ["1MS", "YS"]:
        emit(f"c.{v}", f"time={fr}", c[v].astype("f8").resample(time=fr))

# D: written by ncgen (360_day, monthly values), read back by xarray.
e = xr.open_dataset(f"{d}/e.nc", use_cftime=True)
emit("e", "time.season", e.v.astype("f8").groupby("time.season"))
emit("e", "time=YS", e.v.astype("f8").resample(time="YS"))
"#;

/// CDL of case D: 24 monthly steps of a 360-day calendar, a 2-point grid.
const CDL: &str = r#"netcdf e {
dimensions: time = UNLIMITED ; x = 2 ;
variables:
  double time(time) ; time:units = "days since 2001-01-16" ; time:calendar = "360_day" ;
  float x(x) ;
  float v(time, x) ; v:_FillValue = -999.f ;
data:
  x = 0, 1 ;
"#;

fn make(dir: &Path) -> HashMap<String, Vec<f64>> {
    let times: Vec<String> = (0..24).map(|i| format!("{}", i * 30)).collect();
    let vals: Vec<String> = (0..48)
        .map(|i| {
            if i % 13 == 5 {
                "-999".to_string()
            } else {
                format!("{}.25", (i * 7) % 31)
            }
        })
        .collect();
    let cdl = format!(
        "{CDL}  time = {} ;\n  v = {} ;\n}}\n",
        times.join(", "),
        vals.join(", ")
    );
    std::fs::write(dir.join("e.cdl"), cdl).unwrap();
    let st = Command::new("ncgen")
        .args(["-4", "-o"])
        .arg(dir.join("e.nc"))
        .arg(dir.join("e.cdl"))
        .status()
        .expect("ncgen (netcdf-bin)");
    assert!(st.success(), "ncgen");
    keyed_floats(&run_python(
        "xarray, netCDF4, cftime",
        ORACLE,
        &[dir.to_str().unwrap()],
    ))
    .into_iter()
    .collect()
}

fn flag(by: &str) -> [&str; 2] {
    if by.contains('=') {
        ["--resample", by]
    } else {
        ["--groupby", by]
    }
}

/// Every statistic of `got` equals xarray's `want` (NaN where xarray has
/// NaN; relative difference ≤ 1e-12). In a period without any step
/// xarray's resample reports NaN for every statistic; chunkwise reports a
/// count of 0 and a sum of 0 there (and NaN for the others).
fn check(case: &str, by: &str, got: &J, want: &HashMap<String, Vec<f64>>) {
    for op in OPS.split(',') {
        let key = format!("{case}|{by}|{op}");
        let w = want
            .get(&key)
            .unwrap_or_else(|| panic!("no oracle for {key}"));
        let g = json_floats(&got["results"][op]);
        assert_eq!(g.len(), w.len(), "{key}: length");
        for (i, (g, w)) in g.iter().zip(w).enumerate() {
            let empty = w.is_nan() && (op == "count" || op == "sum") && *g == 0.0;
            let ok =
                empty || (g.is_nan() && w.is_nan()) || (g - w).abs() <= 1e-12 * w.abs().max(1e-300);
            assert!(ok, "{key}[{i}]: chunkwise {g} vs xarray {w}");
        }
    }
}

#[test]
fn groups_and_periods_match_xarray_for_every_p_and_file_split() {
    let dir = scratch("groupby");
    let want = make(&dir);
    let path = |f: &str| dir.join(f).display().to_string();
    let run = |p: usize, input: &str, var: &str, by: &str, extra: &[&str]| -> J {
        let mut args = vec![input, "--var", var, "--op", OPS];
        args.extend(flag(by));
        args.extend_from_slice(extra);
        reduce_json(p, &args)
    };
    // Every grouping against xarray.
    let a = path("a.nc");
    let b = path("b.nc");
    let c = path("c.nc");
    let e = path("e.nc");
    let cases: Vec<(&str, &str, &str, &str)> = vec![
        ("a", a.as_str(), "tas", "time.month"),
        ("a", &a, "tas", "time.season"),
        ("a", &a, "tas", "time.year"),
        ("a", &a, "tas", "time.dayofyear"),
        ("a", &a, "tas", "time=1MS"),
        ("a", &a, "tas", "time=QS-DEC"),
        ("a", &a, "tas", "time=YS"),
        ("a", &a, "tas", "time=10D"),
        ("b", &b, "tas", "time.hour"),
        ("b", &b, "tas", "time.month"),
        ("b", &b, "tas", "time=1D"),
        ("b", &b, "tas", "time=1MS"),
        ("c.tas", &c, "tas", "time.month"),
        ("c.tas", &c, "tas", "time=1MS"),
        ("c.tas", &c, "tas", "time=YS"),
        ("c.pr", &c, "pr", "time.month"),
        ("c.pr", &c, "pr", "time=1MS"),
        ("c.pr", &c, "pr", "time=YS"),
        ("e", &e, "v", "time.season"),
        ("e", &e, "v", "time=YS"),
    ];
    for (i, (case, input, var, by)) in cases.iter().enumerate() {
        let p = 1 + i % 3;
        let got = run(p, input, var, by, &[]);
        check(case, by, &got, &want);
    }
    // The empty period (February 2001) is there, with count 0.
    let got = run(2, &c, "tas", "time=1MS", &[]);
    let labels: Vec<&str> = got["groups"]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l.as_str().unwrap()[..10])
        .collect();
    assert_eq!(labels.len(), 36);
    assert_eq!(labels[13], "2001-02-01");
    let counts = json_floats(&got["results"]["count"]);
    assert!(counts[13 * 12..14 * 12].iter().all(|&n| n == 0.0));
    // Bit-identical for P = 1..4, threads 1/2, small blocks (periods that
    // straddle blocks), and the same data in 3, 12 or 400 files.
    for by in ["time.month", "time=1MS", "time.season"] {
        let first = run(1, &a, "tas", by, &[]);
        for p in 2..=4 {
            assert_eq!(
                run(p, &a, "tas", by, &[])["results"],
                first["results"],
                "{by} P={p}"
            );
        }
        let t2 = run(1, &a, "tas", by, &["--threads", "2"]);
        assert_eq!(t2["results"], first["results"], "{by} threads 2");
        for n in [3, 12, 400] {
            let pattern = dir.join(format!("a{n}/tas_*.nc")).display().to_string();
            let ps: &[usize] = if n == 400 { &[2] } else { &[1, 3] };
            for &p in ps {
                let j = run(p, &pattern, "tas", by, &[]);
                assert_eq!(j["results"], first["results"], "{by}: {n} files, P={p}");
                assert_eq!(j["groups"], first["groups"], "{by}: {n} files");
            }
        }
        let small = run(3, &a, "tas", by, &["--block-bytes", "1KiB"]);
        check("a", by, &small, &want);
    }
}

#[test]
fn grouped_output_is_read_by_xarray_ncdump_and_cdo_and_agrees_with_cdo() {
    let dir = scratch("groupby_out");
    let _ = make(&dir);
    let c = dir.join("c.nc").display().to_string();
    let a = dir.join("a.nc").display().to_string();
    let outs = [
        ("ymonmean", a.as_str(), "--groupby", "time.month"),
        ("yseasmean", &a, "--groupby", "time.season"),
        ("monmean", &c, "--resample", "time=1MS"),
        ("yearmean", &c, "--resample", "time=YS"),
    ];
    let py = python_with("xarray, netCDF4, cftime").unwrap();
    let have_cdo = Command::new("cdo").arg("-V").output().is_ok();
    for (cdo_op, input, fl, by) in outs {
        let out = dir.join(format!("{cdo_op}.nc"));
        let o = out.display().to_string();
        mpirun(
            2,
            &[
                "reduce", input, "--var", "tas", fl, by, "--op", "mean", "-o", &o,
            ],
        )
        .ok();
        let dump = Command::new("ncdump").arg("-h").arg(&out).output().unwrap();
        assert!(dump.status.success(), "ncdump -h {o}");
        let header = String::from_utf8_lossy(&dump.stdout);
        if fl == "--resample" {
            for needle in [
                "time_bnds(time, bnds)",
                "time:bounds = \"time_bnds\"",
                "tas:cell_methods = \"time: mean\"",
                "calendar = \"standard\"",
            ] {
                assert!(header.contains(needle), "{needle} in\n{header}");
            }
        } else {
            assert!(
                header.contains("cell_methods = \"time: mean within years time: mean over years\""),
                "{header}"
            );
        }
        // xarray reads it; resampled periods carry bounds [start, next start).
        let check = r#"
import sys, numpy as np, xarray as xr, warnings
warnings.simplefilter("ignore")
d = xr.open_dataset(sys.argv[1], use_cftime=True)
if "time_bnds" in d:
    b = d.time_bnds.values
    assert (b[1:, 0] == b[:-1, 1]).all(), "bounds are not contiguous"
    assert (b[:, 0] == d.time.values).all(), "bounds do not start at the label"
print(d.tas.shape)
"#;
        let r = Command::new(py).args(["-c", check, &o]).output().unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        if !have_cdo {
            eprintln!("cdo not installed: CDO comparison skipped");
            continue;
        }
        let sinfo = Command::new("cdo")
            .args(["-s", "sinfo", &o])
            .output()
            .unwrap();
        assert!(
            sinfo.status.success(),
            "cdo sinfo {o}: {}",
            String::from_utf8_lossy(&sinfo.stderr)
        );
        // CDO's own answer on the same input, compared value by value
        // (matching CDO's steps to ours by calendar month / season / year).
        let theirs = dir.join(format!("cdo_{cdo_op}.nc"));
        let st = Command::new("cdo")
            .args(["-s", "-b", "F64", cdo_op, input])
            .arg(&theirs)
            .status()
            .unwrap();
        assert!(st.success(), "cdo {cdo_op}");
        let cmp = r#"
import sys, numpy as np, netCDF4 as nc, cftime
ours, theirs, kind = sys.argv[1], sys.argv[2], sys.argv[3]
o = nc.Dataset(ours); t = nc.Dataset(theirs)
tv = t["time"]
x = np.ma.filled(t["tas"][:].astype("f8"), np.nan)
y = o["tas"][:].filled(np.nan) if np.ma.isMaskedArray(o["tas"][:]) else o["tas"][:]
if kind != "yseasmean":
    dates = cftime.num2date(tv[:], tv.units, getattr(tv, "calendar", "standard"))
if kind == "ymonmean":
    idx = [d.month - 1 for d in dates]
elif kind == "yseasmean":
    # CDO 2.1 writes garbage time values for some seasons of a noleap
    # input: match each CDO step to the one season of ours it equals.
    def rel(a, b):
        m = ~np.isnan(b)
        return float(np.max(np.abs(a[m] - b[m]) / np.abs(b[m]))) if m.any() else 0.0
    idx = [min(range(4), key=lambda s: rel(y[s], x[k])) for k in range(x.shape[0])]
    assert sorted(idx) == [0, 1, 2, 3], idx
else:
    ot = o["time"]
    ours_d = cftime.num2date(ot[:], ot.units, ot.calendar)
    key = (lambda d: (d.year, d.month)) if kind == "monmean" else (lambda d: d.year)
    pos = {key(d): i for i, d in enumerate(ours_d)}
    idx = [pos[key(d)] for d in dates]
worst = 0.0
for k, i in enumerate(idx):
    a, b = y[i], x[k]
    assert (np.isnan(a) == np.isnan(b)).all(), (kind, k)
    m = ~np.isnan(a)
    worst = max(worst, float(np.max(np.abs(a[m] - b[m]) / np.abs(b[m]))) if m.any() else 0.0)
print(worst)
"#;
        let r = Command::new(py)
            .args(["-c", cmp, &o, theirs.to_str().unwrap(), cdo_op])
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let worst: f64 = String::from_utf8_lossy(&r.stdout).trim().parse().unwrap();
        assert!(worst <= 1e-12, "cdo {cdo_op}: relative difference {worst}");
    }
}

#[test]
fn bad_groupings_fail_on_every_rank_and_write_nothing() {
    let dir = scratch("groupby_bad");
    let py = python_with("xarray, netCDF4").unwrap();
    let script = r#"
import sys, numpy as np, xarray as xr
d = sys.argv[1]
x = np.arange(24.0).reshape(6, 4)
for name, units, cal in [("cal", "days since 2000-01-01", "martian"),
                         ("units", "days since the flood", "standard"),
                         ("plain", "m", "standard"),
                         ("plain_dates", "days since 2000-01-01", "standard")]:
    ds = xr.Dataset({"v": (("time", "x"), x)},
                    coords={"time": ("time", np.arange(6.0), {"units": units, "calendar": cal})})
    ds.to_netcdf(f"{d}/{name}.nc", encoding={"time": {"dtype": "f8"}})
"#;
    let st = Command::new(py)
        .args(["-c", script, dir.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    let f = |n: &str| dir.join(n).display().to_string();
    let out = f("never.nc");
    let cases: Vec<(String, Vec<&str>, &str)> = vec![
        (f("cal.nc"), vec!["--groupby", "time.month"], "martian"),
        (
            f("units.nc"),
            vec!["--groupby", "time.month"],
            "since the flood",
        ),
        (
            f("plain.nc"),
            vec!["--groupby", "time.month"],
            "no time units",
        ),
        (f("plain.nc"), vec!["--groupby", "x.month"], "no time units"),
        (f("cal.nc"), vec!["--resample", "time=1W"], "frequency '1W'"),
        (
            f("cal.nc"),
            vec!["--groupby", "time.week"],
            "unknown field 'week'",
        ),
        (
            f("cal.nc"),
            vec!["--groupby", "time.month", "--dim", "x"],
            "add it to --dim",
        ),
    ];
    for (input, extra, needle) in &cases {
        let mut args = vec!["reduce", input.as_str(), "--var", "v", "-o", &out];
        args.extend(extra);
        expect_error_p(2, &args, needle);
        assert!(!Path::new(&out).exists(), "{args:?} wrote its output");
    }
}
