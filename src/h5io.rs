//! Thin layer over HDF5: opening files (serial or MPI-IO), describing
//! datasets, and hyperslab reads/writes into caller-owned buffers.
//!
//! The high-level `hdf5` crate allocates a new array per read; block reads
//! here go through the C API (`H5Dread` with a hyperslab file space) so one
//! buffer is reused for every block. Only one thread at a time calls into
//! HDF5 (the library is not thread-safe); callers keep to that.

use crate::decomp::Block;
use crate::element::{Dtype, Element};
use crate::error::CwError;
use hdf5::types::{FloatSize, IntSize, TypeDescriptor};
use hdf5::{Dataset, File};
use hdf5_sys::h5d::{H5Dget_space, H5Dread, H5Dwrite};
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5p::{H5FD_mpio_xfer_t, H5Pclose, H5Pcreate, H5Pset_dxpl_mpio};
use hdf5_sys::h5s::{
    H5S_seloper_t, H5Sclose, H5Screate_simple, H5Sselect_hyperslab, H5Sselect_none,
};
use std::path::Path;

/// The 8-byte signature at the start of every HDF5 file (offset 0 unless a
/// user block precedes it, in which case it sits at 512, 1024, ...).
const HDF5_SIGNATURE: [u8; 8] = [0x89, b'H', b'D', b'F', b'\r', b'\n', 0x1a, b'\n'];

/// Check, without HDF5 and without any collective call, that `path` is a
/// readable regular file that starts like an HDF5 file. Gives clear messages
/// for the common mistakes before the collective MPI-IO open.
pub fn precheck_input(path: &Path) -> Result<(), CwError> {
    use std::io::{Read, Seek, SeekFrom};
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| CwError::Input(format!("cannot open input file '{shown}': {e}")))?;
    if meta.is_dir() {
        return Err(CwError::Input(format!(
            "input '{shown}' is a directory, not an HDF5/NetCDF-4 file"
        )));
    }
    let mut f = std::fs::File::open(path)
        .map_err(|e| CwError::Input(format!("cannot open input file '{shown}': {e}")))?;
    let mut sig = [0u8; 8];
    let mut off = 0u64;
    while off + 8 <= meta.len() {
        f.seek(SeekFrom::Start(off))
            .map_err(|e| CwError::Input(format!("cannot read '{shown}': {e}")))?;
        f.read_exact(&mut sig)
            .map_err(|e| CwError::Input(format!("cannot read '{shown}': {e}")))?;
        if sig == HDF5_SIGNATURE {
            return Ok(());
        }
        off = if off == 0 { 512 } else { off * 2 };
    }
    Err(CwError::Input(format!(
        "'{shown}' is not an HDF5 or NetCDF-4 file (no HDF5 signature)"
    )))
}

/// Open a file read-only with the default (POSIX) driver, for metadata only.
pub fn open_serial(path: &Path) -> Result<File, CwError> {
    hdf5::File::open(path)
        .map_err(|e| CwError::Input(format!("cannot open '{}' as HDF5: {e}", path.display())))
}

/// Open a file read-only with the MPI-IO driver on `comm` (collective).
pub fn open_mpio(path: &Path, comm: mpi::ffi::MPI_Comm) -> Result<File, CwError> {
    hdf5::FileBuilder::new()
        .with_fapl(|p| p.mpio(comm, None))
        .open(path)
        .map_err(|e| CwError::Input(format!("cannot open '{}' with MPI-IO: {e}", path.display())))
}

/// Create (truncate) a file with the MPI-IO driver on `comm` (collective).
pub fn create_mpio(path: &Path, comm: mpi::ffi::MPI_Comm) -> Result<File, CwError> {
    hdf5::FileBuilder::new()
        .with_fapl(|p| p.mpio(comm, None))
        .create(path)
        .map_err(|e| CwError::Output(format!("cannot create '{}': {e}", path.display())))
}

/// Open the dataset `var` in `file`, with a message naming both when it is
/// missing or is not a dataset.
pub fn open_dataset(file: &File, var: &str, file_name: &str) -> Result<Dataset, CwError> {
    if file.group(var).is_ok() {
        return Err(CwError::Input(format!(
            "'{var}' in '{file_name}' is a group, not a dataset (variable)"
        )));
    }
    file.dataset(var).map_err(|_| {
        let names = list_datasets(file).join(", ");
        CwError::Input(format!(
            "variable '{var}' not found in '{file_name}' (datasets: {names})"
        ))
    })
}

