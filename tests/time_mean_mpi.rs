//! The time-mean kernel (kept trailing dimensions, `LeafAcc`) on an
//! xarray-written NetCDF-4 file: bit-identical for P = 1..4 and 1 or 2
//! threads, equal to an exact reference (Python's math.fsum) per cell, the
//! same for a middle axis (`--dim lat`), and the same bits with and without
//! the `_FillValue = NaN` that xarray writes.

mod common;
use common::*;
use std::process::Command;

/// Writes era.nc (zlib 1 + shuffle, _FillValue NaN) and nofill.nc
/// (uncompressed, no _FillValue), then prints the exact reference of the
/// time mean and of the lat mean as JSON.
const SCRIPT: &str = r#"
import sys, json, math, numpy as np, xarray as xr, h5py, shutil
d = sys.argv[1]
rng = np.random.default_rng(14)
nt, ny, nx = 203, 7, 33
x = (1e4 + rng.random((nt, ny, nx)) * 3.0).astype("f4")   # mean >> std
x[rng.random(x.shape) < 0.04] = np.nan
x[:, 0, 0] = np.nan                                         # an all-NaN cell
ds = xr.Dataset({"t2m": (("time", "lat", "lon"), x)},
                coords={"time": np.arange(nt), "lat": np.linspace(-30, 30, ny), "lon": np.arange(nx)})
ds.to_netcdf(f"{d}/era.nc", encoding={"t2m": {"zlib": True, "complevel": 1, "shuffle": True,
                                             "chunksizes": (1, ny, nx)}})
ds.to_netcdf(f"{d}/nofill.nc", encoding={"t2m": {"chunksizes": (1, ny, nx)}})
with h5py.File(f"{d}/nofill.nc", "r+") as f:
    del f["t2m"].attrs["_FillValue"]
def stats(cols):
    out = {"mean": [], "var": [], "min": [], "max": [], "count": []}
    for c in cols:
        v = [float(a) for a in c if not math.isnan(a)]
        n = len(v)
        out["count"].append(n)
        if n == 0:
            for k in ("mean", "var", "min", "max"): out[k].append(None)
            continue
        m = math.fsum(v) / n
        out["mean"].append(m); out["var"].append(math.fsum((a - m) ** 2 for a in v) / n)
        out["min"].append(min(v)); out["max"].append(max(v))
    return out
tm = stats(x.reshape(nt, -1).T)
lm = stats(x.transpose(0, 2, 1).reshape(nt * nx, ny))
print(json.dumps({"time": tm, "lat": lm}))
"#;

fn run(p: usize, threads: usize, file: &str, dim: &str) -> serde_json::Value {
    let t = threads.to_string();
    let args = [
        "reduce",
        file,
        "--var",
        "t2m",
        "--dim",
        dim,
        "--op",
        "mean,var,min,max,count",
        "--block-bytes",
        "4KiB",
        "--threads",
        &t,
        "--json",
    ];
    mpirun(p, &args).ok().json()
}

fn check(got: &serde_json::Value, want: &serde_json::Value, what: &str) {
    for op in ["mean", "var", "min", "max", "count"] {
        let (g, w) = (got[op].as_array().unwrap(), want[op].as_array().unwrap());
        assert_eq!(g.len(), w.len(), "{what} {op}");
        for (i, (a, b)) in g.iter().zip(w).enumerate() {
            match (a.as_f64(), b.as_f64()) {
                (Some(a), Some(b)) => {
                    let tol = if op == "var" { 1e-9 } else { 1e-14 };
                    assert!(
                        (a - b).abs() <= tol * b.abs().max(1e-300),
                        "{what} {op}[{i}]: {a} vs exact {b}"
                    );
                }
                (None, None) => {}
                other => panic!("{what} {op}[{i}]: {other:?}"),
            }
        }
    }
}

#[test]
fn time_mean_is_exact_and_the_same_for_every_p_and_thread_count() {
    let Some(py) = python_with("xarray, netCDF4, h5py") else {
        eprintln!("skipping: no xarray");
        return;
    };
    let dir = scratch("time-mean");
    let out = Command::new(py)
        .arg("-c")
        .arg(SCRIPT)
        .arg(&dir)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exact: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let era = dir.join("era.nc");
    let era = era.to_str().unwrap();
    for (dim, key, ps) in [("time", "time", &[1, 2, 3, 4][..]), ("lat", "lat", &[1, 3])] {
        let one = run(1, 1, era, dim);
        assert_eq!(one["decode"]["missing"][0], serde_json::Value::Null);
        check(&one["results"], &exact[key], dim);
        for &p in ps {
            assert_eq!(
                run(p, 1, era, dim)["results"],
                one["results"],
                "{dim}, P = {p}"
            );
        }
        assert_eq!(
            run(1, 2, era, dim)["results"],
            one["results"],
            "{dim}, 2 threads"
        );
        assert_eq!(
            run(2, 2, era, dim)["results"],
            one["results"],
            "{dim}, P = 2, 2 threads"
        );
    }
    // No _FillValue, no compression: the same bits.
    let nofill = dir.join("nofill.nc");
    assert_eq!(
        run(2, 1, nofill.to_str().unwrap(), "time")["results"],
        run(2, 1, era, "time")["results"]
    );
}
