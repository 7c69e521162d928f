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
//! can be agreed); [`Reader::open`] is collective.

pub mod flat;
pub mod npy;
pub mod zarr;

use crate::cf::Decode;
use crate::comm::Comm;
use crate::decomp::Block;
use crate::element::{Dtype, Element};
use crate::error::CwError;
use crate::h5io::{self, VariableMeta};
use crate::selection::{AxisRange, Dims};
use flat::FlatLayout;
use std::path::{Path, PathBuf};

/// What the user named as input, before looking at the file.
#[derive(Clone, Debug, Default)]
pub struct SourceSpec {
    /// The input path.
    pub path: PathBuf,
    /// `--var`: the dataset in an HDF5 / NetCDF-4 file (ignored otherwise).
    pub var: Option<String>,
    /// `--raw-dtype`: element type of a raw binary file (`f64`, `<f8`, `>i4`, ...).
    pub raw_dtype: Option<String>,
    /// `--raw-shape`: shape of a raw binary file (`1000,2000`).
    pub raw_shape: Option<String>,
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
}

impl Source {
    /// The input file.
    pub fn path(&self) -> &Path {
        match self {
            Source::Hdf5 { path, .. } => path,
            Source::Zarr(m) => &m.path,
            Source::Flat { layout, .. } => &layout.path,
        }
    }

    /// Short name of the format: `hdf5`, `zarr`, `npy` or `raw`.
    pub fn format(&self) -> &'static str {
        match self {
            Source::Hdf5 { .. } => "hdf5",
            Source::Zarr(_) => "zarr",
            Source::Flat {
                kind: FlatKind::Npy,
                ..
            } => "npy",
            Source::Flat {
                kind: FlatKind::Raw,
                ..
            } => "raw",
        }
    }

    /// The variable's name: the dataset path for HDF5, else the file stem.
    pub fn var_name(&self) -> String {
        match self {
            Source::Hdf5 { var, .. } => var.clone(),
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

/// Parse `--raw-dtype`: a type name (`f64`, `i32`, ..., little-endian) or a
/// NumPy type string with its byte order (`<f8`, `>i4`). Returns the type
/// and whether it is big-endian.
pub fn parse_raw_dtype(s: &str) -> Result<(Dtype, bool), CwError> {
    if let Some(d) = Dtype::parse(s) {
        return Ok((d, false));
    }
    npy::parse_descr(s.trim()).map_err(|_| {
        CwError::Parse(format!(
            "unknown --raw-dtype '{s}': use f32, f64, i8..i64, u8..u64 (little-endian) or a NumPy type string such as '<f8' or '>i4'"
        ))
    })
}

/// What kind of input `path` is, from its first bytes (or `zarr.json`).
fn sniff(path: &Path) -> Result<&'static str, CwError> {
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| CwError::Input(format!("cannot open input file '{shown}': {e}")))?;
    if meta.is_dir() {
        if path.join("zarr.json").is_file() {
            return Ok("zarr");
        }
        return Err(CwError::Input(format!(
            "input '{shown}' is a directory, not an HDF5/NetCDF-4, .npy or raw file (nor a Zarr v3 store: no zarr.json)"
        )));
    }
    let f = std::fs::File::open(path)
        .map_err(|e| CwError::Input(format!("cannot open input file '{shown}': {e}")))?;
    let mut head = [0u8; 6];
    let n = std::os::unix::fs::FileExt::read_at(&f, &mut head, 0).unwrap_or(0);
    if n == 6 && &head == npy::MAGIC {
        return Ok("npy");
    }
    if h5io::precheck_input(path).is_ok() {
        return Ok("hdf5");
    }
    Ok("other")
}

