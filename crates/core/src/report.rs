//! Results as humans and scripts read them: a text table or one JSON object.

use crate::accum::{Acc, Value};
use crate::parse::Op;
use crate::reduce_layout::{ReduceLayout, result_coords};
use crate::selection::AxisRange;
use crate::variable::VariableMeta;
use serde::Serialize;

pub use crate::number_format::fmt_float;

/// Per-phase wall-clock times in seconds (maximum over ranks).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timings {
    /// Time spent in HDF5 reads.
    pub read_s: f64,
    /// Time spent in reduction kernels.
    pub compute_s: f64,
    /// Time spent combining partial results across ranks.
    pub comm_s: f64,
    /// From opening the file to the combined result on rank 0.
    pub total_s: f64,
}

/// One statistic: a number for a whole-array reduction, an array (C order
/// over `result_shape`) when some dimensions are kept.
#[derive(Clone, Debug, PartialEq)]
pub enum Stat {
    /// Reduced over every dimension.
    Scalar(Value),
    /// One value per cell of the result.
    Array(Vec<Value>),
}

/// JSON form of a value: exact integers; NaN, +inf and −inf as the strings
/// `"NaN"`, `"Infinity"` and `"-Infinity"` (protobuf's JSON mapping of
/// doubles; JSON has no such numbers, and `null` would not tell them apart).
struct JsonValue<'a>(&'a Value);

impl Serialize for JsonValue<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Float(f) if f.is_nan() => s.serialize_str("NaN"),
            Value::Float(f) if f.is_infinite() => {
                s.serialize_str(if *f > 0.0 { "Infinity" } else { "-Infinity" })
            }
            // serde_json writes i128 exactly (u64 sums can exceed i64/u64).
            Value::Int(i) => s.serialize_i128(*i),
            Value::Float(f) => s.serialize_f64(*f),
        }
    }
}

impl Serialize for Stat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        match self {
            Stat::Scalar(v) => JsonValue(v).serialize(s),
            Stat::Array(vs) => {
                let mut seq = s.serialize_seq(Some(vs.len()))?;
                for v in vs {
                    seq.serialize_element(&JsonValue(v))?;
                }
                seq.end()
            }
        }
    }
}

/// Everything `reduce` reports.
#[derive(Clone, Debug, Serialize)]
pub struct ReduceReport {
    /// Input file as given.
    pub file: String,
    /// Variable path.
    pub var: String,
    /// Shape of the variable.
    pub shape: Vec<usize>,
    /// Dimension names of the variable.
    pub dims: Vec<String>,
    /// Element type name.
    pub dtype: String,
    /// `--select` as `dim → [start, stop, step]` (indices), only selected dimensions.
    #[serde(serialize_with = "ordered_map")]
    pub selection: Vec<(String, [usize; 3])>,
    /// Shape of the selected part that was read.
    pub selected_shape: Vec<usize>,
    /// Dimensions reduced over.
    pub reduced_dims: Vec<String>,
    /// Dimensions of the result (the kept ones).
    pub result_dims: Vec<String>,
    /// Shape of the result (empty for a whole-array reduction).
    pub result_shape: Vec<usize>,
    /// Coordinate values of the result dimensions (indices where the file has none).
    #[serde(serialize_with = "ordered_map")]
    pub coords: Vec<(String, Vec<f64>)>,
    /// CF decoding applied to the stored values.
    pub decode: crate::cf::Decode,
    /// Number of MPI ranks.
    pub ranks: usize,
    /// Number of distinct hosts the ranks ran on.
    pub nodes: usize,
    /// Host names of the ranks (sorted, distinct).
    pub hosts: Vec<String>,
    /// Reduction threads per rank.
    pub threads: usize,
    /// Requested statistics in request order (serialised as an object).
    #[serde(serialize_with = "ordered_map")]
    pub results: Vec<(String, Stat)>,
    /// Values counted in total (non-NaN, non-missing unless NaN is kept).
    pub count: u64,
    /// Bytes read from the file by all ranks.
    pub bytes_read: u64,
    /// Shape of a full block.
    pub block_shape: Vec<usize>,
    /// Number of blocks.
    pub n_blocks: usize,
    /// The NetCDF-4 file written, if any.
    pub output: Option<String>,
    /// Phase timings.
    pub timings: Timings,
    /// bytes_read / total_s in GB/s (10^9 bytes per second).
    pub throughput_gbs: f64,
    /// Peak resident memory of the largest rank, MiB (getrusage high-water mark).
    pub peak_rss_mib: f64,
    /// `--groupby` / `--resample`: the groups that lead the result's dimensions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<GroupsReport>,
}

