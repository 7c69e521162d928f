//! File formats under real `mpirun -n P`: `convert` round trips (NumPy,
//! hand-written `.npy` bytes from the published format, raw binary, NetCDF-4
//! from `ncgen`), chunking and filters as asked (parsed from `h5dump -p -H`),
//! values compared through independent readers (`h5dump`, NumPy, `ncdump`,
//! xarray, `h5diff`), `reduce` over every input format bit-identical to the
//! HDF5 conversion, one clear message per bad input, and `formats` sizes
//! equal to the files' real sizes.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `convert` under `p` ranks; panics on failure.
fn convert(p: usize, args: &[&str]) {
    let mut a = vec!["convert"];
    a.extend_from_slice(args);
    mpirun(p, &a).ok();
}

/// `reduce --json` results object under `p` ranks.
fn results(p: usize, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["reduce"];
    a.extend_from_slice(args);
    a.push("--json");
    mpirun(p, &a).ok().json()["results"].clone()
}

/// The `h5dump -p -H` text for dataset `var`.
fn h5dump_header(file: &Path, var: &str) -> String {
    let out = Command::new("h5dump")
        .args(["-p", "-H", "-d", var])
        .arg(file)
        .output()
        .expect("h5dump");
    assert!(
        out.status.success(),
        "h5dump -p -H failed on {}",
        file.display()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Chunk dims and filter names from `h5dump -p -H` (None for contiguous).
fn layout(file: &Path, var: &str) -> (Option<Vec<usize>>, Vec<String>) {
    let h = h5dump_header(file, var);
    let chunks = h.split("CHUNKED (").nth(1).map(|r| {
        r.split(')')
            .next()
            .unwrap()
            .split(',')
            .map(|x| x.trim().parse().unwrap())
            .collect()
    });
    let mut filters = Vec::new();
    if h.contains("PREPROCESSING SHUFFLE") {
        filters.push("shuffle".to_string());
    }
    if let Some(r) = h.split("COMPRESSION DEFLATE { LEVEL ").nth(1) {
        filters.push(format!("gzip:{}", r.split(' ').next().unwrap()));
    }
    if chunks.is_none() {
        assert!(
            h.contains("CONTIGUOUS"),
            "neither chunked nor contiguous:\n{h}"
        );
    }
    (chunks, filters)
}

/// The data bytes of an `.npy` file (after its header), by the v1/v2 length field.
fn npy_data(path: &Path) -> Vec<u8> {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..6], b"\x93NUMPY");
    let start = if b[6] == 1 {
        10 + u16::from_le_bytes([b[8], b[9]]) as usize
    } else {
        12 + u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize
    };
    b[start..].to_vec()
}

