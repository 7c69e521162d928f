//! `reduce --weights` under real `mpirun -n P`, against xarray's
//! `weighted(...)` on files written by xarray (float64 with NaN, a time
//! step with no values, weights transposed against the variable, weights
//! over time, areas from `lat_bnds`/`lon_bnds`, `areacella` in another
//! file), within 1e-12 relative; bit-identical for P = 1..4 and threads
//! 1/2; `cdo fldmean` where CDO is installed; and each bad input one
//! clear error on every rank.

mod common;
use common::*;
use serde_json::Value as J;
use std::path::Path;
use std::process::Command;

fn python(dir: &Path, script: &str) {
    let py = python_with("numpy, xarray, netCDF4").expect("the test venv (numpy, xarray)");
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

fn from_bits(v: &J) -> Vec<f64> {
    v.as_array()
        .expect("bit patterns")
        .iter()
        .map(|x| f64::from_bits(x.as_u64().unwrap()))
        .collect()
}

fn close_all(what: &str, got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || (g - w).abs() <= rel * w.abs().max(1e-300);
        assert!(ok, "{what}[{i}]: got {g:e}, xarray {w:e}");
    }
}

fn reduce(p: usize, threads: usize, args: &[&str]) -> J {
    let t = threads.to_string();
    let mut a = vec!["reduce"];
    a.extend_from_slice(args);
    a.extend(["--threads", &t, "--json"]);
    mpirun(p, &a).ok().json()
}

const WRITE: &str = r#"
import numpy as np, xarray as xr, json, warnings
warnings.simplefilter("ignore")
bits = lambda v: [int(x) for x in np.asarray(v, dtype=np.float64).ravel().view(np.uint64)]
rng = np.random.default_rng(3)
nt, nlat, nlon = 6, 18, 36
time = np.arange(nt, dtype=float)
lat = np.linspace(-85, 85, nlat)
lon = np.arange(5, 360, 10.0)
lat_b = np.stack([lat - 5, lat + 5], 1)
lon_b = np.stack([lon - 5, lon + 5], 1)
tas = 250 + 40 * np.cos(np.deg2rad(lat))[None, :, None] + rng.normal(0, 2, (nt, nlat, nlon))
tas[rng.random(tas.shape) < 0.05] = np.nan
tas[3] = np.nan
R = 6371000.0
area = R * R * np.deg2rad(10.0) * np.abs(np.sin(np.deg2rad(lat_b[:, 1])) - np.sin(np.deg2rad(lat_b[:, 0])))
area = np.repeat(area[:, None], nlon, 1)
ds = xr.Dataset(
    {"tas": (("time", "lat", "lon"), tas, {"units": "K"}),
     "lat_bnds": (("lat", "bnds"), lat_b), "lon_bnds": (("lon", "bnds"), lon_b),
     "dt": (("time",), np.array([31, 28, 31, 30, 31, 30.0])),
     "w": (("lon", "lat"), rng.random((nlon, nlat))),
     "short": (("bnds",), np.array([1.0, 2.0])),
     "neg": (("lat",), np.where(lat > 70, -0.5, 1.0))},
    coords={"time": time,
            "lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north", "bounds": "lat_bnds"}),
            "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east", "bounds": "lon_bnds"})})
ds["tasp"] = ds.tas
ds.to_netcdf("w.nc", encoding={"tas": {"chunksizes": (2, 6, 36)},
                               "tasp": {"dtype": "int16", "scale_factor": 0.01, "add_offset": 250.0, "_FillValue": -32767}})
