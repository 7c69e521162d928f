//! Zarr v3 output, laid out as xarray writes a dataset (`to_zarr`,
//! `zarr_format=3`), so `xarray.open_zarr(OUT)` reads it back like the
//! input:
//! * `OUT/zarr.json` — a group whose `attributes` are the global attributes;
//! * `OUT/VAR/zarr.json` — the array: `dimension_names`, regular chunk grid,
//!   the `bytes` codec (little-endian) then the compressor, and its
//!   attributes (a `_FillValue` attribute encoded as xarray does: floats as
//!   base64 of the little-endian float64 bytes, integers as numbers);
//! * `OUT/DIM/zarr.json` — one 1-D array per coordinate variable.
//!
//! The metadata is written here as JSON; chunk data are encoded and written
//! by the `zarrs` crate (gzip, zstd, blosc), each rank its own chunks.

use crate::IoError;
use crate::decomp::Block;
use crate::element::Dtype;
use serde_json::{Map, Value, json};
use std::path::Path;
use std::sync::Arc;
use zarrs::array::{Array, ArrayBytes};
use zarrs::filesystem::FilesystemStore;

/// Attributes that are HDF5 / netCDF-4 bookkeeping, not data attributes.
pub const BOOKKEEPING: &[&str] = &[
    "DIMENSION_LIST",
    "REFERENCE_LIST",
    "CLASS",
    "NAME",
    "_Netcdf4Dimid",
    "_Netcdf4Coordinates",
    "_NCProperties",
    "_nc3_strict",
];

/// The codec chain for `--compression` (`none`, `gzip[:L]`, `zstd[:L]`,
/// `blosc[:L]`) and `--shuffle` (byte shuffle, inside blosc), after the
/// `bytes` codec.
pub fn codecs(compression: &str, shuffle: bool, dtype: Dtype) -> Result<Vec<Value>, IoError> {
    let t = compression.trim().to_ascii_lowercase();
    let (name, level) = match t.split_once(':') {
        Some((n, l)) => (
            n.to_string(),
            Some(l.parse::<i64>().map_err(|_| {
                IoError::Parse(format!(
                    "--compression '{compression}': level must be a number"
                ))
            })?),
        ),
        None => (t.clone(), None),
    };
    let check = |lo: i64, hi: i64, default: i64| -> Result<i64, IoError> {
        let l = level.unwrap_or(default);
        if (lo..=hi).contains(&l) {
            Ok(l)
        } else {
            Err(IoError::Parse(format!(
                "--compression '{compression}': {name} level must be {lo}-{hi}"
            )))
        }
    };
    let mut v = vec![json!({"name": "bytes", "configuration": {"endian": "little"}})];
    if shuffle && name != "blosc" {
        return Err(IoError::Parse(
            "--shuffle with Zarr output needs --compression blosc (the shuffle is blosc's)".into(),
        ));
    }
    match name.as_str() {
        "none" if level.is_none() => {}
        "gzip" => v.push(json!({"name": "gzip", "configuration": {"level": check(0, 9, 4)?}})),
        "zstd" => v.push(json!({"name": "zstd", "configuration": {"level": check(-7, 22, 3)?, "checksum": false}})),
        "blosc" => v.push(json!({"name": "blosc", "configuration": {
            "cname": "lz4", "clevel": check(0, 9, 5)?,
            "shuffle": if shuffle { "shuffle" } else { "noshuffle" },
            "typesize": dtype.size(), "blocksize": 0}})),
        _ => {
            return Err(IoError::Parse(format!(
                "unknown --compression '{compression}' for Zarr output: use none, gzip[:0-9], zstd[:LEVEL] or blosc[:0-9]"
            )));
        }
    }
    Ok(v)
}

/// A `_FillValue` attribute as xarray stores it in Zarr v3.
pub fn fill_value_attr(v: f64, dtype: Dtype) -> Value {
    if dtype.is_float() {
        Value::String(base64(&v.to_le_bytes()))
    } else {
        json!(v as i64)
    }
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                s.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// The `zarr.json` of an array.
pub fn array_json(
    dtype: Dtype,
    shape: &[usize],
    chunks: &[usize],
    codecs: &[Value],
    dims: &[String],
    attrs: Map<String, Value>,
) -> Value {
    json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": shape,
        "data_type": dtype.numpy_name(),
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunks}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": if dtype.is_float() { json!("NaN") } else { json!(0) },
        "codecs": codecs,
        "attributes": attrs,
        "dimension_names": dims,
        "storage_transformers": [],
    })
}

