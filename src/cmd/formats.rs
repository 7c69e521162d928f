//! `chunkwise formats`: measure, on a sample of the user's own data, what
//! each storage layout costs and gives — size on disk, write speed, and read
//! speed through the parallel `reduce` path for three access patterns — and
//! recommend one per pattern.
//!
//! Method: the leading rows of the variable (up to `--sample` bytes) are
//! written once as `.npy` (the first candidate); every other candidate is
//! made from that file with `convert`'s own code path: raw binary, HDF5
//! contiguous, HDF5 chunked as row slabs, as square tiles and as the input
//! is chunked now, and row slabs with gzip 1/4/9, each with and without
//! shuffle. Row slabs and tiles hold at most 4 MiB (and a small sample is
//! cut into at least 16 of them). Each candidate is synced to disk after writing (the write time
//! includes the sync) and its pages are dropped from the page cache
//! (`posix_fadvise(DONTNEED)`, this file only) before each read, so reads
//! are cold. The reads are `reduce` runs:
//! * whole — count/sum/mean/std/min/max over everything;
//! * series — the mean over the leading axis at one point of the others
//!   (a time series per grid point);
//! * map — the mean of one index of the leading axis (a map per time step).
//!
//! Every candidate's whole-array result is checked against the first's
//! (count, min, max exactly; sums to 1e-9 relative, as the summation order
//! follows the chunking); the report says so. Sizes are the files' real sizes: logical
//! length and allocated blocks (`st_blocks × 512`).

use super::output;
use crate::cli::FormatsArgs;
use crate::comm::Comm;
use crate::encoding::{AUTO_CHUNK_BYTES, auto_chunks, tile_chunks};
use crate::error::CwError;
use crate::parse::{human_bytes, parse_bytes, parse_ops};
use crate::request::{
    ConvertRequest, DEFAULT_OPS, InputSpec, RawSpec, ReduceOver, ReduceRequest, shape_text,
};
use crate::selection::SelectSpec;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One measured storage layout.
#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    /// Short name (`npy`, `h5-rows`, `gzip4+shuffle`, ...).
    pub name: String,
    /// File format: `npy`, `raw` or `hdf5`.
    pub format: String,
    /// Layout and filters.
    pub layout: String,
    /// The candidate file.
    pub path: String,
    /// Logical file size in bytes.
    pub bytes: u64,
    /// Allocated size on disk in bytes (`st_blocks × 512`).
    pub disk_bytes: u64,
    /// Uncompressed data bytes ÷ allocated bytes.
    pub ratio: f64,
    /// Seconds to write (convert + fsync).
    pub write_s: f64,
    /// Seconds for the whole-array statistics.
    pub whole_s: f64,
    /// Seconds for one time series (mean over the leading axis at one point).
    pub series_s: f64,
    /// Seconds for one map (one index of the leading axis).
    pub map_s: f64,
    /// The whole-array statistics agree with the first candidate's: count,
    /// min and max exactly, sum/mean/std to 1e-9 relative (the summation
    /// order follows the chunking, so the last bits may differ).
    pub agrees: bool,
}

/// The full measurement.
#[derive(Clone, Debug, Serialize)]
pub struct FormatsReport {
    /// Input file.
    pub file: String,
    /// Variable.
    pub var: String,
    /// Element type.
    pub dtype: String,
    /// Shape of the whole variable.
    pub shape: Vec<usize>,
    /// Shape of the sample measured.
    pub sample_shape: Vec<usize>,
    /// Uncompressed sample bytes.
    pub sample_bytes: u64,
    /// MPI ranks.
    pub ranks: usize,
    /// Threads per rank.
    pub threads: usize,
    /// Candidates in the order measured.
    pub candidates: Vec<Candidate>,
    /// Recommended candidate per access pattern: `whole`, `series`, `map`, `smallest`.
    pub recommend: Vec<(String, String)>,
}

fn s(x: impl AsRef<std::ffi::OsStr>) -> String {
    x.as_ref().to_string_lossy().into_owned()
}

/// Validated settings (every rank).
struct Setup {
    input: InputSpec,
    source: crate::source::Source,
    meta: crate::variable::VariableMeta,
    sample_shape: Vec<usize>,
    dir: PathBuf,
    remove_dir: bool,
    threads: usize,
}

