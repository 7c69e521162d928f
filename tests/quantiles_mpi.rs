//! `reduce --quantile` under real `mpirun -n P`: whole-array and per-cell
//! quantiles compared bit for bit with NumPy (`np.nanquantile(a, [q…])`)
//! and xarray (`DataArray.quantile(q, dim=…)`) on files written by h5py and
//! xarray — ties, all-equal values, a single value, ±inf, f64 extremes,
//! float32 with NaN, packed int16, integers — and identical for P = 1..4
//! and 1 or 2 threads. Where CDO is installed, `cdo --percentile numpy
//! timpctl` is compared too.

mod common;
use common::*;
use serde_json::Value as J;
use std::path::Path;
use std::process::Command;

const QS: &str = "0,0.05,0.25,0.5,0.75,0.95,1";

/// Run a Python script (the test venv's) in `dir`; panics with its output on failure.
fn python(dir: &Path, script: &str) {
    let py = python_with("numpy, h5py, xarray").expect("the test venv (numpy, h5py, xarray)");
    let out = Command::new(py)
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// f64 values from their bit patterns (as the Python side writes them, so
/// that NaN and ±inf survive JSON).
fn from_bits(v: &J) -> Vec<f64> {
    v.as_array()
        .expect("array of bit patterns")
        .iter()
        .map(|x| f64::from_bits(x.as_u64().expect("u64 bits")))
        .collect()
}

fn same_bits(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g == w || (g.is_nan() && w.is_nan()),
            "{what}[{i}]: got {g:e}, NumPy {w:e}"
        );
    }
}

/// `reduce --json` with `--quantile qs` under `p` ranks and `threads`.
fn quantiles(p: usize, threads: usize, args: &[&str], qs: &str) -> J {
    let t = threads.to_string();
    let mut a = vec!["reduce"];
    a.extend_from_slice(args);
    a.extend(["--quantile", qs, "--threads", &t, "--json"]);
    mpirun(p, &a).ok().json()
}

const WRITE_WHOLE: &str = r#"
import numpy as np, h5py, json, warnings
warnings.simplefilter("ignore")
bits = lambda v: [int(x) for x in np.asarray(v, dtype=np.float64).ravel().view(np.uint64)]
rng = np.random.default_rng(13)
qs = [0, 0.05, 0.25, 0.5, 0.75, 0.95, 1]
cases = {}
with h5py.File("q.h5", "w") as f:
    def put(name, a, chunks=None, decoded=None, **attrs):
        d = f.create_dataset(name, data=a, chunks=chunks)
        for k, v in attrs.items():
            d.attrs[k] = v
        src = a if decoded is None else decoded
        cases[name] = bits(np.nanquantile(src.ravel(), qs))
    t = np.round(rng.normal(10, 3, (300, 500)), 1)
    t[rng.random(t.shape) < 0.03] = np.nan
    put("ties", t, chunks=(50, 100))
    np.save("ties.npy", t)
    cases["ties_sel"] = bits(np.nanquantile(t[10:200:3, 7:].ravel(), qs))
    put("equal", np.full((100, 100), 7.25))
    one = np.full((40, 50), np.nan); one[17, 3] = -3.5
    put("single", one, chunks=(10, 50))
    inf = rng.normal(0, 1, 5000); inf[[7, 4000]] = np.inf; inf[99] = -np.inf
    put("inf", inf)
    ext = np.array([-1.7976931348623157e308, 1.7976931348623157e308, 5e-324, -5e-324, -0.0, 0.0, 2.2250738585072014e-308, 1.0] * 3)
    put("extremes", ext)
    f32 = rng.normal(280, 15, (200, 300)).astype(np.float32)
    f32[rng.random(f32.shape) < 0.1] = np.nan
    put("f32nan", f32, chunks=(20, 300))
    raw = rng.integers(-2000, 2000, (120, 250)).astype(np.int16)
    raw[rng.random(raw.shape) < 0.05] = -32767
    dec = raw.astype(np.float64) * 0.01 + 273.15
    dec[raw == -32767] = np.nan
    put("packed", raw, chunks=(30, 250), decoded=dec, scale_factor=0.01, add_offset=273.15, _FillValue=np.int16(-32767))
    put("i64", rng.integers(-10**12, 10**12, 30000).astype(np.int64))
    put("u8", rng.integers(0, 256, (70, 90)).astype(np.uint8))
    # More values in one top-16-bit bucket than are collected at once:
    # the search refines with a second histogram.
    put("narrow", 1.0 + rng.random(400000) * 0.06, chunks=(50000,))
json.dump(cases, open("want.json", "w"))
"#;

