//! Thin layer over HDF5: opening files (serial or MPI-IO), describing
//! datasets, and hyperslab reads/writes into caller-owned buffers.
//!
//! The high-level `hdf5` crate allocates a new array per read; block reads
//! here go through the C API (`H5Dread` with a hyperslab file space) so one
//! buffer is reused for every block. Only one thread at a time calls into
//! HDF5 (the library is not thread-safe); callers keep to that.

use crate::IoError;
use crate::cf::Decode;
use crate::decomp::Block;
use crate::element::{Dtype, Element};
use crate::hyperslab::Hyperslab;
use crate::selection::{AxisRange, Dims};
use chunkwise_core::variable::VariableMeta;
use hdf5::plist::FileCreateBuilder;
use hdf5::plist::file_create::{AttrCreationOrder, LinkCreationOrder};
use hdf5::types::{FloatSize, IntSize, TypeDescriptor};
use hdf5::{Dataset, File};
use hdf5_sys::h5d::{H5Dget_space, H5Dread, H5Dwrite};
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5p::{H5FD_mpio_xfer_t, H5Pclose, H5Pcreate, H5Pset_dxpl_mpio};
use hdf5_sys::h5s::{
    H5S_class_t, H5S_seloper_t, H5Sclose, H5Screate, H5Screate_simple, H5Sget_simple_extent_ndims,
    H5Sselect_hyperslab, H5Sselect_none,
};
use std::path::Path;

/// The 8-byte signature at the start of every HDF5 file (offset 0 unless a
/// user block precedes it, in which case it sits at 512, 1024, ...).
const HDF5_SIGNATURE: [u8; 8] = [0x89, b'H', b'D', b'F', b'\r', b'\n', 0x1a, b'\n'];

/// Check, without HDF5 and without any collective call, that `path` is a
/// readable regular file that starts like an HDF5 file with a sound
/// superblock. Gives clear messages for the common mistakes before the
/// collective MPI-IO open.
pub fn precheck_input(path: &Path) -> Result<(), IoError> {
    let shown = path.display().to_string();
    let (mut f, off) = signature_at(path)?;
    let Some(off) = off else {
        return Err(IoError::Input(format!(
            "'{shown}' is not an HDF5 or NetCDF-4 file (no HDF5 signature)"
        )));
    };
    check_superblock_flags(&mut f, off, &shown)
}

/// True when `path` is a regular file with the HDF5 signature (at 0, 512,
/// 1024, ...), sound or not.
pub fn has_signature(path: &Path) -> bool {
    signature_at(path).is_ok_and(|(_, off)| off.is_some())
}

/// The open file and where its HDF5 signature is, if it has one.
fn signature_at(path: &Path) -> Result<(std::fs::File, Option<u64>), IoError> {
    use std::io::{Read, Seek, SeekFrom};
    let shown = path.display();
    let meta = crate::input_file::metadata(path)?;
    if meta.is_dir() {
        return Err(IoError::Input(format!(
            "input '{shown}' is a directory, not an HDF5/NetCDF-4 file"
        )));
    }
    let mut f = std::fs::File::open(path)
        .map_err(|e| IoError::Input(format!("cannot open input file '{shown}': {e}")))?;
    let mut sig = [0u8; 8];
    let mut off = 0u64;
    while off + 8 <= meta.len() {
        f.seek(SeekFrom::Start(off))
            .map_err(|e| IoError::Input(format!("cannot read '{shown}': {e}")))?;
        f.read_exact(&mut sig)
            .map_err(|e| IoError::Input(format!("cannot read '{shown}': {e}")))?;
        if sig == HDF5_SIGNATURE {
            return Ok((f, Some(off)));
        }
        off = if off == 0 { 512 } else { off * 2 };
    }
    Ok((f, None))
}

/// The superblock's status flags (at byte 20 of a version 0/1 superblock,
/// byte 11 of version 2/3) may only hold HDF5's three defined bits (write
/// access, file OK, SWMR write access); anything else is a damaged
/// superblock, which HDF5 2.0 refuses and 1.10 reads on regardless.
fn check_superblock_flags(f: &mut std::fs::File, sig_at: u64, shown: &str) -> Result<(), IoError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut head = [0u8; 24];
    let ok = f.seek(SeekFrom::Start(sig_at)).is_ok() && f.read_exact(&mut head).is_ok();
    if !ok {
        return Err(IoError::Input(format!(
            "'{shown}' is damaged or truncated: its superblock cannot be read"
        )));
    }
    let flags = match head[8] {
        0 | 1 => u32::from_le_bytes([head[20], head[21], head[22], head[23]]),
        _ => head[11] as u32,
    };
    if flags & !0x7 != 0 {
        return Err(IoError::Input(format!(
            "'{shown}' is damaged: its superblock status flags ({flags:#x}) are not valid"
        )));
    }
    Ok(())
}

