//! Many files as one dataset: the files of a variable concatenated along a
//! record dimension, ordered by their first coordinate value along it (not
//! by name), as `xr.open_mfdataset(..., combine="by_coords")`, `ncrcat` and
//! `cdo mergetime` combine them.
//!
//! [`Concat::plan`] takes each file's [`VariableMeta`] (read once, on one
//! rank) and checks that everything but the record extent agrees: dimension
//! names, the other extents and coordinate values, dtype, CF encoding. Time
//! coordinates whose files use different `units` (`days since 1970-01-01`
//! in one, `hours since 1980-01-01` in another) are re-expressed in the units
//! of the first file in record order, as xarray decodes and re-encodes them; the calendar must
//! agree. Records must increase strictly across the whole dataset — an
//! overlap or a duplicate is an error naming both files and the values.
//!
//! The result is one [`VariableMeta`] for the decomposition (blocks never
//! care where a file ends) and [`Concat::segments`], which splits a record
//! range into per-file reads.

use crate::CwError;
use crate::cftime::TimeUnits;
use crate::variable::VariableMeta;

/// One file's place in the concatenation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The file.
    pub path: String,
    /// First record of this file in the dataset.
    pub offset: usize,
    /// Records in this file.
    pub len: usize,
}

/// A piece of a record range that lies in one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Index of the file in [`Concat::parts`].
    pub file: usize,
    /// First record within the file.
    pub local_start: usize,
    /// Records.
    pub len: usize,
    /// Offset of this piece within the requested range.
    pub out_offset: usize,
}

/// The plan of a multi-file dataset.
#[derive(Clone, Debug)]
pub struct Concat {
    /// The record axis.
    pub axis: usize,
    /// The files, in record order.
    pub parts: Vec<Part>,
    /// The dataset as one variable (record extent summed, record coordinate
    /// concatenated).
    pub meta: VariableMeta,
}

/// Picks the record dimension: the one named by `--concat`, else the
/// unlimited one, else `time`.
pub fn record_dim(
    names: &[String],
    concat: Option<&str>,
    unlimited: Option<&str>,
) -> Result<String, CwError> {
    let pick = concat
        .or(unlimited)
        .or_else(|| names.iter().any(|n| n == "time").then_some("time"));
    match pick {
        Some(d) if names.iter().any(|n| n == d) => Ok(d.to_string()),
        Some(d) => Err(CwError::Input(format!(
            "cannot concatenate along '{d}': the variable's dimensions are {}",
            names.join(", ")
        ))),
        None => Err(CwError::Input(format!(
            "several input files but no record dimension (no unlimited dimension, no 'time'); \
             name one with --concat DIM (dimensions: {})",
            names.join(", ")
        ))),
    }
}

fn attr<'a>(attrs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

