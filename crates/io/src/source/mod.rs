//! Input sources: where an array comes from and how blocks of it are read.
//! `reduce` and `convert` read through this module, so every input format
//! goes through the same decomposition and kernels and gives bit-identical
//! results for the same values.
//!
//! Formats, detected from the file itself:
//! * HDF5 / NetCDF-4 — the HDF5 signature; `--var` names the dataset; read
//!   with collective-open MPI-IO and independent hyperslab reads ([`crate::h5io`]).
//! * NumPy `.npy` — the `\x93NUMPY` magic ([`npy`]); read with `pread` ([`flat`]).
//! * raw binary — any other file, when `--raw-dtype` and `--raw-shape` are
//!   given; read with `pread` ([`flat`]).
//! * Zarr v3 — a directory with `zarr.json` describing an array; read with
//!   the `zarrs` crate ([`zarr`]).
//!
//! [`describe`] runs on every rank without collective calls (so its outcome
//! can be agreed); [`Reader::open`] is collective for HDF5 and takes the
//! caller's [`Agree`] to agree on the outcome of each collective step.

pub mod flat;
pub mod multi;
pub mod npy;
pub mod zarr;

use crate::IoError;
use crate::cf::Decode;
use crate::chunk_direct::{ChunkDirect, Staged};
use crate::decomp::Block;
use crate::element::Element;
use crate::h5io;
use crate::hyperslab;
use crate::selection::{AxisRange, Dims};
use chunkwise_core::request::InputSpec;
use chunkwise_core::variable::VariableMeta;
use flat::FlatLayout;
use std::path::{Path, PathBuf};

/// The format of an input, detected from the file itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// HDF5 or NetCDF-4 (the HDF5 signature).
    Hdf5,
    /// A Zarr v3 array (a directory with `zarr.json`).
    Zarr,
    /// NumPy `.npy` (the `\x93NUMPY` magic).
    Npy,
    /// Raw binary (anything else; needs `--raw-dtype` and `--raw-shape`).
    Raw,
}

impl Format {
    /// Short name: `hdf5`, `zarr`, `npy` or `raw`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Hdf5 => "hdf5",
            Format::Zarr => "zarr",
            Format::Npy => "npy",
            Format::Raw => "raw",
        }
    }

    /// How a user would call such an input, for messages.
    fn described(self) -> &'static str {
        match self {
            Format::Hdf5 => "an HDF5/NetCDF-4 file",
            Format::Zarr => "a Zarr v3 array",
            Format::Npy => "an .npy file",
            Format::Raw => "a raw binary file",
        }
    }
}

/// How ranks agree on the outcome of a collective step (the binary's
/// communicator implements it; a single process uses [`Solo`]). `agree`
/// returns `Ok` on every rank only when every rank succeeded.
pub trait Agree {
    /// Agree on `r` across ranks.
    fn agree<T>(&self, r: anyhow::Result<T>) -> anyhow::Result<T>;
    /// The raw `MPI_Comm` handle parallel HDF5 opens files on (`None`: serial).
    fn mpi_comm(&self) -> Option<mpi_sys::MPI_Comm>;
}

/// One process alone: nothing to agree on, files opened serially.
pub struct Solo;

impl Agree for Solo {
    fn agree<T>(&self, r: anyhow::Result<T>) -> anyhow::Result<T> {
        r
    }
    fn mpi_comm(&self) -> Option<mpi_sys::MPI_Comm> {
        None
    }
}

/// Kind of a flat (headered or raw) file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlatKind {
    /// NumPy `.npy`.
    Npy,
    /// Raw binary.
    Raw,
}

/// A described input: enough to open it on every rank.
#[derive(Clone, Debug)]
pub enum Source {
    /// A dataset in an HDF5 / NetCDF-4 file.
    Hdf5 {
        /// The file.
        path: PathBuf,
        /// The dataset path.
        var: String,
    },
    /// A Zarr v3 array.
    Zarr(zarr::ZarrMeta),
    /// A flat file (`.npy` or raw).
    Flat {
        /// Which kind.
        kind: FlatKind,
        /// Its layout.
        layout: FlatLayout,
    },
    /// Several HDF5 / NetCDF-4 files concatenated along their first
    /// dimension ([`multi`]).
    Multi {
        /// The files in record order, and the dataset they form.
        plan: Box<chunkwise_core::concat::Concat>,
        /// The dataset path in every file.
        var: String,
    },
}

