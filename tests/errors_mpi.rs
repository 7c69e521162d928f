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