fn validate(a: &FormatsArgs) -> anyhow::Result<Setup> {
    let sample = parse_bytes(&a.sample).map_err(|e| CwError::Parse(format!("--sample: {e}")))?;
    if sample == 0 {
        return Err(CwError::Parse("--sample must be positive".into()).into());
    }
    let threads = super::resolve_threads(a.threads)?;
    let input = a.raw.input(&a.file, a.var.as_deref())?;
    let (source, meta) = crate::source::describe(&input)?;
    let row_bytes: u64 =
        meta.shape[1..].iter().map(|&d| d as u64).product::<u64>() * meta.dtype.size() as u64;
    let rows = ((sample / row_bytes.max(1)) as usize).clamp(1, meta.shape[0]);
    let mut sample_shape = meta.shape.clone();
    sample_shape[0] = rows;
    let (dir, remove_dir) = match &a.keep {
        Some(d) => (d.clone(), false),
        None => {
            let parent = match a.file.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let name = a.file.file_name().map(s).unwrap_or_else(|| "input".into());
            (parent.join(format!(".{name}.chunkwise-formats")), true)
        }
    };
    if let Some(d) = a.keep.as_ref().filter(|d| d.exists() && !d.is_dir()) {
        return Err(CwError::Output(format!("--keep '{}' is not a directory", d.display())).into());
    }
    Ok(Setup {
        input,
        source,
        meta,
        sample_shape,
        dir,
        remove_dir,
        threads,
    })
}

/// Run `formats` on every rank; rank 0 prints the table (or JSON).
pub fn run(comm: &Comm, a: &FormatsArgs) -> anyhow::Result<()> {
    let mut st = comm.agree(validate(a))?;
    // Without --keep the candidates go into a temporary directory of this
    // run (unique, created exclusively, removed on every exit path and on
    // a signal: see `output`), named after the input.
    let work = if st.remove_dir {
        let w = output::TempOutput::create_collective(
            comm,
            &st.dir,
            false,
            output::Kind::Dir,
            &[&a.file],
            false,
        )?;
        st.dir = w.path().to_path_buf();
        Some(w)
    } else {
        let made = if comm.is_root() {
            std::fs::create_dir_all(&st.dir)
                .map_err(|e| anyhow::anyhow!("cannot create '{}': {e}", st.dir.display()))
        } else {
            Ok(())
        };
        comm.agree(made)?;
        None
    };
    let r = measure_all(comm, a, &st);
    drop(work);
    let Some(report) = r? else { return Ok(()) };
    if a.json {
        crate::outln!("{}", serde_json::to_string(&report)?)?;
    } else {
        crate::out!("{}", to_text(&report))?;
    }
    Ok(())
}

/// One candidate layout: its name, file name and how `convert` writes it.
struct CandidateSpec {
    name: String,
    file: String,
    chunks: Option<String>,
    compression: String,
    shuffle: bool,
}

impl CandidateSpec {
    fn new(name: &str, file: &str, chunks: Option<String>) -> CandidateSpec {
        CandidateSpec {
            name: name.into(),
            file: file.into(),
            chunks,
            compression: "none".into(),
            shuffle: false,
        }
    }
}