/// Describe the input on this rank (no collective calls): which format,
/// and the variable's type, shape, chunking, dimensions and attributes.
pub fn describe(spec: &SourceSpec) -> Result<(Source, VariableMeta), CwError> {
    let path = &spec.path;
    let shown = path.display();
    let kind = sniff(path)?;
    let raw_given = spec.raw_dtype.is_some() || spec.raw_shape.is_some();
    if raw_given && kind != "other" {
        let what = match kind {
            "npy" => "an .npy file",
            "hdf5" => "an HDF5/NetCDF-4 file",
            _ => "a Zarr v3 array",
        };
        return Err(CwError::Parse(format!(
            "'{shown}' is {what}; --raw-dtype and --raw-shape apply only to raw binary input"
        )));
    }
    let layout = match kind {
        "hdf5" => {
            let var = spec.var.as_deref().ok_or_else(|| {
                CwError::Parse(format!(
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
        "zarr" => {
            let z = zarr::describe(path)?;
            let meta = zarr_meta(&z)?;
            return Ok((Source::Zarr(z), meta));
        }
        "npy" => (FlatKind::Npy, FlatLayout::from_npy(path)?),
        _ => {
            let (Some(dt), Some(sh)) = (&spec.raw_dtype, &spec.raw_shape) else {
                if raw_given {
                    return Err(CwError::Parse(
                        "raw binary input needs both --raw-dtype and --raw-shape".into(),
                    ));
                }
                return Err(CwError::Input(format!(
                    "'{shown}' is not an HDF5/NetCDF-4 or .npy file (no HDF5 signature or NumPy magic); for raw binary give --raw-dtype and --raw-shape"
                )));
            };
            let (dtype, big) = parse_raw_dtype(dt)?;
            let shape = crate::parse::parse_shape(sh, "--raw-shape")?;
            (
                FlatKind::Raw,
                FlatLayout::from_raw(path, dtype, big, shape)?,
            )
        }
    };
    let (kind, layout) = layout;
    if layout.shape.is_empty() {
        return Err(CwError::Input(format!(
            "'{shown}' holds a scalar (0-d array); nothing to reduce"
        )));
    }
    if layout.shape.contains(&0) {
        return Err(CwError::Input(format!(
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
fn zarr_meta(z: &zarr::ZarrMeta) -> Result<VariableMeta, CwError> {
    let shown = z.path.display();
    if z.shape.is_empty() {
        return Err(CwError::Input(format!(
            "Zarr array '{shown}' is a scalar; nothing to reduce"
        )));
    }
    if z.shape.contains(&0) {
        return Err(CwError::Input(format!(
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
    },
    /// Zarr array opened by this rank (boxed: it is large).
    Zarr(Box<zarr::ZarrArray>),
    /// Flat file opened by this rank.
    Flat {
        /// Layout.
        layout: FlatLayout,
        /// Open file.
        file: std::fs::File,
    },
}

impl Reader {
    /// Open `source` on every rank (collective; failures are agreed, so
    /// every rank returns the same outcome).
    pub fn open(comm: &Comm, source: &Source) -> anyhow::Result<Reader> {
        match source {
            Source::Hdf5 { path, var } => {
                let file = comm.agree(h5io::open_mpio(path, comm.raw()).map_err(Into::into))?;
                let ds = comm.agree(
                    file.dataset(var)
                        .map_err(|e| anyhow::anyhow!("cannot open '{var}': {e}")),
                )?;
                Ok(Reader::Hdf5 { ds, file })
            }
            Source::Zarr(m) => Ok(Reader::Zarr(Box::new(
                comm.agree(zarr::ZarrArray::open(m).map_err(Into::into))?,
            ))),
            Source::Flat { layout, .. } => {
                let file = comm.agree(std::fs::File::open(&layout.path).map_err(|e| {
                    anyhow::anyhow!("cannot open '{}': {e}", layout.path.display())
                }))?;
                Ok(Reader::Flat {
                    layout: layout.clone(),
                    file,
                })
            }
        }
    }

    /// Read `block` (in the index space of the selection `sel`) into the
    /// first `block.len()` elements of `buf`. `T` is the stored element type.
    pub fn read_block<T: Element>(
        &self,
        block: &Block,
        sel: &[AxisRange],
        buf: &mut [T],
    ) -> Result<(), CwError> {
        match self {
            Reader::Hdf5 { ds, .. } => h5io::read_block(ds, block, sel, buf),
            Reader::Zarr(z) => z.read_block(block, sel, buf),
            Reader::Flat { layout, file } => layout.read_block(file, block, sel, buf),
        }
    }

    /// Close the input (HDF5: the dataset, then the file).
    pub fn close(self) {
        if let Reader::Hdf5 { ds, file } = self {
            drop(ds);
            drop(file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_dtype_forms() {
        assert_eq!(parse_raw_dtype("f64").unwrap(), (Dtype::F64, false));
        assert_eq!(parse_raw_dtype(">f8").unwrap(), (Dtype::F64, true));
        assert_eq!(parse_raw_dtype("<i4").unwrap(), (Dtype::I32, false));
        let e = parse_raw_dtype("double").unwrap_err().to_string();
        assert!(e.contains("--raw-dtype"), "{e}");
    }
}
