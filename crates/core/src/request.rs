//! Typed requests: what a command is asked to do, parsed and checked once
//! from the command line (by the binary) or built directly by another
//! command (`formats` builds `convert` and `reduce` requests, `scaling` and
//! `plan` render a `reduce` request back to a command line with
//! [`ReduceRequest::to_argv`] for the runs they launch).
//!
//! A request is syntactically valid; checks that need the file (dimension
//! names, selections against coordinates) happen when the command plans.

use crate::element::Dtype;
use crate::error::CwError;
use crate::parse::{Op, parse_bytes, parse_ops, parse_shape};
pub use crate::selection::ReduceOver;
use crate::selection::{SelectSpec, parse_select};
pub use crate::weights::WeightSpec;
use std::path::PathBuf;

/// Layout of a raw binary input (`--raw-dtype`, `--raw-shape`).
#[derive(Clone, Debug, PartialEq)]
pub struct RawSpec {
    /// Element type.
    pub dtype: Dtype,
    /// Stored big-endian.
    pub big_endian: bool,
    /// Array shape.
    pub shape: Vec<usize>,
}

impl RawSpec {
    /// Parse `--raw-dtype` / `--raw-shape`; both or neither must be given.
    pub fn parse(dtype: Option<&str>, shape: Option<&str>) -> Result<Option<RawSpec>, CwError> {
        match (dtype, shape) {
            (None, None) => Ok(None),
            (Some(d), Some(s)) => {
                let (dtype, big_endian) = parse_raw_dtype(d)?;
                Ok(Some(RawSpec {
                    dtype,
                    big_endian,
                    shape: parse_shape(s, "--raw-shape")?,
                }))
            }
            _ => Err(CwError::Parse(
                "raw binary input needs both --raw-dtype and --raw-shape".into(),
            )),
        }
    }

    /// The `--raw-dtype` text that parses back to this type and byte order.
    pub fn dtype_text(&self) -> String {
        if self.big_endian {
            self.dtype.numpy_descr(true)
        } else {
            self.dtype.name().to_string()
        }
    }
}

/// Parse `--raw-dtype`: a type name (`f64`, `i32`, ..., little-endian) or a
/// NumPy type string with its byte order (`<f8`, `>i4`). Returns the type
/// and whether it is big-endian.
pub fn parse_raw_dtype(s: &str) -> Result<(Dtype, bool), CwError> {
    if let Some(d) = Dtype::parse(s) {
        return Ok((d, false));
    }
    Dtype::parse_numpy_descr(s.trim()).map_err(|_| {
        CwError::Parse(format!(
            "unknown --raw-dtype '{s}': use f32, f64, i8..i64, u8..u64 (little-endian) or a NumPy type string such as '<f8' or '>i4'"
        ))
    })
}

/// The input of a command: a file (or Zarr store), the variable in it, and
/// the layout of a raw binary file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InputSpec {
    /// The input path.
    pub path: PathBuf,
    /// `--var`: the dataset in an HDF5 / NetCDF-4 file (ignored otherwise).
    pub var: Option<String>,
    /// `--raw-dtype` and `--raw-shape`, for raw binary input.
    pub raw: Option<RawSpec>,
    /// Further input files or glob patterns: the files form one dataset,
    /// concatenated along the record dimension (see [`crate::concat`]).
    pub more: Vec<PathBuf>,
    /// `--concat DIM`: the record dimension of a multi-file input.
    pub concat: Option<String>,
}

/// Whether `p` is a glob pattern (`*`, `?` or `[`) rather than a file name.
pub fn is_pattern(p: &std::path::Path) -> bool {
    p.to_string_lossy().contains(['*', '?', '['])
}

impl InputSpec {
    /// One input file.
    pub fn file(path: impl Into<PathBuf>, var: Option<String>) -> InputSpec {
        InputSpec {
            path: path.into(),
            var,
            ..InputSpec::default()
        }
    }

    /// True when the input is several files or a pattern (a multi-file
    /// dataset), false for one file or store.
    pub fn is_multi(&self) -> bool {
        !self.more.is_empty() || is_pattern(&self.path)
    }

    /// The paths and patterns as given.
    pub fn all_paths(&self) -> impl Iterator<Item = &PathBuf> {
        std::iter::once(&self.path).chain(self.more.iter())
    }

