//! Zarr v3 arrays on a file system: a directory with a `zarr.json` whose
//! `node_type` is `array` (Zarr v3 core specification). The metadata —
//! data type, shape, regular chunk grid, `dimension_names`, `attributes` —
//! is read here from `zarr.json` with serde_json; chunk data are read and
//! decoded by the `zarrs` crate (any codec chain it was built with: `bytes`
//! in either byte order, `transpose`, `gzip`), which also supplies the fill
//! value for chunks that were never written.
//!
//! Every rank opens the store itself and reads its blocks; a block of whole
//! chunks decodes each chunk once.
//!
//! Coordinates follow the layout xarray writes: a 1-D numeric array named
//! like the dimension, next to the variable (`store/lat` for `store/tas`).

use crate::IoError;
use crate::decomp::Block;
use crate::element::{Dtype, Element};
use crate::hyperslab::Hyperslab;
use crate::selection::AxisRange;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zarrs::array::{Array, ArrayBytes};
use zarrs::filesystem::FilesystemStore;

/// What `zarr.json` says about an array.
#[derive(Clone, Debug, PartialEq)]
pub struct ZarrMeta {
    /// The store (array directory).
    pub path: PathBuf,
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// Regular chunk shape (`None` for other chunk grids).
    pub chunk: Option<Vec<usize>>,
    /// `dimension_names` (`dim_N` where absent or null).
    pub dims: Vec<String>,
    /// `attributes`, as text (strings as-is, numbers and arrays as JSON text).
    pub attrs: Vec<(String, String)>,
    /// Numeric attributes (for CF decoding: `_FillValue`, `scale_factor`, ...).
    pub numeric_attrs: Vec<(String, Vec<f64>)>,
    /// The codec chain, in order, as `name` or `name(configuration)`.
    pub codecs: Vec<String>,
    /// `fill_value`, as JSON text.
    pub fill_value: Option<String>,
}

/// Map a Zarr v3 data type name to a supported element type.
pub fn dtype_of(name: &str) -> Option<Dtype> {
    Some(match name {
        "int8" => Dtype::I8,
        "int16" => Dtype::I16,
        "int32" => Dtype::I32,
        "int64" => Dtype::I64,
        "uint8" => Dtype::U8,
        "uint16" => Dtype::U16,
        "uint32" => Dtype::U32,
        "uint64" => Dtype::U64,
        "float32" => Dtype::F32,
        "float64" => Dtype::F64,
        _ => return None,
    })
}

/// Parse the text of an array's `zarr.json` (pure).
pub fn parse_metadata(path: &Path, text: &str) -> Result<ZarrMeta, IoError> {
    let shown = path.display();
    let bad = |why: String| IoError::Input(format!("Zarr store '{shown}': {why}"));
    let j: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(format!("zarr.json is not JSON ({e})")))?;
    if j["zarr_format"].as_u64() != Some(3) {
        return Err(bad(format!(
            "zarr_format is {}, only Zarr v3 is supported",
            j["zarr_format"]
        )));
    }
    if j["node_type"].as_str() != Some("array") {
        return Err(bad(format!(
            "node_type is {}; give the path of an array inside the store, e.g. '{shown}/VAR' (or --var VAR)",
            j["node_type"]
        )));
    }
    let dt_name = j["data_type"].as_str().unwrap_or("");
    let dtype = dtype_of(dt_name).ok_or_else(|| {
        bad(format!(
            "data_type {} is not supported (int8..int64, uint8..uint64, float32, float64)",
            j["data_type"]
        ))
    })?;
    let ints = |v: &serde_json::Value| -> Option<Vec<usize>> {
        v.as_array()?
            .iter()
            .map(|x| x.as_u64().map(|x| x as usize))
            .collect()
    };
    let shape = ints(&j["shape"]).ok_or_else(|| bad("shape is missing or invalid".into()))?;
    let chunk = if j["chunk_grid"]["name"].as_str() == Some("regular") {
        ints(&j["chunk_grid"]["configuration"]["chunk_shape"])
            .filter(|c| c.len() == shape.len() && c.iter().all(|&x| x > 0))
    } else {
        None
    };
    let dims = (0..shape.len())
        .map(|i| {
            j["dimension_names"][i]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("dim_{i}"))
        })
        .collect();
    let mut attrs = Vec::new();
    let mut numeric_attrs = Vec::new();
    if let Some(m) = j["attributes"].as_object() {
        for (k, v) in m {
            attrs.push((
                k.clone(),
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            ));
            let nums = match v {
                serde_json::Value::Number(n) => n.as_f64().map(|x| vec![x]),
                serde_json::Value::Array(a) => a.iter().map(|x| x.as_f64()).collect(),
                _ => None,
            };
            if let Some(n) = nums {
                numeric_attrs.push((k.clone(), n));
            }
        }
    }
    let codecs = j["codecs"]
        .as_array()
        .map(|a| a.iter().map(codec_text).collect())
        .unwrap_or_default();
    let fill_value = (!j["fill_value"].is_null()).then(|| match &j["fill_value"] {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    });
    Ok(ZarrMeta {
        path: path.to_path_buf(),
        dtype,
        shape,
        chunk,
        dims,
        attrs,
        numeric_attrs,
        codecs,
        fill_value,
    })
}