/// Write `json` as `dir/zarr.json` (creating `dir`).
pub fn write_node(dir: &Path, json: &Value) -> Result<(), IoError> {
    let err = |e: std::io::Error| IoError::Output(format!("cannot write '{}': {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(err)?;
    let text = serde_json::to_string_pretty(json).expect("JSON values serialise");
    std::fs::write(dir.join("zarr.json"), text).map_err(err)
}

/// The `zarr.json` of the root group with the global attributes.
pub fn group_json(attrs: Map<String, Value>) -> Value {
    json!({"zarr_format": 3, "node_type": "group", "attributes": attrs})
}

/// Attributes of an HDF5 object as JSON values (numbers stay numbers,
/// one-element arrays become scalars), without the bookkeeping ones.
pub fn h5_attrs_json(loc: &hdf5::Location) -> Map<String, Value> {
    use hdf5::types::TypeDescriptor as T;
    let mut m = Map::new();
    let mut names = loc.attr_names().unwrap_or_default();
    names.sort();
    for n in names {
        if BOOKKEEPING.contains(&n.as_str()) {
            continue;
        }
        let Ok(a) = loc.attr(&n) else { continue };
        let desc = a.dtype().and_then(|t| t.to_descriptor());
        let v = match desc {
            Ok(T::Integer(_) | T::Unsigned(_)) => a
                .read_raw::<i64>()
                .ok()
                .map(|v| v.into_iter().map(Value::from).collect::<Vec<_>>()),
            Ok(T::Float(_)) => a.read_raw::<f64>().ok().map(|v| {
                v.into_iter()
                    .map(|x| serde_json::Number::from_f64(x).map_or(json!("NaN"), Value::Number))
                    .collect()
            }),
            _ => None,
        };
        let v = match v {
            Some(mut v) if v.len() == 1 => v.remove(0),
            Some(v) => Value::Array(v),
            None => Value::String(crate::h5io::attr_text(&a)),
        };
        m.insert(n, v);
    }
    m
}

/// An output array opened for writing chunks.
pub struct ZarrWriter {
    array: Array<FilesystemStore>,
    path: std::path::PathBuf,
}

impl ZarrWriter {
    /// Open the array at `store/name` (its `zarr.json` already written).
    pub fn open(store: &Path, name: &str) -> Result<ZarrWriter, IoError> {
        let err = |e: String| {
            IoError::Output(format!(
                "cannot open Zarr array '{}/{name}': {e}",
                store.display()
            ))
        };
        let fs = FilesystemStore::new(store).map_err(|e| err(e.to_string()))?;
        let array =
            Array::open(Arc::new(fs), &format!("/{name}")).map_err(|e| err(e.to_string()))?;
        Ok(ZarrWriter {
            array,
            path: store.join(name),
        })
    }

    /// Write the elements of `block` (C order; `data` holds `block.len()`
    /// elements of the array's type, native little-endian).
    pub fn write_block<T: crate::element::Element>(
        &self,
        block: &Block,
        data: &[T],
    ) -> Result<(), IoError> {
        let bytes = crate::source::flat::as_bytes(data);
        let ranges: Vec<std::ops::Range<u64>> = block
            .start
            .iter()
            .zip(&block.count)
            .map(|(&s, &c)| s as u64..(s + c) as u64)
            .collect();
        self.array
            .store_array_subset(&ranges, ArrayBytes::from(bytes))
            .map_err(|e| {
                IoError::Output(format!(
                    "writing block {} of '{}': {e}",
                    block.index,
                    self.path.display()
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_fill_values_match_xarray() {
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
        // xarray's _FillValue of NaN (float32 or float64 data).
        assert_eq!(fill_value_attr(f64::NAN, Dtype::F32), json!("AAAAAAAA+H8="));
        assert_eq!(fill_value_attr(-999.0, Dtype::I32), json!(-999));
    }

    #[test]
    fn codec_chains() {
        let c = codecs("blosc:7", true, Dtype::F64).unwrap();
        assert_eq!(c[1]["configuration"]["shuffle"], "shuffle");
        assert_eq!(c[1]["configuration"]["typesize"], 8);
        assert_eq!(
            codecs("zstd", false, Dtype::F32).unwrap()[1]["configuration"]["level"],
            3
        );
        assert_eq!(codecs("none", false, Dtype::F32).unwrap().len(), 1);
        assert!(codecs("gzip:12", false, Dtype::F32).is_err());
        assert!(codecs("gzip", true, Dtype::F32).is_err());
        assert!(codecs("lzf", false, Dtype::F32).is_err());
    }
}
