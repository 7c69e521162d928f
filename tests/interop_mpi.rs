//! What other tools make of chunkwise's outputs (issue 16, items 4–6):
//! JSON keeps NaN, +inf and −inf apart; every NetCDF-4 file chunkwise
//! writes can be appended to by netCDF-C (netCDF4-python, `ncatted`); NaN
//! cells of float results are missing values to CDO and NCO.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Write `values` as a 1-D little-endian f64 `.npy` (format 1.0).
fn npy(dir: &Path, name: &str, values: &[f64]) -> PathBuf {
    npy_shaped(dir, name, values, &format!("({},)", values.len()))
}

/// Write `values` as a little-endian f64 `.npy` of `shape` (a Python tuple).
fn npy_shaped(dir: &Path, name: &str, values: &[f64], shape: &str) -> PathBuf {
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    let f = dir.join(name);
    std::fs::write(&f, bytes).unwrap();
    f
}

/// An input's name, its values and the statistics expected in JSON.
type Case = (
    &'static str,
    Vec<f64>,
    [(&'static str, serde_json::Value); 4],
);

/// Item 6: all-inf, all-(−inf) and all-NaN data give the strings
/// "Infinity", "-Infinity" and "NaN" (not one `null` for all three), and
/// the std of values equal to f64::MAX is 0 (five of them: the scaled mean
/// rounded one ulp below f64::MAX, whose square overflowed) — at P = 1
/// and 2, over everything and per column (`--dim`).
#[test]
fn json_keeps_nan_and_infinities_apart() {
    let d = scratch("json-inf");
    let m = f64::MAX;
    let cases: [Case; 4] = [
        (
            "pinf.npy",
            vec![f64::INFINITY; 3],
            [
                ("sum", "Infinity".into()),
                ("mean", "Infinity".into()),
                ("min", "Infinity".into()),
                ("max", "Infinity".into()),
            ],
        ),
        (
            "ninf.npy",
            vec![f64::NEG_INFINITY; 3],
            [
                ("sum", "-Infinity".into()),
                ("mean", "-Infinity".into()),
                ("min", "-Infinity".into()),
                ("max", "-Infinity".into()),
            ],
        ),
        (
            "nan.npy",
            vec![f64::NAN; 3],
            [
                ("mean", "NaN".into()),
                ("min", "NaN".into()),
                ("max", "NaN".into()),
                ("count", 0.into()),
            ],
        ),
        (
            "max.npy",
            vec![m; 5],
            [
                ("mean", m.into()),
                ("std", 0.0.into()),
                ("var", 0.0.into()),
                ("max", m.into()),
            ],
        ),
    ];
    for (name, values, want) in cases {
        let f = npy(&d, name, &values);
        for p in [1, 2] {
            let j = mpirun(
                p,
                &[
                    "reduce",
                    s(&f),
                    "--op",
                    "count,sum,mean,min,max,var,std",
                    "--json",
                ],
            )
            .ok()
            .json();
            for (op, v) in &want {
                assert_eq!(&j["results"][op], v, "{name} P={p} {op}: {}", j["results"]);
            }
        }
    }
    let f = npy_shaped(&d, "max2d.npy", &[m; 15], "(5, 3)");
    for dim in ["dim_0", "dim_1"] {
        let j = mpirun(
            2,
            &["reduce", s(&f), "--dim", dim, "--op", "mean,std", "--json"],
        )
        .ok()
        .json();
        for v in j["results"]["std"].as_array().unwrap() {
            assert_eq!(v, 0.0, "--dim {dim}: {}", j["results"]);
        }
        for v in j["results"]["mean"].as_array().unwrap() {
            assert_eq!(v, m, "--dim {dim}: {}", j["results"]);
        }
    }
}

/// The output files chunkwise writes, from `tests/data/climate.cdl`
/// (made by `ncgen`): `reduce -o`, `convert` (from NetCDF-4 and from
/// `.npy`) and `generate`.
fn outputs(d: &Path) -> Vec<PathBuf> {
    let f = ncgen(d, "climate");
    let red = d.join("tas_mean.nc");
    mpirun(
        2,
        &[
            "reduce",
            s(&f),
            "--var",
            "tas",
            "--dim",
            "time",
            "--op",
            "mean,count",
            "-o",
            s(&red),
        ],
    )
    .ok();
    let conv = d.join("conv.nc");
    mpirun(2, &["convert", s(&f), s(&conv), "--var", "tas"]).ok();
    let n = npy(d, "v.npy", &[1.0, 2.0, 3.0]);
    let conv_npy = d.join("conv_npy.nc");
    mpirun(2, &["convert", s(&n), s(&conv_npy)]).ok();
    let generated = d.join("gen.nc");
    mpirun(
        2,
        &[
            "generate",
            s(&generated),
            "--var",
            "a",
            "--shape",
            "20,10",
            "--chunks",
            "5,10",
        ],
    )
    .ok();
    vec![red, conv, conv_npy, generated]
}

/// Item 5: netCDF-C opens every output for writing: `ncatted -a` adds a
/// global attribute, netCDF4-python appends a variable and an attribute,
/// and `ncdump` shows them.
#[test]
fn netcdf_c_can_append_to_every_output() {
    let d = scratch("append");
    let py = python_with("netCDF4");
    for f in outputs(&d) {
        let st = Command::new("ncatted")
            .args(["-O", "-h", "-a", "note,global,c,c,added by ncatted"])
            .arg(&f)
            .output()
            .expect("ncatted (nco)");
        assert!(
            st.status.success(),
            "ncatted on {}: {}",
            f.display(),
            String::from_utf8_lossy(&st.stderr)
        );
        if let Some(py) = py {
            let code = format!(
                "import netCDF4\n\
                 with netCDF4.Dataset({f:?}, 'a') as ds:\n\
                 \x20   ds.setncattr('appended', 'yes')\n\
                 \x20   ds.createDimension('extra', 2)\n\
                 \x20   v = ds.createVariable('extra_v', 'f8', ('extra',))\n\
                 \x20   v[:] = [1.5, 2.5]\n",
                f = s(&f)
            );
            let o = Command::new(py).args(["-c", &code]).output().unwrap();
            assert!(
                o.status.success(),
                "netCDF4 append to {}: {}",
                f.display(),
                String::from_utf8_lossy(&o.stderr)
            );
        } else {
            println!("netCDF4-python missing: only ncatted checked");
        }
        let o = Command::new("ncdump").arg("-h").arg(&f).output().unwrap();
        let h = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success() && h.contains("added by ncatted"), "{h}");
        if py.is_some() {
            assert!(
                h.contains("appended = \"yes\"") && h.contains("extra_v"),
                "{h}"
            );
        }
    }
}

/// Item 4: the time mean of a field with a cell that has no data over the
/// selected times is NaN there, with `_FillValue` = NaN: CDO counts the
/// cell as missing and averages the others, NCO prints it as missing (`_`).
#[test]
fn nan_cells_are_missing_to_cdo_and_nco() {
    let d = scratch("fill");
    let f = ncgen(&d, "climate");
    let out = d.join("nn_mean.nc");
    // nn over times 0 and 1 is [1, NaN, 3, 4] per lat, then all NaN: the
    // mean over time is [1, NaN, 3, 4] (lat 1 has no data).
    mpirun(
        2,
        &[
            "reduce",
            s(&f),
            "--var",
            "nn",
            "--dim",
            "time",
            "--select",
            "time=0:2",
            "--op",
            "mean",
            "-o",
            s(&out),
        ],
    )
    .ok();
    match Command::new("cdo").args(["-s", "info"]).arg(&out).output() {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(
                o.status.success(),
                "cdo info: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let mut lines = text
                .lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>());
            let head = lines.next().unwrap();
            let row = lines.next().unwrap_or_else(|| panic!("{text}"));
            let col = |name: &str| row[head.iter().position(|h| *h == name).unwrap()];
            assert_eq!(col("Miss"), "1", "one missing cell:\n{text}");
            let mean: f64 = col("Mean").parse().unwrap_or_else(|_| panic!("{text}"));
            close("cdo mean of the others", mean, 8.0 / 3.0, 1e-4);
        }
        Err(_) => println!("cdo missing: skipped"),
    }
    let o = Command::new("ncks")
        .args(["-H", "-C", "-v", "nn"])
        .arg(&out)
        .output()
        .expect("ncks (nco)");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // `nn = 1, _, 3, 4 ;` (NCO ≥ 5 prints CDL; `_` is a missing value).
    let values: Vec<String> = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("nn = "))
        .unwrap_or_else(|| panic!("{text}"))
        .trim_end_matches(';')
        .split(',')
        .map(|v| v.trim().to_string())
        .collect();
    assert_eq!(values, ["1", "_", "3", "4"], "{text}");
}