/// Hand-made `.npy` bytes from the published format (NEP 1): magic,
/// version, header length, dict padded with spaces to a multiple of 64
/// bytes ending in a newline, then the data.
fn npy_bytes(version: u8, descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    let pre = if version == 1 { 10 } else { 12 };
    let total = (pre + dict.len() + 1).div_ceil(64) * 64;
    let mut v = b"\x93NUMPY".to_vec();
    v.extend_from_slice(&[version, 0]);
    if version == 1 {
        v.extend_from_slice(&((total - pre) as u16).to_le_bytes());
    } else {
        v.extend_from_slice(&((total - pre) as u32).to_le_bytes());
    }
    v.extend_from_slice(dict.as_bytes());
    v.resize(total - 1, b' ');
    v.push(b'\n');
    v.extend_from_slice(data);
    v
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn numpy_npy_to_compressed_hdf5_and_back() {
    let Some(py) = python_with("numpy") else {
        eprintln!("skipping: no Python with NumPy (the hand-written .npy test still runs)");
        return;
    };
    let d = scratch("np-round");
    let a = d.join("a.npy");
    let st = Command::new(py)
        .arg("-c")
        .arg(format!(
            "import numpy as np\n\
             r = np.random.default_rng(5)\n\
             a = r.normal(3, 2, size=(37, 11, 6))\n\
             a[r.random(a.shape) < 0.05] = np.nan\n\
             np.save('{}', a)",
            a.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let mut outs: Vec<PathBuf> = Vec::new();
    for p in 1..=3 {
        let h = d.join(format!("a{p}.h5"));
        convert(
            p,
            &[
                s(&a),
                s(&h),
                "--var",
                "x/a",
                "--chunks",
                "8,5,6",
                "--compression",
                "gzip:4",
                "--shuffle",
                "--block-bytes",
                "3k",
            ],
        );
        assert_eq!(
            layout(&h, "/x/a"),
            (
                Some(vec![8, 5, 6]),
                vec!["shuffle".to_string(), "gzip:4".into()]
            )
        );
        // Values: h5dump's little-endian bytes equal the NumPy data bytes.
        assert_eq!(h5dump_raw(&h, "/x/a"), npy_data(&a), "P={p}");
        outs.push(h);
    }
    let st = Command::new("h5diff")
        .args([s(&outs[0]), s(&outs[2]), "/x/a", "/x/a"])
        .status()
        .unwrap();
    assert!(st.success(), "h5diff: P=1 and P=3 conversions differ");
    // And back to .npy: byte-identical to NumPy's own file, and NumPy reads it.
    for p in [1, 3] {
        let back = d.join(format!("back{p}.npy"));
        convert(p, &[s(&outs[1]), s(&back), "--var", "x/a"]);
        assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&a).unwrap());
        let st = Command::new(py)
            .arg("-c")
            .arg(format!(
                "import numpy as np\n\
                 a, b = np.load('{}'), np.load('{}')\n\
                 assert a.shape == b.shape and np.array_equal(a, b, equal_nan=True)",
                a.display(),
                back.display()
            ))
            .status()
            .unwrap();
        assert!(st.success(), "NumPy disagrees with the converted .npy");
    }
}

#[test]
fn hand_written_npy_reduce_equals_hdf5_conversion() {
    let d = scratch("np-hand");
    // <f8 (v1), <i4 (v2) and big-endian >f8 (v1), values known here.
    let f8: Vec<f64> = (0..35)
        .map(|i| (i as f64 - 17.0) * 0.25 + 1e-3 * i as f64)
        .collect();
    let i4: Vec<i32> = (0..13).map(|i| (i * i * 7919) % 1000 - 500).collect();
    let be: Vec<f64> = (0..12).map(|i| 1.0 / (i as f64 + 1.0)).collect();
    let cases = [
        (
            "f8.npy",
            npy_bytes(
                1,
                "<f8",
                false,
                "(5, 7)",
                &f8.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>(),
            ),
            f8.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(),
        ),
        (
            "i4.npy",
            npy_bytes(
                2,
                "<i4",
                false,
                "(13,)",
                &i4.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>(),
            ),
            i4.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ),
        (
            "be.npy",
            npy_bytes(
                1,
                ">f8",
                false,
                "(4, 3)",
                &be.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<_>>(),
            ),
            be.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ),
    ];
    for (name, bytes, le) in &cases {
        let npy = d.join(name);
        std::fs::write(&npy, bytes).unwrap();
        let h5 = d.join(format!("{name}.h5"));
        convert(2, &[s(&npy), s(&h5), "--var", "v"]);
        assert_eq!(
            &h5dump_raw(&h5, "/v"),
            le,
            "{name}: values after conversion"
        );
        assert_eq!(layout(&h5, "/v"), (None, vec![]), "{name}: contiguous");
        // reduce over the .npy equals reduce over its HDF5 conversion, bit for bit.
        for p in 1..=3 {
            let a = results(p, &[s(&npy), "--block-bytes", "24"]);
            let b = results(p, &[s(&h5), "--var", "v", "--block-bytes", "24"]);
            assert_eq!(a, b, "{name} P={p}");
        }
    }
    // Closed forms for the f8 case: sum of (i-17)/4 + i/1000 over i < 35.
    let r = results(2, &[s(&d.join("f8.npy")), "--op", "sum,min,max,count"]);
    close("sum", r["sum"].as_f64().unwrap(), 0.595, 1e-12);
    assert_eq!(r["min"].as_f64().unwrap(), -4.25);
    assert_eq!(r["count"].as_u64().unwrap(), 35);
    let r = results(3, &[s(&d.join("i4.npy")), "--op", "sum"]);
    assert_eq!(
        r["sum"].as_i64().unwrap(),
        i4.iter().map(|&x| x as i64).sum::<i64>()
    );
}

#[test]
fn raw_input_matches_hdf5_and_selections() {
    let d = scratch("raw");
    let g = d.join("g.h5");
    mpirun(
        2,
        &[
            "generate",
            s(&g),
            "--var",
            "a",
            "--shape",
            "97,31,5",
            "--dtype",
            "f32",
            "--seed",
            "4",
            "--nan-fraction",
            "0.03",
        ],
    )
    .ok();
    let raw = d.join("g.raw");
    convert(3, &[s(&g), s(&raw), "--var", "a"]);
    assert_eq!(std::fs::read(&raw).unwrap(), h5dump_raw(&g, "/a"));
    // Big-endian raw, written here from the little-endian bytes.
    let be: Vec<u8> = std::fs::read(&raw)
        .unwrap()
        .chunks(4)
        .flat_map(|c| [c[3], c[2], c[1], c[0]])
        .collect();
    let braw = d.join("g.be.raw");
    std::fs::write(&braw, be).unwrap();
    for sel in [&[][..], &["--dim", "dim_1", "--select", "dim_0=3:90:4"][..]] {
        let mut want: Option<serde_json::Value> = None;
        for p in 1..=3 {
            for (file, dt) in [(&raw, "f32"), (&braw, ">f4")] {
                let mut args = vec![
                    s(file),
                    "--raw-dtype",
                    dt,
                    "--raw-shape",
                    "97,31,5",
                    "--block-bytes",
                    "2k",
                ];
                args.extend_from_slice(sel);
                let r = results(p, &args);
                let mut h = vec![s(&g), "--var", "a", "--block-bytes", "2k"];
                h.extend_from_slice(sel);
                // g.h5 is contiguous: same decomposition, so bit-identical.
                let rh = results(p, &h);
                assert_eq!(r, rh, "raw vs hdf5, P={p}, {sel:?}");
                match &want {
                    None => want = Some(r),
                    Some(w) => assert_eq!(&r, w, "P={p} {dt}"),
                }
            }
        }
    }
    // raw → HDF5 (auto chunks, gzip) → raw is byte-identical.
    let h = d.join("r.h5");
    convert(
        2,
        &[
            s(&raw),
            s(&h),
            "--raw-dtype",
            "f32",
            "--raw-shape",
            "97,31,5",
            "--var",
            "a",
            "--chunks",
            "auto",
            "--compression",
            "gzip:1",
        ],
    );
    assert_eq!(
        layout(&h, "/a"),
        (Some(vec![97, 31, 5]), vec!["gzip:1".into()])
    );
    let back = d.join("back.bin");
    convert(3, &[s(&h), s(&back), "--var", "a"]);
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&raw).unwrap());
}