/// What the candidates are.
fn candidates(st: &Setup) -> Vec<CandidateSpec> {
    let size = st.meta.dtype.size();
    // 4 MiB chunks, but at least 16 of them in a small sample.
    let sample_bytes = st.sample_shape.iter().product::<usize>() as u64 * size as u64;
    let target = AUTO_CHUNK_BYTES.min(sample_bytes / 16).max(size as u64);
    let rows = auto_chunks(&st.sample_shape, size, target);
    let tiles = tile_chunks(&st.sample_shape, size, target);
    let mut v = vec![
        CandidateSpec::new("raw", "sample.raw", None),
        CandidateSpec::new("h5-contiguous", "contiguous.h5", Some("contiguous".into())),
        CandidateSpec::new("h5-rows", "rows.h5", Some(shape_text(&rows))),
    ];
    if tiles != rows {
        v.push(CandidateSpec::new(
            "h5-tiles",
            "tiles.h5",
            Some(shape_text(&tiles)),
        ));
    }
    if let Some(c) = &st.meta.chunk {
        let cur: Vec<usize> = c
            .iter()
            .zip(&st.sample_shape)
            .map(|(&c, &d)| c.min(d))
            .collect();
        if cur != rows && cur != tiles {
            v.push(CandidateSpec::new(
                "h5-current",
                "current.h5",
                Some(shape_text(&cur)),
            ));
        }
    }
    for level in [1, 4, 9] {
        for shuffle in [false, true] {
            let name = format!("gzip{level}{}", if shuffle { "+shuffle" } else { "" });
            let file = format!("{}.h5", name.replace('+', "-"));
            v.push(CandidateSpec {
                compression: format!("gzip:{level}"),
                shuffle,
                ..CandidateSpec::new(&name, &file, Some(shape_text(&rows)))
            });
        }
    }
    // Zarr v3 stores with the same row chunks: uncompressed, zstd, and
    // blosc (lz4) with byte shuffle.
    for (name, compression, shuffle) in [
        ("zarr", "none", false),
        ("zarr-zstd3", "zstd:3", false),
        ("zarr-blosc5+shuffle", "blosc:5", true),
    ] {
        v.push(CandidateSpec {
            compression: compression.into(),
            shuffle,
            ..CandidateSpec::new(
                name,
                &format!("{}.zarr", name.replace('+', "-")),
                Some(shape_text(&rows)),
            )
        });
    }
    v
}

/// Every file at or under `p` (a file, or a store directory).
fn files_under(p: &Path) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(p) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .flat_map(|e| files_under(&e.path()))
            .collect(),
        Err(_) => vec![p.to_path_buf()],
    }
}

