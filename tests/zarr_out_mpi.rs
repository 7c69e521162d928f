//! `convert IN OUT.zarr`: a Zarr v3 store that zarr-python and
//! `xarray.open_zarr` read back as the input (values, dimensions,
//! coordinates, attributes), written in parallel with every codec, whose
//! reduce is bit-identical to the input's, and never left half-written.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// An xarray-written NetCDF-4 file: float32 `tas(time, lat, lon)` with
/// NaNs, CF time, int32 latitudes, float64 longitudes, global attributes.
const WRITE_NC: &str = r#"
import sys, numpy as np, xarray as xr
rng = np.random.default_rng(3)
v = rng.normal(280, 5, (7, 6, 10)).astype("f4")
v[1, 2, 3] = np.nan
v[5, :, 0] = np.nan
ds = xr.Dataset(
    {"tas": (("time", "lat", "lon"), v, {"units": "K", "long_name": "air temperature", "valid_max": 330.0})},
    coords={"time": ("time", np.arange(7.0), {"units": "days since 2000-01-01", "calendar": "noleap"}),
            "lat": ("lat", np.arange(-50, 60, 20, dtype="i4"), {"units": "degrees_north"}),
            "lon": ("lon", np.linspace(0, 324, 10), {"units": "degrees_east"})},
    attrs={"title": "zarr round trip", "version": 2, "history": "made by the test"})
ds.to_netcdf(sys.argv[1])
"#;

/// Compare the store with the input through xarray and zarr-python.
const CHECK: &str = r#"
import sys, warnings, numpy as np, xarray as xr, zarr
warnings.simplefilter("ignore")
nc, store, chunks, codec = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
a = xr.open_dataset(nc).load()
b = xr.open_zarr(store).load()
xr.testing.assert_identical(a, b)
z = zarr.open_array(store + "/tas", mode="r")
raw = xr.open_dataset(nc, mask_and_scale=False, decode_times=False)
assert np.array_equal(z[:], raw.tas.values, equal_nan=True)
assert z.metadata.dimension_names == ("time", "lat", "lon"), z.metadata.dimension_names
assert list(z.chunks) == [int(c) for c in chunks.split(",")], z.chunks
names = [c.to_dict()["name"] for c in z.metadata.codecs]
assert names[0] == "bytes" and (codec == "none" and len(names) == 1 or names[1] == codec), names
lat = zarr.open_array(store + "/lat", mode="r")
assert lat.dtype == np.int32 and list(lat[:]) == list(range(-50, 60, 20))
print("ok")
"#;

