//! Small auxiliary variables read whole on every rank (serial open, no
//! collective call): weight variables (`areacella`) and cell bounds
//! (`lat_bnds`) for `reduce --weights`.

use crate::IoError;
use crate::cf::Decode;
use crate::h5io;
use std::path::Path;

/// A whole variable: its dimension names, shape and CF-decoded values
/// (missing values are NaN), in f64.
#[derive(Clone, Debug)]
pub struct AuxVar {
    /// Dimension names (`dim_0, …` without dimension scales).
    pub names: Vec<String>,
    /// Extents.
    pub shape: Vec<usize>,
    /// Values in C order, decoded.
    pub values: Vec<f64>,
}

/// Largest auxiliary variable read whole (elements): 2²⁸ (2 GiB of f64).
pub const AUX_MAX: usize = 1 << 28;

/// Read `var` of the HDF5 / NetCDF-4 file `path` whole.
pub fn read_aux(path: &Path, var: &str) -> Result<AuxVar, IoError> {
    h5io::precheck_input(path)?;
    let shown = path.display().to_string();
    let file = h5io::open_serial(path)?;
    let ds = h5io::open_dataset(&file, var, &shown)?;
    h5io::dataset_dtype(&ds, var)?;
    let shape = ds.shape();
    if shape.iter().product::<usize>() > AUX_MAX {
        return Err(IoError::Input(format!(
            "'{var}' in '{shown}' has {} values; at most {AUX_MAX} are read whole",
            shape.iter().product::<usize>()
        )));
    }
    let decode = Decode {
        missing: ["_FillValue", "missing_value"]
            .iter()
            .filter_map(|n| h5io::attr_f64s(&ds, n))
            .flatten()
            .collect(),
        scale: h5io::attr_f64s(&ds, "scale_factor").and_then(|v| v.first().copied()),
        offset: h5io::attr_f64s(&ds, "add_offset").and_then(|v| v.first().copied()),
    };
    let raw = ds
        .read_raw::<f64>()
        .map_err(|e| IoError::Input(format!("cannot read '{var}' in '{shown}': {e}")))?;
    let values = if decode.is_identity() {
        raw
    } else {
        raw.iter().map(|&x| decode.apply(x)).collect()
    };
    Ok(AuxVar {
        names: h5io::read_dims(&file, &ds).names,
        shape,
        values,
    })
}

/// The bounds variable of coordinate `dim` in `path`: the coordinate's CF
/// `bounds` attribute, else `DIM_bnds` or `DIM_bounds` when present.
pub fn bounds_name(path: &Path, dim: &str) -> Option<String> {
    let file = h5io::open_serial(path).ok()?;
    if let Ok(c) = file.dataset(dim)
        && let Some((_, b)) = h5io::text_attrs(&c, &["bounds"]).into_iter().next()
        && file.dataset(b.trim()).is_ok()
    {
        return Some(b.trim().to_string());
    }
    [format!("{dim}_bnds"), format!("{dim}_bounds")]
        .into_iter()
        .find(|n| file.dataset(n).is_ok())
}
