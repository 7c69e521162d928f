//! Carry a variable's metadata from one HDF5 / NetCDF-4 file to another:
//! its attributes (any numeric or string type, copied byte for byte with
//! their own HDF5 types), the coordinate variables of its dimensions (and
//! the netCDF "dimension without a variable" placeholders) re-made as
//! dimension scales and attached to the same axes, and the file's global
//! attributes with a `history` line added. This is what makes a converted
//! file the same NetCDF-4 variable to netCDF tools and xarray.
//!
//! Serial: one rank runs it on the finished output (default driver), after
//! the parallel data write has closed the file. Coordinate variables are
//! small (one value per index of one axis) and are copied whole.

use crate::IoError;
use crate::h5io;
use hdf5_sys::h5::herr_t;
use hdf5_sys::h5a::{
    H5Aclose, H5Acreate2, H5Adelete, H5Aexists, H5Aget_space, H5Aget_type, H5Aopen, H5Aread,
    H5Awrite,
};
use hdf5_sys::h5d::{H5Dclose, H5Dcreate2, H5Dget_type, H5Dread, H5Dvlen_reclaim, H5Dwrite};
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5p::{
    H5P_CRT_ORDER_INDEXED, H5P_CRT_ORDER_TRACKED, H5P_DEFAULT, H5Pclose, H5Pcreate,
    H5Pset_attr_creation_order, H5Pset_create_intermediate_group,
};
use hdf5_sys::h5s::{H5S_ALL, H5Sclose, H5Screate_simple, H5Sget_simple_extent_npoints};
use hdf5_sys::h5t::{H5T_class_t, H5Tclose, H5Tdetect_class, H5Tget_size};
use std::ffi::CString;
use std::path::Path;

unsafe extern "C" {
    fn H5DSset_scale(dsid: hid_t, dimname: *const std::ffi::c_char) -> herr_t;
    fn H5DSattach_scale(did: hid_t, dsid: hid_t, idx: std::ffi::c_uint) -> herr_t;
}

/// Attributes that the dimension-scale API and netCDF-C manage themselves
/// (object references, netCDF's private ids); never copied.
const MANAGED: &[&str] = &[
    "CLASS",
    "NAME",
    "REFERENCE_LIST",
    "DIMENSION_LIST",
    "_Netcdf4Dimid",
    "_Netcdf4Coordinates",
    "_NCProperties",
];

fn cstr(s: &str) -> Result<CString, IoError> {
    CString::new(s).map_err(|_| IoError::Output(format!("name '{s}' contains a NUL byte")))
}

fn fail(what: &str) -> IoError {
    IoError::Output(format!("copying metadata: {what} failed"))
}

/// Copy every attribute of object `src` to object `dst` except the
/// [`MANAGED`] ones and `skip`; an attribute already on `dst` is replaced.
fn copy_attrs(src: &hdf5::Location, dst: hid_t, skip: &[&str]) -> Result<(), IoError> {
    for name in src.attr_names().unwrap_or_default() {
        if MANAGED.contains(&name.as_str()) || skip.contains(&name.as_str()) {
            continue;
        }
        let c = cstr(&name)?;
        unsafe {
            let a = H5Aopen(src.id(), c.as_ptr(), H5P_DEFAULT);
            if a < 0 {
                return Err(fail(&format!("opening attribute '{name}'")));
            }
            let t = H5Aget_type(a);
            let s = H5Aget_space(a);
            let refs = H5Tdetect_class(t, H5T_class_t::H5T_REFERENCE) > 0;
            let mut ok = true;
            if !refs {
                let n = H5Sget_simple_extent_npoints(s).max(0) as usize;
                let mut buf = vec![0u8; n.max(1) * H5Tget_size(t)];
                ok = H5Aread(a, t, buf.as_mut_ptr().cast()) >= 0;
                if ok {
                    if H5Aexists(dst, c.as_ptr()) > 0 {
                        H5Adelete(dst, c.as_ptr());
                    }
                    let b = H5Acreate2(dst, c.as_ptr(), t, s, H5P_DEFAULT, H5P_DEFAULT);
                    ok = b >= 0 && H5Awrite(b, t, buf.as_ptr().cast()) >= 0;
                    if b >= 0 {
                        H5Aclose(b);
                    }
                    if H5Tdetect_class(t, H5T_class_t::H5T_VLEN) > 0
                        || H5Tdetect_class(t, H5T_class_t::H5T_STRING) > 0
                            && hdf5_sys::h5t::H5Tis_variable_str(t) > 0
                    {
                        H5Dvlen_reclaim(t, s, H5P_DEFAULT, buf.as_mut_ptr().cast());
                    }
                }
            }
            H5Sclose(s);
            H5Tclose(t);
            H5Aclose(a);
            if !ok {
                return Err(fail(&format!("copying attribute '{name}'")));
            }
        }
    }
    Ok(())
}