impl Source {
    /// The input file.
    pub fn path(&self) -> &Path {
        match self {
            Source::Hdf5 { path, .. } => path,
            Source::Zarr(m) => &m.path,
            Source::Flat { layout, .. } => &layout.path,
            Source::Multi { plan, .. } => Path::new(&plan.parts[0].path),
        }
    }

    /// The format.
    pub fn format(&self) -> Format {
        match self {
            Source::Hdf5 { .. } | Source::Multi { .. } => Format::Hdf5,
            Source::Zarr(_) => Format::Zarr,
            Source::Flat {
                kind: FlatKind::Npy,
                ..
            } => Format::Npy,
            Source::Flat {
                kind: FlatKind::Raw,
                ..
            } => Format::Raw,
        }
    }

    /// The variable's name: the dataset path for HDF5, else the file stem.
    pub fn var_name(&self) -> String {
        match self {
            Source::Hdf5 { var, .. } | Source::Multi { var, .. } => var.clone(),
            Source::Zarr(m) => stem(&m.path),
            Source::Flat { layout, .. } => stem(&layout.path),
        }
    }
}

/// The file (or directory) name without its extension.
fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into())
}

/// What kind of input `path` is, from its first bytes (or `zarr.json`).
pub fn detect_format(path: &Path) -> Result<Format, IoError> {
    let shown = path.display();
    let meta = crate::input_file::metadata(path)?;
    if meta.is_dir() {
        if path.join("zarr.json").is_file() {
            return Ok(Format::Zarr);
        }
        return Err(IoError::Input(format!(
            "input '{shown}' is a directory, not an HDF5/NetCDF-4, .npy or raw file (nor a Zarr v3 store: no zarr.json)"
        )));
    }
    let f = std::fs::File::open(path)
        .map_err(|e| IoError::Input(format!("cannot open input file '{shown}': {e}")))?;
    let mut head = [0u8; 6];
    let n = std::os::unix::fs::FileExt::read_at(&f, &mut head, 0).unwrap_or(0);
    if n == 6 && &head == npy::MAGIC {
        return Ok(Format::Npy);
    }
    if h5io::has_signature(path) {
        return Ok(Format::Hdf5);
    }
    Ok(Format::Raw)
}

/// Describe the input on this rank (no collective calls): which format,
/// and the variable's type, shape, chunking, dimensions and attributes.
pub fn describe(spec: &InputSpec) -> Result<(Source, VariableMeta), IoError> {
    let path = &spec.path;
    let shown = path.display();
    let kind = detect_format(path)?;
    if spec.raw.is_some() && kind != Format::Raw {
        return Err(IoError::Parse(format!(
            "'{shown}' is {}; --raw-dtype and --raw-shape apply only to raw binary input",
            kind.described()
        )));
    }
    let layout = match kind {
        Format::Hdf5 => {
            let var = spec.var.as_deref().ok_or_else(|| {
                IoError::Parse(format!(
                    "'{shown}' is an HDF5/NetCDF-4 file: name the variable with --var"
                ))
            })?;
            let meta = h5io::variable_meta(path, var)?;
            return Ok((
                Source::Hdf5 {
                    path: path.clone(),
                    var: var.to_string(),
                },
                meta,
            ));
        }
        Format::Zarr => {
            // A store's root group and --var: the variable's array in it
            // (`reduce OUT.zarr --var tas` reads `OUT.zarr/tas`).
            let array = match &spec.var {
                Some(v) if zarr::group_arrays(path)?.is_some() => path.join(v.trim_matches('/')),
                _ => path.clone(),
            };
            let z = zarr::describe(&array)?;
            let meta = zarr_meta(&z)?;
            return Ok((Source::Zarr(z), meta));
        }
        Format::Npy => (FlatKind::Npy, FlatLayout::from_npy(path)?),
        Format::Raw => {
            let Some(raw) = &spec.raw else {
                // A damaged signature lands here too: name the variable asked for.
                let var = spec
                    .var
                    .as_deref()
                    .map(|v| format!(", so it holds no variable '{v}'"))
                    .unwrap_or_default();
                return Err(IoError::Input(format!(
                    "'{shown}' is not an HDF5/NetCDF-4 or .npy file (no HDF5 signature or NumPy magic){var}; for raw binary give --raw-dtype and --raw-shape"
                )));
            };
            (
                FlatKind::Raw,
                FlatLayout::from_raw(path, raw.dtype, raw.big_endian, raw.shape.clone())?,
            )
        }
    };
    let (kind, layout) = layout;
    if layout.shape.contains(&0) {
        return Err(IoError::Input(format!(
            "'{shown}' is empty (shape {:?})",
            layout.shape
        )));
    }
    let n = layout.shape.len();
    let meta = VariableMeta {
        dtype: layout.dtype,
        shape: layout.shape.clone(),
        chunk: None,
        filtered: false,
        dims: Dims {
            names: (0..n).map(|i| format!("dim_{i}")).collect(),
            shape: layout.shape.clone(),
            coords: vec![None; n],
        },
        decode: Decode::default(),
        attrs: Vec::new(),
        globals: Vec::new(),
        coord_attrs: vec![Vec::new(); n],
    };
    Ok((Source::Flat { kind, layout }, meta))
}

