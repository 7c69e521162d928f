//! Reductions over some dimensions (`--dim`/`--axis`), selections
//! (`--select`), CF decoding and `--output` NetCDF-4 files, all under real
//! `mpirun -n P`. Inputs come from external writers (`ncgen` from CDL text in
//! tests/data, and `generate` checked through `h5dump`); expected values are
//! closed forms or computed here from the `h5dump` bytes.

mod common;
use common::*;
use serde_json::Value as J;
use std::path::Path;

/// Run under P = 1..4 and assert the results are bit-identical; returns P=1's.
fn same_for_every_p(args: &[&str]) -> J {
    let first = reduce_json(1, args);
    for p in 2..=4 {
        let j = reduce_json(p, args);
        assert_eq!(j["results"], first["results"], "P={p} differs for {args:?}");
    }
    first
}

/// Values of variable `var` from `ncdump -v var` (the independent reader).
fn ncdump_values(file: &Path, var: &str) -> Vec<f64> {
    let out = std::process::Command::new("ncdump")
        .args(["-p", "17,17", "-v", var])
        .arg(file)
        .output()
        .expect("ncdump");
    assert!(out.status.success(), "ncdump failed on {}", file.display());
    let text = String::from_utf8_lossy(&out.stdout);
    let data = text.split("data:").nth(1).expect("data section");
    let body = data
        .split(&format!(" {var} ="))
        .nth(1)
        .expect("variable data")
        .split(';')
        .next()
        .unwrap();
    body.split(',')
        .map(|t| match t.trim() {
            "_" | "NaN" | "nan" => f64::NAN,
            t => t.parse().unwrap_or_else(|_| panic!("ncdump value '{t}'")),
        })
        .collect()
}