/// Open a file read-only with the default (POSIX) driver, for metadata only.
pub fn open_serial(path: &Path) -> Result<File, IoError> {
    hdf5::File::open(path)
        .map_err(|e| IoError::Input(format!("cannot open '{}' as HDF5: {e}", path.display())))
}

/// Open a file read-only with the MPI-IO driver on `comm` (collective).
pub fn open_mpio(path: &Path, comm: mpi_sys::MPI_Comm) -> Result<File, IoError> {
    hdf5::FileBuilder::new()
        .with_fapl(|p| p.mpio(comm, None))
        .open(path)
        .map_err(|e| IoError::Input(format!("cannot open '{}' with MPI-IO: {e}", path.display())))
}

/// What netCDF-C needs to open a NetCDF-4 file for writing (it refuses
/// with `NC_ECANTWRITE` otherwise) and what it writes itself: link and
/// attribute creation order tracked and indexed, on the root group (the
/// file-creation list), on every other group and (attributes) on every
/// dataset. Every HDF5 file chunkwise creates uses these settings, so
/// `ncatted -a`, `netCDF4.Dataset(f, "a")` and NCO can append to it.
pub fn netcdf_fcpl(p: &mut FileCreateBuilder) -> &mut FileCreateBuilder {
    p.link_creation_order(LinkCreationOrder::Indexed)
        .attr_creation_order(AttrCreationOrder::Indexed)
}

/// Create (truncate) a file with the MPI-IO driver on `comm` (collective),
/// with [`netcdf_fcpl`].
pub fn create_mpio(path: &Path, comm: mpi_sys::MPI_Comm) -> Result<File, IoError> {
    hdf5::FileBuilder::new()
        .with_fapl(|p| p.mpio(comm, None))
        .with_fcpl(netcdf_fcpl)
        .create(path)
        .map_err(|e| IoError::Output(format!("cannot create '{}': {e}", path.display())))
}

/// Create (truncate) a file with the default (POSIX) driver, with
/// [`netcdf_fcpl`].
pub fn create_serial(path: &Path) -> hdf5::Result<File> {
    hdf5::FileBuilder::new().with_fcpl(netcdf_fcpl).create(path)
}

/// Close `file`, opened read-write with the default driver at `path`, a
/// temporary output: flush first, and if that fails (disk full) discard
/// the file's contents (truncate it to nothing, giving its space back) so
/// that HDF5 can still close it. A close that fails on a flush leaves the
/// library with a half-closed file, which crashes the process (SIGSEGV)
/// when HDF5 shuts down at exit. The caller removes the file on error.
pub fn close_rw(file: File, path: &Path) -> Result<(), IoError> {
    let err = |e: hdf5::Error| IoError::Output(format!("writing '{}': {e}", path.display()));
    if let Err(e) = file.flush() {
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(0));
        let _ = file.close();
        return Err(err(e));
    }
    file.close().map_err(err)
}

/// Create group `name` in `parent` with creation order tracked and
/// indexed (see [`netcdf_fcpl`]).
pub fn create_group(parent: &hdf5::Group, name: &str) -> hdf5::Result<hdf5::Group> {
    parent
        .create_group_builder()
        .with_gcpl(|p| {
            p.link_creation_order(LinkCreationOrder::Indexed)
                .attr_creation_order(AttrCreationOrder::Indexed)
        })
        .create(name)
}

/// Open the dataset `var` in `file`, with a message naming both when it is
/// missing or is not a dataset.
pub fn open_dataset(file: &File, var: &str, file_name: &str) -> Result<Dataset, IoError> {
    if file.group(var).is_ok() {
        return Err(IoError::Input(format!(
            "'{var}' in '{file_name}' is a group, not a dataset (variable)"
        )));
    }
    file.dataset(var).map_err(|_| {
        let names = list_datasets(file).join(", ");
        IoError::Input(format!(
            "variable '{var}' not found in '{file_name}' (datasets: {names})"
        ))
    })
}

/// Attributes copied from an input variable to a reduced output variable.
pub const CARRIED_ATTRS: &[&str] = &[
    "units",
    "long_name",
    "standard_name",
    "axis",
    "calendar",
    "positive",
];

/// Check that `var` in `path` is a non-empty numeric array and describe it
/// (serial open, no collective call; the file is closed on return).
pub fn variable_meta(path: &Path, var: &str) -> Result<VariableMeta, IoError> {
    // A file that cannot be opened: the error names the variable asked for too.
    let reading = |e: IoError| IoError::Input(format!("cannot read variable '{var}': {e}"));
    precheck_input(path).map_err(reading)?;
    let file = open_serial(path).map_err(reading)?;
    variable_meta_in(&file, path, var)
}

