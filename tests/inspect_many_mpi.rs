//! `inspect` and `convert` on calendar time and many files: the first and
//! last dates of every CF time coordinate (several calendars, against
//! cftime), a dataset of several files (or a quoted glob) described as one,
//! and converted into one file (NetCDF-4, .npy, Zarr) equal to `ncrcat`'s
//! and xarray's concatenation, for P = 1..3.

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
    let want = run_python("netCDF4, cftime", TIME_WRITER, &[dir.to_str().unwrap()]);
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

/// A dataset (noleap time, float32 `t2m` with NaNs, packed int16 `pr`, a
/// static `orog`) written whole to `one.nc` and split unevenly into
/// `parts/` (3 files whose names run against time; the second stores its
/// times in hours since another date). Prints what `open_mfdataset` sees.
const SPLIT_WRITER: &str = r#"
import sys, os, numpy as np, xarray as xr, warnings
warnings.simplefilter("ignore")
d = sys.argv[1]
rng = np.random.default_rng(3)
nt = 100
x = rng.normal(280, 12, (nt, 4, 5)).astype("f4")
x[rng.random(x.shape) < 0.05] = np.nan
pr = rng.integers(-3000, 3000, (nt, 4, 5)).astype("i2")
t = np.arange(nt) * 3.5 + 0.25
ds = xr.Dataset({"t2m": (("time", "lat", "lon"), x, {"units": "K"}),
                 "pr": (("time", "lat", "lon"), pr, {"scale_factor": 0.01, "add_offset": 5.0, "units": "mm"}),
                 "orog": (("lat", "lon"), rng.random((4, 5)), {"units": "m"})},
                coords={"time": ("time", t, {"units": "days since 1999-12-01", "calendar": "noleap"}),
                        "lat": ("lat", np.linspace(-60, 60, 4), {"units": "degrees_north"}),
                        "lon": ("lon", np.arange(5) * 72.0, {"units": "degrees_east"})})
ds = xr.decode_cf(ds, use_cftime=True, mask_and_scale=False)
enc = {"t2m": {"_FillValue": np.float32(np.nan)}, "time": {"units": "days since 1999-12-01", "calendar": "noleap", "dtype": "f8"}}
ds.to_netcdf(f"{d}/one.nc", encoding=enc, unlimited_dims=["time"])
os.makedirs(f"{d}/parts", exist_ok=True)
edges = [0, 17, 61, nt]
for i in range(3):
    e = dict(enc)
    if i == 1:
        e["time"] = {"units": "hours since 1999-11-01", "calendar": "noleap", "dtype": "f8"}
    ds.isel(time=slice(edges[i], edges[i + 1])).to_netcdf(
        f"{d}/parts/tas_{3 - i}.nc", encoding=e, unlimited_dims=["time"])
m = xr.open_mfdataset(f"{d}/parts/*.nc", combine="by_coords", use_cftime=True, mask_and_scale=False,
                      data_vars="minimal")
print("len", m.sizes["time"])
print("first", str(m.time.values[0]))
print("last", str(m.time.values[-1]))
print("t2m", *m.t2m.shape)
"#;

fn make_split(dir: &Path) -> std::collections::HashMap<String, String> {
    run_python(
        "xarray, netCDF4, cftime, dask",
        SPLIT_WRITER,
        &[dir.to_str().unwrap()],
    )
    .lines()
    .map(|l| {
        let (k, v) = l.split_once(' ').unwrap();
        (k.to_string(), v.to_string())
    })
    .collect()
}