#[test]
fn netcdf_rechunk_keeps_dimensions_coordinates_and_attributes() {
    let d = scratch("nc");
    let src = ncgen(&d, "climate");
    let out = d.join("tas.nc");
    convert(
        2,
        &[
            s(&src),
            s(&out),
            "--var",
            "tas",
            "--chunks",
            "3,2,5",
            "--compression",
            "gzip:1",
        ],
    );
    assert_eq!(
        layout(&out, "/tas"),
        (Some(vec![3, 2, 5]), vec!["gzip:1".into()])
    );
    let head = Command::new("ncdump").arg("-h").arg(&out).output().unwrap();
    let head = String::from_utf8_lossy(&head.stdout);
    for want in [
        "float tas(time, lat, lon)",
        "tas:units = \"K\"",
        "tas:long_name = \"air temperature\"",
        "tas:_FillValue = -999.f",
        "double time(time)",
        "time:units = \"days since 2000-01-01\"",
        "lat:units = \"degrees_north\"",
        ":history = ",
    ] {
        assert!(head.contains(want), "ncdump -h lacks '{want}':\n{head}");
    }
    assert_eq!(h5dump_raw(&out, "/tas"), h5dump_raw(&src, "/tas"));
    // Same statistics per time step, bit for bit, through the coordinates.
    for p in [1, 3] {
        // (Whole numbers: sums are exact whatever the chunking.)
        let q = [
            "--dim",
            "lat,lon",
            "--select",
            "time=31..120",
            "--op",
            "count,sum,mean,min,max",
        ];
        let a = results(p, &[&[s(&src), "--var", "tas"][..], &q].concat());
        let b = results(p, &[&[s(&out), "--var", "tas"][..], &q].concat());
        assert_eq!(a, b);
    }
    if let Some(py) = python_with("xarray, netCDF4") {
        let st = Command::new(py)
            .arg("-c")
            .arg(format!(
                "import xarray as xr\n\
                 a, b = xr.open_dataset('{}'), xr.open_dataset('{}')\n\
                 assert a.tas.identical(b.tas), (a.tas, b.tas)",
                src.display(),
                out.display()
            ))
            .status()
            .unwrap();
        assert!(st.success(), "xarray sees a different tas after convert");
    }
}