/// Write and measure every candidate; the report on rank 0.
fn measure_all(comm: &Comm, a: &FormatsArgs, st: &Setup) -> anyhow::Result<Option<FormatsReport>> {
    let npy = st.dir.join("sample.npy");
    // The sample itself, straight from the input: the `.npy` candidate.
    let mut list = vec![(
        "npy".to_string(),
        npy.clone(),
        ConvertRequest {
            force: true,
            ..ConvertRequest::new(st.input.clone(), npy.clone())
        },
    )];
    for c in candidates(st) {
        let path = st.dir.join(&c.file);
        let input = InputSpec {
            path: npy.clone(),
            var: Some("data".into()),
            raw: None,
            ..InputSpec::default()
        };
        let req = ConvertRequest {
            chunks: c.chunks,
            compression: c.compression,
            shuffle: c.shuffle,
            force: true,
            ..ConvertRequest::new(input, path.clone())
        };
        list.push((c.name, path, req));
    }
    let mut out = Vec::new();
    let mut first: Option<serde_json::Value> = None;
    for (name, path, req) in list {
        log::info!("formats: candidate {name}");
        let mut plan = comm.agree(super::convert::validate(&req))?;
        plan.is_final = false;
        if name == "npy" {
            plan.meta.shape = st.sample_shape.clone();
        }
        let t = Instant::now();
        super::convert::convert(comm, &plan)?;
        let synced = if comm.is_root() {
            files_under(&path)
                .iter()
                .try_for_each(|f| std::fs::File::open(f).and_then(|f| f.sync_all()))
                .map_err(|e| anyhow::anyhow!("syncing '{}': {e}", path.display()))
        } else {
            Ok(())
        };
        comm.agree(synced)?;
        let write_s = comm_max(comm, t.elapsed().as_secs_f64());
        let var = (plan.format == super::convert::OutFormat::Hdf5).then(|| plan.out_var.clone());
        let raw = (name == "raw").then(|| RawSpec {
            dtype: st.meta.dtype,
            big_endian: false,
            shape: st.sample_shape.clone(),
        });
        let zarr = plan.format == super::convert::OutFormat::Zarr;
        let input = InputSpec {
            // A Zarr store is read through its variable's array.
            path: if zarr {
                path.join(&plan.out_var)
            } else {
                path.clone()
            },
            var: var.clone(),
            raw,
            ..InputSpec::default()
        };
        // One read of the candidate: statistics `ops` over `over`, of `select`.
        let read = |ops: &str,
                    over: ReduceOver,
                    select: Vec<SelectSpec>|
         -> anyhow::Result<Option<(f64, serde_json::Value)>> {
            drop_cache(&path);
            let req = ReduceRequest {
                ops: parse_ops(ops)?,
                threads: Some(st.threads),
                over,
                select,
                ..ReduceRequest::new(input.clone())
            };
            let plan = comm.agree(super::reduce::validate(&req))?;
            Ok(super::reduce::execute(comm, &plan)?.map(|(rep, _)| {
                let v = serde_json::to_value(&rep).unwrap_or_default();
                (rep.timings.total_s, v["results"].clone())
            }))
        };
        let n = st.sample_shape.len();
        let whole = read(DEFAULT_OPS, ReduceOver::All, Vec::new())?;
        // One time series: the middle point of every axis but the first.
        let index = |k: usize, at: usize| SelectSpec::Index {
            dim: format!("dim_{k}"),
            start: Some(at as i64),
            stop: Some(at as i64 + 1),
            step: 1,
        };
        let series_sel: Vec<SelectSpec> =
            (1..n).map(|k| index(k, st.sample_shape[k] / 2)).collect();
        let series = if n > 1 {
            read("mean", ReduceOver::Dims(vec!["dim_0".into()]), series_sel)?
        } else {
            None
        };
        let mid = st.sample_shape[0] / 2;
        let map = read("mean", ReduceOver::All, vec![index(0, mid)])?;
        if let Some((whole_s, res)) = whole {
            let agrees = match &first {
                None => {
                    first = Some(res);
                    true
                }
                Some(f) => same_results(f, &res),
            };
            let files = files_under(&path);
            let (len, disk) = files.iter().fold((0, 0), |(l, d), f| {
                std::fs::metadata(f).map_or((l, d), |m| {
                    (
                        l + m.len(),
                        d + std::os::unix::fs::MetadataExt::blocks(&m) * 512,
                    )
                })
            });
            let data =
                st.sample_shape.iter().product::<usize>() as u64 * st.meta.dtype.size() as u64;
            out.push(Candidate {
                format: match plan.format {
                    super::convert::OutFormat::Hdf5 => "hdf5",
                    super::convert::OutFormat::Npy => "npy",
                    super::convert::OutFormat::Raw => "raw",
                    super::convert::OutFormat::Zarr => "zarr",
                }
                .into(),
                layout: match plan.format {
                    super::convert::OutFormat::Hdf5 => plan.enc.describe(),
                    super::convert::OutFormat::Zarr => format!(
                        "chunks {}, {}",
                        plan.enc
                            .chunks
                            .as_deref()
                            .map(shape_text)
                            .unwrap_or_default(),
                        plan.zarr_codecs
                            .iter()
                            .filter_map(|c| c["name"].as_str())
                            .collect::<Vec<_>>()
                            .join("+")
                    ),
                    _ => "contiguous".into(),
                },
                name,
                path: path.display().to_string(),
                bytes: len,
                disk_bytes: disk,
                ratio: data as f64 / disk.max(1) as f64,
                write_s,
                whole_s,
                series_s: series.map_or(f64::NAN, |x| x.0),
                map_s: map.map_or(f64::NAN, |x| x.0),
                agrees,
            });
        }
    }
    if !comm.is_root() {
        return Ok(None);
    }
    let best = |f: &dyn Fn(&Candidate) -> f64| -> String {
        out.iter()
            .filter(|c| c.agrees && !f(c).is_nan())
            .min_by(|x, y| f(x).total_cmp(&f(y)))
            .map(|c| c.name.clone())
            .unwrap_or_default()
    };
    let recommend = vec![
        ("whole".to_string(), best(&|c| c.whole_s)),
        ("series".to_string(), best(&|c| c.series_s)),
        ("map".to_string(), best(&|c| c.map_s)),
        ("smallest".to_string(), best(&|c| c.disk_bytes as f64)),
    ];
    Ok(Some(FormatsReport {
        file: a.file.display().to_string(),
        var: st.source.var_name(),
        dtype: st.meta.dtype.name().into(),
        shape: st.meta.shape.clone(),
        sample_bytes: st.sample_shape.iter().product::<usize>() as u64
            * st.meta.dtype.size() as u64,
        sample_shape: st.sample_shape.clone(),
        ranks: comm.size(),
        threads: st.threads,
        candidates: out,
        recommend,
    }))
}