/// As [`variable_meta`], in a file already open (and checked with
/// [`precheck_input`]); several variables of one file are described with
/// one open.
pub fn variable_meta_in(file: &File, path: &Path, var: &str) -> Result<VariableMeta, IoError> {
    let file_name = path.display().to_string();
    let ds = open_dataset(file, var, &file_name)?;
    let dtype = dataset_dtype(&ds, var)?;
    // A 0-d (scalar) variable has shape [] and one value; it reduces to itself.
    let shape = ds.shape();
    if shape.contains(&0) {
        return Err(IoError::Input(format!(
            "variable '{var}' in '{file_name}' is empty (shape {shape:?})"
        )));
    }
    check_filters(&ds, var, &file_name)?;
    let file_len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(u64::MAX);
    crate::h5check::check_dataset(&ds, var, &file_name, path, file_len)?;
    let decode = Decode {
        missing: ["_FillValue", "missing_value"]
            .iter()
            .filter_map(|n| attr_f64s(&ds, n))
            .flatten()
            .collect(),
        scale: attr_f64s(&ds, "scale_factor").and_then(|v| v.first().copied()),
        offset: attr_f64s(&ds, "add_offset").and_then(|v| v.first().copied()),
    };
    let paths = dimension_scale_paths(&ds).unwrap_or_default();
    let coord_attrs = (0..shape.len())
        .map(|i| {
            paths
                .get(i)
                .cloned()
                .flatten()
                .and_then(|p| file.dataset(&p).ok())
                .map(|c| text_attrs(&c, CARRIED_ATTRS))
                .unwrap_or_default()
        })
        .collect();
    Ok(VariableMeta {
        dtype,
        coord_attrs,
        chunk: ds.chunk(),
        filtered: !ds.filters().is_empty(),
        dims: read_dims_at(file, &ds, &paths),
        decode,
        attrs: text_attrs(&ds, CARRIED_ATTRS),
        globals: text_attrs(file, &["history", "Conventions"]),
        shape,
    })
}

/// The name of `var`'s unlimited (record) dimension, if it has one: the
/// first axis whose maximum extent is unlimited.
pub fn unlimited_dim(path: &Path, var: &str) -> Option<String> {
    let file = open_serial(path).ok()?;
    let ds = file.dataset(var).ok()?;
    let axis = ds
        .space()
        .ok()?
        .maxdims()
        .iter()
        .position(Option::is_none)?;
    read_dims(&file, &ds).names.get(axis).cloned()
}

/// Well-known registered filter ids, for messages.
fn filter_name(id: i32) -> &'static str {
    match id {
        32000 => "LZF (h5py)",
        32001 => "Blosc",
        32004 => "LZ4",
        32008 => "bitshuffle",
        32013 => "zfp",
        32015 => "Zstandard",
        _ => "a plugin filter",
    }
}

/// Every filter in the variable's pipeline must be decodable here; checked
/// up front so that a missing plugin is one clear message, not a read
/// failure in the middle of the run.
pub fn check_filters(ds: &Dataset, var: &str, file_name: &str) -> Result<(), IoError> {
    for f in ds.filters() {
        if !f.is_available() {
            let id = f.id();
            return Err(IoError::Input(format!(
                "variable '{var}' in '{file_name}' is compressed with HDF5 filter {id} ({}), which this HDF5 library cannot decode; point HDF5_PLUGIN_PATH at the filter plugin, or rewrite the file without it (h5repack -f NONE)",
                filter_name(id)
            )));
        }
    }
    Ok(())
}

/// Whether `loc` has attribute `name` (`H5Aexists`: a failed open would
/// build an HDF5 error stack first, which was a fifth of the time spent
/// describing 1000 files).
pub fn has_attr(loc: &hdf5::Location, name: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(name) else {
        return false;
    };
    // Safety: a valid location id and a NUL-terminated name.
    unsafe { hdf5_sys::h5a::H5Aexists(loc.id(), c.as_ptr()) > 0 }
}

/// Named attributes of `loc` that exist, as text.
pub fn text_attrs(loc: &hdf5::Location, names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .filter(|n| has_attr(loc, n))
        .filter_map(|n| loc.attr(n).ok().map(|a| (n.to_string(), attr_text(&a))))
        .collect()
}

/// A numeric attribute's values as f64 (`None` if absent or not numeric).
pub fn attr_f64s(loc: &hdf5::Location, name: &str) -> Option<Vec<f64>> {
    if !has_attr(loc, name) {
        return None;
    }
    let a = loc.attr(name).ok()?;
    match a.dtype().ok()?.to_descriptor().ok()? {
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) | TypeDescriptor::Float(_) => {
            a.read_raw::<f64>().ok()
        }
        _ => None,
    }
}