raw = xr.open_dataset("w.nc", mask_and_scale=False).tasp
packed = xr.where(raw == -32767, np.nan, raw.astype(np.float64) * 0.01 + 250.0)
fx = xr.Dataset({"areacella": (("lat", "lon"), area, {"units": "m2"})}, coords={"lat": ds.lat, "lon": ds.lon})
fx.to_netcdf("fx.nc")
xr.Dataset({"areacella": (("lat", "lon"), np.ones((nlat + 1, nlon)))}, coords={"lat": np.arange(nlat + 1.0), "lon": lon}).to_netcdf("bad.nc")
coslat = np.cos(np.deg2rad(ds.lat))
out = {}
wc = ds.tas.weighted(coslat)
for op in ["mean", "sum", "var", "std"]:
    out["coslat_field_" + op] = bits(getattr(wc, op)(("lat", "lon")))
out["coslat_all_mean"] = bits(wc.mean())
out["packed_field_mean"] = bits(packed.weighted(coslat).mean(("lat", "lon")))
nh = ds.tas.sel(lat=slice(0, 90))
out["coslat_nh_mean"] = bits(nh.weighted(np.cos(np.deg2rad(nh.lat))).mean(("lat", "lon")))
out["coslat_all_std"] = bits(wc.std())
out["area_field_mean"] = bits(ds.tas.weighted(fx.areacella).mean(("lat", "lon")))
out["area_field_var"] = bits(ds.tas.weighted(fx.areacella).var(("lat", "lon")))
out["dt_time_mean"] = bits(ds.tas.weighted(ds.dt).mean("time"))
out["dt_time_std"] = bits(ds.tas.weighted(ds.dt).std("time"))
out["w_time_lon_mean"] = bits(ds.tas.weighted(ds.w).mean(("time", "lon")))
out["w_time_lon_sum"] = bits(ds.tas.weighted(ds.w).sum(("time", "lon")))
json.dump(out, open("want.json", "w"))
"#;

/// A weighted time mean over many one-step blocks: the blocks are grouped
/// into leaves of several blocks each (kept trailing axes), and every block
/// of every leaf must count (it once took one block per leaf: 16 of 400).
#[test]
fn weighted_time_mean_counts_every_block_of_a_leaf() {
    let d = scratch("weights-leaves");
    python(
        &d,
        r#"
import numpy as np, xarray as xr, json
n = 400
x = np.random.default_rng(1).normal(280, 10, (n, 3, 4))
ds = xr.Dataset({"tas": (("time", "lat", "lon"), x)},
                coords={"time": ("time", np.arange(n) * 1.0, {"units": "days since 2000-01-01"}),
                        "lat": ("lat", [-30.0, 0.0, 30.0], {"units": "degrees_north"}),
                        "lon": np.arange(4.0)})
ds.to_netcdf("long.nc", encoding={"tas": {"chunksizes": (1, 3, 4)}})
m = ds.tas.weighted(np.cos(np.deg2rad(ds.lat))).mean("time")
json.dump([int(v) for v in np.asarray(m, dtype=np.float64).ravel().view(np.uint64)], open("want.json", "w"))
"#,
    );
    let want: J =
        serde_json::from_str(&std::fs::read_to_string(d.join("want.json")).unwrap()).unwrap();
    let f = d.join("long.nc");
    let args = [
        f.to_str().unwrap(),
        "--var",
        "tas",
        "--weights",
        "coslat",
        "--dim",
        "time",
        "--op",
        "mean,count",
        "--block-bytes",
        "96",
    ];
    let one = reduce(1, 1, &args);
    assert_eq!(one["n_blocks"], 400);
    assert!(
        json_floats(&one["results"]["count"])
            .iter()
            .all(|&c| c == 400.0)
    );
    close_all(
        "long coslat mean",
        &json_floats(&one["results"]["mean"]),
        &from_bits(&want),
        1e-12,
    );
    for (p, t) in [(2, 1), (3, 2)] {
        assert_eq!(
            reduce(p, t, &args)["results"],
            one["results"],
            "P={p} threads={t}"
        );
    }
}

