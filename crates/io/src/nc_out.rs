//! Thin HDF5 writer for `reduce --output OUT.nc`: a NetCDF-4 file (HDF5
//! with dimension scales) holding the reduced arrays, one coordinate
//! variable per remaining dimension, carried attributes and a `history`
//! line. Written by one rank with the default (POSIX) driver: the result is
//! small next to the data it came from. The caller writes to a temporary
//! name and renames.
//!
//! Float results carry `_FillValue = NaN` (an f64 attribute, the value
//! xarray writes for float data): a cell without data is NaN, and with the
//! attribute CDO, NCO and netCDF readers count it as missing.
//!
//! Dimension scales use the HDF5 high-level library (`H5DSset_scale`,
//! `H5DSattach_scale`), the same calls netCDF-C makes; string attributes
//! are fixed-length ASCII, which netCDF reads as `NC_CHAR` text.

use crate::IoError;
use hdf5::File;
use hdf5::plist::dataset_create::AttrCreationOrder;
use hdf5_sys::h5::herr_t;
use hdf5_sys::h5a::{H5Aclose, H5Acreate2, H5Awrite};
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5p::H5P_DEFAULT;
use hdf5_sys::h5s::{H5S_class_t, H5Sclose, H5Screate};
use hdf5_sys::h5t::{H5T_str_t, H5Tclose, H5Tcopy, H5Tset_size, H5Tset_strpad};
use std::ffi::CString;
use std::path::Path;

unsafe extern "C" {
    fn H5DSset_scale(dsid: hid_t, dimname: *const std::ffi::c_char) -> herr_t;
    fn H5DSattach_scale(did: hid_t, dsid: hid_t, idx: std::ffi::c_uint) -> herr_t;
}

/// Values of one output variable.
#[derive(Clone, Debug)]
pub enum Values {
    /// Floating-point values (NaN where a cell had no data).
    F64(Vec<f64>),
    /// Integer values (counts).
    I64(Vec<i64>),
}

/// One variable to write over the result's dimensions.
#[derive(Clone, Debug)]
pub struct OutVar {
    /// Variable name.
    pub name: String,
    /// Values in C order over the result shape.
    pub values: Values,
    /// Text attributes.
    pub attrs: Vec<(String, String)>,
}

/// One remaining dimension with its coordinate values.
#[derive(Clone, Debug)]
pub struct OutDim {
    /// Dimension (and coordinate variable) name.
    pub name: String,
    /// Coordinate values (one per index along the dimension).
    pub coords: Vec<f64>,
    /// Text attributes of the coordinate variable.
    pub attrs: Vec<(String, String)>,
    /// Cell bounds `[lower, upper]` per index, written as the variable
    /// `NAME_bnds(NAME, bnds)` (CF `bounds`; the caller names it in `attrs`).
    pub bounds: Option<Vec<[f64; 2]>>,
}

/// The `NAME` attribute netCDF-C gives a dimension that has no coordinate
/// variable (`bnds`), followed by its length in ten columns.
const DIM_WITHOUT_VARIABLE: &str = "This is a netCDF dimension but not a netCDF variable.";

/// Write `vars` over `dims` (in axis order; none for a scalar result) with
/// global attributes `globals` into the existing (empty) file at `path`.
///
/// The file is built in memory (HDF5's core driver, no backing store) and
/// its image written with one plain `write`: a full disk or an I/O error is
/// then an ordinary error of that write. Had HDF5 written it, a failed flush
/// at close would leave the library with a half-closed file that crashes
/// (SIGSEGV) when the library shuts down at exit.
pub fn write_netcdf(
    path: &Path,
    dims: &[OutDim],
    vars: &[OutVar],
    globals: &[(String, String)],
) -> Result<(), IoError> {
    let err = |e: hdf5::Error| IoError::Output(format!("writing '{}': {e}", path.display()));
    let file = hdf5::FileBuilder::new()
        .with_fapl(|p| p.core_filebacked(false))
        .with_fcpl(crate::h5io::netcdf_fcpl)
        .create(path)
        .map_err(err)?;
    let shape: Vec<usize> = dims.iter().map(|d| d.coords.len()).collect();
    let mut scales = Vec::with_capacity(dims.len());
    let mut scales_extra = Vec::new();
    for d in dims {
        let ds = file
            .new_dataset::<f64>()
            .shape(d.coords.len())
            .attr_creation_order(AttrCreationOrder::Indexed)
            .create(d.name.as_str())
            .map_err(err)?;
        ds.write_raw(&d.coords).map_err(err)?;
        let name = cstring(&d.name)?;
        check(
            unsafe { H5DSset_scale(ds.id(), name.as_ptr()) },
            "H5DSset_scale",
        )?;
        for (k, v) in &d.attrs {
            write_text_attr(ds.id(), k, v)?;
        }
        scales.push(ds);
    }
    if dims.iter().any(|d| d.bounds.is_some()) {
        // The `bnds` dimension: a dimension scale without values, as
        // netCDF-C writes a dimension that has no variable.
        let ds = file
            .new_dataset::<f32>()
            .shape(2)
            .attr_creation_order(AttrCreationOrder::Indexed)
            .create("bnds")
            .map_err(err)?;
        let name = cstring(&format!("{DIM_WITHOUT_VARIABLE}{:>10}", 2))?;
        check(
            unsafe { H5DSset_scale(ds.id(), name.as_ptr()) },
            "H5DSset_scale",
        )?;
        for (i, d) in dims.iter().enumerate() {
            let Some(b) = &d.bounds else { continue };
            let flat: Vec<f64> = b.iter().flatten().copied().collect();
            let bv =
                create(&file, &[b.len(), 2], &format!("{}_bnds", d.name), 0.0f64).map_err(err)?;
            bv.write_raw(&flat).map_err(err)?;
            for (k, s) in [(0u32, &scales[i]), (1u32, &ds)] {
                check(
                    unsafe { H5DSattach_scale(bv.id(), s.id(), k) },
                    "H5DSattach_scale",
                )?;
            }
        }
        scales_extra.push(ds);
    }
    for v in vars {
        let ds = match &v.values {
            Values::F64(x) => {
                let ds = create(&file, &shape, &v.name, 0.0f64).map_err(err)?;
                ds.write_raw(x).map_err(err)?;
                // Cells without data are NaN; `_FillValue = NaN` (an f64,
                // as xarray writes it) makes CDO and NCO count them as
                // missing instead of averaging NaN into their results.
                ds.new_attr::<f64>()
                    .create("_FillValue")
                    .and_then(|a| a.write_scalar(&f64::NAN))
                    .map_err(err)?;
                ds
            }
            Values::I64(x) => {
                let ds = create(&file, &shape, &v.name, 0i64).map_err(err)?;
                ds.write_raw(x).map_err(err)?;
                ds
            }
        };
        for (i, s) in scales.iter().enumerate() {
            check(
                unsafe { H5DSattach_scale(ds.id(), s.id(), i as u32) },
                "H5DSattach_scale",
            )?;
        }
        for (k, val) in &v.attrs {
            write_text_attr(ds.id(), k, val)?;
        }
    }
    for (k, v) in globals {
        write_text_attr(file.id(), k, v)?;
    }
    drop(scales);
    drop(scales_extra);
    file.flush().map_err(err)?;
    let image = file_image(&file)?;
    file.close().map_err(err)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| IoError::Output(format!("writing '{}': {e}", path.display())))?;
    std::io::Write::write_all(&mut f, &image)
        .and_then(|()| f.sync_all())
        .map_err(|e| IoError::Output(format!("writing '{}': {e}", path.display())))
}