/// Dimension names and coordinate values of `ds`: NetCDF-4 / HDF5 dimension
/// scales where attached (a numeric 1-D scale of the axis' length gives the
/// coordinates), `dim_0, dim_1, …` otherwise.
pub fn read_dims(file: &File, ds: &Dataset) -> Dims {
    read_dims_at(file, ds, &dimension_scale_paths(ds).unwrap_or_default())
}

/// [`read_dims`] with the dimension-scale paths already read.
fn read_dims_at(file: &File, ds: &Dataset, paths: &[Option<String>]) -> Dims {
    let shape = ds.shape();
    let mut dims = Dims {
        shape: shape.clone(),
        ..Dims::default()
    };
    for (i, &len) in shape.iter().enumerate() {
        let path = paths.get(i).cloned().flatten();
        let name = path
            .as_deref()
            .map(|p| p.rsplit('/').next().unwrap_or(p).to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("dim_{i}"));
        let coords = path.and_then(|p| {
            let c = file.dataset(&p).ok()?;
            // NetCDF-4 "dimension without a variable": no coordinate values.
            let placeholder = c
                .attr("NAME")
                .ok()
                .map(|a| attr_text(&a).starts_with("This is a netCDF dimension but not"))
                .unwrap_or(false);
            if placeholder || c.shape() != [len] {
                return None;
            }
            dtype_of_descriptor(&c.dtype().ok()?.to_descriptor().ok()?)?;
            c.read_raw::<f64>().ok()
        });
        dims.names.push(name);
        dims.coords.push(coords);
    }
    dims
}