/// Copy the (small) dataset `src` to path `to` in `dst`: same type and
/// extents (fixed size), same values, attributes except the managed ones.
/// With `values`, the copy has their length and holds them instead
/// (converted by HDF5 from f64 to the dataset's own type).
fn copy_dataset(
    src: &hdf5::Dataset,
    dst: &hdf5::File,
    to: &str,
    values: Option<&[f64]>,
) -> Result<hdf5::Dataset, IoError> {
    let rel = to.trim_start_matches('/');
    // Parent groups with creation order tracked (see `h5io::netcdf_fcpl`).
    let mut group: hdf5::Group = (**dst).clone();
    let parts: Vec<&str> = rel.split('/').collect();
    for g in &parts[..parts.len() - 1] {
        group = match group.group(g) {
            Ok(x) => x,
            Err(_) => h5io::create_group(&group, g)
                .map_err(|e| IoError::Output(format!("creating group '{g}': {e}")))?,
        };
    }
    let c = cstr(rel)?;
    let dims: Vec<u64> = match values {
        Some(v) => vec![v.len() as u64],
        None => src.shape().iter().map(|&d| d as u64).collect(),
    };
    unsafe {
        let t = H5Dget_type(src.id());
        let s = H5Screate_simple(dims.len() as i32, dims.as_ptr(), std::ptr::null());
        let lcpl = H5Pcreate(*hdf5::globals::H5P_LINK_CREATE);
        H5Pset_create_intermediate_group(lcpl, 1);
        let dcpl = H5Pcreate(*hdf5::globals::H5P_DATASET_CREATE);
        H5Pset_attr_creation_order(dcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
        let d = H5Dcreate2(dst.id(), c.as_ptr(), t, s, lcpl, dcpl, H5P_DEFAULT);
        H5Pclose(dcpl);
        let n = H5Sget_simple_extent_npoints(s).max(0) as usize;
        let mut buf = vec![0u8; n.max(1) * H5Tget_size(t)];
        let mut ok = d >= 0;
        if let (Some(v), true) = (values, ok) {
            ok = H5Dwrite(
                d,
                *hdf5::globals::H5T_NATIVE_DOUBLE,
                H5S_ALL,
                H5S_ALL,
                H5P_DEFAULT,
                v.as_ptr().cast(),
            ) >= 0;
            buf.clear();
        }
        ok = ok
            && (values.is_some()
                || H5Dread(
                    src.id(),
                    t,
                    H5S_ALL,
                    H5S_ALL,
                    H5P_DEFAULT,
                    buf.as_mut_ptr().cast(),
                ) >= 0);
        if ok && values.is_none() {
            ok = H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.as_ptr().cast()) >= 0;
            if H5Tdetect_class(t, H5T_class_t::H5T_VLEN) > 0
                || hdf5_sys::h5t::H5Tis_variable_str(t) > 0
            {
                H5Dvlen_reclaim(t, s, H5P_DEFAULT, buf.as_mut_ptr().cast());
            }
        }
        if d >= 0 {
            H5Dclose(d);
        }
        H5Pclose(lcpl);
        H5Sclose(s);
        H5Tclose(t);
        if !ok {
            return Err(fail(&format!("copying coordinate variable '{to}'")));
        }
    }
    let out = dst
        .dataset(to)
        .map_err(|e| IoError::Output(format!("reopening '{to}': {e}")))?;
    copy_attrs(src, out.id(), &[])?;
    Ok(out)
}

/// Copy the metadata of `src_var` in `src` to `dst_var` in the finished
/// file `dst` (see the module docs). `history` is prepended to the global
/// `history` attribute.
pub fn carry_over(
    src: &Path,
    src_var: &str,
    dst: &Path,
    dst_var: &str,
    history: &str,
) -> Result<(), IoError> {
    carry_over_with(src, src_var, dst, dst_var, history, None)
}

/// As [`carry_over`]; with `record = (axis, values)` the coordinate
/// variable of that axis is written with `values` (its length and values:
/// the record coordinate of several files concatenated, in the units of
/// the file `src`) instead of being copied.
pub fn carry_over_with(
    src: &Path,
    src_var: &str,
    dst: &Path,
    dst_var: &str,
    history: &str,
    record: Option<(usize, &[f64])>,
) -> Result<(), IoError> {
    let err = |e: hdf5::Error| IoError::Output(format!("'{}': {e}", dst.display()));
    let sf = h5io::open_serial(src)?;
    let sds = h5io::open_dataset(&sf, src_var, &src.display().to_string())?;
    let df = hdf5::File::open_rw(dst).map_err(err)?;
    // Always closed through `close_rw`, also after an error.
    let r = carry_into(&sf, &sds, src_var, &df, dst_var, history, record);
    drop(sds);
    let closed = h5io::close_rw(df, dst);
    r.and(closed)
}

