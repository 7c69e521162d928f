//! Results as humans and scripts read them: a text table or one JSON object.

use crate::accum::Value;
use serde::Serialize;

/// Format a float with full round-trip precision (shortest representation).
pub fn fmt_float(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{v:?}")
    }
}

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

/// Everything `reduce` reports.
#[derive(Clone, Debug, Serialize)]
pub struct ReduceReport {
    /// Input file as given.
    pub file: String,
    /// Variable path.
    pub var: String,
    /// Shape of the variable.
    pub shape: Vec<usize>,
    /// Element type name.
    pub dtype: String,
    /// Number of MPI ranks.
    pub ranks: usize,
    /// Reduction threads per rank.
    pub threads: usize,
    /// Requested statistics in request order (serialised as an object).
    #[serde(serialize_with = "ordered_map")]
    pub results: Vec<(String, Value)>,
    /// Values counted (non-NaN unless NaN is kept).
    pub count: u64,
    /// Bytes read from the file by all ranks.
    pub bytes_read: u64,
    /// Shape of a full block.
    pub block_shape: Vec<usize>,
    /// Number of blocks.
    pub n_blocks: usize,
    /// Phase timings.
    pub timings: Timings,
    /// bytes_read / total_s in GB/s (10^9 bytes per second).
    pub throughput_gbs: f64,
}

fn ordered_map<S: serde::Serializer>(v: &[(String, Value)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(v.len()))?;
    for (k, val) in v {
        match val {
            // serde_json would write NaN/inf as null anyway; be explicit.
            Value::Float(f) if !f.is_finite() => m.serialize_entry(k, &Option::<f64>::None)?,
            // serde_json writes i128 exactly (u64 sums can exceed i64/u64).
            Value::Int(i) => m.serialize_entry(k, i)?,
            _ => m.serialize_entry(k, val)?,
        }
    }
    m.end()
}

impl ReduceReport {
    /// A readable table.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let shape: Vec<String> = self.shape.iter().map(|d| d.to_string()).collect();
        s += &format!(
            "file      {}\nvariable  {}  ({} {})\n",
            self.file,
            self.var,
            self.dtype,
            shape.join("×")
        );
        s += &format!(
            "layout    {} blocks of {:?} on {} rank(s) × {} thread(s)\n\n",
            self.n_blocks, self.block_shape, self.ranks, self.threads
        );
        let w = self
            .results
            .iter()
            .map(|(k, _)| k.len())
            .max()
            .unwrap_or(0)
            .max(9);
        for (k, v) in &self.results {
            s += &format!("  {k:<w$}  {v}\n");
        }
        let t = &self.timings;
        s += &format!(
            "\nread {:.3} s  compute {:.3} s  comm {:.3} s  total {:.3} s  ({} read, {:.2} GB/s)\n",
            t.read_s,
            t.compute_s,
            t.comm_s,
            t.total_s,
            crate::parse::human_bytes(self.bytes_read),
            self.throughput_gbs
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_big_ints_exact_and_nan_null() {
        let r = ReduceReport {
            file: "f".into(),
            var: "v".into(),
            shape: vec![2],
            dtype: "u64".into(),
            ranks: 1,
            threads: 1,
            results: vec![
                ("sum".into(), Value::Int(2 * u64::MAX as i128)),
                ("mean".into(), Value::Float(f64::NAN)),
            ],
            count: 2,
            bytes_read: 16,
            block_shape: vec![2],
            n_blocks: 1,
            timings: Timings::default(),
            throughput_gbs: 0.0,
        };
        let j = serde_json::to_string(&r).unwrap();
        assert!(j.contains("\"sum\":36893488147419103230"), "{j}");
        assert!(j.contains("\"mean\":null"), "{j}");
    }
}