/// The groups of a grouped result (`--groupby`, `--resample`), in result order.
#[derive(Clone, Debug, Serialize)]
pub struct GroupsReport {
    /// What grouped the data (`time.month`, `time=1MS`).
    pub by: String,
    /// The result dimension holding the groups (`month`, `season`, `time`).
    pub dim: String,
    /// One label per group (`1`…`12`, `DJF`, or the period start as a date).
    pub labels: Vec<String>,
    /// Period bounds `[start, next start)` in the time coordinate's units
    /// (resampling only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounds: Option<Vec<[f64; 2]>>,
}

fn ordered_map<S: serde::Serializer, V: Serialize>(
    v: &[(String, V)],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(v.len()))?;
    for (k, val) in v {
        m.serialize_entry(k, val)?;
    }
    m.end()
}

/// At most this many values of an array result are shown as text.
const TEXT_VALUES: usize = 8;

impl ReduceReport {
    /// A readable table.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let dims: Vec<String> = self
            .dims
            .iter()
            .zip(&self.shape)
            .map(|(n, d)| format!("{n}={d}"))
            .collect();
        s += &format!(
            "file      {}\nvariable  {}  ({} {})\n",
            self.file,
            self.var,
            self.dtype,
            if dims.is_empty() {
                "scalar".to_string()
            } else {
                dims.join(", ")
            }
        );
        for (d, [a, b, st]) in &self.selection {
            s += &format!("select    {d} = {a}:{b}:{st}\n");
        }
        if !self.decode.is_identity() {
            s += &format!(
                "decode    missing {:?}, scale {}, offset {}\n",
                self.decode.missing,
                self.decode.scale.unwrap_or(1.0),
                self.decode.offset.unwrap_or(0.0)
            );
        }
        s += &format!(
            "layout    {} blocks of {:?} on {} rank(s) × {} thread(s)\n",
            self.n_blocks, self.block_shape, self.ranks, self.threads
        );
        if !self.result_dims.is_empty() {
            let rd: Vec<String> = self
                .result_dims
                .iter()
                .zip(&self.result_shape)
                .map(|(n, d)| format!("{n}={d}"))
                .collect();
            s += &format!(
                "reduced   over {}; result ({})\n",
                self.reduced_dims.join(", "),
                rd.join(", ")
            );
        }
        if let Some(g) = &self.groups {
            let shown: Vec<&str> = g
                .labels
                .iter()
                .take(TEXT_VALUES)
                .map(String::as_str)
                .collect();
            let more = if g.labels.len() > TEXT_VALUES {
                ", …"
            } else {
                ""
            };
            s += &format!(
                "groups    {}: {} {} ({}{more})\n",
                g.by,
                g.labels.len(),
                g.dim,
                shown.join(", ")
            );
        }
        s += "\n";
        let w = self
            .results
            .iter()
            .map(|(k, _)| k.len())
            .max()
            .unwrap_or(0)
            .max(9);
        for (k, v) in &self.results {
            match v {
                Stat::Scalar(v) => s += &format!("  {k:<w$}  {v}\n"),
                Stat::Array(vs) => {
                    let shown: Vec<String> =
                        vs.iter().take(TEXT_VALUES).map(|v| v.to_string()).collect();
                    let more = if vs.len() > TEXT_VALUES {
                        format!(" … ({} values; all with --json or --output)", vs.len())
                    } else {
                        String::new()
                    };
                    s += &format!("  {k:<w$}  [{}{more}]\n", shown.join(", "));
                }
            }
        }
        if let Some(o) = &self.output {
            s += &format!("\nwrote     {o}\n");
        }
        let t = &self.timings;
        s += &format!(
            "\nread {:.3} s  compute {:.3} s  comm {:.3} s  total {:.3} s  ({} read, {:.2} GB/s, peak {:.0} MiB per rank)\n",
            t.read_s,
            t.compute_s,
            t.comm_s,
            t.total_s,
            crate::parse::human_bytes(self.bytes_read),
            self.throughput_gbs,
            self.peak_rss_mib
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_big_ints_exact_and_nan_inf_apart() {
        let r = ReduceReport {
            file: "f".into(),
            var: "v".into(),
            shape: vec![2],
            dims: vec!["dim_0".into()],
            dtype: "u64".into(),
            selection: vec![],
            selected_shape: vec![2],
            reduced_dims: vec!["dim_0".into()],
            result_dims: vec![],
            result_shape: vec![],
            coords: vec![],
            decode: Default::default(),
            ranks: 1,
            nodes: 1,
            hosts: vec!["h".into()],
            threads: 1,
            results: vec![
                ("sum".into(), Stat::Scalar(Value::Int(2 * u64::MAX as i128))),
                ("mean".into(), Stat::Scalar(Value::Float(f64::NAN))),
                (
                    "max".into(),
                    Stat::Array(vec![Value::Float(1.5), Value::Float(f64::INFINITY)]),
                ),
                ("min".into(), Stat::Scalar(Value::Float(f64::NEG_INFINITY))),
            ],
            count: 2,
            bytes_read: 16,
            block_shape: vec![2],
            n_blocks: 1,
            output: None,
            timings: Timings::default(),
            throughput_gbs: 0.0,
            peak_rss_mib: 0.0,
            groups: None,
        };
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains("\"sum\":36893488147419103230"), "{j}");
        assert!(j.contains("\"mean\":\"NaN\""), "{j}");
        assert!(j.contains("\"max\":[1.5,\"Infinity\"]"), "{j}");
        assert!(j.contains("\"min\":\"-Infinity\""), "{j}");
    }
}

