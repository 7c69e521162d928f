//! Chunk-direct decoding (crates/io/src/chunk_direct.rs) against libhdf5's
//! own read path (`CHUNKWISE_NO_CHUNK_DIRECT=1`): bit-identical results on
//! files written by h5py and by netCDF4 (deflate 1/4/9, ± shuffle,
//! ± fletcher32, edge chunks, unallocated chunks with and without a fill
//! value, every element type, big-endian data), at P = 1..3, for whole-array,
//! time-mean and field-mean reductions and unaligned selections, and of
//! a compressed variable split over several files (blocks that span them); and a
//! corrupt compressed chunk ends every rank with one message naming it.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// Variables of the test file: (name, dtype, shape, chunks, options).
const WRITER: &str = r#"
import sys, h5py, numpy as np
path = sys.argv[1]
rng = np.random.default_rng(16)
shape, chunks = (13, 7, 10), (4, 3, 4)          # edge chunks on every axis
def data(dt):
    x = rng.normal(100, 30, size=shape)
    if np.dtype(dt).kind == 'f':
        x[rng.random(shape) < 0.05] = np.nan
        return x.astype(dt)
    info = np.iinfo(dt)
    return np.clip(np.round(x), info.min, info.max).astype(dt)
with h5py.File(path, "w") as f:
    for lvl in (1, 4, 9):
        for sh in (False, True):
            for fl in (False, True):
                f.create_dataset(f"f4_z{lvl}_s{int(sh)}_f{int(fl)}", data=data("f4"), chunks=chunks,
                                 compression="gzip", compression_opts=lvl, shuffle=sh, fletcher32=fl)
    for dt in ("i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f8", ">f4", ">f8", ">i2", ">u4", ">i8"):
        name = "t_" + dt.replace(">", "be_")
        f.create_dataset(name, data=data(dt), chunks=chunks, compression="gzip",
                         compression_opts=4, shuffle=True)
    # Unallocated chunks: only a few written, with and without a fill value.
    for name, fill in (("sparse_fill", -7.5), ("sparse_nofill", None)):
        d = f.create_dataset(name, shape=shape, dtype="f4", chunks=chunks, compression="gzip",
                             shuffle=True, fillvalue=fill)
        d[0:4, 0:3, 0:4] = 1.5
        d[8:12, 3:6, 4:8] = data("f4")[8:12, 3:6, 4:8]
    d = f.create_dataset("sparse_int", shape=shape, dtype="i2", chunks=chunks, compression="gzip",
                         fillvalue=-3)
    d[4:8, :, :] = 5
"#;

/// A NetCDF-4 file as the netCDF library writes it (xarray's engine).
const NC_WRITER: &str = r#"
import sys, netCDF4, numpy as np
ds = netCDF4.Dataset(sys.argv[1], "w")
ds.createDimension("time", 30); ds.createDimension("lat", 9); ds.createDimension("lon", 11)
rng = np.random.default_rng(3)
for name, kw in (("tas", dict(zlib=True, complevel=1, shuffle=True)),
                 ("pr", dict(zlib=True, complevel=9, shuffle=False, fletcher32=True)),
                 ("packed", dict(zlib=True, complevel=4, shuffle=True))):
    dt = "i2" if name == "packed" else "f4"
    v = ds.createVariable(name, dt, ("time", "lat", "lon"), chunksizes=(4, 9, 5),
                          fill_value=np.float32(np.nan) if dt == "f4" else np.int16(-32767), **kw)
    if dt == "f4":
        x = rng.normal(280, 10, (30, 9, 11)).astype("f4"); x[rng.random(x.shape) < 0.03] = np.nan
        v[:] = x
    else:
        v.set_auto_maskandscale(False); v.scale_factor = 0.01; v.add_offset = 273.0
        x = rng.integers(-3000, 3000, (30, 9, 11)).astype("i2"); x[0, 0, :3] = -32767
        v[:] = x
