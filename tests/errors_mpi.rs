//! Bad input ends the whole job quickly under `mpirun -n 2` with exactly one
//! clear message naming the file, variable or flag.

mod common;
use common::*;
use std::path::PathBuf;

/// Build the NetCDF-4 test file with the external writer `ncgen`.
fn kinds_file(dir: &std::path::Path) -> PathBuf {
    ncgen(dir, "kinds")
}

#[test]
fn bad_inputs_fail_cleanly_on_every_rank() {
    let d = scratch("errors");
    let kinds = kinds_file(&d);
    let k = kinds.to_str().unwrap();
    let text = d.join("notes.txt");
    std::fs::write(
        &text,
        "just text, long enough to be read as a header by mistake\n",
    )
    .unwrap();
    let t = text.to_str().unwrap();
    let missing = d.join("missing.h5");
    let m = missing.to_str().unwrap();

    expect_error(&["reduce", m, "--var", "a"], "missing.h5");
    expect_error(&["reduce", t, "--var", "a"], "not an HDF5");
    expect_error(&["reduce", d.to_str().unwrap(), "--var", "a"], "directory");
    expect_error(&["reduce", k, "--var", "nope"], "'nope' not found");
    expect_error(&["reduce", k, "--var", "s"], "unsupported datatype");
    expect_error(&["reduce", k, "--var", "c"], "unsupported datatype");
    expect_error(&["reduce", k, "--var", "e"], "empty");
    expect_error(&["reduce", k, "--var", "sub"], "is a group");
    expect_error(
        &["reduce", k, "--var", "t", "--op", "mean,median"],
        "median",
    );
    expect_error(
        &["reduce", k, "--var", "t", "--block-bytes", "12XB"],
        "--block-bytes",
    );
    expect_error(&["reduce", k, "--var", "t", "--threads", "0"], "--threads");
    expect_error(&["generate", m, "--var", "a", "--shape", "10,x"], "--shape");
    expect_error(
        &[
            "generate", m, "--var", "a", "--shape", "10,10", "--chunks", "5",
        ],
        "--chunks",
    );
    expect_error(&["generate", k, "--var", "a", "--shape", "10"], "--force");
    expect_error(
        &[
            "generate",
            d.join("no/dir.h5").to_str().unwrap(),
            "--var",
            "a",
            "--shape",
            "10",
        ],
        "does not exist",
    );
    // Nothing was half-written.
    assert!(!missing.exists());
}

#[test]
fn valid_netcdf_variable_reduces() {
    let d = scratch("nc-ok");
    let kinds = kinds_file(&d);
    // t = 1..24 (written by ncgen): sum 300, mean 12.5, population var (24²−1)/12.
    let j = mpirun(
        2,
        &[
            "reduce",
            kinds.to_str().unwrap(),
            "--var",
            "t",
            "--op",
            "sum,mean,var,min,max",
            "--json",
        ],
    )
    .ok()
    .json();
    let r = &j["results"];
    assert_eq!(r["sum"].as_f64().unwrap(), 300.0);
    assert_eq!(r["mean"].as_f64().unwrap(), 12.5);
    close(
        "var",
        r["var"].as_f64().unwrap(),
        (24.0 * 24.0 - 1.0) / 12.0,
        1e-15,
    );
    assert_eq!(
        (r["min"].as_f64().unwrap(), r["max"].as_f64().unwrap()),
        (1.0, 24.0)
    );
}

#[test]
fn inspect_agrees_with_h5dump() {
    let d = scratch("inspect");
    let kinds = kinds_file(&d);
    let j = direct(&["inspect", kinds.to_str().unwrap(), "--json"])
        .ok()
        .json();
    let t = j["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["path"] == "/t")
        .unwrap()
        .clone();
    let dump = std::process::Command::new("h5dump")
        .args(["-p", "-H", "-d", "/t"])
        .arg(&kinds)
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(
        dump.contains("CHUNKED ( 2, 3 )") && dump.contains("LEVEL 4") && dump.contains("SHUFFLE"),
        "{dump}"
    );
    assert_eq!(t["chunks"], serde_json::json!([2, 3]));
    assert_eq!(t["filters"], serde_json::json!(["shuffle", "deflate(4)"]));
    assert_eq!(t["dims"], serde_json::json!(["lat", "lon"]));
    assert_eq!(t["shape"], serde_json::json!([4, 6]));
    // storage size as h5dump reports it: "SIZE <bytes> (ratio:1)"
    let size: u64 = dump
        .split("SIZE ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(t["storage_bytes"].as_u64().unwrap(), size);
    assert!(
        t["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "units" && a["value"] == "K")
    );
    let text = direct(&["inspect", kinds.to_str().unwrap()]).ok().stdout;
    assert!(text.contains("/t float32 (lat=4, lon=6)"), "{text}");
}

/// Damaged or undecodable files: a valid file cut in half, data compressed
/// with a filter this HDF5 cannot decode (LZF and an unregistered filter id,
/// both written by h5py), and a 2-D variable with a dimension of length 0.
/// Checked under 2 and 3 ranks, since each rank opens the file itself.
#[test]
fn damaged_and_undecodable_files_fail_cleanly() {
    let d = scratch("damaged");
    let good = d.join("good.h5");
    mpirun(
        2,
        &[
            "generate",
            good.to_str().unwrap(),
            "--var",
            "a",
            "--shape",
            "300,200",
            "--chunks",
            "30,200",
        ],
    )
    .ok();
    let bytes = std::fs::read(&good).unwrap();
    let cut = d.join("cut.h5");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let kinds = kinds_file(&d);
    let k = kinds.to_str().unwrap();
    for p in [2, 3] {
        expect_error_p(
            p,
            &["reduce", cut.to_str().unwrap(), "--var", "a"],
            "truncated",
        );
        expect_error_p(p, &["reduce", k, "--var", "z"], "'z' in");
        expect_error_p(p, &["reduce", k, "--var", "z"], "shape [4, 0]");
    }
    // The truncated copy was only read.
    assert_eq!(
        std::fs::metadata(&cut).unwrap().len() as usize,
        bytes.len() / 2
    );

    let Some(python) = python_with("h5py, numpy") else {
        panic!("h5py is needed for the filter cases (modules/local.sh installs python3-h5py)");
    };
    let filtered = d.join("filtered.h5");
    let script = format!(
        "import h5py, numpy as np\n\
         with h5py.File('{}', 'w') as f:\n    \
         f.create_dataset('lzf', data=np.arange(600.0).reshape(20, 30), chunks=(5, 30), compression='lzf')\n    \
         f.create_dataset('unknown', shape=(20, 30), dtype='f8', chunks=(5, 30), compression=32123, allow_unknown_filter=True)\n",
        filtered.display()
    );
    let st = std::process::Command::new(python)
        .args(["-c", &script])
        .status()
        .unwrap();
    assert!(st.success(), "h5py could not write the filtered file");
    let fl = filtered.to_str().unwrap();
    for p in [2, 3] {
        expect_error_p(p, &["reduce", fl, "--var", "lzf"], "filter 32000 (LZF");
        expect_error_p(p, &["reduce", fl, "--var", "unknown"], "filter 32123");
    }
}