impl Concat {
    /// Plans the concatenation of `files` (path and metadata, any order)
    /// along dimension `record`.
    pub fn plan(files: Vec<(String, VariableMeta)>, record: &str) -> Result<Concat, CwError> {
        let first = files
            .first()
            .ok_or_else(|| CwError::Input("no input files".into()))?;
        let axis = first.1.dims.axis_of(record, "concatenation")?;
        // Each file's record coordinate is ordered in the first given file's
        // units, then re-expressed (once, from its own units) in the units of
        // the first file in record order — the same whatever the argument
        // order.
        let time_of = |m: &VariableMeta| -> Result<Option<TimeUnits>, CwError> {
            let a = &m.coord_attrs.get(axis).map(Vec::as_slice).unwrap_or(&[]);
            match attr(a, "units") {
                Some(u) if u.contains(" since ") => Ok(Some(TimeUnits::parse(
                    u,
                    attr(a, "calendar").unwrap_or(""),
                )?)),
                _ => Ok(None),
            }
        };
        let base_units = time_of(&first.1)?;
        let mut keyed = Vec::with_capacity(files.len());
        for (path, meta) in files {
            let coords = meta
                .dims
                .coords
                .get(axis)
                .cloned()
                .flatten()
                .ok_or_else(|| {
                    CwError::Input(format!(
                        "{path}: no coordinate values along '{record}' to order the files by"
                    ))
                })?;
            let own = time_of(&meta)?;
            match (&base_units, &own) {
                (Some(b), Some(u)) if u.calendar != b.calendar => {
                    return Err(CwError::Input(format!(
                        "{path}: calendar '{}' differs from '{}' of the first file",
                        u.calendar.name(),
                        b.calendar.name()
                    )));
                }
                (Some(_), None) | (None, Some(_)) => {
                    return Err(CwError::Input(format!(
                        "{path}: '{record}' has time units in some files and not in others"
                    )));
                }
                _ => {}
            }
            let in_base = re_express(&coords, own.as_ref(), base_units.as_ref());
            if let Some(bad) = in_base
                .windows(2)
                .position(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less))
            {
                return Err(CwError::Input(format!(
                    "{path}: '{record}' does not increase strictly ({} then {})",
                    in_base[bad],
                    in_base[bad + 1]
                )));
            }
            keyed.push((in_base[0], path, meta, (coords, own)));
        }
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
        let lead_units = keyed[0].3.1;
        let base_attrs = keyed[0]
            .2
            .coord_attrs
            .get(axis)
            .cloned()
            .unwrap_or_default();
        let keyed: Vec<_> = keyed
            .into_iter()
            .map(|(k, path, meta, (coords, own))| {
                let c = re_express(&coords, own.as_ref(), lead_units.as_ref());
                (k, path, meta, c)
            })
            .collect();
        let (_, p0, m0, _) = &keyed[0];
        let mut meta = m0.clone();
        let mut parts = Vec::with_capacity(keyed.len());
        let mut all_coords: Vec<f64> = Vec::new();
        let mut offset = 0;
        for (i, (_, path, m, coords)) in keyed.iter().enumerate() {
            if i > 0 {
                agree(p0, m0, path, m, axis)?;
                let (prev_path, last) = (
                    &keyed[i - 1].1,
                    *all_coords.last().unwrap_or(&f64::NEG_INFINITY),
                );
                if coords[0] <= last {
                    return Err(CwError::Input(format!(
                        "{prev_path} and {path} overlap along '{record}': {prev_path} ends at {last}, \
                         {path} starts at {}",
                        coords[0]
                    )));
                }
            }
            let len = m.shape[axis];
            parts.push(Part {
                path: path.clone(),
                offset,
                len,
            });
            offset += len;
            all_coords.extend_from_slice(coords);
        }
        meta.shape[axis] = offset;
        meta.dims.shape[axis] = offset;
        meta.dims.coords[axis] = Some(all_coords);
        // The record values are in the units of the first file in record order.
        meta.coord_attrs[axis] = base_attrs;
        Ok(Concat { axis, parts, meta })
    }

    /// The plan as text, to send from the rank that read the metadata to
    /// the others (floats as their bit patterns, so NaN and signed zeros
    /// survive).
    pub fn to_wire(&self) -> String {
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
        let m = &self.meta;
        serde_json::json!({
            "axis": self.axis,
            "parts": self.parts.iter().map(|p| (&p.path, p.offset, p.len)).collect::<Vec<_>>(),
            "dtype": m.dtype.name(),
            "shape": m.shape,
            "chunk": m.chunk,
            "filtered": m.filtered,
            "names": m.dims.names,
            "coords": m.dims.coords.iter().map(|c| c.as_deref().map(bits)).collect::<Vec<_>>(),
            "missing": bits(&m.decode.missing),
            "scale": m.decode.scale.map(f64::to_bits),
            "offset": m.decode.offset.map(f64::to_bits),
            "attrs": m.attrs,
            "globals": m.globals,
            "coord_attrs": m.coord_attrs,
        })
        .to_string()
    }

    /// The plan from [`Concat::to_wire`]'s text.
    pub fn from_wire(text: &str) -> Result<Concat, CwError> {
        use serde_json::{Value, from_value};
        let bad = |e: &dyn std::fmt::Display| CwError::Internal(format!("multi-file plan: {e}"));
        let v: Value = serde_json::from_str(text).map_err(|e| bad(&e))?;
        let get = |k: &str| v.get(k).cloned().ok_or_else(|| bad(&format!("no '{k}'")));
        let floats = |b: Vec<u64>| b.into_iter().map(f64::from_bits).collect::<Vec<f64>>();
        let parts: Vec<(String, usize, usize)> = from_value(get("parts")?).map_err(|e| bad(&e))?;
        let dtype_name: String = from_value(get("dtype")?).map_err(|e| bad(&e))?;
        let shape: Vec<usize> = from_value(get("shape")?).map_err(|e| bad(&e))?;
        let coords: Vec<Option<Vec<u64>>> = from_value(get("coords")?).map_err(|e| bad(&e))?;
        let meta = VariableMeta {
            dtype: crate::element::Dtype::parse(&dtype_name).ok_or_else(|| bad(&dtype_name))?,
            chunk: from_value(get("chunk")?).map_err(|e| bad(&e))?,
            filtered: from_value(get("filtered")?).map_err(|e| bad(&e))?,
            dims: crate::selection::Dims {
                names: from_value(get("names")?).map_err(|e| bad(&e))?,
                shape: shape.clone(),
                coords: coords.into_iter().map(|c| c.map(floats)).collect(),
            },
            decode: crate::cf::Decode {
                missing: floats(from_value(get("missing")?).map_err(|e| bad(&e))?),
                scale: from_value::<Option<u64>>(get("scale")?)
                    .map_err(|e| bad(&e))?
                    .map(f64::from_bits),
                offset: from_value::<Option<u64>>(get("offset")?)
                    .map_err(|e| bad(&e))?
                    .map(f64::from_bits),
            },
            attrs: from_value(get("attrs")?).map_err(|e| bad(&e))?,
            globals: from_value(get("globals")?).map_err(|e| bad(&e))?,
            coord_attrs: from_value(get("coord_attrs")?).map_err(|e| bad(&e))?,
            shape,
        };
        Ok(Concat {
            axis: from_value(get("axis")?).map_err(|e| bad(&e))?,
            parts: parts
                .into_iter()
                .map(|(path, offset, len)| Part { path, offset, len })
                .collect(),
            meta,
        })
    }

    /// Splits records `start .. start + len` into per-file pieces.
    pub fn segments(&self, start: usize, len: usize) -> Vec<Segment> {
        let end = start + len;
        let first = self.parts.partition_point(|p| p.offset + p.len <= start);
        let mut out = Vec::new();
        for (file, p) in self.parts.iter().enumerate().skip(first) {
            if p.offset >= end {
                break;
            }
            let s = start.max(p.offset);
            let e = end.min(p.offset + p.len);
            out.push(Segment {
                file,
                local_start: s - p.offset,
                len: e - s,
                out_offset: s - start,
            });
        }
        out
    }
}