#[test]
fn weighted_statistics_match_xarray() {
    let d = scratch("weights");
    python(&d, WRITE);
    let want: J =
        serde_json::from_str(&std::fs::read_to_string(d.join("want.json")).unwrap()).unwrap();
    let f = d.join("w.nc");
    let fs = f.to_str().unwrap();
    let fx = format!("{}:areacella", d.join("fx.nc").display());
    let base = [fs, "--var", "tas", "--block-bytes", "2KiB"];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |p: usize, t: usize, args: &[String]| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        reduce(p, t, &a)
    };
    // Field statistics per time step, cos(lat) weights: every P and threads.
    let args = with(&[
        "--weights",
        "coslat",
        "--dim",
        "lat,lon",
        "--op",
        "mean,sum,var,std,count",
    ]);
    let one = run(1, 1, &args);
    for op in ["mean", "sum", "var", "std"] {
        close_all(
            &format!("coslat field {op}"),
            &json_floats(&one["results"][op]),
            &from_bits(&want[format!("coslat_field_{op}")]),
            1e-12,
        );
    }
    // A time step with no values: mean NaN, count 0 (as xarray).
    assert_eq!(one["results"]["mean"][3], "NaN");
    assert_eq!(one["results"]["count"][3], 0);
    for (p, t) in [(2, 1), (3, 2), (4, 1), (1, 2)] {
        let other = run(p, t, &args);
        assert_eq!(other["results"], one["results"], "P={p} threads={t}");
    }
    // Whole array.
    let j = run(3, 1, &with(&["--weights", "coslat", "--op", "mean,std"]));
    close_all(
        "coslat mean",
        &json_floats(&j["results"]["mean"]),
        &from_bits(&want["coslat_all_mean"]),
        1e-12,
    );
    close_all(
        "coslat std",
        &json_floats(&j["results"]["std"]),
        &from_bits(&want["coslat_all_std"]),
        1e-12,
    );
    // Packed int16 with a fill value, decoded row by row (CF decoding).
    let packed: Vec<String> = ["--var", "tasp", "--block-bytes", "2KiB"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut pargs = vec![fs.to_string()];
    pargs.extend(packed);
    pargs.extend(["--weights", "coslat", "--dim", "lat,lon", "--op", "mean"].map(String::from));
    let j = run(2, 2, &pargs);
    close_all(
        "packed coslat mean",
        &json_floats(&j["results"]["mean"]),
        &from_bits(&want["packed_field_mean"]),
        1e-12,
    );
    // A --select: the northern hemisphere.
    let j = run(
        3,
        1,
        &with(&[
            "--weights",
            "coslat",
            "--dim",
            "lat,lon",
            "--select",
            "lat=0..90",
            "--op",
            "mean",
        ]),
    );
    close_all(
        "coslat NH mean",
        &json_floats(&j["results"]["mean"]),
        &from_bits(&want["coslat_nh_mean"]),
        1e-12,
    );
    // Cell areas: from lat_bnds/lon_bnds (area) and areacella in another file.
    for spec in ["area", fx.as_str()] {
        let j = run(
            2,
            2,
            &with(&["--weights", spec, "--dim", "lat,lon", "--op", "mean,var"]),
        );
        close_all(
            &format!("{spec} mean"),
            &json_floats(&j["results"]["mean"]),
            &from_bits(&want["area_field_mean"]),
            1e-12,
        );
        close_all(
            &format!("{spec} var"),
            &json_floats(&j["results"]["var"]),
            &from_bits(&want["area_field_var"]),
            1e-12,
        );
    }
    // Weights over time (the kept-last-axis kernel), and transposed weights.
    let j = run(
        3,
        2,
        &with(&["--weights", "dt", "--dim", "time", "--op", "mean,std"]),
    );
    close_all(
        "dt mean",
        &json_floats(&j["results"]["mean"]),
        &from_bits(&want["dt_time_mean"]),
        1e-12,
    );
    close_all(
        "dt std",
        &json_floats(&j["results"]["std"]),
        &from_bits(&want["dt_time_std"]),
        1e-12,
    );
    let j = run(
        4,
        1,
        &with(&["--weights", "w", "--dim", "time,lon", "--op", "mean,sum"]),
    );
    close_all(
        "w mean",
        &json_floats(&j["results"]["mean"]),
        &from_bits(&want["w_time_lon_mean"]),
        1e-12,
    );
    close_all(
        "w sum",
        &json_floats(&j["results"]["sum"]),
        &from_bits(&want["w_time_lon_sum"]),
        1e-12,
    );

    // CDO's field mean weights by its own grid-cell areas (`gridarea`, from
    // the bounds), whose edges are great circles — also along latitudes —
    // so they differ from the exact lat-lon areas by up to 0.5 % on this
    // 10° grid. With CDO's areas as `FILE:VAR` weights the means agree to
    // 1e-12; with `--weights area` to 1e-4 (it shrinks with the spacing²).
    let cdo = Command::new("cdo").arg("-V").output();
    if cdo.is_ok_and(|o| o.status.success()) {
        let out = d.join("fldmean.nc");
        let ga = d.join("gridarea.nc");
        for (op, file) in [("fldmean", &out), ("gridarea", &ga)] {
            let st = Command::new("cdo")
                .args(["-s", "-b", "F64", op, "-selname,tas", fs])
                .arg(file)
                .status()
                .unwrap();
            assert!(st.success(), "cdo {op}");
        }
        let py = python_with("netCDF4").unwrap();
        let o = Command::new(py)
            .args(["-c", "import netCDF4, sys; v = netCDF4.Dataset(sys.argv[1])['tas'][:]; print(' '.join(repr(float(x)) for x in v.filled(float('nan')).ravel()))"])
            .arg(&out)
            .output()
            .unwrap();
        let cdo_vals: Vec<f64> = String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .map(|t| t.parse().unwrap())
            .collect();
        let cdo_area = format!("{}:cell_area", ga.display());
        let j = run(
            2,
            1,
            &with(&["--weights", &cdo_area, "--dim", "lat,lon", "--op", "mean"]),
        );
        close_all(
            "cdo fldmean, CDO's areas",
            &json_floats(&j["results"]["mean"]),
            &cdo_vals,
            1e-12,
        );
        let j = run(
            2,
            1,
            &with(&["--weights", "area", "--dim", "lat,lon", "--op", "mean"]),
        );
        close_all(
            "cdo fldmean, exact areas",
            &json_floats(&j["results"]["mean"]),
            &cdo_vals,
            1e-4,
        );
    }
}

