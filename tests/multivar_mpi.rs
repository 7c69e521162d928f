//! Several variables in one pass (`--var t2m,msl`, `--var all`): the
//! results equal each variable's own reduce, for P = 1..4, also over many
//! files; `all` takes the data variables that have the reduced dimensions
//! (not coordinates, bounds or a 2-d field without time); one output file
//! holds them all, as xarray reads it; a variable without the reduced
//! dimension named explicitly is one error on every rank.

mod common;
use common::*;
use serde_json::Value as J;

const WRITER: &str = r#"
import sys, numpy as np, xarray as xr, warnings
warnings.simplefilter("ignore")
d = sys.argv[1]
rng = np.random.default_rng(3)
nt = 240
t2m = rng.normal(280, 10, (nt, 5, 6)).astype("f4"); t2m[rng.random(t2m.shape) < 0.05] = np.nan
ds = xr.Dataset(
    {"t2m": (("time", "lat", "lon"), t2m, {"units": "K"}),
     "msl": (("time", "lat", "lon"), rng.normal(1e5, 800, (nt, 5, 6)), {"units": "Pa"}),
     "u10": (("time", "lat", "lon"), rng.normal(0, 5, (nt, 5, 6))),
     "orog": (("lat", "lon"), rng.random((5, 6))),
     "time_bnds": (("time", "bnds"), np.stack([np.arange(nt), np.arange(nt) + 1], 1) * 1.0)},
    coords={"time": ("time", np.arange(nt) + 0.5, {"units": "days since 2000-01-01", "bounds": "time_bnds"}),
            "lat": ("lat", np.linspace(-60, 60, 5)), "lon": ("lon", np.arange(6) * 60.0)})
enc = {"u10": {"dtype": "int16", "scale_factor": 0.001, "add_offset": 0.0, "_FillValue": -32767}}
ds.to_netcdf(f"{d}/all.nc", encoding=enc)
for i, (a, b) in enumerate([(0, 100), (100, 101), (101, nt)]):
    ds.isel(time=slice(a, b)).to_netcdf(f"{d}/part{i}.nc", encoding=enc, unlimited_dims=["time"])
x = xr.open_dataset(f"{d}/all.nc")
for v in ["t2m", "msl", "u10"]:
    for op in ["mean", "max"]:
        print(f"{v}_{op}", " ".join(repr(float(a)) for a in np.asarray(getattr(x[v].astype("f8"), op)("time")).ravel()))
"#;

#[test]
fn several_variables_in_one_pass() {
    let dir = scratch("multivar");
    let want = keyed_floats(&run_python(
        "xarray, netCDF4",
        WRITER,
        &[dir.to_str().unwrap()],
    ));
    let all = dir.join("all.nc");
    let all = all.to_str().unwrap();
    let ops = ["--dim", "time", "--op", "mean,max"];
    let first = reduce_json(1, &[&[all, "--var", "all"][..], &ops[..]].concat());
    let keys: Vec<&String> = first["results"].as_object().unwrap().keys().collect();
    // `all` takes the data variables in name order.
    assert_eq!(
        keys,
        [
            "msl_mean", "msl_max", "t2m_mean", "t2m_max", "u10_mean", "u10_max"
        ]
    );
    for (k, w) in &want {
        let got = json_floats(&first["results"][k]);
        for (g, w) in got.iter().zip(w) {
            assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{k}: {g} vs {w}");
        }
    }
    // Each variable alone gives the same numbers.
    for v in ["t2m", "msl", "u10"] {
        let one = reduce_json(2, &[&[all, "--var", v][..], &ops[..]].concat());
        for op in ["mean", "max"] {
            assert_eq!(
                one["results"][op],
                first["results"][format!("{v}_{op}")],
                "{v} {op}"
            );
        }
    }
    let parts = dir.join("part*.nc");
    for p in 2..=4 {
        let j = reduce_json(p, &[&[all, "--var", "msl,t2m,u10"][..], &ops[..]].concat());
        assert_eq!(j["results"], first["results"], "P={p}");
        let j = reduce_json(
            p,
            &[&[parts.to_str().unwrap(), "--var", "all"][..], &ops[..]].concat(),
        );
        assert_eq!(j["results"], first["results"], "many files, P={p}");
    }
    // One output file with every variable, as xarray reads it.
    let o = dir.join("out.nc");
    reduce_json(
        3,
        &[
            &[all, "--var", "all", "-o", o.to_str().unwrap()][..],
            &ops[..],
        ]
        .concat(),
    );
    let check = format!(
        "import xarray as xr, json\nx = xr.open_dataset('{}')\nprint(json.dumps({{k: x[k].values.ravel().tolist() for k in sorted(x.data_vars)}}))",
        o.display()
    );
    let file: J = serde_json::from_str(&run_python("xarray, netCDF4", &check, &[])).unwrap();
    let names: Vec<&String> = file.as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        [
            "msl_max", "msl_mean", "t2m_max", "t2m_mean", "u10_max", "u10_mean"
        ]
    );
    for k in names {
        assert_eq!(
            json_floats(&file[k]),
            json_floats(&first["results"][k]),
            "{k} in the file"
        );
    }
    // A variable named explicitly must have the reduced dimension.
    expect_error_p(
        2,
        &["reduce", all, "--var", "t2m,orog", "--dim", "time"],
        "variable 'orog'",
    );
    expect_error_p(2, &["reduce", all, "--var", "t2m,,msl"], "empty name");
}