#[test]
fn bad_inputs_end_every_rank_with_one_message() {
    let d = scratch("errors");
    let g = d.join("g.h5");
    mpirun(1, &["generate", s(&g), "--var", "a", "--shape", "20,10"]).ok();
    let o = d.join("o.h5");
    let (gs, os) = (s(&g), s(&o));
    for p in [1, 3] {
        expect_error_p(
            p,
            &["convert", gs, os, "--var", "a", "--compression", "lz4"],
            "unknown --compression",
        );
        expect_error_p(
            p,
            &["convert", gs, os, "--var", "a", "--compression", "gzip:12"],
            "bad gzip level",
        );
        expect_error_p(
            p,
            &["convert", gs, os, "--var", "a", "--chunks", "5"],
            "has 1 dimensions but the variable has 2",
        );
        expect_error_p(
            p,
            &["convert", gs, os, "--var", "a", "--chunks", "5,0"],
            "at least 1",
        );
        expect_error_p(
            p,
            &[
                "convert",
                gs,
                os,
                "--var",
                "a",
                "--chunks",
                "contiguous",
                "--shuffle",
            ],
            "need chunked storage",
        );
        expect_error_p(
            p,
            &["convert", gs, gs, "--var", "a", "--force"],
            "same file as input",
        );
        expect_error_p(p, &["convert", gs, os, "--var", "nope"], "not found");
        expect_error_p(
            p,
            &[
                "convert",
                gs,
                s(&d.join("x.npy")),
                "--var",
                "a",
                "--compression",
                "gzip",
            ],
            "apply only to HDF5",
        );
    }
    // Output exists.
    std::fs::write(&o, b"keep me").unwrap();
    expect_error_p(2, &["convert", gs, os, "--var", "a"], "pass --force");
    assert_eq!(
        std::fs::read(&o).unwrap(),
        b"keep me",
        "existing output touched"
    );
    // A hard link to the input is the same file.
    let link = d.join("link.h5");
    std::fs::hard_link(&g, &link).unwrap();
    expect_error_p(
        2,
        &["convert", gs, s(&link), "--var", "a", "--force"],
        "same file as input",
    );
    // Fortran-order .npy, raw size mismatch, missing raw flags.
    let f = d.join("f.npy");
    std::fs::write(&f, npy_bytes(1, "<f8", true, "(2, 2)", &[0u8; 32])).unwrap();
    expect_error_p(3, &["reduce", s(&f)], "Fortran");
    expect_error_p(2, &["convert", s(&f), s(&d.join("f.h5"))], "Fortran");
    let raw = d.join("r.raw");
    std::fs::write(&raw, [0u8; 100]).unwrap();
    expect_error_p(
        3,
        &[
            "reduce",
            s(&raw),
            "--raw-dtype",
            "f64",
            "--raw-shape",
            "3,4",
        ],
        "has 100 bytes but",
    );
    expect_error_p(
        2,
        &["convert", s(&raw), os, "--raw-dtype", "f64", "--force"],
        "needs both --raw-dtype and --raw-shape",
    );
    expect_error_p(2, &["reduce", s(&raw)], "for raw binary give --raw-dtype");
    expect_error_p(
        2,
        &[
            "reduce",
            gs,
            "--var",
            "a",
            "--raw-dtype",
            "f64",
            "--raw-shape",
            "200",
        ],
        "apply only to raw",
    );
    // No temporary files were left behind by any failure.
    let left: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(left.is_empty(), "left temporary files: {left:?}");
}

