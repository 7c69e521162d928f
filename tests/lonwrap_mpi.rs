//! `--select lon=LO..HI` across the seam of a global longitude (issue 16,
//! item 2), under real `mpirun -n P`: the selection equals CDO's
//! `sellonlatbox` (element by element, and its written longitudes) and
//! xarray's roll + sel, for every statistic, reducing over time, over
//! longitude and over everything; results are bit-identical for P = 1..4.
//! Whether a coordinate is a periodic longitude is decided by its CF
//! metadata, not its name; what cannot be represented is one error.

mod common;
use common::*;
use serde_json::Value as J;
use std::path::Path;
use std::process::Command;

/// Write the test files and the oracle's answers (`want.json`) into `dir`.
const ORACLE: &str = r#"
import json, subprocess, sys
import numpy as np, xarray as xr
d = sys.argv[1]
rng = np.random.default_rng(16)
nt, ny, nx = 6, 5, 180
lon = np.arange(nx) * 2.0
lat = np.linspace(-60, 60, ny)
t = (rng.standard_normal((nt, ny, nx)) * 10 + 280).astype("f4")
t[1, 2, 178] = np.nan          # a missing value in the wrapped part
t[:, 4, 176] = np.nan          # a cell without data
def write(name, lon_name, lon_vals, lon_attrs, data):
    ds = xr.Dataset({"t": (("time", "lat", lon_name), data)},
        coords={"time": ("time", np.arange(nt) * 1.0, {"units": "days since 2000-01-01"}),
                "lat": ("lat", lat, {"units": "degrees_north"}),
                lon_name: (lon_name, lon_vals, lon_attrs)})
    enc = {"t": {"zlib": True, "shuffle": True, "chunksizes": (2, 5, 24)}}
    ds.to_netcdf(f"{d}/{name}", engine="netcdf4", encoding=enc)
write("in.nc", "lon", lon, {"units": "degrees_east"}, t)
# The same grid named 'x', marked a longitude by standard_name only.
write("x.nc", "x", lon, {"standard_name": "longitude"}, t)
# Named 'lon' without CF metadata: not periodic.
write("plain.nc", "lon", lon, {}, t)
# A CF longitude with both 0 and 360 (181 points): not periodic.
t181 = np.concatenate([t, t[:, :, :1]], axis=2)
write("dup.nc", "lon", np.arange(nx + 1) * 2.0, {"units": "degrees_east"}, t181)

out = {}
for box, key in [("-10,10", "a"), ("350,10", "b")]:
    subprocess.run(["cdo", "-s", f"sellonlatbox,{box},-90,90", f"{d}/in.nc", f"{d}/cdo_{key}.nc"], check=True)
    c = xr.open_dataset(f"{d}/cdo_{key}.nc")
    out[f"lon_{key}"] = c.lon.values.tolist()
    sel = c.t.transpose("time", "lat", "lon").values.astype("f8")
    out[f"data_{key}"] = sel
# xarray: roll the seam to the middle, relabel -180..178, then sel.
x = xr.open_dataset(f"{d}/in.nc").t
r = x.roll(lon=90, roll_coords=True)
r = r.assign_coords(lon=((r.lon + 180) % 360) - 180).sel(lon=slice(-10, 10))
assert (r.lon.values == np.array(out["lon_a"])).all(), (r.lon.values, out["lon_a"])
assert np.array_equal(r.values.astype("f8"), out["data_a"], equal_nan=True)
assert np.array_equal(out["data_b"], out["data_a"], equal_nan=True)
a = out.pop("data_a"); out.pop("data_b")
def stats(v, axis):
    with np.errstate(all="ignore"):
        import warnings; warnings.simplefilter("ignore")
        return {"sum": np.nansum(v, axis=axis), "mean": np.nanmean(v, axis=axis),
                "min": np.nanmin(v, axis=axis), "max": np.nanmax(v, axis=axis),
                "var": np.nanvar(v, axis=axis), "std": np.nanstd(v, axis=axis),
                "count": np.sum(~np.isnan(v), axis=axis).astype("f8"),
                "q0.5": np.nanquantile(v, 0.5, axis=axis)}
for dim, axis in [("time", 0), ("lon", 2), ("all", None)]:
    s = stats(a, axis)
    out[dim] = {k: ["NaN" if x != x else x for x in np.ravel(v).tolist()] for k, v in s.items()}
json.dump(out, open(f"{d}/want.json", "w"))
"#;

fn run_oracle(d: &Path) -> Option<J> {
    if Command::new("cdo").arg("--version").output().is_err() {
        eprintln!("skipped: cdo is not installed (apt-get install -y cdo)");
        return None;
    }
    let py = python_with("xarray, netCDF4")?;
    let r = Command::new(py)
        .arg("-c")
        .arg(ORACLE)
        .arg(d)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    Some(serde_json::from_str(&std::fs::read_to_string(d.join("want.json")).unwrap()).unwrap())
}

const OPS: &str = "sum,mean,min,max,var,std,count";

fn close_all(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if w.is_nan() {
            assert!(g.is_nan(), "{what}[{i}]: {g} vs NaN");
        } else {
            assert!(
                (g - w).abs() <= 1e-12 * w.abs().max(1.0),
                "{what}[{i}]: {g} vs {w}"
            );
        }
    }
}