/// The bytes of the in-memory `file` (`H5Fget_file_image`).
fn file_image(file: &File) -> Result<Vec<u8>, IoError> {
    use hdf5_sys::h5f::H5Fget_file_image;
    let fail = || IoError::Hdf5Call("H5Fget_file_image failed".into());
    let n = unsafe { H5Fget_file_image(file.id(), std::ptr::null_mut(), 0) };
    let len = usize::try_from(n).map_err(|_| fail())?;
    let mut buf = vec![0u8; len];
    let got = unsafe { H5Fget_file_image(file.id(), buf.as_mut_ptr().cast(), len) };
    if got != n {
        return Err(fail());
    }
    Ok(buf)
}

fn create<T: hdf5::H5Type>(
    file: &File,
    shape: &[usize],
    name: &str,
    _: T,
) -> hdf5::Result<hdf5::Dataset> {
    let b = file
        .new_dataset::<T>()
        .attr_creation_order(AttrCreationOrder::Indexed);
    if shape.is_empty() {
        b.shape(()).create(name)
    } else {
        b.shape(shape.to_vec()).create(name)
    }
}

fn cstring(s: &str) -> Result<CString, IoError> {
    CString::new(s).map_err(|_| IoError::Output(format!("name '{s}' contains a NUL byte")))
}

fn check(ret: herr_t, what: &str) -> Result<(), IoError> {
    if ret < 0 {
        Err(IoError::Output(format!("{what} failed")))
    } else {
        Ok(())
    }
}

/// Write a scalar fixed-length ASCII string attribute on object `loc`.
pub fn write_text_attr(loc: hid_t, name: &str, value: &str) -> Result<(), IoError> {
    let cname = cstring(name)?;
    let bytes = value.as_bytes();
    unsafe {
        let t = H5Tcopy(*hdf5::globals::H5T_C_S1);
        check(t as herr_t, "H5Tcopy")?;
        H5Tset_size(t, bytes.len().max(1));
        H5Tset_strpad(t, H5T_str_t::H5T_STR_NULLTERM);
        let space = H5Screate(H5S_class_t::H5S_SCALAR);
        let a = H5Acreate2(loc, cname.as_ptr(), t, space, H5P_DEFAULT, H5P_DEFAULT);
        let mut buf = bytes.to_vec();
        buf.resize(bytes.len().max(1), 0);
        let ok = a >= 0 && H5Awrite(a, t, buf.as_ptr().cast()) >= 0;
        if a >= 0 {
            H5Aclose(a);
        }
        H5Sclose(space);
        H5Tclose(t);
        if !ok {
            return Err(IoError::Output(format!("cannot write attribute '{name}'")));
        }
    }
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SSZ` for now (UTC), for `history` lines.
pub fn utc_timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    chunkwise_core::utc::iso_utc(secs, None)
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_agrees_with_date() {
        // The civil-date arithmetic against the system's `date -u`.
        let date = std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%dT%H:%M"])
            .output()
            .expect("date");
        let want = String::from_utf8_lossy(&date.stdout).trim().to_string();
        let t = super::utc_timestamp();
        assert_eq!(t.len(), 20, "{t}");
        assert_eq!(
            &t[..16],
            want,
            "(fails only if the minute turned in between)"
        );
    }
}