#[test]
fn whole_array_quantiles_equal_numpy_bit_for_bit() {
    let d = scratch("quantile-whole");
    python(&d, WRITE_WHOLE);
    let want: J =
        serde_json::from_str(&std::fs::read_to_string(d.join("want.json")).unwrap()).unwrap();
    let f = d.join("q.h5");
    let fs = f.to_str().unwrap();
    let names = [
        "ties", "equal", "single", "inf", "extremes", "f32nan", "packed", "i64", "u8", "narrow",
    ];
    for name in names {
        let args = [fs, "--var", name, "--block-bytes", "16KiB"];
        let one = quantiles(1, 1, &args, QS);
        let keys: Vec<String> = QS
            .split(',')
            .map(|q| format!("q{}", q.parse::<f64>().unwrap()))
            .collect();
        let got: Vec<f64> = keys
            .iter()
            .map(|k| json_floats(&one["results"][k])[0])
            .collect();
        same_bits(name, &got, &from_bits(&want[name]));
        // Other rank and thread counts: the same bits.
        let runs: &[(usize, usize)] = if name == "ties" {
            &[(2, 1), (3, 2), (4, 1)]
        } else {
            &[(3, 2)]
        };
        for &(p, t) in runs {
            let other = quantiles(p, t, &args, QS);
            assert_eq!(
                other["results"], one["results"],
                "{name}: P={p} threads={t}"
            );
        }
    }
    // The same values from a .npy file, and a strided --select.
    let ties = quantiles(1, 1, &[fs, "--var", "ties", "--block-bytes", "16KiB"], QS);
    let npy = d.join("ties.npy");
    let j = quantiles(2, 2, &[npy.to_str().unwrap(), "--block-bytes", "16KiB"], QS);
    assert_eq!(j["results"], ties["results"], ".npy input");
    let j = quantiles(
        3,
        1,
        &[
            fs,
            "--var",
            "ties",
            "--select",
            "dim_0=10:200:3",
            "--select",
            "dim_1=7:",
            "--block-bytes",
            "16KiB",
        ],
        QS,
    );
    let keys: Vec<String> = QS
        .split(',')
        .map(|q| format!("q{}", q.parse::<f64>().unwrap()))
        .collect();
    let got: Vec<f64> = keys
        .iter()
        .map(|k| json_floats(&j["results"][k])[0])
        .collect();
    same_bits("ties with --select", &got, &from_bits(&want["ties_sel"]));
    // The count is the number of valid values; plain statistics come along.
    let j = quantiles(2, 1, &[fs, "--var", "single", "--op", "count,max"], "0.5");
    assert_eq!(j["results"]["count"], 1);
    assert_eq!(j["results"]["max"], -3.5);
    assert_eq!(j["results"]["q0.5"], -3.5);
}

const WRITE_XR: &str = r#"
import numpy as np, xarray as xr, json, warnings
warnings.simplefilter("ignore")
bits = lambda v: [int(x) for x in np.asarray(v, dtype=np.float64).ravel().view(np.uint64)]
rng = np.random.default_rng(5)
time = np.arange(37.0); lat = np.linspace(-80, 80, 9); lon = np.arange(0, 360, 30.0)
tas = (280 + rng.normal(0, 8, (37, 9, 12))).round(1).astype(np.float32)
tas[rng.random(tas.shape) < 0.08] = np.nan
tas[:, 4, 5] = np.nan                 # a cell with no values at all
tas[:, 2, 7] = 290.5                  # all equal
ds = xr.Dataset({"tas": (("time", "lat", "lon"), tas, {"units": "K"})},
                coords={"time": time, "lat": lat, "lon": lon})
ds.to_netcdf("x.nc", encoding={"tas": {"chunksizes": (10, 3, 12)}})
qs = [0.05, 0.5, 0.95]
out = {}
out["time"] = [bits(v) for v in ds.tas.quantile(qs, dim="time").values.reshape(3, -1)]
out["field"] = [bits(v) for v in ds.tas.quantile(qs, dim=["lat", "lon"]).values.reshape(3, -1)]
json.dump(out, open("want.json", "w"))
"#;

