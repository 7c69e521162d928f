//! Many files as one dataset (`reduce 'dir/*.nc'`): files written by xarray
//! from one dataset, split unevenly into 3, 12 and 400 files whose names do
//! not follow time order, one with other time units; results bit-identical
//! for P = 1..4 and threads 1/2 to the same data in one file, and equal to
//! NumPy's statistics of what xarray's `open_mfdataset` reads. Files that
//! disagree, overlap or match nothing: one error on every rank.

mod common;
use common::*;
use serde_json::Value as J;
use std::path::Path;
use std::process::Command;

/// Writes `one.nc` and the splits into `dir/s3`, `dir/s12`, `dir/s400`
/// (noleap calendar, float32 with NaNs, unlimited time). File names are the
/// reversed order of the pieces; piece 1 of each split stores its times in
/// hours since another date.
const WRITER: &str = r#"
import sys, numpy as np, xarray as xr, os, warnings
warnings.simplefilter("ignore")
d = sys.argv[1]
rng = np.random.default_rng(7)
nt = 1200
x = rng.normal(280, 12, (nt, 6, 8)).astype("f4")
x[rng.random(x.shape) < 0.03] = np.nan
t = np.arange(nt) * 1.0 + 0.5
ds = xr.Dataset({"t2m": (("time", "lat", "lon"), x, {"units": "K"})},
                coords={"time": ("time", t, {"units": "days since 1990-01-01", "calendar": "noleap"}),
                        "lat": ("lat", np.linspace(-75, 75, 6), {"units": "degrees_north"}),
                        "lon": ("lon", np.arange(8) * 45.0, {"units": "degrees_east"})})
ds = xr.decode_cf(ds, use_cftime=True)
enc = {"t2m": {"_FillValue": np.float32(np.nan)}, "time": {"units": "days since 1990-01-01", "calendar": "noleap"}}
ds.to_netcdf(f"{d}/one.nc", encoding=enc)
for n in [3, 12, 400]:
    os.makedirs(f"{d}/s{n}", exist_ok=True)
    cuts = np.sort(rng.choice(np.arange(1, nt), n - 1, replace=False))
    edges = [0, *cuts, nt]
    for i in range(n):
        e = dict(enc)
        if i == 1:
            e["time"] = {"units": "hours since 1989-12-01", "calendar": "noleap"}
        ds.isel(time=slice(edges[i], edges[i + 1])).to_netcdf(
            f"{d}/s{n}/t2m_{n - i:04d}.nc", encoding=e, unlimited_dims=["time"])
m = xr.open_mfdataset(f"{d}/s12/*.nc", combine="by_coords", use_cftime=True).t2m.astype("f8").load()
assert m.shape == x.shape
for name, v in [("mean", m.mean("time")), ("min", m.min("time")), ("max", m.max("time")),
                ("std", m.std("time")), ("count", m.count("time"))]:
    print(name, " ".join(repr(float(a)) for a in np.asarray(v).ravel()))
sel = m.sel(time=slice("1990-03-01", "1991-02"))
print("sel_mean", " ".join(repr(float(a)) for a in np.asarray(sel.mean("time")).ravel()))
print("sel_count", " ".join(repr(float(a)) for a in np.asarray(sel.count("time")).ravel()))
"#;

fn make(dir: &Path) -> Vec<(String, Vec<f64>)> {
    keyed_floats(&run_python(
        "xarray, netCDF4, cftime, dask",
        WRITER,
        &[dir.to_str().unwrap()],
    ))
}