/// `ncdump -h` of a file.
fn ncdump_header(file: &Path) -> String {
    let out = std::process::Command::new("ncdump")
        .arg("-h")
        .arg(file)
        .output()
        .expect("ncdump");
    assert!(
        out.status.success(),
        "ncdump -h failed on {}",
        file.display()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// tas in climate.cdl: 100·t + 10·i + j, with the last element a fill value.
fn tas(t: usize, i: usize, j: usize) -> f64 {
    if (t, i, j) == (5, 3, 4) {
        f64::NAN
    } else {
        (100 * t + 10 * i + j) as f64
    }
}

fn mean_of(xs: impl Iterator<Item = f64>) -> (f64, usize) {
    let v: Vec<f64> = xs.filter(|x| !x.is_nan()).collect();
    (fsum(v.iter().copied()) / v.len() as f64, v.len())
}

#[test]
fn time_mean_and_field_mean_of_an_ncgen_file() {
    let d = scratch("axes-climate");
    let f = ncgen(&d, "climate");
    let fs = f.to_str().unwrap();

    // inspect lists the dimensions as `ncdump -h` does.
    let text = direct(&["inspect", fs]).ok().stdout;
    assert!(
        text.contains("dimensions:\n    time = 6 ;\n    lat = 4 ;\n    lon = 5 ;\n"),
        "{text}"
    );
    assert!(
        text.contains("dataset /tas float32 (time=6, lat=4, lon=5)"),
        "{text}"
    );
    assert!(text.contains("dataset /lat float32 (lat=4)"), "{text}");

    // Time mean: result over (lat, lon) with the file's coordinates.
    let j = same_for_every_p(&[fs, "--var", "tas", "--dim", "time", "--op", "mean,count"]);
    assert_eq!(j["result_dims"], serde_json::json!(["lat", "lon"]));
    assert_eq!(j["result_shape"], serde_json::json!([4, 5]));
    assert_eq!(
        json_floats(&j["coords"]["lat"]),
        vec![60.0, 30.0, -30.0, -60.0]
    );
    let mean = json_floats(&j["results"]["mean"]);
    let count = json_floats(&j["results"]["count"]);
    for i in 0..4 {
        for k in 0..5 {
            let (m, n) = mean_of((0..6).map(|t| tas(t, i, k)));
            assert_eq!(mean[i * 5 + k], m, "time mean at ({i},{k})");
            assert_eq!(count[i * 5 + k], n as f64);
        }
    }
    // Field mean per time step (--axis form), as xarray's mean(dim=["lat","lon"]).
    let j = same_for_every_p(&[fs, "--var", "tas", "--axis", "1,-1", "--op", "mean"]);
    assert_eq!(j["result_dims"], serde_json::json!(["time"]));
    assert_eq!(
        json_floats(&j["coords"]["time"]),
        vec![0.0, 31.0, 59.0, 90.0, 120.0, 151.0]
    );
    let got = json_floats(&j["results"]["mean"]);
    for (t, g) in got.iter().enumerate() {
        let (m, _) = mean_of((0..20).map(|c| tas(t, c / 5, c % 5)));
        close(&format!("field mean t={t}"), *g, m, 1e-15);
    }
}

#[test]
fn selections_by_index_and_by_coordinate_value() {
    let d = scratch("axes-select");
    let f = ncgen(&d, "climate");
    let fs = f.to_str().unwrap();
    // lat is descending (60, 30, -30, -60): 0..90 selects indices 0 and 1;
    // time=1:6:2 selects time steps 1, 3, 5.
    let j = same_for_every_p(&[
        fs,
        "--var",
        "tas",
        "--dim",
        "time",
        "--select",
        "lat=0..90",
        "--select",
        "time=1:6:2",
        "--select",
        "lon=-2:",
        "--op",
        "mean",
    ]);
    assert_eq!(j["result_shape"], serde_json::json!([2, 2]));
    assert_eq!(json_floats(&j["coords"]["lon"]), vec![216.0, 288.0]);
    let got = json_floats(&j["results"]["mean"]);
    for (c, g) in got.iter().enumerate() {
        let (i, k) = (c / 2, 3 + c % 2);
        let (m, _) = mean_of([1, 3, 5].into_iter().map(|t| tas(t, i, k)));
        assert_eq!(*g, m, "cell {c}");
    }
    // Only the selected part is read: 3×2×2 float32 values.
    assert_eq!(j["bytes_read"], 3 * 2 * 2 * 4);
}

#[test]
fn cf_fill_missing_scale_offset_and_nan() {
    let d = scratch("axes-cf");
    let f = ncgen(&d, "climate");
    let fs = f.to_str().unwrap();
    // pr: raw = 20t + 5i + j, value = raw·0.5 + 10; raw 99 is missing_value
    // (t=4, i=3, j=4) and the raw -1 at (5, 3, 3) is _FillValue.
    let vals: Vec<f64> = (0..120)
        .filter(|&r| r != 99 && r != 118)
        .map(|r| r as f64 * 0.5 + 10.0)
        .collect();
    let want = reference(&vals);
    let j = same_for_every_p(&[fs, "--var", "pr", "--op", "count,sum,mean,std,min,max"]);
    let r = &j["results"];
    assert_eq!(r["count"], 118);
    close("pr sum", r["sum"].as_f64().unwrap(), want.sum, 1e-15);
    close("pr mean", r["mean"].as_f64().unwrap(), want.mean, 1e-15);
    close("pr std", r["std"].as_f64().unwrap(), want.var.sqrt(), 1e-14);
    assert_eq!(r["min"].as_f64().unwrap(), 10.0);
    assert_eq!(r["max"].as_f64().unwrap(), 119.0 * 0.5 + 10.0);
    assert_eq!(j["decode"]["scale"], 0.5);

    // nn: NaN skipped per column; a column that is all NaN gives NaN; with
    // --keep-nan every column holding a NaN gives NaN.
    let j = same_for_every_p(&[fs, "--var", "nn", "--dim", "time", "--op", "mean,count"]);
    let m = json_floats(&j["results"]["mean"]);
    // Columns (over time): lat0 = [1,_,5,1,1,1], lat1 = [_,_,6,2,2,2], lat2 = [3,_,7,3,3,3], lat3 = [4,_,8,4,4,4].
    assert_eq!(m, vec![9.0 / 5.0, 12.0 / 4.0, 19.0 / 5.0, 24.0 / 5.0]);
    assert_eq!(
        json_floats(&j["results"]["count"]),
        vec![5.0, 4.0, 5.0, 5.0]
    );
    let j = reduce_json(
        2,
        &[
            fs,
            "--var",
            "nn",
            "--dim",
            "time",
            "--op",
            "mean",
            "--keep-nan",
        ],
    );
    assert!(
        json_floats(&j["results"]["mean"])
            .iter()
            .all(|v| v.is_nan())
    );
    let j = reduce_json(3, &[fs, "--var", "nn", "--dim", "lat", "--op", "mean"]);
    let m = json_floats(&j["results"]["mean"]);
    assert!(m[1].is_nan(), "an all-NaN row has no mean");
    assert_eq!(m[0], 8.0 / 3.0);
}

#[test]
fn every_axis_subset_of_a_generated_file_matches_h5dump() {
    let d = scratch("axes-gen");
    let f = d.join("g.h5");
    let fs = f.to_str().unwrap();
    mpirun(
        2,
        &[
            "generate",
            fs,
            "--var",
            "g",
            "--shape",
            "12,10,9",
            "--chunks",
            "4,5,3",
            "--dist",
            "normal:50,10",
            "--nan-fraction",
            "0.05",
            "--seed",
            "5",
        ],
    )
    .ok();
    let (xs, _) = decode(&h5dump_raw(&f, "g"), "f64");
    let shape = [12usize, 10, 9];
    for mask in 1..8u32 {
        let reduced: Vec<bool> = (0..3).map(|a| mask & (1 << a) != 0).collect();
        let axes: Vec<String> = (0..3)
            .filter(|&a| reduced[a])
            .map(|a| a.to_string())
            .collect();
        let axes = axes.join(",");
        // Tiny blocks (one or two chunks) so that tiles span ranks.
        let args = [
            fs,
            "--var",
            "g",
            "--axis",
            &axes,
            "--op",
            "mean,std,min,max,count",
            "--block-bytes",
            "700B",
        ];
        let j = same_for_every_p(&args);
        let j2 = reduce_json(2, &[&args[..], &["--threads", "3"]].concat());
        assert_eq!(j["results"], j2["results"], "threads change bits ({axes})");
        // Independent reference: group the h5dump values by kept cell.
        let kept: Vec<usize> = (0..3).filter(|&a| !reduced[a]).collect();
        let n_cells: usize = kept.iter().map(|&a| shape[a]).product();
        let mut groups = vec![Vec::new(); n_cells];
        for (idx, &x) in xs.iter().enumerate() {
            let c = [idx / 90, idx / 9 % 10, idx % 9];
            let cell = kept.iter().fold(0, |acc, &a| acc * shape[a] + c[a]);
            groups[cell].push(x);
        }
        let mean = json_floats(&j["results"]["mean"]);
        let std = json_floats(&j["results"]["std"]);
        let min = json_floats(&j["results"]["min"]);
        let count = json_floats(&j["results"]["count"]);
        for (c, g) in groups.iter().enumerate() {
            let r = reference(g);
            assert_eq!(count[c], r.count as f64);
            close(
                &format!("mean axes {axes} cell {c}"),
                mean[c],
                r.mean,
                1e-14,
            );
            close(
                &format!("std axes {axes} cell {c}"),
                std[c],
                r.var.sqrt(),
                1e-12,
            );
            assert_eq!(min[c], r.min);
        }
    }
}

#[test]
fn output_is_netcdf4_that_ncdump_and_xarray_read() {
    let d = scratch("axes-output");
    let f = ncgen(&d, "climate");
    let fs = f.to_str().unwrap();
    let out = d.join("tas_time_mean.nc");
    let os = out.to_str().unwrap();
    let j = reduce_json(
        3,
        &[
            fs,
            "--var",
            "tas",
            "--dim",
            "time",
            "--op",
            "mean,std,count",
            "--output",
            os,
        ],
    );
    assert_eq!(j["output"], os);
    // No temporary file is left next to the output.
    let leftovers: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty());

    let h = ncdump_header(&out);
    for want in [
        "lat = 4 ;",
        "lon = 5 ;",
        "double tas_mean(lat, lon) ;",
        "double tas_std(lat, lon) ;",
        "int64 tas_count(lat, lon) ;",
        "tas_mean:units = \"K\" ;",
        "tas_mean:cell_methods = \"time: mean\" ;",
        "lat:units = \"degrees_north\" ;",
        ":history = ",
    ] {
        assert!(h.contains(want), "ncdump -h lacks '{want}':\n{h}");
    }
    assert!(!h.contains("time ="), "time was reduced away:\n{h}");
    assert_eq!(ncdump_values(&out, "lat"), vec![60.0, 30.0, -30.0, -60.0]);
    assert_eq!(
        ncdump_values(&out, "tas_mean"),
        json_floats(&j["results"]["mean"])
    );
    assert_eq!(
        ncdump_values(&out, "tas_count"),
        json_floats(&j["results"]["count"])
    );

    // Refuses to overwrite without --force; --force replaces it.
    let args = [
        "reduce", fs, "--var", "tas", "--dim", "lat,lon", "--op", "mean", "--output", os,
    ];
    expect_error(&args, "--force");
    mpirun(2, &[&args[..], &["--force"]].concat()).ok();
    assert_eq!(ncdump_values(&out, "time").len(), 6);
    assert!(ncdump_header(&out).contains("double tas(time) ;"));

    // xarray (when installed; modules/local.sh installs it) opens the file and
    // finds the same values, dimensions and coordinates.
    if let Some(python) = python_with("xarray, netCDF4") {
        let script = format!(
            "import xarray as xr, json\nds = xr.open_dataset('{os}', decode_times=False)\nprint(json.dumps({{'dims': list(ds['tas'].dims), 'time': ds['time'].values.tolist(), 'tas': ds['tas'].values.tolist(), 'cm': ds['tas'].attrs['cell_methods']}}))"
        );
        let out = std::process::Command::new(python)
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let x: J = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(x["dims"], serde_json::json!(["time"]));
        assert_eq!(
            json_floats(&x["time"]),
            vec![0.0, 31.0, 59.0, 90.0, 120.0, 151.0]
        );
        assert_eq!(x["cm"], "lat: lon: mean");
        let want: Vec<f64> = (0..6)
            .map(|t| mean_of((0..20).map(|c| tas(t, c / 5, c % 5))).0)
            .collect();
        for (g, w) in json_floats(&x["tas"]).iter().zip(&want) {
            close("xarray field mean", *g, *w, 1e-15);
        }
    } else {
        eprintln!("xarray not installed: skipped the xarray read-back");
    }
}

#[test]
fn bad_dimensions_and_selections_fail_on_every_rank() {
    let d = scratch("axes-errors");
    let f = ncgen(&d, "climate");
    let fs = f.to_str().unwrap();
    let base = ["reduce", fs, "--var", "tas"];
    let err = |p: usize, extra: &[&str], needle: &str| {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        expect_error_p(p, &args, needle)
    };
    err(2, &["--dim", "depth"], "no dimension 'depth'");
    err(2, &["--axis", "3"], "--axis 3 is out of range");
    err(2, &["--dim", "lat,lat"], "twice");
    err(2, &["--select", "lat=0:9"], "out of range");
    err(2, &["--select", "lat=2:2"], "selects nothing");
    err(2, &["--select", "lat=70..80"], "selects nothing");
    err(2, &["--select", "height=0:1"], "no dimension 'height'");
    err(2, &["--select", "lat=1"], "--select 'lat=1'");
    err(3, &["--select", "time=0:2:0"], "step");
    let missing = d.join("missing/x.nc");
    err(
        2,
        &["--output", missing.to_str().unwrap()],
        "does not exist",
    );
    err(2, &["--output", fs, "--force"], "same file");
}