ds.close()
"#;

fn write(py: &str, script: &str, path: &Path) {
    let st = Command::new(py)
        .arg("-c")
        .arg(script)
        .arg(path)
        .status()
        .expect("python");
    assert!(st.success(), "writer failed");
}

/// The results object of one run (everything that depends on the values).
fn results(p: usize, args: &[&str], libhdf5: bool) -> String {
    let env: &[(&str, &str)] = if libhdf5 {
        &[("CHUNKWISE_NO_CHUNK_DIRECT", "1")]
    } else {
        &[]
    };
    let j = mpirun_env(p, args, env).ok().json();
    format!("{} count={}", j["results"], j["count"])
}

/// Every variable, several reductions: chunk-direct equals libhdf5's path
/// bit for bit, at P = 2, and at P = 1..3 for the variables in `all_p`.
fn same_as_libhdf5(file: &Path, vars: &[String], shapes: &[&[&str]], all_p: &[&str]) {
    let f = file.to_str().unwrap();
    for v in vars {
        for extra in shapes {
            let mut args = vec!["reduce", f, "--var", v, "--json", "--op"];
            args.push("sum,mean,min,max,std,count");
            args.extend_from_slice(extra);
            let want = results(1, &args, true);
            let ps: &[usize] = if all_p.contains(&v.as_str()) {
                &[1, 2, 3]
            } else {
                &[2]
            };
            for &p in ps {
                assert_eq!(results(p, &args, false), want, "{v} {extra:?} at P = {p}");
            }
        }
    }
}

#[test]
fn h5py_files_decode_bit_identically() {
    let Some(py) = python_with("h5py, numpy") else {
        eprintln!("skipping: no h5py");
        return;
    };
    let dir = scratch("chunk-direct-h5py");
    let file = dir.join("h5py.h5");
    write(py, WRITER, &file);
    let list = Command::new("h5ls").arg(&file).output().expect("h5ls");
    let vars: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    assert!(vars.len() >= 29, "{vars:?}");
    // A time mean in small blocks (several per rank) and a field mean of an
    // unaligned selection that starts and ends inside chunks.
    same_as_libhdf5(
        &file,
        &vars,
        &[
            &["--block-bytes", "2KiB", "--axis", "0"],
            &[
                "--axis",
                "1,2",
                "--select",
                "dim_0=2:11",
                "--select",
                "dim_2=1:9",
            ],
        ],
        &[
            "f4_z9_s1_f1",
            "t_be_f8",
            "t_u1",
            "sparse_fill",
            "sparse_nofill",
        ],
    );
}

#[test]
fn netcdf_files_decode_bit_identically() {
    let Some(py) = python_with("netCDF4, numpy") else {
        eprintln!("skipping: no netCDF4");
        return;
    };
    let dir = scratch("chunk-direct-nc");
    let file = dir.join("era.nc");
    write(py, NC_WRITER, &file);
    let vars: Vec<String> = ["tas", "pr", "packed"].map(String::from).to_vec();
    same_as_libhdf5(
        &file,
        &vars,
        &[
            &["--dim", "time"],
            &["--dim", "lat,lon", "--select", "time=3:29"],
        ],
        &["tas", "pr", "packed"],
    );
}

/// One compressed NetCDF-4 variable split unevenly over three files (time
/// 0..7, 7..19, 19..30; chunks of 4 steps, so files end inside chunks).
const SPLIT_WRITER: &str = r#"
import sys, os, netCDF4, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(5)
x = rng.normal(280, 10, (30, 9, 11)).astype("f4"); x[rng.random(x.shape) < 0.03] = np.nan
for i, (a, b) in enumerate([(0, 7), (7, 19), (19, 30)]):
    ds = netCDF4.Dataset(os.path.join(d, f"part_{i}.nc"), "w")
    ds.createDimension("time", None); ds.createDimension("lat", 9); ds.createDimension("lon", 11)
    t = ds.createVariable("time", "f8", ("time",)); t.units = "days since 2000-01-01"
    t[:] = np.arange(a, b, dtype="f8")
    v = ds.createVariable("tas", "f4", ("time", "lat", "lon"), chunksizes=(4, 9, 11), zlib=True,
                          complevel=1, shuffle=True, fill_value=np.float32(np.nan))
    v[:] = x[a:b]
    ds.close()