/// Where a reduction ran and what it read, for [`ReduceReport::build`].
#[derive(Clone, Debug)]
pub struct RunFacts {
    /// MPI ranks.
    pub ranks: usize,
    /// Distinct host names of the ranks.
    pub hosts: Vec<String>,
    /// Threads per rank.
    pub threads: usize,
    /// Bytes read by all ranks.
    pub bytes_read: u64,
    /// Phase times (maximum over ranks).
    pub timings: Timings,
}

impl ReduceReport {
    /// The report of a finished reduction from its combined result `cells`.
    pub fn build(
        file: &str,
        var: &str,
        meta: &VariableMeta,
        ops: &[Op],
        layout: &ReduceLayout,
        cells: &[Acc],
        run: RunFacts,
    ) -> ReduceReport {
        Self::build_grouped(file, var, meta, ops, layout, cells, run, None)
    }

    /// As [`ReduceReport::build`]; with `groups`, `cells` holds one result
    /// per group (group-major) and the group dimension leads the result.
    #[allow(clippy::too_many_arguments)]
    pub fn build_grouped(
        file: &str,
        var: &str,
        meta: &VariableMeta,
        ops: &[Op],
        layout: &ReduceLayout,
        cells: &[Acc],
        run: RunFacts,
        groups: Option<&crate::grouping::GroupAxis>,
    ) -> ReduceReport {
        let (d, t) = (&layout.decomp, &layout.tiling);
        let dims = &meta.dims;
        let kept: Vec<usize> = (0..d.shape.len()).filter(|&a| !t.reduced[a]).collect();
        let scalar = kept.is_empty() && groups.is_none();
        let lead = |mut v: Vec<String>| {
            if let Some(g) = groups {
                v.insert(0, g.dim.clone());
            }
            v
        };
        let mut result_shape = t.result_shape(d);
        let mut coords: Vec<(String, Vec<f64>)> = kept
            .iter()
            .map(|&a| (dims.names[a].clone(), result_coords(meta, &layout.sel, a)))
            .collect();
        if let Some(g) = groups {
            result_shape.insert(0, g.len());
            coords.insert(0, (g.dim.clone(), g.coords.clone()));
        }
        let results = ops
            .iter()
            .map(|&op| {
                let vals: Vec<_> = cells.iter().map(|c| c.value(op, &layout.finish)).collect();
                let stat = if scalar {
                    Stat::Scalar(vals[0])
                } else {
                    Stat::Array(vals)
                };
                (op.name().to_string(), stat)
            })
            .collect();
        let count = cells
            .iter()
            .map(|c| {
                if layout.finish.keep_nan {
                    c.n + c.nan
                } else {
                    c.n
                }
            })
            .sum();
        ReduceReport {
            file: file.to_string(),
            var: var.to_string(),
            shape: dims.shape.clone(),
            dims: dims.names.clone(),
            dtype: meta.dtype.name().into(),
            selection: layout
                .sel
                .iter()
                .enumerate()
                .filter(|(a, r)| **r != AxisRange::all(dims.shape[*a]))
                .map(|(a, r)| {
                    (
                        dims.names[a].clone(),
                        [r.start, r.index(r.count - 1) + 1, r.step],
                    )
                })
                .collect(),
            selected_shape: d.shape.clone(),
            reduced_dims: (0..d.shape.len())
                .filter(|&a| t.reduced[a])
                .map(|a| dims.names[a].clone())
                .collect(),
            result_dims: lead(kept.iter().map(|&a| dims.names[a].clone()).collect()),
            result_shape,
            coords,
            decode: meta.decode.clone(),
            ranks: run.ranks,
            nodes: run.hosts.len(),
            hosts: run.hosts,
            threads: run.threads,
            results,
            count,
            bytes_read: run.bytes_read,
            block_shape: d.block_shape.clone(),
            n_blocks: d.n_blocks(),
            output: None,
            throughput_gbs: run.bytes_read as f64 / run.timings.total_s.max(1e-12) / 1e9,
            peak_rss_mib: 0.0,
            timings: run.timings,
            groups: groups.map(|g| GroupsReport {
                by: g.by.clone(),
                dim: g.dim.clone(),
                labels: g.labels.clone(),
                bounds: g.bounds.clone(),
            }),
        }
    }
}