#[test]
fn formats_table_sizes_are_the_real_file_sizes() {
    let d = scratch("formats");
    let g = d.join("g.h5");
    mpirun(
        2,
        &[
            "generate",
            s(&g),
            "--var",
            "a",
            "--shape",
            "300,200",
            "--chunks",
            "50,40",
            "--seed",
            "9",
        ],
    )
    .ok();
    let keep = d.join("cands");
    let r = mpirun(
        2,
        &[
            "formats",
            s(&g),
            "--var",
            "a",
            "--sample",
            "200KiB",
            "--keep",
            s(&keep),
            "--json",
        ],
    )
    .ok();
    let j = r.json();
    // 200 KiB of 1600-byte rows: 128 rows.
    assert_eq!(j["sample_shape"], serde_json::json!([128, 200]));
    let cands = j["candidates"].as_array().unwrap();
    let names: Vec<&str> = cands.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for want in [
        "npy",
        "raw",
        "h5-contiguous",
        "h5-rows",
        "h5-tiles",
        "h5-current",
        "gzip1",
        "gzip4",
        "gzip9",
        "gzip1+shuffle",
        "gzip4+shuffle",
        "gzip9+shuffle",
        "zarr",
        "zarr-zstd3",
        "zarr-blosc5+shuffle",
    ] {
        assert!(names.contains(&want), "no candidate {want} in {names:?}");
    }
    // Sizes of a file, or of every file of a Zarr store (a directory).
    fn files(p: &Path) -> Vec<std::path::PathBuf> {
        match std::fs::read_dir(p) {
            Ok(rd) => rd.flat_map(|e| files(&e.unwrap().path())).collect(),
            Err(_) => vec![p.to_path_buf()],
        }
    }
    for c in cands {
        let path = Path::new(c["path"].as_str().unwrap());
        let ms: Vec<_> = files(path)
            .iter()
            .map(|f| std::fs::metadata(f).unwrap())
            .collect();
        assert_eq!(
            c["bytes"].as_u64().unwrap(),
            ms.iter().map(|m| m.len()).sum::<u64>(),
            "{path:?}"
        );
        assert_eq!(
            c["disk_bytes"].as_u64().unwrap(),
            ms.iter()
                .map(|m| std::os::unix::fs::MetadataExt::blocks(m) * 512)
                .sum::<u64>(),
            "{path:?}"
        );
        if c["format"] == "zarr" {
            assert!(ms.len() > 2, "{path:?} has no chunks");
        }
        assert!(c["agrees"].as_bool().unwrap(), "{c}");
    }
    // The candidates are what they claim: the sample, with the filters named.
    let npy = keep.join("sample.npy");
    assert_eq!(
        npy_data(&npy),
        h5dump_raw(&g, "/a")[..128 * 200 * 8].to_vec()
    );
    assert_eq!(
        layout(&keep.join("gzip9-shuffle.h5"), "/data").1,
        vec!["shuffle", "gzip:9"]
    );
    assert_eq!(
        layout(&keep.join("current.h5"), "/data").0,
        Some(vec![50, 40])
    );
    assert_eq!(layout(&keep.join("contiguous.h5"), "/data").0, None);
    let z = std::fs::read_to_string(keep.join("zarr-blosc5-shuffle.zarr/data/zarr.json")).unwrap();
    assert!(z.contains("\"blosc\"") && z.contains("\"shuffle\""), "{z}");
    // The text form has the table and a recommendation per access pattern;
    // without --keep nothing is left next to the input.
    let t = mpirun(1, &["formats", s(&g), "--var", "a", "--sample", "100k"]).ok();
    for want in [
        "| candidate",
        "whole-array statistics",
        "time series per point",
        "map per time step",
    ] {
        assert!(t.stdout.contains(want), "no '{want}' in:\n{}", t.stdout);
    }
    let left: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("chunkwise"))
        .collect();
    assert!(
        left.is_empty(),
        "formats left its working directory behind: {left:?}"
    );
}

