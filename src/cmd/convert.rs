//! `chunkwise convert`: read a variable from any input format and write it,
//! in parallel, as HDF5 / NetCDF-4 with the chunking and filters asked for,
//! or as `.npy` / raw binary.
//!
//! Flow: validate on every rank (agreed) → open the input on every rank →
//! create the output under a temporary name in the output's directory →
//! every rank reads its blocks (aligned to the *output* chunks, so each
//! output chunk is written whole by one rank) and writes them: HDF5 with
//! collective `H5Dwrite` (which parallel HDF5 ≥ 1.10.2 requires for
//! compressed datasets, and which lets MPI-IO aggregate the others), flat
//! files with positioned writes → rank 0 copies the metadata (attributes,
//! dimension scales, coordinate variables, global attributes) and renames
//! the file into place. Values are copied unchanged (same type, no
//! rounding); big-endian input becomes native little-endian output.
//!
//! `OUT.zarr` is written as a Zarr v3 store laid out as xarray writes one
//! (see [`crate::zarr_out`]): rank 0 writes the metadata into a temporary
//! directory, every rank encodes and writes its own chunks (blocks are whole
//! output chunks, so no chunk has two writers), rank 0 adds the coordinate
//! arrays and renames the directory into place.

use super::output;
use crate::comm::Comm;
use crate::decomp::Decomposition;
use crate::element::Element;
use crate::encoding::{self, Encoding};
use crate::error::CwError;
use crate::h5io;
use crate::request::ConvertRequest;
use crate::selection::AxisRange;
use crate::source::flat::FlatLayout;
use crate::source::{Reader, Source, npy};
use crate::variable::VariableMeta;
use crate::with_dtype;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The kind of file `convert` writes, from the output's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutFormat {
    /// HDF5 / NetCDF-4 (any extension but the ones below).
    Hdf5,
    /// NumPy `.npy`.
    Npy,
    /// Raw little-endian binary (`.raw`, `.bin`, `.dat`).
    Raw,
    /// A Zarr v3 store (`.zarr`), laid out as xarray writes one.
    Zarr,
}

impl OutFormat {
    /// The format written to `path`.
    pub fn of(path: &Path) -> OutFormat {
        match path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .as_deref()
        {
            Some("npy") => OutFormat::Npy,
            Some("raw" | "bin" | "dat") => OutFormat::Raw,
            Some("zarr") => OutFormat::Zarr,
            _ => OutFormat::Hdf5,
        }
    }
}

/// Validated `convert` settings.
#[derive(Clone, Debug)]
pub struct ConvertPlan {
    /// Where the values come from.
    pub source: Source,
    /// The input variable's description.
    pub meta: VariableMeta,
    /// Final output path.
    pub out: PathBuf,
    /// Output kind.
    pub format: OutFormat,
    /// Variable path in an HDF5 output.
    pub out_var: String,
    /// Storage of an HDF5 output (flat outputs are always contiguous).
    pub enc: Encoding,
    /// Block budget in bytes.
    pub block_bytes: u64,
    /// Codec chain of a Zarr output (empty otherwise).
    pub zarr_codecs: Vec<serde_json::Value>,
    /// Replace an existing output.
    pub force: bool,
    /// The command's own output (false for `formats`' candidates, whose
    /// completion is no reason to defer a signal).
    pub is_final: bool,
}

/// Validate arguments and input on this rank (no collective calls).
pub fn validate(a: &ConvertRequest) -> anyhow::Result<ConvertPlan> {
    let (source, meta) = crate::source::describe(&a.input)?;
    validate_described(a, source, meta)
}