/// What `reduce` knows about a Zarr array: its dimension names and
/// coordinates (see [`zarr::coordinates`]), its chunking, carried
/// attributes and CF decoding from `attributes`.
fn zarr_meta(z: &zarr::ZarrMeta) -> Result<VariableMeta, IoError> {
    let shown = z.path.display();
    if z.shape.is_empty() {
        return Err(IoError::Input(format!(
            "Zarr array '{shown}' is a scalar; nothing to reduce"
        )));
    }
    if z.shape.contains(&0) {
        return Err(IoError::Input(format!(
            "Zarr array '{shown}' is empty (shape {:?})",
            z.shape
        )));
    }
    let num = |k: &str| {
        z.numeric_attrs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let (coords, coord_attrs): (Vec<_>, Vec<_>) = zarr::coordinates(z)
        .into_iter()
        .map(|c| match c {
            Some((v, a)) => (Some(v), a),
            None => (None, Vec::new()),
        })
        .unzip();
    Ok(VariableMeta {
        dtype: z.dtype,
        shape: z.shape.clone(),
        chunk: z.chunk.clone(),
        // Zarr chunks are decoded whole by the codec chain: read whole chunks.
        filtered: true,
        dims: Dims {
            names: z.dims.clone(),
            shape: z.shape.clone(),
            coords,
        },
        decode: Decode {
            missing: ["_FillValue", "missing_value"]
                .iter()
                .filter_map(|k| num(k))
                .flatten()
                .collect(),
            scale: num("scale_factor").and_then(|v| v.first().copied()),
            offset: num("add_offset").and_then(|v| v.first().copied()),
        },
        attrs: z
            .attrs
            .iter()
            .filter(|(k, _)| h5io::CARRIED_ATTRS.contains(&k.as_str()))
            .cloned()
            .collect(),
        globals: Vec::new(),
        coord_attrs,
    })
}

/// An opened input, ready for block reads from one thread at a time.
pub enum Reader {
    /// HDF5 dataset opened with MPI-IO (the file handle keeps it open).
    Hdf5 {
        /// The dataset.
        ds: hdf5::Dataset,
        /// The file.
        file: hdf5::File,
        /// Chunk-direct decoding, when the filter pipeline allows it.
        direct: Option<Box<ChunkDirect>>,
    },
    /// Zarr array opened by this rank (boxed: it is large).
    Zarr(Box<zarr::ZarrArray>),
    /// Several files, each opened by this rank when first needed.
    Multi(Box<multi::MultiReader>),
    /// Flat file opened by this rank.
    Flat {
        /// Layout.
        layout: FlatLayout,
        /// Open file.
        file: std::fs::File,
    },
}

impl Reader {
    /// Open `source` on every rank. For HDF5 the open is collective (MPI-IO
    /// on `agree`'s communicator) and each step's outcome is agreed, so
    /// every rank returns the same outcome.
    pub fn open(agree: &impl Agree, source: &Source) -> anyhow::Result<Reader> {
        match source {
            Source::Hdf5 { path, var } => {
                let file = agree.agree(
                    match agree.mpi_comm() {
                        Some(c) => h5io::open_mpio(path, c),
                        None => h5io::open_serial(path),
                    }
                    .map_err(Into::into),
                )?;
                let ds = agree.agree(
                    file.dataset(var)
                        .map_err(|e| anyhow::anyhow!("cannot open '{var}': {e}")),
                )?;
                // Deflate/shuffle/fletcher32 chunks are decoded outside
                // libhdf5 (chunk_direct); CHUNKWISE_NO_CHUNK_DIRECT=1 keeps
                // libhdf5's own path, for comparison.
                let off = std::env::var("CHUNKWISE_NO_CHUNK_DIRECT").is_ok_and(|v| v == "1");
                let direct = if off {
                    None
                } else {
                    h5io::dataset_dtype(&ds, var)
                        .ok()
                        .and_then(|t| ChunkDirect::plan(&ds, t))
                        .map(Box::new)
                };
                Ok(Reader::Hdf5 { ds, file, direct })
            }
            Source::Zarr(m) => Ok(Reader::Zarr(Box::new(
                agree.agree(zarr::ZarrArray::open(m).map_err(Into::into))?,
            ))),
            Source::Flat { layout, .. } => {
                let file = agree.agree(std::fs::File::open(&layout.path).map_err(|e| {
                    anyhow::anyhow!("cannot open '{}': {e}", layout.path.display())
                }))?;
                Ok(Reader::Flat {
                    layout: layout.clone(),
                    file,
                })
            }
            // Files are opened lazily and independently by each rank.
            Source::Multi { plan, var } => Ok(Reader::Multi(Box::new(multi::MultiReader::new(
                (**plan).clone(),
                var.clone(),
            )))),
        }
    }

    /// Read `block` (in the index space of the selection `sel`) into the
    /// first `block.len()` elements of `buf`. `T` is the stored element type.
    pub fn read_block<T: Element>(
        &self,
        block: &Block,
        sel: &[AxisRange],
        buf: &mut [T],
    ) -> Result<(), IoError> {
        self.read_block_in(block, sel, buf, None)
    }

    /// As [`Reader::read_block`]; compressed HDF5 chunks read chunk-direct
    /// are decoded by `pool` (else by the current rayon context).
    pub fn read_block_in<T: Element>(
        &self,
        block: &Block,
        sel: &[AxisRange],
        buf: &mut [T],
        pool: Option<&rayon::ThreadPool>,
    ) -> Result<(), IoError> {
        let mut staged = Staged::default();
        self.stage_block(block, sel, buf, &mut staged, pool)?;
        if staged.is_empty() {
            return Ok(());
        }
        match pool {
            Some(p) => p.install(|| staged.finish(buf)),
            None => staged.finish(buf),
        }
    }

    /// The reading half of [`Reader::read_block_in`]: every call into the
    /// file (this thread only). Compressed HDF5 chunks read chunk-direct
    /// are left in `staged`, still encoded, and the block is complete only
    /// after [`Staged::finish`] (which any thread can run, in its pool);
    /// everything else is read into `buf` here.
    pub fn stage_block<T: Element>(
        &self,
        block: &Block,
        sel: &[AxisRange],
        buf: &mut [T],
        staged: &mut Staged,
        pool: Option<&rayon::ThreadPool>,
    ) -> Result<(), IoError> {
        // A block across the seam of a wrapped longitude range is two
        // hyperslabs: read each part, then interleave them in place.
        if let Some((axis, first, second)) = hyperslab::split_at_seam(block, sel) {
            let mut a = vec![T::default(); first.len()];
            let mut b = vec![T::default(); second.len()];
            self.read_block_in(&first, sel, &mut a, pool)?;
            self.read_block_in(&second, sel, &mut b, pool)?;
            hyperslab::join_at_seam(axis, &block.count, first.count[axis], &a, &b, buf);
            return Ok(());
        }
        match self {
            Reader::Hdf5 {
                ds,
                direct: Some(d),
                ..
            } if d.handles(sel) => d.stage(ds, block, sel, 0, staged),
            Reader::Hdf5 { ds, .. } => h5io::read_block(ds, block, sel, buf),
            Reader::Zarr(z) => z.read_block(block, sel, buf),
            Reader::Flat { layout, file } => layout.read_block(file, block, sel, buf),
            Reader::Multi(m) => m.stage_block(block, sel, buf, staged),
        }
    }

    /// Close the input (HDF5: the dataset, then the file).
    pub fn close(self) {
        if let Reader::Hdf5 { ds, file, .. } = self {
            drop(ds);
            drop(file);
        }
    }
}