/// Two whole-array result objects agree (see [`Candidate::agrees`]).
fn same_results(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    a.len() == b.len()
        && a.iter().all(|(k, x)| {
            let Some(y) = b.get(k) else { return false };
            match (k.as_str(), x.as_f64(), y.as_f64()) {
                ("sum" | "mean" | "std" | "var", Some(x), Some(y)) => {
                    x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
                }
                _ => x == y,
            }
        })
}

/// The largest of every rank's `x`, on rank 0 (others get their own).
fn comm_max(comm: &Comm, x: f64) -> f64 {
    let v = comm.max_to_root(&[x]);
    if comm.is_root() { v[0] } else { x }
}

/// Drop `path`'s pages from this node's page cache (clean pages only; the
/// file was synced after writing), so the next read comes from disk.
fn drop_cache(path: &Path) {
    use std::os::fd::AsRawFd;
    for p in files_under(path) {
        if let Ok(f) = std::fs::File::open(p) {
            unsafe {
                libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
            }
        }
    }
}

/// Megabytes (10^6 bytes) per second of uncompressed data.
fn mbs(bytes: u64, secs: f64) -> String {
    if secs.is_nan() || secs <= 0.0 {
        "-".into()
    } else {
        format!("{:.0}", bytes as f64 / secs / 1e6)
    }
}

fn ms(secs: f64) -> String {
    if secs.is_nan() {
        "-".into()
    } else {
        format!("{:.1}", secs * 1e3)
    }
}

/// The table and the recommendations as text.
pub fn to_text(r: &FormatsReport) -> String {
    let mut t = format!(
        "sample    {} of {} '{}' ({} {:?}): {:?}, {}\nranks     {} × {} thread(s); reads are cold (each file dropped from the page cache first)\n\n",
        if r.sample_shape == r.shape {
            "all"
        } else {
            "leading rows"
        },
        r.file,
        r.var,
        r.dtype,
        r.shape,
        r.sample_shape,
        human_bytes(r.sample_bytes),
        r.ranks,
        r.threads
    );
    t += &format!(
        "| {:<14} | {:<38} | {:>12} | {:>12} | {:>5} | {:>10} | {:>10} | {:>9} | {:>7} |\n",
        "candidate",
        "layout",
        "file bytes",
        "on disk",
        "ratio",
        "write MB/s",
        "whole MB/s",
        "series ms",
        "map ms"
    );
    t += &format!(
        "|{}|{}|{}|{}|{}|{}|{}|{}|{}|\n",
        "-".repeat(16),
        "-".repeat(40),
        "-".repeat(14),
        "-".repeat(14),
        "-".repeat(7),
        "-".repeat(12),
        "-".repeat(12),
        "-".repeat(11),
        "-".repeat(9)
    );
    for c in &r.candidates {
        t += &format!(
            "| {:<14} | {:<38} | {:>12} | {:>12} | {:>5.2} | {:>10} | {:>10} | {:>9} | {:>7} |{}\n",
            c.name,
            format!("{} {}", c.format, c.layout),
            c.bytes,
            c.disk_bytes,
            c.ratio,
            mbs(r.sample_bytes, c.write_s),
            mbs(r.sample_bytes, c.whole_s),
            ms(c.series_s),
            ms(c.map_s),
            if c.agrees { "" } else { " RESULTS DIFFER" }
        );
    }
    let pick = |k: &str| {
        r.recommend
            .iter()
            .find(|(x, _)| x == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    t += &format!(
        "\nrecommendation (fastest measured on this sample):\n  whole-array statistics : {}\n  time series per point  : {}\n  map per time step      : {}\n  smallest on disk       : {}\n",
        pick("whole"),
        pick("series"),
        pick("map"),
        pick("smallest")
    );
    t
}