#[test]
fn split_files_reduce_like_one_file_for_every_p_and_like_xarray() {
    let dir = scratch("multifile");
    let want = make(&dir);
    let one = dir.join("one.nc");
    let ops = "count,mean,std,min,max";
    let single = reduce_json(
        1,
        &[
            one.to_str().unwrap(),
            "--var",
            "t2m",
            "--dim",
            "time",
            "--op",
            ops,
        ],
    );
    // Against NumPy on what open_mfdataset read (f64 mean, population std).
    let dated = reduce_json(
        3,
        &[
            &dir.join("s12/t2m_*.nc").display().to_string(),
            "--var",
            "t2m",
            "--dim",
            "time",
            "--op",
            "mean,count",
            "--select",
            "time=1990-03-01..1991-02",
        ],
    );
    for (op, w) in &want {
        let got = match op.strip_prefix("sel_") {
            Some(o) => json_floats(&dated["results"][o]),
            None => json_floats(&single["results"][op]),
        };
        assert_eq!(got.len(), w.len(), "{op}");
        for (g, w) in got.iter().zip(w) {
            assert!(
                (g - w).abs() <= 1e-12 * w.abs().max(1.0),
                "{op}: {g} vs {w}"
            );
        }
    }
    // The same data in many files: bit-identical for every P and thread
    // count; against the one file (another storage layout, so other blocks
    // and merge order) count/min/max exactly, mean/std to 1e-13.
    let near = |a: &J, b: &J, what: &str| {
        for op in ["count", "min", "max"] {
            assert_eq!(a[op], b[op], "{what}: {op}");
        }
        for op in ["mean", "std"] {
            for (x, y) in json_floats(&a[op]).iter().zip(json_floats(&b[op])) {
                assert!(
                    (x - y).abs() <= 1e-13 * y.abs().max(1.0),
                    "{what}: {op} {x} vs {y}"
                );
            }
        }
    };
    for n in [3, 12, 400] {
        let pattern = dir.join(format!("s{n}/t2m_*.nc"));
        let pattern = pattern.to_str().unwrap();
        let ps: &[usize] = if n == 400 { &[2] } else { &[1, 2, 3, 4] };
        let first = reduce_json(
            ps[0],
            &[pattern, "--var", "t2m", "--dim", "time", "--op", ops],
        );
        near(
            &first["results"],
            &single["results"],
            &format!("{n} files vs one file"),
        );
        assert_eq!(first["shape"], single["shape"]);
        for &p in &ps[1..] {
            let j = reduce_json(p, &[pattern, "--var", "t2m", "--dim", "time", "--op", ops]);
            assert_eq!(j["results"], first["results"], "{n} files, P={p}");
        }
        let j = reduce_json(
            1,
            &[
                pattern,
                "--var",
                "t2m",
                "--dim",
                "time",
                "--op",
                ops,
                "--threads",
                "2",
            ],
        );
        assert_eq!(j["results"], first["results"], "{n} files, threads 2");
    }
    // `plan` sizes a pattern of files as the one file holding the same data.
    let plan = |f: &str| {
        direct(&[
            "plan",
            "--file",
            f,
            "--var",
            "t2m",
            "--cluster",
            "kebnekaise",
            "--json",
        ])
        .ok()
        .json()
    };
    let pattern = dir.join("s12/t2m_*.nc");
    let (a, b) = (plan(pattern.to_str().unwrap()), plan(one.to_str().unwrap()));
    // (The storage layouts differ, so blocks and ranks may; the data and
    // the time asked for may not.)
    for k in ["nodes", "time_request_s"] {
        assert_eq!(a["plan"][k], b["plan"][k], "plan {k}");
    }
    assert_eq!(a["plan"]["block_shape"].as_array().unwrap().len(), 3);
    // Files named one by one, in any order, and a whole-array reduce with a
    // selection that crosses file boundaries with a step.
    let files: Vec<String> = (1..=3)
        .map(|i| dir.join(format!("s3/t2m_{i:04}.nc")).display().to_string())
        .collect();
    let sel = ["--var", "t2m", "--select", "time=5:1100:7", "--op", ops];
    let a = reduce_json(
        3,
        &[
            &[files[2].as_str(), files[0].as_str(), files[1].as_str()][..],
            &sel[..],
        ]
        .concat(),
    );
    let b = reduce_json(1, &[&[one.to_str().unwrap()][..], &sel[..]].concat());
    assert_eq!(a["results"], b["results"]);
}

#[test]
fn files_that_disagree_overlap_or_are_missing_fail_on_every_rank() {
    let dir = scratch("multifile-bad");
    let py = python_with("xarray, netCDF4").expect("xarray, netCDF4");
    let script = r#"
import sys, numpy as np, xarray as xr
d = sys.argv[1]
def w(name, t, lat=(0.0, 1.0), dtype="f4", cal="standard"):
    ds = xr.Dataset({"v": (("time", "lat"), np.ones((len(t), len(lat)), dtype))},
                    coords={"time": ("time", np.asarray(t, "f8"), {"units": "days since 2000-01-01", "calendar": cal}),
                            "lat": ("lat", np.asarray(lat))})
    ds.to_netcdf(f"{d}/{name}", unlimited_dims=["time"])
w("a.nc", [0, 1, 2]); w("b_lat.nc", [3, 4], lat=(0.0, 2.0)); w("c_overlap.nc", [2, 3])
w("d_type.nc", [5, 6], dtype="f8"); w("e_cal.nc", [7], cal="noleap"); w("f_ok.nc", [8, 9])
"#;
    let out = Command::new(py)
        .args(["-c", script, dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = |n: &str| dir.join(n).display().to_string();
    let cases: [(Vec<String>, &str); 6] = [
        (
            vec![f("a.nc"), f("b_lat.nc")],
            "coordinate 'lat' at index 1: 1 vs 2",
        ),
        (vec![f("a.nc"), f("c_overlap.nc")], "overlap along 'time'"),
        (vec![f("a.nc"), f("d_type.nc")], "type f32 vs f64"),
        (vec![f("a.nc"), f("e_cal.nc")], "calendar 'noleap'"),
        (
            vec![f("a.nc"), dir.join("nothing_*.nc").display().to_string()],
            "matches no file",
        ),
        (
            vec![dir.join("zz*.nc").display().to_string()],
            "matches no file",
        ),
    ];
    for (files, needle) in &cases {
        let mut args: Vec<&str> = vec!["reduce"];
        args.extend(files.iter().map(String::as_str));
        args.extend(["--var", "v", "--op", "mean"]);
        expect_error_p(2, &args, needle);
    }
    // And the good pair works, in either order on the command line.
    let j = reduce_json(
        2,
        &[&f("f_ok.nc"), &f("a.nc"), "--var", "v", "--op", "count,sum"],
    );
    assert_eq!(
        json_floats(&J::Array(vec![j["results"]["sum"].clone()])),
        [10.0]
    );
}
