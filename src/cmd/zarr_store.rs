//! The metadata of `convert`'s Zarr v3 output, as xarray lays out a store:
//! the root group with the global attributes, the variable's array with its
//! attributes and dimension names, and one array per coordinate variable
//! (rank 0 only; the chunks of the variable are written by every rank).

use super::convert::ConvertPlan;
use crate::decomp::Block;
use crate::element::{Dtype, Element};
use crate::error::CwError;
use crate::request::InputSpec;
use crate::selection::AxisRange;
use crate::source::{Reader, Solo, Source};
use crate::zarr_out::{self, ZarrWriter};
use crate::{h5io, with_dtype};
use serde_json::{Map, Value};
use std::path::Path;

/// Attributes given as text (non-HDF5 inputs) as JSON strings.
fn text_map(a: &[(String, String)]) -> Map<String, Value> {
    a.iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

/// HDF5 attributes of `obj` in `file`, `_FillValue` encoded as xarray does.
fn h5_attrs(file: &hdf5::File, obj: &str, dtype: Dtype) -> Result<Map<String, Value>, CwError> {
    let ds;
    let loc: &hdf5::Location = if obj.is_empty() || obj == "/" {
        file
    } else {
        ds = file
            .dataset(obj)
            .map_err(|e| CwError::Input(format!("'{obj}': {e}")))?;
        &ds
    };
    let mut m = zarr_out::h5_attrs_json(loc);
    if let Some(v) = h5io::attr_f64s(loc, "_FillValue").and_then(|v| v.first().copied()) {
        m.insert("_FillValue".into(), zarr_out::fill_value_attr(v, dtype));
    }
    Ok(m)
}

/// Rank 0: the temporary store `tmp` with its root group and the
/// variable's (still empty) array.
pub fn create(plan: &ConvertPlan, tmp: &Path, chunks: &[usize]) -> Result<(), CwError> {
    let m = &plan.meta;
    let (globals, attrs) = match &plan.source {
        Source::Hdf5 { path, var } => {
            let f = h5io::open_serial(path)?;
            (h5_attrs(&f, "/", m.dtype)?, h5_attrs(&f, var, m.dtype)?)
        }
        _ => (text_map(&m.globals), text_map(&m.attrs)),
    };
    let globals: Map<String, Value> = globals
        .into_iter()
        .filter(|(k, _)| k != "_FillValue")
        .collect();
    zarr_out::write_node(tmp, &zarr_out::group_json(globals))?;
    // Intermediate groups of a nested variable path (`grp/var`).
    let mut dir = tmp.to_path_buf();
    let parts: Vec<&str> = plan.out_var.split('/').collect();
    for g in &parts[..parts.len() - 1] {
        dir = dir.join(g);
        zarr_out::write_node(&dir, &zarr_out::group_json(Map::new()))?;
    }
    let json = zarr_out::array_json(
        m.dtype,
        &m.shape,
        chunks,
        &plan.zarr_codecs,
        &m.dims.names,
        attrs,
    );
    Ok(zarr_out::write_node(&tmp.join(&plan.out_var), &json)?)
}

/// Write one 1-D coordinate array `name` with `values`.
fn write_coord<T: Element>(
    tmp: &Path,
    name: &str,
    values: &[T],
    attrs: Map<String, Value>,
) -> Result<(), CwError> {
    let n = values.len();
    // Uncompressed: a coordinate is small, and any reader decodes `bytes`.
    let codecs = zarr_out::codecs("none", false, T::DTYPE)?;
    let json = zarr_out::array_json(T::DTYPE, &[n], &[n], &codecs, &[name.to_string()], attrs);
    zarr_out::write_node(&tmp.join(name), &json)?;
    let block = Block {
        index: 0,
        start: vec![0],
        count: vec![n],
    };
    Ok(ZarrWriter::open(tmp, name)?.write_block(&block, values)?)
}

/// Rank 0, after the data: one array per coordinate variable, next to the
/// variable (HDF5 / NetCDF-4 coordinate variables with their own type and
/// attributes; a Zarr input's coordinate values as float64).
pub fn coordinates(plan: &ConvertPlan, tmp: &Path) -> Result<(), CwError> {
    let m = &plan.meta;
    let parent = match plan.out_var.rsplit_once('/') {
        Some((p, _)) => format!("{p}/"),
        None => String::new(),
    };
    for (axis, name) in m.dims.names.iter().enumerate() {
        let len = m.shape[axis];
        let out_name = format!("{parent}{name}");
        if out_name == plan.out_var || name.contains('/') {
            continue;
        }
        match &plan.source {
            Source::Hdf5 { path, var } => {
                let coord = match var.trim_start_matches('/').rsplit_once('/') {
                    Some((g, _)) => format!("{g}/{name}"),
                    None => name.clone(),
                };
                let f = h5io::open_serial(path)?;
                let Ok(ds) = f.dataset(&coord) else { continue };
                let dimension_only = ds
                    .attr("NAME")
                    .map(|a| h5io::attr_text(&a).starts_with("This is a netCDF dimension but not"))
                    .unwrap_or(false);
                if dimension_only || ds.shape() != [len] {
                    continue;
                }
                drop(ds);
                let spec = InputSpec {
                    path: path.clone(),
                    var: Some(coord.clone()),
                    raw: None,
                    ..InputSpec::default()
                };
                let (src, cm) = crate::source::describe(&spec)?;
                let attrs = h5_attrs(&f, &coord, cm.dtype)?;
                drop(f);
                let reader =
                    Reader::open(&Solo, &src).map_err(|e| CwError::Input(format!("{e:#}")))?;
                let block = Block {
                    index: 0,
                    start: vec![0],
                    count: vec![len],
                };
                let r = with_dtype!(cm.dtype, T => {
                    let mut v = vec![T::default(); len];
                    reader
                        .read_block(&block, &[AxisRange::all(len)], &mut v)
                        .map_err(CwError::from)
                        .and_then(|()| write_coord(tmp, &out_name, &v, attrs))
                });
                reader.close();
                r?;
            }
            _ => {
                let Some(values) = &m.dims.coords[axis] else {
                    continue;
                };
                write_coord(tmp, &out_name, values, text_map(&m.coord_attrs[axis]))?;
            }
        }
    }
    Ok(())
}