#[test]
fn netcdf_to_zarr_reads_back_in_xarray_and_reduces_bit_identically() {
    let Some(py) = python_with("xarray, zarr, netCDF4") else {
        panic!(
            "no Python with xarray, zarr and netCDF4 (modules/local.sh installs them in .venv-test)"
        );
    };
    let d = scratch("zarr-out");
    let nc = d.join("in.nc");
    let out = Command::new(py)
        .args(["-c", WRITE_NC, s(&nc)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let reduce = |p: usize, args: &[&str]| {
        let mut a = vec![
            "reduce",
            "--json",
            "--block-bytes",
            "480",
            "--progress",
            "none",
        ];
        a.extend_from_slice(args);
        mpirun(p, &a).ok().json()
    };
    let want = reduce(2, &[s(&nc), "--var", "tas"]);
    let want_lat = reduce(2, &[s(&nc), "--var", "tas", "--dim", "lat,lon"]);
    for (p, compression, shuffle, codec) in [
        (1, "none", false, "none"),
        (2, "gzip:5", false, "gzip"),
        (3, "zstd:3", false, "zstd"),
        (2, "blosc:5", true, "blosc"),
    ] {
        let store = d.join(format!("out-{p}-{codec}.zarr"));
        let mut args = vec![
            "convert",
            s(&nc),
            s(&store),
            "--var",
            "tas",
            "--chunks",
            "2,3,10",
            "--compression",
            compression,
            "--block-bytes",
            "480",
        ];
        if shuffle {
            args.push("--shuffle");
        }
        let r = mpirun(p, &args).ok();
        assert!(
            r.stdout.contains("to ") && r.stdout.contains(codec),
            "{}",
            r.stdout
        );
        let out = Command::new(py)
            .args(["-c", CHECK, s(&nc), s(&store), "2,3,10", codec])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "P={p} {codec}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The store's array reduces exactly as the input, for P = 1..3.
        let arr = store.join("tas");
        for q in 1..=3 {
            let got = reduce(q, &[s(&arr)]);
            assert_eq!(
                got["results"], want["results"],
                "P={p} {codec} reduce with {q}"
            );
            let got = reduce(q, &[s(&arr), "--dim", "lat,lon"]);
            assert_eq!(
                got["results"], want_lat["results"],
                "P={p} {codec} --dim with {q}"
            );
            assert_eq!(got["coords"], want_lat["coords"]);
        }
        // The store with --var names the same array.
        let got = reduce(p, &[s(&store), "--var", "tas"]);
        assert_eq!(got["results"], want["results"], "P={p} {codec} store --var");
    }
    // Only Zarr stores are replaced, and only with --force.
    let store = d.join("out-1-none.zarr");
    expect_error_p(
        2,
        &["convert", s(&nc), s(&store), "--var", "tas"],
        "--force",
    );
    mpirun(
        2,
        &[
            "convert",
            s(&nc),
            s(&store),
            "--var",
            "tas",
            "--force",
            "--compression",
            "zstd",
        ],
    )
    .ok();
    assert!(
        std::fs::read_to_string(store.join("tas/zarr.json"))
            .unwrap()
            .contains("zstd")
    );
    let plain = d.join("plain.zarr");
    std::fs::create_dir(&plain).unwrap();
    expect_error_p(
        2,
        &["convert", s(&nc), s(&plain), "--var", "tas", "--force"],
        "not a Zarr store",
    );
    expect_error_p(
        2,
        &[
            "convert",
            s(&nc),
            s(&d.join("x.zarr")),
            "--var",
            "tas",
            "--compression",
            "lzf",
        ],
        "unknown --compression",
    );
    expect_error_p(
        2,
        &[
            "convert",
            s(&nc),
            s(&d.join("x.zarr")),
            "--var",
            "tas",
            "--chunks",
            "contiguous",
        ],
        "always chunked",
    );
    expect_error_p(
        2,
        &[
            "convert",
            s(&nc),
            s(&d.join("x.zarr")),
            "--var",
            "tas",
            "--compression",
            "gzip",
            "--shuffle",
        ],
        "blosc",
    );
    assert!(!d.join("x.zarr").exists());
}

#[test]
fn npy_to_zarr_equals_numpy() {
    let Some(py) = python_with("numpy, zarr") else {
        panic!("no Python with numpy and zarr");
    };
    let d = scratch("zarr-npy");
    let npy = d.join("v.npy");
    let make = format!(
        "import numpy as np; np.save('{}', (np.arange(11*13*3, dtype='<i8') * 7919 % 1001 - 500).reshape(11, 13, 3))",
        s(&npy)
    );
    assert!(
        Command::new(py)
            .args(["-c", &make])
            .status()
            .unwrap()
            .success()
    );
    let store = d.join("v.zarr");
    mpirun(
        3,
        &[
            "convert",
            s(&npy),
            s(&store),
            "--chunks",
            "4,5,3",
            "--compression",
            "zstd",
        ],
    )
    .ok();
    let check = format!(
        "import numpy as np, zarr; z = zarr.open_array('{}/v', mode='r'); a = np.load('{}'); \
         assert z.dtype == a.dtype and z.shape == a.shape and np.array_equal(z[:], a); \
         assert z.metadata.dimension_names == ('dim_0', 'dim_1', 'dim_2'); print('ok')",
        s(&store),
        s(&npy)
    );
    let out = Command::new(py).args(["-c", &check]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // inspect sees the store as zarr-python wrote it would.
    let j = direct(&["inspect", s(&store), "--json"]).ok().json();
    assert_eq!(j["datasets"][0]["path"], "/v");
    assert_eq!(j["datasets"][0]["chunks"], serde_json::json!([4, 5, 3]));
}

/// No partial store after SIGTERM (Slurm's time limit) or a failing rank.
#[test]
fn an_interrupted_or_failed_zarr_convert_leaves_no_store() {
    let d = scratch("zarr-interrupt");
    let f = d.join("g.h5");
    mpirun(
        2,
        &[
            "generate",
            s(&f),
            "--var",
            "a",
            "--shape",
            "400,1000",
            "--chunks",
            "10,1000",
        ],
    )
    .ok();
    let out = d.join("o.zarr");
    let args = [
        "convert",
        s(&f),
        s(&out),
        "--var",
        "a",
        "--block-bytes",
        "80000",
        "--compression",
        "gzip",
    ];
    let leftovers = || -> Vec<String> {
        std::fs::read_dir(&d)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "g.h5")
            .collect()
    };
    let r = mpirun_signalled(
        2,
        &args,
        &[("CHUNKWISE_TEST_SLOW", "100")],
        SignalAt {
            marker: "rank 0: 20 blocks to process",
            after: Duration::from_millis(800),
            sig: 15,
        },
    );
    assert!(!r.timed_out, "hung after SIGTERM:\n{}", r.stderr);
    assert!(r.code.is_some_and(|c| c != 0), "exit {:?}", r.code);
    assert!(r.stderr.contains("stopped by SIGTERM"), "{}", r.stderr);
    assert_eq!(leftovers(), Vec::<String>::new(), "partial store left");
    // A rank failing half-way: one message, no store.
    let r = mpirun_env(2, &args, &[("CHUNKWISE_TEST_FAIL", "1:3")]);
    assert!(r.code.is_some_and(|c| c != 0));
    assert!(r.stderr.contains("injected test failure"), "{}", r.stderr);
    assert_eq!(leftovers(), Vec::<String>::new(), "partial store left");
    // Without either, the same command completes.
    mpirun(2, &args).ok();
    assert!(out.join("a/zarr.json").is_file());
}