/// What `reduce` and `plan` need to know about a variable before reading it.
#[derive(Clone, Debug)]
pub struct VariableMeta {
    /// Element type.
    pub dtype: Dtype,
    /// Extents (non-empty, every extent at least 1).
    pub shape: Vec<usize>,
    /// Storage chunk shape, when chunked.
    pub chunk: Option<Vec<usize>>,
}

/// Check that `var` in `path` is a non-empty numeric array and describe it
/// (serial open, no collective call; the file is closed on return).
pub fn variable_meta(path: &Path, var: &str) -> Result<VariableMeta, CwError> {
    precheck_input(path)?;
    let file_name = path.display().to_string();
    let file = open_serial(path)?;
    let ds = open_dataset(&file, var, &file_name)?;
    let dtype = dataset_dtype(&ds, var)?;
    let shape = ds.shape();
    if shape.is_empty() {
        return Err(CwError::Input(format!(
            "variable '{var}' in '{file_name}' is a scalar; nothing to reduce"
        )));
    }
    if shape.iter().any(|&d| d == 0) {
        return Err(CwError::Input(format!(
            "variable '{var}' in '{file_name}' is empty (shape {shape:?})"
        )));
    }
    Ok(VariableMeta {
        dtype,
        shape,
        chunk: ds.chunk(),
    })
}

/// Paths of every dataset in the file, depth first.
pub fn list_datasets(file: &File) -> Vec<String> {
    fn walk(g: &hdf5::Group, out: &mut Vec<String>) {
        for ds in g.datasets().unwrap_or_default() {
            out.push(ds.name());
        }
        for sub in g.groups().unwrap_or_default() {
            walk(&sub, out);
        }
    }
    let mut out = Vec::new();
    walk(file, &mut out);
    out
}

/// The element type of a dataset, or an error naming the unsupported type.
pub fn dataset_dtype(ds: &Dataset, var: &str) -> Result<Dtype, CwError> {
    let desc = ds.dtype()?.to_descriptor().map_err(|e| {
        CwError::Input(format!(
            "variable '{var}' has an unsupported datatype ({e}); only numeric types can be reduced"
        ))
    })?;
    dtype_of_descriptor(&desc).ok_or_else(|| {
        CwError::Input(format!("variable '{var}' has an unsupported datatype ({desc}); only integer and float types can be reduced"))
    })
}

/// Map an HDF5 type descriptor to a supported `Dtype`.
pub fn dtype_of_descriptor(desc: &TypeDescriptor) -> Option<Dtype> {
    Some(match desc {
        TypeDescriptor::Integer(IntSize::U1) => Dtype::I8,
        TypeDescriptor::Integer(IntSize::U2) => Dtype::I16,
        TypeDescriptor::Integer(IntSize::U4) => Dtype::I32,
        TypeDescriptor::Integer(IntSize::U8) => Dtype::I64,
        TypeDescriptor::Unsigned(IntSize::U1) => Dtype::U8,
        TypeDescriptor::Unsigned(IntSize::U2) => Dtype::U16,
        TypeDescriptor::Unsigned(IntSize::U4) => Dtype::U32,
        TypeDescriptor::Unsigned(IntSize::U8) => Dtype::U64,
        TypeDescriptor::Float(FloatSize::U4) => Dtype::F32,
        TypeDescriptor::Float(FloatSize::U8) => Dtype::F64,
        _ => return None,
    })
}

/// Owned HDF5 identifier closed on drop.
struct Id(hid_t, unsafe extern "C" fn(hid_t) -> hdf5_sys::h5::herr_t);

impl Drop for Id {
    fn drop(&mut self) {
        unsafe {
            (self.1)(self.0);
        }
    }
}

fn check(ret: i32, what: &str) -> Result<(), CwError> {
    if ret < 0 {
        Err(CwError::Hdf5(format!("{what} failed")))
    } else {
        Ok(())
    }
}