/// Validate arguments for an input already described (no collective calls).
pub fn validate_described(
    a: &ConvertRequest,
    source: Source,
    meta: VariableMeta,
) -> anyhow::Result<ConvertPlan> {
    let spec = encoding::parse_chunks(a.chunks.as_deref())?;
    let block_bytes = a.block_bytes();
    let format = OutFormat::of(&a.out);
    let mut zarr_codecs = Vec::new();
    let enc = if format == OutFormat::Zarr {
        if spec == encoding::ChunkSpec::Contiguous {
            return Err(CwError::Parse(format!(
                "'{}' is a Zarr store, which is always chunked: give --chunks C0,C1,... or auto, or leave it out",
                a.out.display()
            ))
            .into());
        }
        zarr_codecs = crate::zarr_out::codecs(&a.compression, a.shuffle, meta.dtype)?;
        // Chunked as for a compressed HDF5 output (the input's chunks, else
        // automatic row slabs); the codecs are in `zarr_codecs`.
        let chunks = encoding::resolve(
            &spec,
            Some(1),
            false,
            &meta.shape,
            meta.dtype.size(),
            meta.chunk.as_deref(),
        )?
        .chunks;
        Encoding {
            chunks,
            gzip: None,
            shuffle: false,
        }
    } else if format == OutFormat::Hdf5 {
        let gzip = encoding::parse_compression(&a.compression)?;
        encoding::resolve(
            &spec,
            gzip,
            a.shuffle,
            &meta.shape,
            meta.dtype.size(),
            meta.chunk.as_deref(),
        )?
    } else {
        if encoding::parse_compression(&a.compression)?.is_some()
            || a.shuffle
            || !matches!(
                spec,
                encoding::ChunkSpec::Keep | encoding::ChunkSpec::Contiguous
            )
        {
            return Err(CwError::Parse(format!(
                "'{}' is written as {} (contiguous, uncompressed): --chunks, --compression and --shuffle apply only to HDF5 / NetCDF-4 and Zarr output",
                a.out.display(),
                if format == OutFormat::Npy {
                    ".npy"
                } else {
                    "raw binary"
                }
            ))
            .into());
        }
        Encoding {
            chunks: None,
            gzip: None,
            shuffle: false,
        }
    };
    let out_var = match (&source, &a.input.var) {
        (Source::Hdf5 { var, .. }, _) => var.trim_matches('/').to_string(),
        (_, Some(v)) if !v.trim_matches('/').is_empty() => v.trim_matches('/').to_string(),
        _ => source.var_name(),
    };
    let inputs = input_paths(&source);
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    if format == OutFormat::Zarr {
        output::check_output_store(&a.out, a.force, &inputs)?;
    } else {
        output::check_output(&a.out, a.force, &inputs)?;
    }
    Ok(ConvertPlan {
        source,
        meta,
        out: a.out.clone(),
        format,
        out_var,
        enc,
        block_bytes,
        zarr_codecs,
        force: a.force,
        is_final: true,
    })
}

/// Every input file of `source` (the output may be none of them).
fn input_paths(source: &Source) -> Vec<PathBuf> {
    match source {
        Source::Multi { plan, .. } => plan.parts.iter().map(|p| PathBuf::from(&p.path)).collect(),
        _ => vec![source.path().to_path_buf()],
    }
}

/// Run `convert` on every rank; rank 0 prints a summary. Several input
/// files are described on rank 0 and the plan shared
/// ([`super::describe_input`]); each rank then reads its blocks from the
/// files that hold them.
pub fn run(comm: &Comm, a: &ConvertRequest) -> anyhow::Result<()> {
    let described = super::describe_input(comm, &a.input);
    let plan = comm.agree(described.and_then(|(s, m)| validate_described(a, s, m)))?;
    let secs = convert(comm, &plan)?;
    if comm.is_root() {
        let bytes = output::tree_bytes(&plan.out);
        let what = match plan.format {
            OutFormat::Zarr => format!(
                "'{}', chunks {:?}, {}",
                plan.out_var,
                plan.enc.chunks.as_deref().unwrap_or(&[]),
                plan.zarr_codecs[1..]
                    .iter()
                    .map(|c| c["name"].as_str().unwrap_or("?").to_string())
                    .chain(
                        std::iter::once("bytes".to_string())
                            .filter(|_| plan.zarr_codecs.len() == 1)
                    )
                    .collect::<Vec<_>>()
                    .join("+")
            ),
            OutFormat::Hdf5 => format!("'{}', {}", plan.out_var, plan.enc.describe()),
            OutFormat::Npy => ".npy".into(),
            OutFormat::Raw => "raw little-endian".into(),
        };
        crate::outln!(
            "converted {} ({} {} {:?}) to {} ({what}; {}) in {secs:.3} s with {} rank(s)",
            match &plan.source {
                Source::Multi { plan: c, .. } => format!(
                    "{} files ({} .. {})",
                    c.parts.len(),
                    c.parts[0].path,
                    c.parts[c.parts.len() - 1].path
                ),
                s => s.path().display().to_string(),
            },
            plan.source.format().name(),
            plan.meta.dtype,
            plan.meta.shape,
            plan.out.display(),
            crate::parse::human_bytes(bytes),
            comm.size()
        )?;
    }
    Ok(())
}