/// Record values in units `from` re-expressed in units `to` (exact
/// instants, see [`TimeUnits::instant_of`]); unchanged when either is not a
/// time encoding or both are the same.
fn re_express(values: &[f64], from: Option<&TimeUnits>, to: Option<&TimeUnits>) -> Vec<f64> {
    match (from, to) {
        (Some(u), Some(b)) if u != b => values
            .iter()
            .map(|&v| {
                u.instant_of(v)
                    .map(|us| b.encode_instant(us))
                    .unwrap_or(f64::NAN)
            })
            .collect(),
        _ => values.to_vec(),
    }
}

/// Checks that file `b` agrees with the first file `a` in everything but
/// the record extent; the error names both files and what differs.
fn agree(
    pa: &str,
    a: &VariableMeta,
    pb: &str,
    b: &VariableMeta,
    axis: usize,
) -> Result<(), CwError> {
    let differ = |what: String| Err(CwError::Input(format!("{pa} and {pb} differ: {what}")));
    if a.dims.names != b.dims.names {
        return differ(format!(
            "dimensions ({}) vs ({})",
            a.dims.names.join(", "),
            b.dims.names.join(", ")
        ));
    }
    if a.dtype != b.dtype {
        return differ(format!("type {} vs {}", a.dtype.name(), b.dtype.name()));
    }
    for (k, name) in a.dims.names.iter().enumerate() {
        if k == axis {
            continue;
        }
        if a.shape[k] != b.shape[k] {
            return differ(format!(
                "length of '{name}' {} vs {}",
                a.shape[k], b.shape[k]
            ));
        }
        match (&a.dims.coords[k], &b.dims.coords[k]) {
            (Some(x), Some(y)) => {
                if let Some(i) = (0..x.len()).find(|&i| x[i].to_bits() != y[i].to_bits()) {
                    return differ(format!(
                        "coordinate '{name}' at index {i}: {} vs {}",
                        x[i], y[i]
                    ));
                }
            }
            (None, None) => {}
            _ => return differ(format!("coordinate '{name}' present in one file only")),
        }
    }
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let (da, db) = (&a.decode, &b.decode);
    if bits(&da.missing) != bits(&db.missing)
        || da.scale.map(f64::to_bits) != db.scale.map(f64::to_bits)
        || da.offset.map(f64::to_bits) != db.offset.map(f64::to_bits)
    {
        return differ(format!("CF encoding ({da:?} vs {db:?})"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cf::Decode;
    use crate::element::Dtype;
    use crate::selection::Dims;

    fn meta(times: &[f64], units: &str, lat: &[f64]) -> VariableMeta {
        VariableMeta {
            dtype: Dtype::F32,
            shape: vec![times.len(), lat.len()],
            chunk: None,
            filtered: false,
            dims: Dims {
                names: vec!["time".into(), "lat".into()],
                shape: vec![times.len(), lat.len()],
                coords: vec![Some(times.to_vec()), Some(lat.to_vec())],
            },
            decode: Decode::default(),
            attrs: vec![],
            globals: vec![],
            coord_attrs: vec![vec![("units".into(), units.into())], vec![]],
        }
    }

    #[test]
    fn orders_by_first_coordinate_and_segments_ranges() {
        let lat = [0.0, 1.0];
        let files = vec![
            (
                "c.nc".to_string(),
                meta(&[5.0, 6.0], "days since 2000-01-01", &lat),
            ),
            (
                "a.nc".to_string(),
                meta(&[2.0, 3.0, 4.0], "days since 2000-01-01", &lat),
            ),
            (
                "b.nc".to_string(),
                meta(&[0.0, 1.0], "days since 2000-01-01", &lat),
            ),
        ];
        let c = Concat::plan(files, "time").unwrap();
        // The wire form round-trips everything.
        let mut w = Concat::from_wire(&c.to_wire()).unwrap();
        assert_eq!(w.to_wire(), c.to_wire());
        assert_eq!(
            (w.parts.clone(), w.meta.dims.coords.clone()),
            (c.parts.clone(), c.meta.dims.coords.clone())
        );
        w.meta.decode.missing = vec![f64::NAN];
        assert!(Concat::from_wire(&w.to_wire()).unwrap().meta.decode.missing[0].is_nan());
        let order: Vec<&str> = c.parts.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(order, ["b.nc", "a.nc", "c.nc"]);
        assert_eq!(c.meta.shape, [7, 2]);
        assert_eq!(
            c.meta.dims.coords[0].as_deref(),
            Some(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0][..])
        );
        assert_eq!(
            c.segments(1, 5),
            [
                Segment {
                    file: 0,
                    local_start: 1,
                    len: 1,
                    out_offset: 0
                },
                Segment {
                    file: 1,
                    local_start: 0,
                    len: 3,
                    out_offset: 1
                },
                Segment {
                    file: 2,
                    local_start: 0,
                    len: 1,
                    out_offset: 4
                },
            ]
        );
        assert_eq!(
            c.segments(6, 1),
            [Segment {
                file: 2,
                local_start: 1,
                len: 1,
                out_offset: 0
            }]
        );
    }

    #[test]
    fn other_units_are_re_expressed_in_the_first_files() {
        let lat = [0.0];
        let files = vec![
            (
                "x.nc".to_string(),
                meta(&[0.0, 1.0], "days since 2000-01-01", &lat),
            ),
            (
                "y.nc".to_string(),
                meta(&[48.0, 72.0], "hours since 2000-01-01", &lat),
            ),
        ];
        let mut rev = files.clone();
        rev.reverse();
        let c = Concat::plan(files, "time").unwrap();
        assert_eq!(
            c.meta.dims.coords[0].as_deref(),
            Some(&[0.0, 1.0, 2.0, 3.0][..])
        );
        // The units of the first file in record order, whatever the order given.
        let r = Concat::plan(rev, "time").unwrap();
        assert_eq!(r.meta.dims.coords, c.meta.dims.coords);
        assert_eq!(r.meta.coord_attrs, c.meta.coord_attrs);
    }

    #[test]
    fn disagreements_and_overlaps_name_both_files() {
        let files = vec![
            (
                "x.nc".to_string(),
                meta(&[0.0, 1.0], "days since 2000-01-01", &[0.0, 1.0]),
            ),
            (
                "y.nc".to_string(),
                meta(&[2.0], "days since 2000-01-01", &[0.0, 1.5]),
            ),
        ];
        let e = Concat::plan(files, "time").unwrap_err().to_string();
        assert!(
            e.contains("x.nc") && e.contains("y.nc") && e.contains("'lat' at index 1: 1 vs 1.5"),
            "{e}"
        );
        let files = vec![
            (
                "x.nc".to_string(),
                meta(&[0.0, 1.0], "days since 2000-01-01", &[0.0]),
            ),
            (
                "y.nc".to_string(),
                meta(&[1.0, 2.0], "days since 2000-01-01", &[0.0]),
            ),
        ];
        let e = Concat::plan(files, "time").unwrap_err().to_string();
        assert!(
            e.contains("overlap") && e.contains("ends at 1") && e.contains("starts at 1"),
            "{e}"
        );
        let mut other_type = meta(&[3.0], "days since 2000-01-01", &[0.0]);
        other_type.dtype = Dtype::F64;
        let files = vec![
            (
                "x.nc".to_string(),
                meta(&[0.0], "days since 2000-01-01", &[0.0]),
            ),
            ("y.nc".to_string(), other_type),
        ];
        assert!(
            Concat::plan(files, "time")
                .unwrap_err()
                .to_string()
                .contains("type f32 vs f64")
        );
        let files = vec![
            (
                "x.nc".to_string(),
                meta(&[0.0], "days since 2000-01-01", &[0.0]),
            ),
            ("y.nc".to_string(), {
                let mut m = meta(&[3.0], "days since 2000-01-01", &[0.0]);
                m.coord_attrs[0].push(("calendar".into(), "noleap".into()));
                m
            }),
        ];
        assert!(
            Concat::plan(files, "time")
                .unwrap_err()
                .to_string()
                .contains("calendar 'noleap'")
        );
    }

    #[test]
    fn record_dimension_choice() {
        let names: Vec<String> = ["time", "lat"].map(String::from).into();
        assert_eq!(record_dim(&names, None, None).unwrap(), "time");
        assert_eq!(
            record_dim(&names, Some("lat"), Some("time")).unwrap(),
            "lat"
        );
        let names: Vec<String> = ["t", "lat"].map(String::from).into();
        assert_eq!(record_dim(&names, None, Some("t")).unwrap(), "t");
        assert!(
            record_dim(&names, None, None)
                .unwrap_err()
                .to_string()
                .contains("--concat")
        );
    }
}