#[test]
fn quantiles_along_dimensions_equal_xarray() {
    let d = scratch("quantile-dims");
    python(&d, WRITE_XR);
    let want: J =
        serde_json::from_str(&std::fs::read_to_string(d.join("want.json")).unwrap()).unwrap();
    let f = d.join("x.nc");
    let fs = f.to_str().unwrap();
    let keys = ["q0.05", "q0.5", "q0.95"];
    for (dim, key) in [("time", "time"), ("lat,lon", "field")] {
        let args = [fs, "--var", "tas", "--dim", dim, "--block-bytes", "4KiB"];
        let one = quantiles(1, 1, &args, "0.05,0.5,0.95");
        for (iq, k) in keys.iter().enumerate() {
            same_bits(
                &format!("{dim} {k}"),
                &json_floats(&one["results"][k]),
                &from_bits(&want[key][iq]),
            );
        }
        for (p, t) in [(2, 2), (4, 1)] {
            let other = quantiles(p, t, &args, "0.05,0.5,0.95");
            assert_eq!(other["results"], one["results"], "{dim}: P={p} threads={t}");
        }
    }
    // --output: one variable per quantile, read back by xarray.
    let out = d.join("pct.nc");
    let os = out.to_str().unwrap();
    mpirun(
        3,
        &[
            "reduce",
            fs,
            "--var",
            "tas",
            "--dim",
            "time",
            "--quantile",
            "0.05,0.95",
            "-o",
            os,
        ],
    )
    .ok();
    python(
        &d,
        r#"
import numpy as np, xarray as xr
ds = xr.open_dataset("x.nc"); out = xr.open_dataset("pct.nc")
want = ds.tas.quantile([0.05, 0.95], dim="time")
for i, name in enumerate(["tas_q0.05", "tas_q0.95"]):
    assert out[name].dims == ("lat", "lon"), out[name].dims
    np.testing.assert_array_equal(out[name].values, want.values[i])
    assert out[name].attrs["units"] == "K"
    assert out[name].attrs["quantile"] in ("0.05", "0.95")
np.testing.assert_array_equal(out.lat.values, ds.lat.values)
"#,
    );
    // CDO's percentiles with NumPy's method (its default, nrank, is the
    // nearest rank without interpolation): the same values, in float32.
    let cdo = Command::new("cdo").arg("-V").output();
    if cdo.is_ok_and(|o| o.status.success()) {
        let pct = d.join("cdo95.nc");
        let st = Command::new("cdo")
            .args(["-s", "--percentile", "numpy", "timpctl,95", fs])
            .args(["-timmin", fs, "-timmax", fs])
            .arg(&pct)
            .status()
            .unwrap();
        assert!(st.success(), "cdo timpctl");
        let one = quantiles(2, 1, &[fs, "--var", "tas", "--dim", "time"], "0.95");
        let got = json_floats(&one["results"]["q0.95"]);
        let cdo_vals = ncdump_values(&pct, "tas");
        for (i, (g, c)) in got.iter().zip(&cdo_vals).enumerate() {
            // CDO leaves a constant series (min = max: the cell lat=2,
            // lon=7) missing; NumPy and chunkwise give the constant.
            if i == 2 * 12 + 7 {
                assert!(c.is_nan() && *g == 290.5, "constant cell: {g}, cdo {c}");
                continue;
            }
            assert!(
                (g.is_nan() && c.is_nan()) || *g as f32 == *c as f32,
                "cell {i}: chunkwise {g} (as f32 {}), cdo {c}",
                *g as f32
            );
        }
    }
}

/// Values of `var` from `ncdump -p 9,17` (NaN for `_` and NaN); 9 digits
/// identify a float32 exactly.
fn ncdump_values(file: &Path, var: &str) -> Vec<f64> {
    let out = Command::new("ncdump")
        .args(["-p", "9,17", "-v", var])
        .arg(file)
        .output()
        .expect("ncdump");
    let text = String::from_utf8_lossy(&out.stdout);
    let data = text.split("data:").nth(1).expect("data section");
    let body = data
        .split(&format!(" {var} ="))
        .nth(1)
        .expect("values")
        .split(';')
        .next()
        .unwrap();
    body.split(',')
        .map(|t| match t.trim() {
            "_" | "NaN" | "NaNf" | "nan" => f64::NAN,
            t => t.trim_end_matches('f').parse().unwrap(),
        })
        .collect()
}

#[test]
fn bad_quantile_lists_are_one_clear_error() {
    let d = scratch("quantile-errors");
    python(
        &d,
        "import h5py, numpy as np\nh5py.File('e.h5','w').create_dataset('a', data=np.arange(10.0))",
    );
    let f = d.join("e.h5");
    let fs = f.to_str().unwrap();
    expect_error(
        &["reduce", fs, "--var", "a", "--quantile", "95"],
        "outside [0, 1]",
    );
    expect_error(
        &["reduce", fs, "--var", "a", "--quantile", "-0.1"],
        "outside [0, 1]",
    );
    expect_error(
        &["reduce", fs, "--var", "a", "--quantile", "0.5,,0.9"],
        "not a number",
    );
    expect_error_p(
        3,
        &["reduce", fs, "--var", "a", "--quantile", "0.5;0.9"],
        "not a number",
    );
}