/// Convert as `plan` says (collective). Returns the wall time in seconds
/// (as rank 0 saw it, from opening the input to the output in place).
pub fn convert(comm: &Comm, plan: &ConvertPlan) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let kind = if plan.format == OutFormat::Zarr {
        output::Kind::Dir
    } else {
        output::Kind::File
    };
    let tmp = output::TempOutput::create_collective(
        comm,
        &plan.out,
        plan.force,
        kind,
        &input_paths(&plan.source)
            .iter()
            .map(PathBuf::as_path)
            .collect::<Vec<_>>(),
        plan.is_final,
    )?;
    let reader = Reader::open(comm, &plan.source)?;
    // Every rank returns from the writer together: failures inside
    // collective HDF5 writes abort the job; the others are agreed inside.
    let written = with_dtype!(plan.meta.dtype, T => match plan.format {
        OutFormat::Hdf5 => write_hdf5::<T>(comm, plan, &reader, tmp.path()),
        OutFormat::Zarr => write_zarr::<T>(comm, plan, &reader, tmp.path()),
        OutFormat::Npy | OutFormat::Raw => write_flat::<T>(comm, plan, &reader, tmp.path()),
    });
    reader.close();
    written?;
    tmp.finishing();
    let finished = if comm.is_root() {
        // The metadata step is serial HDF5: see `output::ensure_room`.
        let room = match plan.format {
            OutFormat::Hdf5 => output::ensure_room(&plan.out, 1 << 20),
            _ => Ok(()),
        };
        room.and_then(|()| {
            finish(plan, tmp.path()).map_err(|e| output::write_failed(&plan.out, format!("{e:#}")))
        })
        .and_then(|()| tmp.commit())
    } else {
        drop(tmp);
        Ok(())
    };
    comm.agree(finished.map_err(Into::into))?;
    Ok(t0.elapsed().as_secs_f64())
}

/// Every selection of the whole input.
fn whole(meta: &VariableMeta) -> Vec<AxisRange> {
    meta.shape.iter().map(|&d| AxisRange::all(d)).collect()
}

/// Create the HDF5 output (collective) and write every block.
fn write_hdf5<T: Element>(
    comm: &Comm,
    plan: &ConvertPlan,
    reader: &Reader,
    tmp: &Path,
) -> anyhow::Result<()> {
    let file = comm.agree(h5io::create_mpio(tmp, comm.raw()).map_err(Into::into))?;
    let ds = super::parallel_write::create(comm, &plan.out, &plan.out_var, || {
        h5io::create_dataset(&file, &plan.out_var, T::DTYPE, &plan.meta.shape, &plan.enc)
    });
    let d = Decomposition::new(
        &plan.meta.shape,
        plan.enc.chunks.as_deref(),
        plan.meta.dtype.size(),
        plan.block_bytes,
    );
    let sel = whole(&plan.meta);
    super::parallel_write::write_blocks::<T>(comm, "convert", &ds, &plan.out, &d, |b, buf| {
        reader.read_block(b, &sel, buf).map_err(Into::into)
    });
    drop(ds);
    super::parallel_write::close(comm, file, &plan.out)
}

/// Write a `.npy` or raw file: rank 0 writes the header and sizes the file,
/// then every rank writes its row slabs with positioned writes.
fn write_flat<T: Element>(
    comm: &Comm,
    plan: &ConvertPlan,
    reader: &Reader,
    tmp: &Path,
) -> anyhow::Result<()> {
    let shape = &plan.meta.shape;
    let header = match plan.format {
        OutFormat::Npy => npy::render_header(plan.meta.dtype, shape),
        _ => Vec::new(),
    };
    let layout = FlatLayout {
        path: tmp.to_path_buf(),
        offset: header.len() as u64,
        dtype: plan.meta.dtype,
        big_endian: false,
        shape: shape.clone(),
    };
    let created = if comm.is_root() {
        (|| -> std::io::Result<()> {
            // The temporary exists (created exclusively, empty).
            let f = std::fs::OpenOptions::new().write(true).open(tmp)?;
            std::os::unix::fs::FileExt::write_all_at(&f, &header, 0)?;
            f.set_len(layout.offset + layout.data_bytes())
        })()
        .map_err(|e| anyhow::anyhow!("cannot create '{}': {e}", tmp.display()))
    } else {
        Ok(())
    };
    comm.agree(created)?;
    let file = comm.agree(
        std::fs::OpenOptions::new()
            .write(true)
            .open(tmp)
            .map_err(|e| anyhow::anyhow!("cannot open '{}' for writing: {e}", tmp.display())),
    )?;
    let d = Decomposition::new(shape, None, plan.meta.dtype.size(), plan.block_bytes);
    let sel = whole(&plan.meta);
    let mine = d.rank_range(comm.rank(), comm.size());
    let mut buf = vec![T::default(); if mine.is_empty() { 0 } else { d.block_elems() }];
    crate::interrupt::set_total(mine.len());
    let total = layout.data_bytes();
    let progress = crate::progress::Progress::start(comm, "convert", total);
    let mut failed = None;
    for (i, idx) in mine.enumerate() {
        let b = d.block(idx);
        // Independent writes: a failure ends this rank's part; agreed below.
        let r = crate::testhooks::before_block(i + 1)
            .and_then(|()| Ok(reader.read_block(&b, &sel, &mut buf[..b.len()])?))
            .and_then(|()| {
                layout
                    .write_block(&file, &b, &buf[..b.len()])
                    .map_err(|e| output::write_failed(&plan.out, e))
            });
        if let Err(e) = r {
            failed = Some(e);
            break;
        }
        crate::interrupt::tick();
        progress.add((b.len() * plan.meta.dtype.size()) as u64);
    }
    // Every rank ends its progress (rank 0 waits for the others' final
    // counts) before the agreement, also after a failure here.
    progress.finish();
    drop(file);
    comm.agree(failed.map_or(Ok(()), |e| Err(e.into())))
}