/// The data variables of a file, as `--var all` takes them: numeric
/// datasets of at least one dimension that are not dimension scales
/// (coordinates), not cell bounds (named in a coordinate's `bounds`
/// attribute, or `*_bnds` / `*_bounds`), in name order; paths without the
/// leading `/`.
pub fn data_variables(path: &Path) -> Result<Vec<String>, IoError> {
    precheck_input(path)?;
    let file = open_serial(path)?;
    let all = list_datasets(&file);
    let mut bounds = std::collections::HashSet::new();
    for p in &all {
        if let Ok(ds) = file.dataset(p)
            && let Ok(a) = ds.attr("bounds")
        {
            bounds.insert(attr_text(&a));
        }
    }
    Ok(all
        .into_iter()
        .filter(|p| {
            let name = p.trim_start_matches('/');
            let short = name.rsplit('/').next().unwrap_or(name);
            let Ok(ds) = file.dataset(p) else {
                return false;
            };
            let scale = ds
                .attr("CLASS")
                .is_ok_and(|a| attr_text(&a) == "DIMENSION_SCALE");
            let numeric = ds
                .dtype()
                .ok()
                .and_then(|t| t.to_descriptor().ok())
                .and_then(|d| dtype_of_descriptor(&d))
                .is_some();
            !scale
                && numeric
                && ds.ndim() > 0
                && !bounds.contains(short)
                && !short.ends_with("_bnds")
                && !short.ends_with("_bounds")
        })
        .map(|p| p.trim_start_matches('/').to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect())
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
/// Numbers must have their standard layout (IEEE 754 binary32/binary64
/// fields, integers using all their bits): any other layout is a damaged or
/// exotic type that would be converted into different values.
pub fn dataset_dtype(ds: &Dataset, var: &str) -> Result<Dtype, IoError> {
    let t = ds.dtype()?;
    let file = ds.filename();
    let desc = t.to_descriptor().map_err(|e| {
        IoError::Input(format!(
            "variable '{var}' in '{file}' has an unsupported datatype ({e}); only numeric types can be reduced"
        ))
    })?;
    let dtype = dtype_of_descriptor(&desc).ok_or_else(|| {
        IoError::Input(format!("variable '{var}' in '{file}' has an unsupported datatype ({desc}); only integer and float types can be reduced"))
    })?;
    if !standard_layout(t.id(), dtype) {
        return Err(IoError::Input(format!(
            "variable '{var}' in '{file}' has a {} type with a non-standard bit layout (damaged, or not IEEE 754); it cannot be reduced",
            dtype.name()
        )));
    }
    Ok(dtype)
}

/// True when the HDF5 type `t` of element type `dtype` has the standard
/// bit layout: precision = all bits, offset 0, and for floats the IEEE 754
/// sign, exponent and mantissa positions and exponent bias.
fn standard_layout(t: hid_t, dtype: Dtype) -> bool {
    use hdf5_sys::h5t::{H5Tget_ebias, H5Tget_fields, H5Tget_offset, H5Tget_precision};
    let bits = dtype.size() * 8;
    unsafe {
        if H5Tget_precision(t) != bits || H5Tget_offset(t) != 0 {
            return false;
        }
        if !dtype.is_float() {
            return true;
        }
        let (mut spos, mut epos, mut esize, mut mpos, mut msize) = (0, 0, 0, 0, 0);
        if H5Tget_fields(t, &mut spos, &mut epos, &mut esize, &mut mpos, &mut msize) < 0 {
            return false;
        }
        let want = if bits == 32 {
            (31, 23, 8, 0, 23, 127)
        } else {
            (63, 52, 11, 0, 52, 1023)
        };
        (spos, epos, esize, mpos, msize, H5Tget_ebias(t)) == want
    }
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

/// The HDF5 memory type of an element type (native byte order).
pub fn native_type(dtype: Dtype) -> Result<hdf5::Datatype, IoError> {
    use hdf5::types::TypeDescriptor as T;
    let desc = match dtype {
        Dtype::I8 => T::Integer(IntSize::U1),
        Dtype::I16 => T::Integer(IntSize::U2),
        Dtype::I32 => T::Integer(IntSize::U4),
        Dtype::I64 => T::Integer(IntSize::U8),
        Dtype::U8 => T::Unsigned(IntSize::U1),
        Dtype::U16 => T::Unsigned(IntSize::U2),
        Dtype::U32 => T::Unsigned(IntSize::U4),
        Dtype::U64 => T::Unsigned(IntSize::U8),
        Dtype::F32 => T::Float(FloatSize::U4),
        Dtype::F64 => T::Float(FloatSize::U8),
    };
    Ok(hdf5::Datatype::from_descriptor(&desc)?)
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

fn check(ret: i32, what: &str) -> Result<(), IoError> {
    if ret < 0 {
        Err(IoError::Hdf5Call(format!("{what} failed")))
    } else {
        Ok(())
    }
}

/// File and memory dataspaces selecting `block` (or nothing when `None`).
fn spaces(
    ds: &Dataset,
    block: Option<&Block>,
    sel: Option<&[AxisRange]>,
) -> Result<(Id, Id), IoError> {
    unsafe {
        let fspace = H5Dget_space(ds.id());
        if fspace < 0 {
            return Err(IoError::Hdf5Call("H5Dget_space failed".into()));
        }
        let fspace = Id(fspace, H5Sclose);
        if H5Sget_simple_extent_ndims(fspace.0) == 0 {
            // A scalar dataspace (0-d variable): its one element, or nothing.
            let mspace = Id(H5Screate(H5S_class_t::H5S_SCALAR), H5Sclose);
            if mspace.0 < 0 {
                return Err(IoError::Hdf5Call("H5Screate(SCALAR) failed".into()));
            }
            if block.is_none() {
                check(H5Sselect_none(fspace.0), "H5Sselect_none")?;
                check(H5Sselect_none(mspace.0), "H5Sselect_none")?;
            }
            return Ok((fspace, mspace));
        }
        let mspace = match block {
            Some(b) => {
                // Block coordinates are in the selected index space.
                let slab = match sel {
                    Some(sel) => Hyperslab::of_block(b, sel),
                    None => Hyperslab::of_whole_block(b),
                };
                let u64s = |v: &[usize]| v.iter().map(|&x| x as u64).collect::<Vec<u64>>();
                let (start, stride, count) =
                    (u64s(&slab.start), u64s(&slab.stride), u64s(&slab.count));
                check(
                    H5Sselect_hyperslab(
                        fspace.0,
                        H5S_seloper_t::H5S_SELECT_SET,
                        start.as_ptr(),
                        stride.as_ptr(),
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
            return Err(IoError::Hdf5Call("H5Screate_simple failed".into()));
        }
        Ok((fspace, mspace))
    }
}

/// Dataset transfer property list, collective or independent MPI-IO.
fn xfer(collective: bool) -> Result<Id, IoError> {
    unsafe {
        let id = H5Pcreate(*hdf5::globals::H5P_DATASET_XFER);
        if id < 0 {
            return Err(IoError::Hdf5Call("H5Pcreate(DATASET_XFER) failed".into()));
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

/// Read `block` (in the index space of the selection `sel`) of `ds` into the
/// first `block.len()` elements of `buf` (independent MPI-IO; HDF5 converts
/// byte order and widths as needed).
pub fn read_block<T: Element>(
    ds: &Dataset,
    block: &Block,
    sel: &[AxisRange],
    buf: &mut [T],
) -> Result<(), IoError> {
    assert!(buf.len() >= block.len());
    let (fspace, mspace) = spaces(ds, Some(block), Some(sel))?;
    let mtype = native_type(T::DTYPE)?;
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
        return Err(IoError::Hdf5Call(format!(
            "reading block {} (start {:?}, count {:?}) of '{}' in '{}' failed (corrupt file or missing compression filter?)",
            block.index,
            block.start,
            block.count,
            ds.name(),
            ds.filename()
        )));
    }
    Ok(())
}

/// Collective write of `data` into `block` of `ds`; `None` takes part in the
/// collective call without writing (for ranks with fewer blocks).
pub fn write_block_collective<T: Element>(
    ds: &Dataset,
    part: Option<(&Block, &[T])>,
) -> Result<(), IoError> {
    let (fspace, mspace) = spaces(ds, part.map(|p| p.0), None)?;
    let mtype = native_type(T::DTYPE)?;
    let dxpl = xfer(true)?;
    let ptr = part.map_or(std::ptr::null(), |p| p.1.as_ptr());
    let ret = unsafe { H5Dwrite(ds.id(), mtype.id(), mspace.0, fspace.0, dxpl.0, ptr.cast()) };
    if ret < 0 {
        // HDF5's own account (the MPI-IO error, where it has one).
        let why = hdf5::Error::query().map_or_else(|e| e.to_string(), |e| e.to_string());
        return Err(IoError::Hdf5Call(format!(
            "writing to '{}' (H5Dwrite) failed: {why}",
            ds.name()
        )));
    }
    Ok(())
}

/// An attribute's value as text (numbers comma-separated, strings as-is).
pub fn attr_text(a: &hdf5::Attribute) -> String {
    let Ok(desc) = a.dtype().and_then(|t| t.to_descriptor()) else {
        return "<unsupported type>".into();
    };
    match desc {
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) => match a.read_raw::<i64>() {
            Ok(v) => v
                .iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => format!("<{e}>"),
        },
        TypeDescriptor::Float(_) => match a.read_raw::<f64>() {
            Ok(v) => v
                .iter()
                .map(|x| chunkwise_core::number_format::fmt_float(*x))
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => format!("<{e}>"),
        },
        TypeDescriptor::VarLenUnicode => match a.read_raw::<hdf5::types::VarLenUnicode>() {
            Ok(v) => v
                .iter()
                .map(|s| s.as_str().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => format!("<{e}>"),
        },
        TypeDescriptor::VarLenAscii => match a.read_raw::<hdf5::types::VarLenAscii>() {
            Ok(v) => v
                .iter()
                .map(|s| s.as_str().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => format!("<{e}>"),
        },
        TypeDescriptor::FixedAscii(_) | TypeDescriptor::FixedUnicode(_) => {
            fixed_string(a).unwrap_or_else(|| "<string>".into())
        }
        other => format!("<{other}>"),
    }
}

/// Read a fixed-length string attribute with its own file type.
fn fixed_string(a: &hdf5::Attribute) -> Option<String> {
    use hdf5_sys::h5a::{H5Aget_type, H5Aread};
    use hdf5_sys::h5t::{H5Tclose, H5Tget_size};
    let n = a.space().ok()?.size().max(1);
    unsafe {
        let t = H5Aget_type(a.id());
        if t < 0 {
            return None;
        }
        let size = H5Tget_size(t);
        let mut buf = vec![0u8; size * n];
        let ok = H5Aread(a.id(), t, buf.as_mut_ptr().cast()) >= 0;
        H5Tclose(t);
        ok.then(|| {
            buf.chunks(size.max(1))
                .map(|c| {
                    String::from_utf8_lossy(c)
                        .trim_end_matches(['\0', ' '])
                        .to_string()
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

/// Names of the dimension scales attached to each axis of `ds`: the base
/// name of each scale dataset, as `ncdump` shows it.
pub fn dimension_names(ds: &hdf5::Dataset) -> Option<Vec<String>> {
    dimension_scale_paths(ds).map(|v| {
        v.into_iter()
            .map(|p| match p {
                Some(full) => full.rsplit('/').next().unwrap_or(&full).to_string(),
                None => "?".into(),
            })
            .collect()
    })
}

/// Full paths of the dimension-scale datasets of each axis of `ds`: the
/// `DIMENSION_LIST` attribute NetCDF-4 and `h5py.dims` write, or — for a
/// 1-D dimension scale itself (a coordinate variable such as `lat`) — its
/// own path, since a coordinate variable is indexed by its own dimension.
/// `None` for an axis without a scale, and `None` overall when the dataset
/// has neither. The one source of axis names for `inspect`, `reduce`,
/// `convert` and `plan`.
pub fn dimension_scale_paths(ds: &hdf5::Dataset) -> Option<Vec<Option<String>>> {
    attached_scale_paths(ds).or_else(|| is_own_scale(ds).then(|| vec![Some(ds.name())]))
}

/// True for a 1-D dataset marked as a dimension scale (`CLASS =
/// "DIMENSION_SCALE"`, as `H5DSset_scale`, netCDF-C and h5py write it).
fn is_own_scale(ds: &hdf5::Dataset) -> bool {
    ds.ndim() == 1
        && ds
            .attr("CLASS")
            .ok()
            .is_some_and(|a| attr_text(&a) == "DIMENSION_SCALE")
}

/// The scales attached through `DIMENSION_LIST` (see [`dimension_scale_paths`]).
fn attached_scale_paths(ds: &hdf5::Dataset) -> Option<Vec<Option<String>>> {
    use hdf5_sys::h5a::{H5Aget_space, H5Aread};
    use hdf5_sys::h5d::H5Dvlen_reclaim;
    use hdf5_sys::h5i::H5Iget_name;
    use hdf5_sys::h5o::H5Oclose;
    use hdf5_sys::h5p::H5P_DEFAULT;
    use hdf5_sys::h5r::{H5R_type_t, H5Rdereference2};
    use hdf5_sys::h5s::H5Sclose;
    use hdf5_sys::h5t::{H5Tclose, H5Tvlen_create, hvl_t};
    let attr = ds.attr("DIMENSION_LIST").ok()?;
    let ndim = ds.ndim();
    let mut names = Vec::with_capacity(ndim);
    unsafe {
        let vt = H5Tvlen_create(*hdf5::globals::H5T_STD_REF_OBJ);
        if vt < 0 {
            return None;
        }
        let mut buf: Vec<hvl_t> = vec![
            hvl_t {
                len: 0,
                p: std::ptr::null_mut()
            };
            ndim
        ];
        if H5Aread(attr.id(), vt, buf.as_mut_ptr().cast()) < 0 {
            H5Tclose(vt);
            return None;
        }
        for h in &buf {
            let mut name = None;
            if h.len > 0 && !h.p.is_null() {
                let obj = H5Rdereference2(
                    ds.id(),
                    H5P_DEFAULT,
                    H5R_type_t::H5R_OBJECT,
                    h.p.cast_const(),
                );
                if obj >= 0 {
                    let mut cbuf = vec![0u8; 1024];
                    let n = H5Iget_name(obj, cbuf.as_mut_ptr().cast(), cbuf.len());
                    if n > 0 {
                        name = Some(String::from_utf8_lossy(&cbuf[..n as usize]).to_string());
                    }
                    H5Oclose(obj);
                }
            }
            names.push(name);
        }
        let space = H5Aget_space(attr.id());
        H5Dvlen_reclaim(vt, space, H5P_DEFAULT, buf.as_mut_ptr().cast());
        H5Sclose(space);
        H5Tclose(vt);
    }
    Some(names)
}

/// Create dataset `var` (a path; missing groups are created) of element
/// type `dtype` and `shape` in `file`, stored as `enc` says (chunking, byte
/// shuffle, then gzip). Collective when `file` was opened with MPI-IO.
pub fn create_dataset(
    file: &File,
    var: &str,
    dtype: Dtype,
    shape: &[usize],
    enc: &crate::encoding::Encoding,
) -> Result<Dataset, hdf5::Error> {
    let mut group: hdf5::Group = (**file).clone();
    let parts: Vec<&str> = var.trim_matches('/').split('/').collect();
    for g in &parts[..parts.len() - 1] {
        group = match group.group(g) {
            Ok(x) => x,
            Err(_) => create_group(&group, g)?,
        };
    }
    let mtype = native_type(dtype).map_err(|e| match e {
        IoError::Hdf5(e) => e,
        other => hdf5::Error::from(other.to_string().as_str()),
    })?;
    let mut b = group
        .new_dataset_builder()
        .empty_as(&mtype)
        .shape(shape.to_vec())
        .attr_creation_order(AttrCreationOrder::Indexed);
    if let Some(c) = &enc.chunks {
        b = b.chunk(c.clone());
    }
    // Filter order matters: shuffle regroups bytes, then deflate compresses.
    if enc.shuffle {
        b = b.shuffle();
    }
    if let Some(level) = enc.gzip {
        b = b.deflate(level);
    }
    b.create(parts[parts.len() - 1])
}

/// True when values of `desc` are plain bytes (no pointers: no
/// variable-length parts, no references), so they can be read into a
/// buffer and shown without following anything.
fn plain_type(desc: &TypeDescriptor) -> bool {
    match desc {
        TypeDescriptor::Compound(c) => c.fields.iter().all(|f| plain_type(&f.ty)),
        TypeDescriptor::FixedArray(t, _) => plain_type(t),
        TypeDescriptor::VarLenArray(_)
        | TypeDescriptor::VarLenAscii
        | TypeDescriptor::VarLenUnicode
        | TypeDescriptor::Reference(_) => false,
        _ => true,
    }
}

/// A dataset's fill value as text: numbers converted by HDF5 (integers
/// exactly, floats in the shortest round-trip form), other plain types
/// (enum, bool, compound, fixed strings) as the `hdf5` crate shows them;
/// `None` when undefined or of a type holding pointers (variable-length
/// data or references, whose fill value cannot be shown).
pub fn fill_value_text(ds: &Dataset) -> Option<String> {
    let desc = ds.dtype().ok()?.to_descriptor().ok()?;
    let dcpl = ds.dcpl().ok()?;
    match &desc {
        TypeDescriptor::Integer(_) => Some(dcpl.get_fill_value_as::<i64>().ok()??.to_string()),
        TypeDescriptor::Unsigned(_) => Some(dcpl.get_fill_value_as::<u64>().ok()??.to_string()),
        TypeDescriptor::Float(_) => Some(chunkwise_core::number_format::fmt_float(
            dcpl.get_fill_value_as::<f64>().ok()??,
        )),
        d if plain_type(d) => dcpl.get_fill_value(d).ok()?.map(|v| format!("{v}")),
        _ => None,
    }
}

/// The time span of a dataset with CF time `units` (see
/// [`chunkwise_core::cftime::TimeSpan`]): the dates of its first and last
/// values (a 1-D numeric dataset; two one-element reads, never the whole
/// array). `None` when it has no time units.
pub fn time_span(ds: &Dataset) -> Option<chunkwise_core::cftime::TimeSpan> {
    let units = ds.attr("units").ok().map(|a| attr_text(&a))?;
    let calendar = ds.attr("calendar").ok().map(|a| attr_text(&a));
    let numeric = ds
        .dtype()
        .ok()
        .and_then(|t| t.to_descriptor().ok())
        .and_then(|d| dtype_of_descriptor(&d))
        .is_some();
    let n = ds.shape().first().copied().unwrap_or(0);
    let at = |i: usize| -> Option<f64> {
        ds.read_slice_1d::<f64, _>(i..i + 1)
            .ok()?
            .iter()
            .next()
            .copied()
    };
    let ends = if numeric && ds.ndim() == 1 && n > 0 {
        Some((at(0)?, at(n - 1)?))
    } else {
        None
    };
    chunkwise_core::cftime::TimeSpan::describe(&units, calendar.as_deref(), ends)
}

/// Where the link `name` in `g` points, for messages: `soft link to PATH`
/// or `external link to FILE:PATH` (`None` for hard links or on failure).
pub fn link_target(g: &hdf5::Group, name: &str) -> Option<String> {
    #[allow(deprecated)] // H5Lget_info2 needs HDF5 1.12; Debian 12 has 1.10
    use hdf5_sys::h5l::{H5L_info1_t, H5L_type_t, H5Lget_info1, H5Lget_val, H5Lunpack_elink_val};
    let c = std::ffi::CString::new(name).ok()?;
    unsafe {
        let mut info: H5L_info1_t = std::mem::zeroed();
        #[allow(deprecated)]
        if H5Lget_info1(g.id(), c.as_ptr(), &mut info, hdf5_sys::h5p::H5P_DEFAULT) < 0 {
            return None;
        }
        let size = match info.type_ {
            H5L_type_t::H5L_TYPE_SOFT | H5L_type_t::H5L_TYPE_EXTERNAL => *info.u.val_size(),
            _ => return None,
        };
        let mut buf = vec![0u8; size.max(1)];
        if H5Lget_val(
            g.id(),
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            hdf5_sys::h5p::H5P_DEFAULT,
        ) < 0
        {
            return None;
        }
        let text =
            |p: *const std::ffi::c_char| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned();
        if info.type_ == H5L_type_t::H5L_TYPE_SOFT {
            return Some(format!("soft link to {}", text(buf.as_ptr().cast())));
        }
        let mut flags = 0u32;
        let mut file: *const std::ffi::c_char = std::ptr::null();
        let mut obj: *const std::ffi::c_char = std::ptr::null();
        if H5Lunpack_elink_val(
            buf.as_ptr().cast(),
            buf.len(),
            &mut flags,
            &mut file,
            &mut obj,
        ) < 0
            || file.is_null()
            || obj.is_null()
        {
            return None;
        }
        Some(format!("external link to {}:{}", text(file), text(obj)))
    }
}