    /// Command-line arguments that name this input (the paths first).
    pub fn to_argv(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .all_paths()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if let Some(c) = &self.concat {
            v.extend(["--concat".into(), c.clone()]);
        }
        if let Some(var) = &self.var {
            v.extend(["--var".into(), var.clone()]);
        }
        if let Some(r) = &self.raw {
            v.extend(["--raw-dtype".into(), r.dtype_text()]);
            v.extend(["--raw-shape".into(), shape_text(&r.shape)]);
        }
        v
    }
}

/// `1000,2000` for a shape.
pub fn shape_text(shape: &[usize]) -> String {
    shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// How big a block is: the automatic policy of [`crate::blocksize`], or a
/// fixed `--block-bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockBytes {
    /// Chosen by [`crate::blocksize::auto_block_bytes`].
    Auto,
    /// Given by the user.
    Fixed(u64),
}

impl BlockBytes {
    /// Parse `--block-bytes` (`auto` or a size such as `64MiB`); the one
    /// parser every command uses.
    pub fn parse(s: Option<&str>) -> Result<BlockBytes, CwError> {
        match s.map(str::trim) {
            None | Some("auto") => Ok(BlockBytes::Auto),
            Some(b) => {
                let v =
                    parse_bytes(b).map_err(|e| CwError::Parse(format!("--block-bytes: {e}")))?;
                if v == 0 {
                    return Err(CwError::Parse("--block-bytes must be positive".into()));
                }
                Ok(BlockBytes::Fixed(v))
            }
        }
    }

    /// The size in bytes, with `auto` resolved to `auto_bytes`.
    pub fn or(self, auto_bytes: u64) -> u64 {
        match self {
            BlockBytes::Auto => auto_bytes,
            BlockBytes::Fixed(b) => b,
        }
    }

    /// The `--block-bytes` value that parses back to this.
    pub fn text(self) -> String {
        match self {
            BlockBytes::Auto => "auto".into(),
            BlockBytes::Fixed(b) => b.to_string(),
        }
    }
}

/// `chunkwise reduce`: statistics of a variable over some or all dimensions.
#[derive(Clone, Debug, PartialEq)]
pub struct ReduceRequest {
    /// The input.
    pub input: InputSpec,
    /// Statistics, in the order asked.
    pub ops: Vec<Op>,
    /// Delta degrees of freedom for var/std.
    pub ddof: u64,
    /// Block size.
    pub block_bytes: BlockBytes,
    /// Threads per rank (`None`: from Slurm or the CPU affinity).
    pub threads: Option<usize>,
    /// Propagate NaN instead of skipping it.
    pub keep_nan: bool,
    /// Print JSON instead of a table.
    pub json: bool,
    /// Dimensions reduced over.
    pub over: ReduceOver,
    /// `--select` parts, in the order given.
    pub select: Vec<SelectSpec>,
    /// NetCDF-4 output file.
    pub output: Option<PathBuf>,
    /// Replace an existing output.
    pub force: bool,
    /// `--quantile`: exact quantiles (NumPy's linear method), each in `[0, 1]`.
    pub quantiles: Vec<f64>,
    /// `--weights`: weighted mean/sum/var/std.
    pub weights: Option<WeightSpec>,
    /// `--groupby` / `--resample`: one result per calendar group or period.
    pub grouping: Option<crate::grouping::Grouping>,
}

/// The default `--op` list of `reduce` and `plan`.
pub const DEFAULT_OPS: &str = "count,sum,mean,std,min,max";

impl ReduceRequest {
    /// A whole-array request with the default statistics.
    pub fn new(input: InputSpec) -> ReduceRequest {
        ReduceRequest {
            input,
            ops: parse_ops(DEFAULT_OPS).expect("default op list parses"),
            ddof: 0,
            block_bytes: BlockBytes::Auto,
            threads: None,
            keep_nan: false,
            json: false,
            over: ReduceOver::All,
            select: Vec::new(),
            output: None,
            force: false,
            quantiles: Vec::new(),
            weights: None,
            grouping: None,
        }
    }

    /// Parse the textual flag values (as the command line gives them).
    #[allow(clippy::too_many_arguments)]
    pub fn parse_parts(
        input: InputSpec,
        op: &str,
        block_bytes: Option<&str>,
        dim: Option<&str>,
        axis: Option<&str>,
        select: &[String],
    ) -> Result<ReduceRequest, CwError> {
        let mut r = ReduceRequest::new(input);
        r.ops = parse_ops(op)?;
        r.block_bytes = BlockBytes::parse(block_bytes)?;
        r.over = ReduceOver::parse(dim, axis)?;
        r.select = select
            .iter()
            .map(|s| parse_select(s))
            .collect::<Result<_, _>>()?;
        Ok(r)
    }