#[test]
fn inspect_describes_many_files_as_one_dataset_like_open_mfdataset() {
    let dir = scratch("inspect-many");
    let want = make_split(&dir);
    let pattern = dir.join("parts/tas_*.nc").display().to_string();
    let info = direct(&["inspect", &pattern, "--json"]).ok().json();
    let c = &info["concat"];
    assert_eq!(c["record_dim"], "time");
    assert_eq!(c["record_len"].to_string(), want["len"]);
    assert_eq!(c["file_count"], 3);
    // Record order, not name order.
    let files: Vec<&str> = c["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(files[0].ends_with("tas_3.nc") && files[2].ends_with("tas_1.nc"));
    assert_eq!(c["variables"], serde_json::json!(["pr", "t2m"]));
    assert_eq!(c["time"]["first"], want["first"]);
    assert_eq!(c["time"]["last"], want["last"]);
    assert_eq!(c["time"]["calendar"], "noleap");
    let shape: Vec<String> = dataset(&info, "/t2m")["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(J::to_string)
        .collect();
    assert_eq!(shape.join(" "), want["t2m"]);
    assert_eq!(
        dataset(&info, "/pr")["shape"],
        dataset(&info, "/t2m")["shape"]
    );
    // The same shape of JSON as one file holding the same data.
    let one = inspect_json(&dir.join("one.nc"));
    for d in ["/t2m", "/pr", "/time", "/orog", "/lat"] {
        assert_eq!(dataset(&info, d)["shape"], dataset(&one, d)["shape"], "{d}");
        assert_eq!(
            dataset(&info, d)["logical_bytes"],
            dataset(&one, d)["logical_bytes"],
            "{d}"
        );
    }
    assert_eq!(
        dataset(&info, "/time")["time"],
        dataset(&one, "/time")["time"]
    );
    let keys = |v: &J| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    let mut k1 = keys(&one);
    k1.push("concat".into());
    k1.sort();
    let mut k2 = keys(&info);
    k2.sort();
    assert_eq!(k2, k1);
    // Files named one by one, in any order: the same description.
    let named: Vec<String> = (1..=3)
        .map(|i| dir.join(format!("parts/tas_{i}.nc")).display().to_string())
        .collect();
    let again = direct(&["inspect", &named[1], &named[0], &named[2], "--json"])
        .ok()
        .json();
    assert_eq!(again["concat"]["files"], c["files"]);
    assert_eq!(again["datasets"], info["datasets"]);
    let text = direct(&["inspect", &pattern]).ok().stdout;
    assert!(
        text.contains(&format!("dataset of 3 files along time = {}", want["len"])),
        "{text}"
    );
    assert!(text.contains(&format!(
        "time {} .. {} (noleap)",
        want["first"], want["last"]
    )));
    // Errors as reduce gives them: overlap, files that disagree, no match.
    let overlap = dir.join("one.nc").display().to_string();
    for (args, needle) in [
        (
            vec![named[0].as_str(), overlap.as_str()],
            "overlap along 'time'",
        ),
        (
            vec![named[0].as_str(), "/nonexistent/zz_*.nc"],
            "matches no file",
        ),
    ] {
        let mut a = vec!["inspect"];
        a.extend(args);
        let r = direct(&a);
        assert_ne!(r.code, Some(0), "{a:?}");
        assert!(r.stderr.contains(needle), "{a:?}: {}", r.stderr);
    }
}

/// Checks `convert`'s outputs against xarray: argv = parts dir, output,
/// npy output. The data (raw stored values, NaNs at the same places) and
/// the decoded time equal `open_mfdataset`'s; `pr`'s packing attributes are
/// kept.
const CONVERT_CHECK: &str = r#"
import sys, numpy as np, xarray as xr, warnings
warnings.simplefilter("ignore")
parts, out, npy, zarr = sys.argv[1:5]
m = xr.open_mfdataset(f"{parts}/*.nc", combine="by_coords", use_cftime=True, mask_and_scale=False,
                      data_vars="minimal")
o = xr.open_dataset(out, use_cftime=True, mask_and_scale=False)
want = m.t2m.values
assert o.t2m.dtype == want.dtype, o.t2m.dtype
assert np.array_equal(o.t2m.values, want, equal_nan=True)
assert list(o.time.values) == list(m.time.values)
assert o.time.encoding["calendar"] == "noleap"
assert np.array_equal(o.lat.values, m.lat.values)
assert o.t2m.attrs["units"] == "K"
assert np.array_equal(np.load(npy), want, equal_nan=True)
z = xr.open_zarr(zarr, use_cftime=True, mask_and_scale=False, consolidated=False)
assert np.array_equal(z.t2m.values, want, equal_nan=True)
assert list(z.time.values) == list(m.time.values)
# What the one file holds, written by xarray from open_mfdataset.
m[["t2m"]].to_netcdf(f"{out}.xr.nc")
assert np.array_equal(xr.open_dataset(f"{out}.xr.nc", mask_and_scale=False).t2m.values,
                      o.t2m.values, equal_nan=True)
print("ok")
"#;

#[test]
fn convert_writes_many_files_as_one_like_ncrcat_and_xarray_for_every_p() {
    let dir = scratch("convert-many");
    make_split(&dir);
    let pattern = dir.join("parts/tas_*.nc").display().to_string();
    let out = |n: &str| dir.join(n).display().to_string();
    let mut first: Option<Vec<u8>> = None;
    for p in 1..=3 {
        let o = out(&format!("t2m_p{p}.nc"));
        mpirun(p, &["convert", &pattern, &o, "--var", "t2m"]).ok();
        let data = h5dump_raw(Path::new(&o), "t2m");
        assert_eq!(data.len(), 100 * 4 * 5 * 4);
        match &first {
            Some(f) => assert_eq!(&data, f, "P={p}"),
            None => first = Some(data),
        }
        assert_eq!(
            h5dump_raw(Path::new(&o), "time"),
            h5dump_raw(Path::new(&out("t2m_p1.nc")), "time"),
            "P={p}"
        );
    }
    // ncrcat of the files in time order: the same stored bytes.
    let ordered: Vec<String> = [3, 2, 1]
        .iter()
        .map(|i| out(&format!("parts/tas_{i}.nc")))
        .collect();
    let st = Command::new("ncrcat")
        .args(["-O", "-v", "t2m"])
        .args(&ordered)
        .arg(out("ncrcat.nc"))
        .status()
        .expect("ncrcat (nco)");
    assert!(st.success());
    assert_eq!(
        h5dump_raw(Path::new(&out("ncrcat.nc")), "t2m"),
        first.clone().unwrap()
    );
    // Packed int16 in the files named one by one, in any order; .npy too.
    mpirun(
        2,
        &[
            "convert",
            &ordered[1],
            &ordered[2],
            &ordered[0],
            &out("pr.nc"),
            "--var",
            "pr",
            "--compression",
            "gzip:4",
            "--shuffle",
        ],
    )
    .ok();
    assert_eq!(
        h5dump_raw(Path::new(&out("pr.nc")), "pr"),
        h5dump_raw(Path::new(&out("one.nc")), "pr")
    );
    let pr = inspect_json(&dir.join("pr.nc"));
    let attrs = dataset(&pr, "/pr")["attributes"].to_string();
    assert!(
        attrs.contains("scale_factor") && attrs.contains("add_offset"),
        "{attrs}"
    );
    assert_eq!(
        dataset(&pr, "/time")["time"],
        dataset(&inspect_json(&dir.join("one.nc")), "/time")["time"]
    );
    mpirun(3, &["convert", &pattern, &out("t2m.npy"), "--var", "t2m"]).ok();
    mpirun(2, &["convert", &pattern, &out("t2m.zarr"), "--var", "t2m"]).ok();
    let py = python_with("xarray, netCDF4, cftime, dask, zarr").unwrap();
    let check = Command::new(py)
        .args(["-c", CONVERT_CHECK])
        .args([
            &out("parts"),
            &out("t2m_p2.nc"),
            &out("t2m.npy"),
            &out("t2m.zarr"),
        ])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let sinfo = Command::new("cdo")
        .args(["-s", "sinfo", &out("t2m_p2.nc")])
        .output()
        .expect("cdo");
    let text = String::from_utf8_lossy(&sinfo.stdout);
    assert!(
        sinfo.status.success() && text.contains("100 steps"),
        "{text}"
    );
    // Nothing overwritten: an existing output without --force, and an
    // output that is one of the inputs even with --force.
    expect_error(
        &["convert", &pattern, &out("t2m_p1.nc"), "--var", "t2m"],
        "exists; pass --force",
    );
    expect_error(
        &["convert", &pattern, &ordered[1], "--var", "t2m", "--force"],
        "is the same file as input",
    );
    expect_error(
        &[
            "convert",
            &ordered[0],
            &out("one.nc"),
            &out("x.nc"),
            "--var",
            "t2m",
        ],
        "overlap along 'time'",
    );
}