/// File and memory dataspaces selecting `block` (or nothing when `None`).
fn spaces(ds: &Dataset, block: Option<&Block>) -> Result<(Id, Id), CwError> {
    unsafe {
        let fspace = H5Dget_space(ds.id());
        if fspace < 0 {
            return Err(CwError::Hdf5("H5Dget_space failed".into()));
        }
        let fspace = Id(fspace, H5Sclose);
        let mspace = match block {
            Some(b) => {
                let start: Vec<u64> = b.start.iter().map(|&v| v as u64).collect();
                let count: Vec<u64> = b.count.iter().map(|&v| v as u64).collect();
                check(
                    H5Sselect_hyperslab(
                        fspace.0,
                        H5S_seloper_t::H5S_SELECT_SET,
                        start.as_ptr(),
                        std::ptr::null(),
                        count.as_ptr(),
                        std::ptr::null(),
                    ),
                    "H5Sselect_hyperslab",
                )?;
                // Memory space with the block's own N-d shape: HDF5 then maps
                // chunks to memory by shape (fast path) instead of element by
                // element, which a 1-D memory space forces (10x slower reads).
                Id(
                    H5Screate_simple(count.len() as i32, count.as_ptr(), std::ptr::null()),
                    H5Sclose,
                )
            }
            None => {
                check(H5Sselect_none(fspace.0), "H5Sselect_none")?;
                let n = [1u64];
                let m = Id(H5Screate_simple(1, n.as_ptr(), std::ptr::null()), H5Sclose);
                check(H5Sselect_none(m.0), "H5Sselect_none")?;
                m
            }
        };
        if mspace.0 < 0 {
            return Err(CwError::Hdf5("H5Screate_simple failed".into()));
        }
        Ok((fspace, mspace))
    }
}

/// Dataset transfer property list, collective or independent MPI-IO.
fn xfer(collective: bool) -> Result<Id, CwError> {
    unsafe {
        let id = H5Pcreate(*hdf5::globals::H5P_DATASET_XFER);
        if id < 0 {
            return Err(CwError::Hdf5("H5Pcreate(DATASET_XFER) failed".into()));
        }
        let id = Id(id, H5Pclose);
        let mode = if collective {
            H5FD_mpio_xfer_t::H5FD_MPIO_COLLECTIVE
        } else {
            H5FD_mpio_xfer_t::H5FD_MPIO_INDEPENDENT
        };
        check(H5Pset_dxpl_mpio(id.0, mode), "H5Pset_dxpl_mpio")?;
        Ok(id)
    }
}

/// Read `block` of `ds` into the first `block.len()` elements of `buf`
/// (independent MPI-IO; HDF5 converts byte order and widths as needed).
pub fn read_block<T: Element>(ds: &Dataset, block: &Block, buf: &mut [T]) -> Result<(), CwError> {
    assert!(buf.len() >= block.len());
    let (fspace, mspace) = spaces(ds, Some(block))?;
    let mtype = hdf5::Datatype::from_type::<T>()?;
    let dxpl = xfer(false)?;
    let ret = unsafe {
        H5Dread(
            ds.id(),
            mtype.id(),
            mspace.0,
            fspace.0,
            dxpl.0,
            buf.as_mut_ptr().cast(),
        )
    };
    if ret < 0 {
        return Err(CwError::Hdf5(format!(
            "reading block {} (start {:?}, count {:?}) of '{}' failed (corrupt file or missing compression filter?)",
            block.index,
            block.start,
            block.count,
            ds.name()
        )));
    }
    Ok(())
}

/// Collective write of `data` into `block` of `ds`; `None` takes part in the
/// collective call without writing (for ranks with fewer blocks).
pub fn write_block_collective<T: Element>(
    ds: &Dataset,
    part: Option<(&Block, &[T])>,
) -> Result<(), CwError> {
    let (fspace, mspace) = spaces(ds, part.map(|p| p.0))?;
    let mtype = hdf5::Datatype::from_type::<T>()?;
    let dxpl = xfer(true)?;
    let ptr = part.map_or(std::ptr::null(), |p| p.1.as_ptr());
    let ret = unsafe { H5Dwrite(ds.id(), mtype.id(), mspace.0, fspace.0, dxpl.0, ptr.cast()) };
    check(ret, &format!("writing to '{}' (H5Dwrite)", ds.name()))
}