/// One codec as text: `gzip(level=5)`, `blosc(cname=zstd, clevel=5, shuffle=shuffle)`,
/// `bytes(endian=little)`; a `sharding_indexed` codec shows its inner chain.
fn codec_text(c: &serde_json::Value) -> String {
    let name = c["name"].as_str().unwrap_or("?");
    let Some(conf) = c["configuration"].as_object() else {
        return name.to_string();
    };
    let parts: Vec<String> = conf
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            serde_json::Value::Array(a) if k == "codecs" => {
                format!(
                    "{k}=[{}]",
                    a.iter().map(codec_text).collect::<Vec<_>>().join(", ")
                )
            }
            v => format!("{k}={v}"),
        })
        .collect();
    format!("{name}({})", parts.join(", "))
}

/// A Zarr v3 group: its attributes and the arrays in it and its subgroups
/// (depth first, sorted by name), as paths below `path`. `None` when
/// `path/zarr.json` is not a group.
pub fn group_arrays(path: &Path) -> Result<Option<ZarrGroup>, IoError> {
    let text = std::fs::read_to_string(path.join("zarr.json")).map_err(|e| {
        IoError::Input(format!(
            "cannot read '{}': {e}",
            path.join("zarr.json").display()
        ))
    })?;
    let j: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        IoError::Input(format!(
            "Zarr store '{}': zarr.json is not JSON ({e})",
            path.display()
        ))
    })?;
    if j["node_type"].as_str() != Some("group") {
        return Ok(None);
    }
    let attrs = j["attributes"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut group = ZarrGroup {
        path: path.to_path_buf(),
        attrs,
        arrays: Vec::new(),
        groups: Vec::new(),
    };
    let mut children: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| IoError::Input(format!("cannot list '{}': {e}", path.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("zarr.json").is_file())
        .collect();
    children.sort();
    for c in children {
        match group_arrays(&c)? {
            Some(g) => group.groups.push(g),
            None => group.arrays.push(c),
        }
    }
    Ok(Some(group))
}

/// A Zarr v3 group as [`group_arrays`] finds it.
#[derive(Clone, Debug)]
pub struct ZarrGroup {
    /// The group's directory.
    pub path: PathBuf,
    /// Its `attributes`, as text.
    pub attrs: Vec<(String, String)>,
    /// Its arrays' directories.
    pub arrays: Vec<PathBuf>,
    /// Its subgroups.
    pub groups: Vec<ZarrGroup>,
}

/// Read and parse `path/zarr.json`.
pub fn describe(path: &Path) -> Result<ZarrMeta, IoError> {
    let text = std::fs::read_to_string(path.join("zarr.json")).map_err(|e| {
        IoError::Input(format!(
            "cannot read '{}': {e}",
            path.join("zarr.json").display()
        ))
    })?;
    parse_metadata(path, &text)
}

/// An opened Zarr array.
pub struct ZarrArray {
    array: Array<FilesystemStore>,
    meta: ZarrMeta,
}

impl ZarrArray {
    /// Open the array described by `meta` (its codecs must be supported).
    pub fn open(meta: &ZarrMeta) -> Result<ZarrArray, IoError> {
        let err = |e: String| {
            IoError::Input(format!(
                "cannot open Zarr array '{}': {e}",
                meta.path.display()
            ))
        };
        let store = FilesystemStore::new(&meta.path).map_err(|e| err(e.to_string()))?;
        let array = Array::open(Arc::new(store), "/").map_err(|e| err(e.to_string()))?;
        Ok(ZarrArray {
            array,
            meta: meta.clone(),
        })
    }

    /// Read `block` (in the index space of the selection `sel`) into the
    /// first `block.len()` elements of `buf`. `T` is the stored element type.
    pub fn read_block<T: Element>(
        &self,
        block: &Block,
        sel: &[AxisRange],
        buf: &mut [T],
    ) -> Result<(), IoError> {
        assert_eq!(
            T::DTYPE,
            self.meta.dtype,
            "Zarr read with the wrong element type"
        );
        let n = block.len();
        let size = self.meta.dtype.size();
        // The bounding box of the selected elements, in array indices.
        let slab = Hyperslab::of_block(block, sel);
        let ext = slab.extent();
        let ranges: Vec<std::ops::Range<u64>> = slab
            .start
            .iter()
            .zip(&ext)
            .map(|(&f, &e)| f as u64..(f + e) as u64)
            .collect();
        let bytes: ArrayBytes<'static> =
            self.array.retrieve_array_subset(&ranges).map_err(|e| {
                IoError::Input(format!(
                    "reading block {} of Zarr array '{}': {e}",
                    block.index,
                    self.meta.path.display()
                ))
            })?;
        let raw = bytes.into_fixed().map_err(|e| {
            IoError::Input(format!("Zarr array '{}': {e}", self.meta.path.display()))
        })?;
        let out = super::flat::as_bytes_mut(&mut buf[..n]);
        if slab.is_contiguous_box() {
            out.copy_from_slice(&raw[..n * size]);
            return Ok(());
        }
        // Strided selection: pick every step-th element of the bounding box.
        let nd = ext.len();
        let mut stride = vec![1usize; nd];
        for k in (0..nd.saturating_sub(1)).rev() {
            stride[k] = stride[k + 1] * ext[k + 1];
        }
        let mut idx = vec![0usize; nd];
        for i in 0..n {
            let off: usize = (0..nd).map(|k| idx[k] * slab.stride[k] * stride[k]).sum();
            out[i * size..(i + 1) * size].copy_from_slice(&raw[off * size..(off + 1) * size]);
            for k in (0..nd).rev() {
                idx[k] += 1;
                if idx[k] < block.count[k] {
                    break;
                }
                idx[k] = 0;
            }
        }
        Ok(())
    }
}

/// One axis' coordinate values and its descriptive attributes (as text).
pub type Coordinate = (Vec<f64>, Vec<(String, String)>);

/// Coordinate values and descriptive attributes per axis of `meta`: the
/// 1-D numeric sibling array named like the dimension, with one value per
/// index, if there is one.
pub fn coordinates(meta: &ZarrMeta) -> Vec<Option<Coordinate>> {
    let parent = meta
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    meta.dims
        .iter()
        .zip(&meta.shape)
        .map(|(name, &len)| {
            let p = parent.join(name);
            if name.contains('/') || p == meta.path {
                return None;
            }
            let c = describe(&p).ok().filter(|c| c.shape == [len])?;
            let arr = ZarrArray::open(&c).ok()?;
            let block = Block {
                index: 0,
                start: vec![0],
                count: vec![len],
            };
            let all = [AxisRange::all(len)];
            let values: Vec<f64> = crate::with_dtype!(c.dtype, T => {
                let mut v = vec![T::default(); len];
                arr.read_block(&block, &all, &mut v).ok()?;
                v.iter().map(|x| x.to_f64()).collect()
            });
            let attrs = c
                .attrs
                .iter()
                .filter(|(k, _)| crate::h5io::CARRIED_ATTRS.contains(&k.as_str()))
                .cloned()
                .collect();
            Some((values, attrs))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v3_array_metadata() {
        let t = r#"{"zarr_format": 3, "node_type": "array", "shape": [10, 20],
            "data_type": "float32",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [5, 8]}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": "NaN", "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
            "attributes": {"units": "K", "scale_factor": 0.5, "valid_range": [0, 10]},
            "dimension_names": ["y", null]}"#;
        let m = parse_metadata(Path::new("s.zarr"), t).unwrap();
        assert_eq!(m.dtype, Dtype::F32);
        assert_eq!(m.shape, vec![10, 20]);
        assert_eq!(m.chunk, Some(vec![5, 8]));
        assert_eq!(m.dims, vec!["y", "dim_1"]);
        assert!(m.attrs.contains(&("units".into(), "K".into())));
        assert!(
            m.numeric_attrs
                .contains(&("scale_factor".into(), vec![0.5]))
        );
        let bad = t.replace("float32", "complex64");
        assert!(
            parse_metadata(Path::new("s"), &bad)
                .unwrap_err()
                .to_string()
                .contains("not supported")
        );
        let group = r#"{"zarr_format": 3, "node_type": "group"}"#;
        assert!(
            parse_metadata(Path::new("s"), group)
                .unwrap_err()
                .to_string()
                .contains("array inside the store")
        );
        let v2 = r#"{"zarr_format": 2}"#;
        assert!(parse_metadata(Path::new("s"), v2).is_err());
    }
}