#[test]
fn zarr_v3_input_converts_and_reduces_like_its_hdf5_conversion() {
    let Some(py) = python_with("json, gzip, struct") else {
        eprintln!("skipping: no python3 for the Zarr v3 writer");
        return;
    };
    let d = scratch("zarr");
    let st = Command::new(py)
        .arg(format!(
            "{}/tests/data/zarr_v3_writer.py",
            env!("CARGO_MANIFEST_DIR")
        ))
        .current_dir(&d)
        .status()
        .unwrap();
    assert!(st.success(), "zarr_v3_writer.py failed");
    let (a, b) = (d.join("a.zarr"), d.join("b.zarr"));
    let want_a = std::fs::read(d.join("a.expected.raw")).unwrap();
    let want_b = std::fs::read(d.join("b.expected.raw")).unwrap();
    for p in 1..=3 {
        // gzip-coded chunks, an unwritten chunk (fill value), edge chunks.
        let h = d.join(format!("a{p}.h5"));
        convert(p, &[s(&a), s(&h)]);
        assert_eq!(h5dump_raw(&h, "/a"), want_a, "P={p}");
        assert_eq!(
            layout(&h, "/a").0,
            Some(vec![2, 3]),
            "keeps the Zarr chunks"
        );
        let head = Command::new("ncdump").arg("-h").arg(&h).output().unwrap();
        let head = String::from_utf8_lossy(&head.stdout);
        assert!(
            head.contains("a:units = \"K\""),
            "units not carried:\n{head}"
        );
        for want in [
            "double a(y, x)",
            "double y(y)",
            "y:units = \"m\"",
            "double x(x)",
        ] {
            assert!(head.contains(want), "no '{want}' after convert:\n{head}");
        }
        // Same chunks, same decomposition: bit-identical statistics, also
        // over selections by coordinate value (y = 20, 30, 40; x >= 100).
        let sel: &[&str] = &[
            "--dim",
            "x",
            "--select",
            "y=15..45",
            "--select",
            "x=100..1000",
        ];
        for extra in [&[][..], &["--axis", "1"][..], sel] {
            let mut za = vec![s(&a), "--block-bytes", "48"];
            za.extend_from_slice(extra);
            let mut ha = vec![s(&h), "--var", "a", "--block-bytes", "48"];
            ha.extend_from_slice(extra);
            assert_eq!(results(p, &za), results(p, &ha), "P={p} {extra:?}");
        }
        // Big-endian int32, uncompressed → .npy, exact sum.
        let n = d.join(format!("b{p}.npy"));
        convert(p, &[s(&b), s(&n)]);
        assert_eq!(npy_data(&n), want_b);
        let r = results(p, &[s(&b), "--op", "sum,count"]);
        let sum: i64 = (0..60).map(|k| (k * 37) % 101 - 50).sum();
        assert_eq!(r["sum"].as_i64().unwrap(), sum);
        assert_eq!(r["count"].as_u64().unwrap(), 60);
    }
    // 146 = the sum of (k/2 - 3) over the 35 cells minus the unwritten chunk's.
    let r = results(2, &[s(&a), "--op", "sum"]);
    assert_eq!(r["sum"].as_f64().unwrap(), 146.0);
    // Dimension names come from the store.
    let j = mpirun(
        2,
        &[
            "reduce",
            s(&a),
            "--dim",
            "x",
            "--select",
            "x=100..200",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(j["result_dims"], serde_json::json!(["y"]));
    assert_eq!(
        j["coords"]["y"],
        serde_json::json!([10.0, 20.0, 30.0, 40.0, 50.0])
    );
    // Row 0 at x = 100, 150, 200 (columns 2..5): -2 - 1.5 - 1.
    assert_eq!(j["results"]["sum"][0].as_f64().unwrap(), -4.5);
    // A directory that is not a Zarr array.
    let g = d.join("group");
    std::fs::create_dir(&g).unwrap();
    std::fs::write(
        g.join("zarr.json"),
        r#"{"zarr_format": 3, "node_type": "group"}"#,
    )
    .unwrap();
    expect_error_p(2, &["reduce", s(&g)], "array inside the store");
    expect_error_p(2, &["reduce", s(&d)], "no zarr.json");
}

#[test]
fn a_rank_failing_mid_convert_ends_the_job_without_output() {
    let d = scratch("midconvert");
    let g = d.join("g.h5");
    mpirun(
        2,
        &[
            "generate",
            s(&g),
            "--var",
            "a",
            "--shape",
            "400,1000",
            "--chunks",
            "10,1000",
        ],
    )
    .ok();
    for (p, spec, out) in [(2, "1:2", "o.npy"), (3, "2:1", "o.h5"), (3, "0:2", "o.raw")] {
        let o = d.join(out);
        let r = mpirun_env(
            p,
            &[
                "convert",
                s(&g),
                s(&o),
                "--var",
                "a",
                "--block-bytes",
                "80KB",
                "--compression",
                if out.ends_with(".h5") {
                    "gzip:1"
                } else {
                    "none"
                },
            ],
            &[("CHUNKWISE_TEST_FAIL", spec)],
        );
        assert!(
            !r.timed_out && r.elapsed.as_secs_f64() < 10.0,
            "{out}: took {:?}",
            r.elapsed
        );
        assert!(r.code.is_some_and(|c| c != 0), "{out}: exit {:?}", r.code);
        assert!(
            r.stderr.contains("injected test failure"),
            "{out}:\n{}",
            r.stderr
        );
        assert_eq!(
            r.stderr.matches("chunkwise: error").count(),
            1,
            "{out}:\n{}",
            r.stderr
        );
        assert!(!o.exists(), "{out}: an output appeared after a failure");
        // Flat outputs agree on the failure, HDF5 outputs end with
        // MPI_Abort inside collective writes: both remove the temporary.
        let temps: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .ends_with(".chunkwise-partial")
            })
            .collect();
        assert!(temps.is_empty(), "{out}: temp left");
    }
}