#[test]
fn bad_weights_are_one_clear_error() {
    let d = scratch("weights-errors");
    python(&d, WRITE);
    python(
        &d,
        "import h5py, numpy as np\nh5py.File('plain.h5','w').create_dataset('a', data=np.ones((4, 5)))",
    );
    let f = d.join("w.nc");
    let fs = f.to_str().unwrap();
    let bad = format!("{}:areacella", d.join("bad.nc").display());
    let plain = d.join("plain.h5");
    let r = |extra: &[&str]| -> Vec<String> {
        ["reduce", fs, "--var", "tas"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let check = |p: usize, args: Vec<String>, needle: &str| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        expect_error_p(p, &a, needle);
    };
    check(2, r(&["--weights", &bad]), "has length 19");
    check(3, r(&["--weights", "lat_bnds"]), "dimension 'bnds'");
    check(
        2,
        r(&["--weights", "neg", "--dim", "lat,lon"]),
        "weight -0.5 at lat=",
    );
    check(2, r(&["--weights", "nosuch"]), "'nosuch' not found");
    check(2, r(&["--weights", "coslat", "--ddof", "1"]), "--ddof");
    check(
        2,
        r(&["--weights", "coslat", "--quantile", "0.5"]),
        "weighted quantiles",
    );
    check(
        3,
        vec![
            "reduce".into(),
            plain.display().to_string(),
            "--var".into(),
            "a".into(),
            "--weights".into(),
            "coslat".into(),
        ],
        "no latitude coordinate",
    );
}