    /// The `chunkwise reduce …` arguments (without the program name) that
    /// parse back to this request.
    pub fn to_argv(&self) -> Vec<String> {
        let mut v = vec!["reduce".to_string()];
        v.extend(self.input.to_argv());
        if !self.ops.is_empty() {
            v.extend([
                "--op".into(),
                self.ops
                    .iter()
                    .map(|o| o.name())
                    .collect::<Vec<_>>()
                    .join(","),
            ]);
        }
        if !self.quantiles.is_empty() {
            v.extend([
                "--quantile".into(),
                self.quantiles
                    .iter()
                    .map(|q| format!("{q:?}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ]);
        }
        if let Some(w) = &self.weights {
            v.extend(["--weights".into(), w.text()]);
        }
        if self.ddof != 0 {
            v.extend(["--ddof".into(), self.ddof.to_string()]);
        }
        if let BlockBytes::Fixed(_) = self.block_bytes {
            v.extend(["--block-bytes".into(), self.block_bytes.text()]);
        }
        if let Some(t) = self.threads {
            v.extend(["--threads".into(), t.to_string()]);
        }
        if self.keep_nan {
            v.push("--keep-nan".into());
        }
        if self.json {
            v.push("--json".into());
        }
        match &self.over {
            ReduceOver::All => {}
            ReduceOver::Dims(d) => v.extend(["--dim".into(), d.join(",")]),
            ReduceOver::Axes(a) => v.push(format!(
                "--axis={}",
                a.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            )),
        }
        for s in &self.select {
            v.push(format!("--select={s}"));
        }
        if let Some(g) = &self.grouping {
            v.extend(g.to_argv());
        }
        if let Some(o) = &self.output {
            v.extend(["--output".into(), o.to_string_lossy().into_owned()]);
        }
        if self.force {
            v.push("--force".into());
        }
        v
    }
}

/// `chunkwise convert`: copy a variable into another layout or format.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvertRequest {
    /// The input.
    pub input: InputSpec,
    /// The output file.
    pub out: PathBuf,
    /// `--chunks` (`None`: keep the input's).
    pub chunks: Option<String>,
    /// `--compression`: `none`, `gzip`, `gzip:L`.
    pub compression: String,
    /// Byte shuffle before compression.
    pub shuffle: bool,
    /// Block size of the copy.
    pub block_bytes: BlockBytes,
    /// Replace an existing output.
    pub force: bool,
}

/// Default `--block-bytes` of `convert` and `generate`, which write whole
/// output chunks per block (a write-side size, not the read policy).
pub const WRITE_BLOCK_BYTES: u64 = 64 << 20;

impl ConvertRequest {
    /// A plain copy of `input` to `out`.
    pub fn new(input: InputSpec, out: PathBuf) -> ConvertRequest {
        ConvertRequest {
            input,
            out,
            chunks: None,
            compression: "none".into(),
            shuffle: false,
            block_bytes: BlockBytes::Auto,
            force: false,
        }
    }

    /// The block size in bytes (`auto` is [`WRITE_BLOCK_BYTES`]).
    pub fn block_bytes(&self) -> u64 {
        self.block_bytes.or(WRITE_BLOCK_BYTES)
    }

    /// The `chunkwise convert …` arguments that parse back to this request.
    pub fn to_argv(&self) -> Vec<String> {
        let mut v = vec!["convert".to_string()];
        let mut input = self.input.to_argv();
        let paths = self.input.all_paths().count();
        v.extend(input.drain(..paths));
        v.push(self.out.to_string_lossy().into_owned());
        v.extend(input);
        if let Some(c) = &self.chunks {
            v.extend(["--chunks".into(), c.clone()]);
        }
        v.extend(["--compression".into(), self.compression.clone()]);
        if self.shuffle {
            v.push("--shuffle".into());
        }
        v.extend(["--block-bytes".into(), self.block_bytes.text()]);
        if self.force {
            v.push("--force".into());
        }
        v
    }
}

/// `chunkwise generate`: write a synthetic dataset in parallel.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateRequest {
    /// Output file.
    pub out: PathBuf,
    /// Dataset name.
    pub var: String,
    /// Array shape.
    pub shape: Vec<usize>,
    /// Chunk shape (`None`: automatic).
    pub chunks: Option<Vec<usize>>,
    /// Element type.
    pub dtype: Dtype,
    /// Value distribution, as given (`normal:0,1`, `uniform:0,1`, `index`, …).
    pub dist: String,
    /// Random seed.
    pub seed: u64,
    /// Fraction of values replaced by NaN (floats).
    pub nan_fraction: f64,
    /// Block size of the parallel write.
    pub block_bytes: BlockBytes,
    /// Replace an existing output.
    pub force: bool,
}

impl GenerateRequest {
    /// The block size in bytes (`auto` is [`WRITE_BLOCK_BYTES`]).
    pub fn block_bytes(&self) -> u64 {
        self.block_bytes.or(WRITE_BLOCK_BYTES)
    }

    /// The `chunkwise generate …` arguments that parse back to this request.
    pub fn to_argv(&self) -> Vec<String> {
        let mut v = vec![
            "generate".to_string(),
            self.out.to_string_lossy().into_owned(),
            "--var".into(),
            self.var.clone(),
            "--shape".into(),
            shape_text(&self.shape),
        ];
        if let Some(c) = &self.chunks {
            v.extend(["--chunks".into(), shape_text(c)]);
        }
        v.extend(["--dtype".into(), self.dtype.name().into()]);
        v.extend(["--dist".into(), self.dist.clone()]);
        v.extend(["--seed".into(), self.seed.to_string()]);
        if self.nan_fraction != 0.0 {
            v.extend(["--nan-fraction".into(), format!("{:?}", self.nan_fraction)]);
        }
        v.extend(["--block-bytes".into(), self.block_bytes.text()]);
        if self.force {
            v.push("--force".into());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_needs_both_flags_and_renders_back() {
        assert!(RawSpec::parse(Some("f64"), None).is_err());
        let r = RawSpec::parse(Some(">i4"), Some("3, 4")).unwrap().unwrap();
        assert_eq!(
            (r.dtype, r.big_endian, r.shape.clone()),
            (Dtype::I32, true, vec![3, 4])
        );
        assert_eq!(r.dtype_text(), ">i4");
        let again = RawSpec::parse(Some(&r.dtype_text()), Some(&shape_text(&r.shape)))
            .unwrap()
            .unwrap();
        assert_eq!(again, r);
    }

    #[test]
    fn block_bytes_forms() {
        assert_eq!(BlockBytes::parse(None).unwrap(), BlockBytes::Auto);
        assert_eq!(BlockBytes::parse(Some(" auto ")).unwrap(), BlockBytes::Auto);
        assert_eq!(
            BlockBytes::parse(Some("1KiB")).unwrap(),
            BlockBytes::Fixed(1024)
        );
        assert!(BlockBytes::parse(Some("0")).is_err());
        assert!(BlockBytes::parse(Some("lots")).is_err());
        let b = BlockBytes::Fixed(12345);
        assert_eq!(BlockBytes::parse(Some(&b.text())).unwrap(), b);
    }

    #[test]
    fn quantiles_and_weights_render_back() {
        let mut r = ReduceRequest::new(InputSpec::file("in.nc", Some("tas".into())));
        r.ops.clear();
        r.quantiles = vec![0.05, 0.5];
        r.weights = Some(WeightSpec::parse("fx.nc:areacella").unwrap());
        let argv = r.to_argv();
        assert!(!argv.contains(&"--op".to_string()), "{argv:?}");
        let at = argv.iter().position(|a| a == "--quantile").unwrap();
        assert_eq!(
            crate::quantile::parse_quantiles(&argv[at + 1]).unwrap(),
            r.quantiles
        );
        let at = argv.iter().position(|a| a == "--weights").unwrap();
        assert_eq!(argv[at + 1], "fx.nc:areacella");
    }

    #[test]
    fn reduce_over_forms() {
        assert_eq!(ReduceOver::parse(None, None).unwrap(), ReduceOver::All);
        assert_eq!(
            ReduceOver::parse(Some("time, lat"), None).unwrap(),
            ReduceOver::Dims(vec!["time".into(), "lat".into()])
        );
        assert_eq!(
            ReduceOver::parse(None, Some("-1,0")).unwrap(),
            ReduceOver::Axes(vec![-1, 0])
        );
        assert!(ReduceOver::parse(None, Some("x")).is_err());
        assert!(ReduceOver::parse(Some("a,,b"), None).is_err());
    }
}