"#;

#[test]
fn split_compressed_files_decode_bit_identically() {
    let Some(py) = python_with("netCDF4, numpy") else {
        eprintln!("skipping: no netCDF4");
        return;
    };
    let dir = scratch("chunk-direct-split");
    let st = Command::new(py)
        .arg("-c")
        .arg(SPLIT_WRITER)
        .arg(&dir)
        .status()
        .expect("python");
    assert!(st.success(), "writer failed");
    let pattern = dir.join("part_*.nc").display().to_string();
    // Blocks of 5 steps: blocks 1, 3 and 5 hold steps of two files, each
    // part's chunks decoded into its place in the block.
    for extra in [
        &["--dim", "time"][..],
        &["--dim", "lat,lon", "--select", "time=2:29"],
    ] {
        let mut args = vec![
            "reduce",
            &pattern,
            "--var",
            "tas",
            "--json",
            "--block-bytes",
        ];
        args.push("1980B");
        args.push("--op");
        args.push("sum,mean,min,max,std,count");
        args.extend_from_slice(extra);
        let want = results(1, &args, true);
        for p in 1..=3 {
            assert_eq!(results(p, &args, false), want, "{extra:?} at P = {p}");
        }
        args.extend_from_slice(&["--threads", "2"]);
        assert_eq!(results(1, &args, false), want, "{extra:?} with 2 threads");
    }
}

/// Byte offset of a stored chunk (h5py's chunk index), to corrupt it.
const CORRUPT: &str = r#"
import sys, h5py, numpy as np
path = sys.argv[1]
with h5py.File(path, "w") as f:
    f.create_dataset("a", data=np.arange(4000, dtype="f8").reshape(40, 100), chunks=(10, 100),
                     compression="gzip", shuffle=True)
with h5py.File(path, "r") as f:
    info = f["a"].id.get_chunk_info(2)
    print(info.byte_offset, info.size)
"#;

#[test]
fn a_corrupt_chunk_ends_every_rank_with_one_message_naming_it() {
    let Some(py) = python_with("h5py, numpy") else {
        eprintln!("skipping: no h5py");
        return;
    };
    let dir = scratch("chunk-direct-corrupt");
    let file = dir.join("c.h5");
    let out = Command::new(py)
        .arg("-c")
        .arg(CORRUPT)
        .arg(&file)
        .output()
        .expect("python");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|x| x.parse::<u64>().unwrap());
    let (off, size) = (it.next().unwrap(), it.next().unwrap());
    // Overwrite the middle of chunk 2's deflate stream (rows 20..30).
    let mut bytes = std::fs::read(&file).unwrap();
    for b in &mut bytes[(off + size / 3) as usize..(off + size / 2) as usize] {
        *b ^= 0x5a;
    }
    std::fs::write(&file, &bytes).unwrap();
    for p in 1..=3 {
        let r = mpirun(
            p,
            &[
                "reduce",
                file.to_str().unwrap(),
                "--var",
                "a",
                "--block-bytes",
                "8KiB",
            ],
        );
        assert!(!r.timed_out, "hung at P = {p}");
        assert!(r.code.is_some_and(|c| c != 0), "P = {p}: {:?}", r.code);
        assert_eq!(
            r.stderr.matches("chunkwise: error").count(),
            1,
            "P = {p}:\n{}",
            r.stderr
        );
        assert!(
            r.stderr.contains("chunk at [20, 0]") && r.stderr.contains("corrupt"),
            "P = {p}:\n{}",
            r.stderr
        );
    }
}