/// Create the Zarr store (rank 0: the group and the array's metadata) and
/// write every block: each rank encodes and stores its own whole chunks.
fn write_zarr<T: Element>(
    comm: &Comm,
    plan: &ConvertPlan,
    reader: &Reader,
    tmp: &Path,
) -> anyhow::Result<()> {
    let chunks = plan.enc.chunks.clone().expect("Zarr output is chunked");
    let created = if comm.is_root() {
        crate::interrupt::writing(|| super::zarr_store::create(plan, tmp, &chunks))
            .map_err(Into::into)
    } else {
        Ok(())
    };
    comm.agree(created)?;
    let writer =
        comm.agree(crate::zarr_out::ZarrWriter::open(tmp, &plan.out_var).map_err(Into::into))?;
    let d = Decomposition::new(
        &plan.meta.shape,
        Some(&chunks),
        plan.meta.dtype.size(),
        plan.block_bytes,
    );
    let sel = whole(&plan.meta);
    let mine = d.rank_range(comm.rank(), comm.size());
    let mut buf = vec![T::default(); if mine.is_empty() { 0 } else { d.block_elems() }];
    crate::interrupt::set_total(mine.len());
    let total = d.shape.iter().product::<usize>() as u64 * plan.meta.dtype.size() as u64;
    let progress = crate::progress::Progress::start(comm, "convert", total);
    let mut failed = None;
    for (i, idx) in mine.enumerate() {
        let b = d.block(idx);
        // Independent writes of whole chunks: a failure ends this rank's
        // part; agreed below.
        let r = crate::testhooks::before_block(i + 1)
            .and_then(|()| Ok(reader.read_block(&b, &sel, &mut buf[..b.len()])?))
            .and_then(|()| {
                crate::interrupt::writing(|| {
                    writer
                        .write_block(&b, &buf[..b.len()])
                        .map_err(|e| output::write_failed(&plan.out, e))
                })
            });
        if let Err(e) = r {
            failed = Some(e);
            break;
        }
        crate::interrupt::tick();
        progress.add((b.len() * plan.meta.dtype.size()) as u64);
    }
    progress.finish();
    comm.agree(failed.map_or(Ok(()), |e| Err(e.into())))
}

/// Rank 0, after the data are written: the metadata of an HDF5 output,
/// the coordinate arrays of a Zarr output.
fn finish(plan: &ConvertPlan, tmp: &Path) -> Result<(), CwError> {
    if plan.format == OutFormat::Zarr {
        return crate::interrupt::writing(|| super::zarr_store::coordinates(plan, tmp));
    }
    if plan.format != OutFormat::Hdf5 {
        return Ok(());
    }
    let line = format!(
        "{}: {}",
        crate::nc_out::utc_timestamp(),
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    match &plan.source {
        Source::Hdf5 { path, var } => Ok(crate::h5meta::carry_over(
            path,
            var,
            tmp,
            &plan.out_var,
            &line,
        )?),
        // Several files: the first file's metadata, with the record
        // coordinate of all of them (in that file's units).
        Source::Multi { plan: c, var } => Ok(crate::h5meta::carry_over_with(
            Path::new(&c.parts[0].path),
            var,
            tmp,
            &plan.out_var,
            &line,
            c.meta.dims.coords[c.axis].as_deref().map(|v| (c.axis, v)),
        )?),
        Source::Flat { .. } | Source::Zarr(_) => {
            // Descriptive attributes (Zarr `attributes` such as units) as text.
            let err = |e: hdf5::Error| CwError::Output(format!("'{}': {e}", tmp.display()));
            let f = hdf5::File::open_rw(tmp).map_err(err)?;
            // Always closed through `close_rw`, also after an error.
            let r = (|| -> Result<(), CwError> {
                let ds = f.dataset(&plan.out_var).map_err(err)?;
                for (k, v) in &plan.meta.attrs {
                    crate::nc_out::write_text_attr(ds.id(), k, v)?;
                }
                Ok(crate::nc_out::write_text_attr(f.id(), "history", &line)?)
            })();
            let closed = crate::h5io::close_rw(f, tmp).map_err(CwError::from);
            r.and(closed)?;
            Ok(crate::h5meta::name_dimensions(
                tmp,
                &plan.out_var,
                &plan.meta.dims,
                &plan.meta.coord_attrs,
            )?)
        }
    }
}