#[test]
fn wrapped_longitude_ranges_equal_cdo_and_xarray_for_every_p() {
    let d = scratch("lonwrap");
    let Some(want) = run_oracle(&d) else { return };
    let f = d.join("in.nc");
    let fs = f.to_str().unwrap();
    let lon_a: Vec<f64> = json_floats(&want["lon_a"]);
    assert_eq!(lon_a, (-5..=5).map(|i| i as f64 * 2.0).collect::<Vec<_>>());
    for select in ["lon=-10..10", "lon=350..10"] {
        for (dim, ps) in [("time", &[1, 2, 3, 4][..]), ("lon", &[1, 3]), ("all", &[2])] {
            // 1 KiB blocks: many blocks, some across the seam.
            let mut args = vec![
                fs,
                "--var",
                "t",
                "--select",
                select,
                "--op",
                OPS,
                "--quantile",
                "0.5",
                "--block-bytes",
                "1KiB",
            ];
            if dim != "all" {
                args.extend(["--dim", dim]);
            }
            let first = reduce_json(ps[0], &args);
            for op in OPS.split(',').chain(["q0.5"]) {
                close_all(
                    &format!("{select} --dim {dim} {op}"),
                    &json_floats(&first["results"][op]),
                    &json_floats(&want[dim][op]),
                );
            }
            if dim == "time" {
                assert_eq!(json_floats(&first["coords"]["lon"]), lon_a, "{select}");
            }
            for &p in &ps[1..] {
                let other = reduce_json(p, &args);
                assert_eq!(other["results"], first["results"], "{select} {dim} P={p}");
            }
        }
    }
    // libhdf5's own read path (not chunk-direct) and the default blocks agree.
    let args = [fs, "--var", "t", "--select", "lon=-10..10", "--dim", "time"];
    let lib = mpirun_env(
        2,
        &[&["reduce"][..], &args, &["--json"]].concat(),
        &[("CHUNKWISE_NO_CHUNK_DIRECT", "1")],
    )
    .ok()
    .json();
    assert_eq!(lib["results"], reduce_json(1, &args)["results"]);
    close_all(
        "libhdf5 mean",
        &json_floats(&lib["results"]["mean"]),
        &json_floats(&want["time"]["mean"]),
    );

    // --output: the longitude is written continuously, -10..10 as CDO does,
    // and the data are CDO's selection averaged over time.
    let out = d.join("mean.nc");
    let os = out.to_str().unwrap();
    mpirun(
        3,
        &[
            "reduce",
            fs,
            "--var",
            "t",
            "--select",
            "lon=350..10",
            "--dim",
            "time",
            "--op",
            "mean",
            "--block-bytes",
            "1KiB",
            "-o",
            os,
        ],
    )
    .ok();
    let py = python_with("xarray, netCDF4").unwrap();
    let r = Command::new(py)
        .args([
            "-c",
            "import sys, json, xarray as xr; o = xr.open_dataset(sys.argv[1]); \
             print(json.dumps({'lon': o.lon.values.tolist(), 'units': o.lon.attrs.get('units'), \
             't': [None if v != v else v for v in o.t.values.astype('f8').ravel().tolist()]}))",
            os,
        ])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let o: J = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(json_floats(&o["lon"]), lon_a);
    assert_eq!(o["units"], "degrees_east");
    let got: Vec<f64> = o["t"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap_or(f64::NAN))
        .collect();
    close_all("output mean", &got, &json_floats(&want["time"]["mean"]));
}

#[test]
fn cf_metadata_not_the_name_makes_a_longitude_periodic_and_the_rest_is_an_error() {
    let d = scratch("lonwrap-cf");
    if run_oracle(&d).is_none() {
        return;
    }
    let shape = |file: &str, select: &str| -> J {
        let f = d.join(file);
        let j = reduce_json(
            2,
            &[
                f.to_str().unwrap(),
                "--var",
                "t",
                "--select",
                select,
                "--op",
                "count",
            ],
        );
        j["selected_shape"].clone()
    };
    // 'x' with standard_name = longitude wraps: 11 points.
    assert_eq!(shape("x.nc", "x=-10..10"), serde_json::json!([6, 5, 11]));
    assert_eq!(shape("x.nc", "x=350..10"), serde_json::json!([6, 5, 11]));
    // 'lon' without CF metadata is an ordinary coordinate: clipped to
    // 0..10 as xarray's sel does.
    assert_eq!(
        shape("plain.nc", "lon=-10..10"),
        serde_json::json!([6, 5, 6])
    );
    // Not representable: one error each, never a silent subset.
    let dup = d.join("dup.nc");
    let ds = dup.to_str().unwrap();
    let f = d.join("in.nc");
    let fs = f.to_str().unwrap();
    expect_error(
        &["reduce", ds, "--var", "t", "--select", "lon=-10..10"],
        "not periodic",
    );
    expect_error(
        &["reduce", fs, "--var", "t", "--select", "lon=-10..400"],
        "wider than 360",
    );
    expect_error(
        &["reduce", fs, "--var", "t", "--select", "lat=60..50"],
        "above upper bound",
    );
    expect_error(
        &["reduce", fs, "--var", "t", "--select", "lon=0.5..1.5"],
        "selects nothing",
    );
    // On the 0..360 grid a range inside it is fine (360 is the 0 it takes).
    let j = reduce_json(
        1,
        &[ds, "--var", "t", "--select", "lon=0..10", "--op", "count"],
    );
    assert_eq!(j["selected_shape"], serde_json::json!([6, 5, 6]));
}