fn carry_into(
    sf: &hdf5::File,
    sds: &hdf5::Dataset,
    src_var: &str,
    df: &hdf5::File,
    dst_var: &str,
    history: &str,
    record: Option<(usize, &[f64])>,
) -> Result<(), IoError> {
    let err = |e: hdf5::Error| IoError::Output(format!("'{}': {e}", df.filename()));
    let dds = df.dataset(dst_var).map_err(err)?;
    copy_attrs(sds, dds.id(), &[])?;
    let paths = h5io::dimension_scale_paths(sds).unwrap_or_default();
    let own = sds.name();
    for (axis, p) in paths.iter().enumerate() {
        let Some(p) = p else { continue };
        if *p == own {
            continue;
        }
        let scale = match df.dataset(p) {
            Ok(s) => s,
            Err(_) => {
                let sscale = sf.dataset(p).map_err(|e| {
                    IoError::Input(format!("dimension scale '{p}' of '{src_var}': {e}"))
                })?;
                let values = record.filter(|(a, _)| *a == axis).map(|(_, v)| v);
                let made = copy_dataset(&sscale, df, p, values)?;
                // netCDF placeholders carry their marker text in NAME.
                let name = sscale
                    .attr("NAME")
                    .ok()
                    .map(|a| h5io::attr_text(&a))
                    .unwrap_or_else(|| p.rsplit('/').next().unwrap_or(p).to_string());
                let c = cstr(&name)?;
                if unsafe { H5DSset_scale(made.id(), c.as_ptr()) } < 0 {
                    return Err(fail(&format!("H5DSset_scale on '{p}'")));
                }
                made
            }
        };
        if unsafe { H5DSattach_scale(dds.id(), scale.id(), axis as u32) } < 0 {
            return Err(fail(&format!("attaching '{p}' to axis {axis}")));
        }
    }
    copy_attrs(sf, df.id(), &["history"])?;
    let old = sf.attr("history").ok().map(|a| h5io::attr_text(&a));
    let text = match old {
        Some(o) if !o.is_empty() => format!("{history}\n{o}"),
        _ => history.to_string(),
    };
    crate::nc_out::write_text_attr(df.id(), "history", &text)
}

/// Give the axes of `var` in the finished file `dst` the dimensions `dims`
/// (for inputs that are not HDF5, such as Zarr arrays): per named axis a
/// dimension scale named like the dimension and attached to the axis — a
/// coordinate variable (f64 values, `coord_attrs` as text) where `dims`
/// has coordinates, else a netCDF "dimension without a variable" (netCDF-C's
/// marker text as its scale name) — so `ncdump` and xarray show them.
/// Names of the form `dim_N` (no name in the input) are skipped.
pub fn name_dimensions(
    dst: &Path,
    var: &str,
    dims: &crate::selection::Dims,
    coord_attrs: &[Vec<(String, String)>],
) -> Result<(), IoError> {
    let (names, shape) = (&dims.names, &dims.shape);
    if names
        .iter()
        .enumerate()
        .all(|(i, n)| *n == format!("dim_{i}"))
    {
        return Ok(());
    }
    let err = |e: hdf5::Error| IoError::Output(format!("'{}': {e}", dst.display()));
    let df = hdf5::File::open_rw(dst).map_err(err)?;
    // Always closed through `close_rw`, also after an error.
    let r = (|| -> Result<(), IoError> {
        let dds = df.dataset(var).map_err(err)?;
        for (axis, (name, &len)) in names.iter().zip(shape).enumerate() {
            if *name == format!("dim_{axis}") || name.contains('/') || name == var {
                continue;
            }
            let scale = match df.dataset(name) {
                Ok(s) if s.shape() == [len] => s,
                Ok(_) => continue,
                Err(_) => {
                    let coords = dims.coords.get(axis).cloned().flatten();
                    let s = if coords.is_some() {
                        df.new_dataset::<f64>()
                    } else {
                        df.new_dataset::<f32>()
                    }
                    .attr_creation_order(hdf5::plist::dataset_create::AttrCreationOrder::Indexed)
                    .shape(len)
                    .create(name.as_str())
                    .map_err(err)?;
                    let scale_name = match &coords {
                        Some(c) => {
                            s.write_raw(c).map_err(err)?;
                            for (k, v) in coord_attrs.get(axis).into_iter().flatten() {
                                crate::nc_out::write_text_attr(s.id(), k, v)?;
                            }
                            name.clone()
                        }
                        None => {
                            format!(
                                "This is a netCDF dimension but not a netCDF variable.{len:>10}"
                            )
                        }
                    };
                    let marker = cstr(&scale_name)?;
                    if unsafe { H5DSset_scale(s.id(), marker.as_ptr()) } < 0 {
                        return Err(fail(&format!("H5DSset_scale on '{name}'")));
                    }
                    s
                }
            };
            if unsafe { H5DSattach_scale(dds.id(), scale.id(), axis as u32) } < 0 {
                return Err(fail(&format!("attaching '{name}' to axis {axis}")));
            }
        }
        Ok(())
    })();
    let closed = h5io::close_rw(df, dst);
    r.and(closed)
}
