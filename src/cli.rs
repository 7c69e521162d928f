//! Command-line interface (clap derive). Values are kept as strings here and
//! parsed by `parse` so that every rank validates them the same way and
//! errors go through the job-wide error path.

use crate::error::CwError;
use crate::request::{
    BlockBytes, ConvertRequest, GenerateRequest, InputSpec, RawSpec, ReduceRequest,
};
use crate::scaling::{Launcher, Mode};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// chunkwise — parallel statistics over HDF5 / NetCDF-4 arrays (MPI + threads).
#[derive(Debug, Parser)]
#[command(name = "chunkwise", version, about, long_about = None)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a synthetic dataset in parallel (every rank writes its blocks).
    Generate(GenerateArgs),
    /// Statistics of one variable, over all or some dimensions, in parallel.
    Reduce(ReduceArgs),
    /// Show groups, datasets, layout, chunking, compression and attributes.
    Inspect(InspectArgs),
    /// Recommend nodes, ranks, threads, memory and block size for a reduce.
    Plan(PlanArgs),
    /// Render a complete sbatch script for a cluster.
    Jobscript(JobscriptArgs),
    /// Strong and weak scaling studies: launch reduce runs, then report them.
    Scaling(ScalingArgs),
    /// Rechunk, compress or re-encode a variable into HDF5 / NetCDF-4, Zarr v3, .npy or raw (in parallel).
    Convert(ConvertArgs),
    /// Measure size and read/write speed of storage layouts on a sample of your data.
    Formats(FormatsArgs),
    /// Print a shell completion script (bash, zsh or fish) to standard output.
    Completions(CompletionsArgs),
    /// Print the man page (roff) to standard output; `chunkwise man | man -l -` shows it.
    Man(ManArgs),
}

/// Arguments of `chunkwise completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to complete for.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// Shells `chunkwise completions` writes scripts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    /// GNU bash (bash-completion).
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

/// Arguments of `chunkwise man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The page of one command (e.g. `reduce`) instead of the main page.
    pub command: Option<String>,
    /// Write every page (`chunkwise.1`, `chunkwise-reduce.1`, …) into this
    /// directory instead (e.g. ~/.local/share/man/man1).
    #[arg(long, conflicts_with = "command")]
    pub dir: Option<std::path::PathBuf>,
}

/// Arguments of `chunkwise generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Output HDF5 file.
    pub out: PathBuf,
    /// Dataset path inside the file (e.g. `a` or `group/a`).
    #[arg(long)]
    pub var: String,
    /// Shape, e.g. `20000,20000`.
    #[arg(long)]
    pub shape: String,
    /// Storage chunk shape, e.g. `1000,1000` (default: contiguous storage).
    #[arg(long)]
    pub chunks: Option<String>,
    /// Element type: f32, f64, i8..i64, u8..u64.
    #[arg(long, default_value = "f64")]
    pub dtype: String,
    /// Value distribution: `normal:MEAN,STD` or `uniform:LO,HI`.
    #[arg(long, default_value = "normal:0,1")]
    pub dist: String,
    /// Seed; values depend only on (seed, global index).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fraction of values replaced by NaN (float types only).
    #[arg(long, default_value_t = 0.0)]
    pub nan_fraction: f64,
    /// Bytes per block each rank writes at a time (e.g. 64MiB).
    #[arg(long, default_value = "64MiB")]
    pub block_bytes: String,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Progress display.
    #[command(flatten)]
    pub progress: ProgressArgs,
}

/// Arguments of `chunkwise reduce`.
#[derive(Debug, Args)]
pub struct ReduceArgs {
    /// Input: HDF5 / NetCDF-4 file, `.npy` file, Zarr v3 store, or raw binary
    /// (with --raw-dtype, --raw-shape). Several HDF5 / NetCDF-4 files or quoted
    /// glob patterns ('era5/t2m_*.nc') form one dataset, concatenated along the
    /// record dimension in the order of its coordinate.
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Record dimension several files are concatenated along (default: the
    /// unlimited dimension, else `time`).
    #[arg(long, value_name = "DIM")]
    pub concat: Option<String>,
    /// Variable (dataset path) to reduce; required for HDF5 / NetCDF-4 input.
    #[arg(long)]
    pub var: Option<String>,
    /// Type and shape of raw binary input.
    #[command(flatten)]
    pub raw: RawInputArgs,
    /// Statistics: any of sum,mean,min,max,var,std,count (default:
    /// count,sum,mean,std,min,max; none when --quantile is given).
    #[arg(long)]
    pub op: Option<String>,
    /// Exact quantiles, e.g. `0.05,0.5,0.95` (each in [0, 1]; NumPy's
    /// default linear interpolation, as np.nanquantile).
    #[arg(long, value_name = "Q[,Q...]", allow_hyphen_values = true)]
    pub quantile: Option<String>,
    /// Weights for mean/sum/var/std (xarray's `weighted`): `coslat`, `area`
    /// (lat-lon cell areas), a variable `VAR` of the input, or `FILE:VAR`.
    #[arg(long, value_name = "coslat|area|VAR|FILE:VAR")]
    pub weights: Option<String>,
    /// Delta degrees of freedom for var/std: 0 = population, 1 = sample.
    #[arg(long, default_value_t = 0)]
    pub ddof: u64,
    /// Target bytes per block read at a time, or `auto` (the default: 4 MiB,
    /// whole chunks for compressed data, capped by Slurm's memory per rank).
    #[arg(long)]
    pub block_bytes: Option<String>,
    /// Reduction threads per rank (default: SLURM_CPUS_PER_TASK, else the cores available).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Propagate NaN instead of skipping it.
    #[arg(long)]
    pub keep_nan: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Reduce over these dimensions only (comma-separated names, as `inspect`
    /// shows them); the result is an array over the other dimensions.
    #[arg(long, conflicts_with = "axis")]
    pub dim: Option<String>,
    /// Reduce over these axes only (comma-separated indices; negative from the end).
    #[arg(long, allow_hyphen_values = true)]
    pub axis: Option<String>,
    /// Read only part of a dimension: `NAME=START:STOP[:STEP]` (indices) or
    /// `NAME=LO..HI` (coordinate values, inclusive). Repeatable.
    #[arg(long, value_name = "SPEC")]
    pub select: Vec<String>,
    /// Climatology: one result per calendar group of the time dimension,
    /// `time.month`, `time.season`, `time.year`, `time.dayofyear` or
    /// `time.hour` (as xarray's `groupby("time.month")`, CDO's `ymonmean`).
    /// Reduces over time only unless --dim names more.
    #[arg(long, value_name = "DIM.FIELD", conflicts_with_all = ["resample", "axis"])]
    pub groupby: Option<String>,
    /// One result per period: `time=1D`, `6h`, `1MS`, `QS-DEC`, `YS`, …
    /// (xarray's offsets; labelled at the period start, as
    /// `resample(time=...)`, CDO's `daymean`/`monmean`/`yearmean`).
    #[arg(long, value_name = "DIM=FREQ", conflicts_with = "axis")]
    pub resample: Option<String>,
    /// Write the result as NetCDF-4 (HDF5 with dimension scales) to this file.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Replace an existing --output.
    #[arg(long)]
    pub force: bool,
    /// Progress display.
    #[command(flatten)]
    pub progress: ProgressArgs,
}

/// Arguments of `chunkwise inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Input to describe: HDF5 / NetCDF-4 file, Zarr v3 store (group or
    /// array), `.npy` file, or raw binary (with --raw-dtype, --raw-shape).
    /// Several HDF5 / NetCDF-4 files or quoted glob patterns
    /// ('era5/t2m_*.nc') are described as the one dataset they form.
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Record dimension several files are concatenated along (default: the
    /// unlimited dimension, else `time`).
    #[arg(long, value_name = "DIM")]
    pub concat: Option<String>,
    /// Type and shape of raw binary input.
    #[command(flatten)]
    pub raw: RawInputArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `chunkwise plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Plan for this input's variable: HDF5 / NetCDF-4 (with --var), Zarr v3
    /// array, `.npy`, or raw binary (with --raw-dtype, --raw-shape); a quoted
    /// glob pattern ('era5/t2m_*.nc') plans its files as one dataset.
    #[arg(long, conflicts_with = "bytes")]
    pub file: Option<PathBuf>,
    /// Variable in --file (HDF5 / NetCDF-4).
    #[arg(long)]
    pub var: Option<String>,
    /// Type and shape of raw binary input.
    #[command(flatten)]
    pub raw: RawInputArgs,
    /// Plan for a data size instead of a file, e.g. 3.2GB or 2TB.
    #[arg(long, required_unless_present = "file")]
    pub bytes: Option<String>,
    /// Cluster profile: kebnekaise, cosmos, pelle, tetralith, local, or a .toml file.
    #[arg(long)]
    pub cluster: String,
    /// Node type (default: the profile's default).
    #[arg(long)]
    pub node: Option<String>,
    /// Statistics the job will compute (passed to the rendered reduce).
    #[arg(long, default_value = "count,sum,mean,std,min,max")]
    pub op: String,
    /// The job's `reduce --dim` (with --file): sizes the result's memory.
    #[arg(long, conflicts_with = "axis", requires = "file")]
    pub dim: Option<String>,
    /// The job's `reduce --axis` (with --file).
    #[arg(long, allow_hyphen_values = true, requires = "file")]
    pub axis: Option<String>,
    /// The job's `reduce --select` (with --file). Repeatable.
    #[arg(long, value_name = "SPEC", requires = "file")]
    pub select: Vec<String>,
    /// Threads per rank (default 4).
    #[arg(long)]
    pub threads: Option<u32>,
    /// Wall-time target for the run, e.g. 15m, 2h, 01:00:00.
    #[arg(long, default_value = "15m")]
    pub time_target: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Also render the sbatch script for this plan (needs --file, --var and --account).
    #[arg(long, requires_all = ["account", "file"])]
    pub jobscript: bool,
    /// Project account for --jobscript.
    #[arg(long)]
    pub account: Option<String>,
}

/// Arguments of `chunkwise jobscript`.
#[derive(Debug, Args)]
pub struct JobscriptArgs {
    /// Cluster profile: kebnekaise, cosmos, pelle, tetralith, local, or a .toml file.
    #[arg(long)]
    pub cluster: String,
    /// Project account (-A).
    #[arg(long)]
    pub account: String,
    /// Node type (default: the profile's default).
    #[arg(long)]
    pub node: Option<String>,
    /// Nodes.
    #[arg(long, default_value_t = 1)]
    pub nodes: u32,
    /// MPI ranks per node (default: cores ÷ cpus-per-task).
    #[arg(long)]
    pub ntasks_per_node: Option<u32>,
    /// Threads per rank.
    #[arg(long, default_value_t = 4)]
    pub cpus_per_task: u32,
    /// Wall time, HH:MM:SS (or 30m, 2h).
    #[arg(long, default_value = "01:00:00")]
    pub time: String,
    /// Memory per core, e.g. 2GiB (rendered in MiB as Slurm expects).
    #[arg(long)]
    pub mem_per_cpu: Option<String>,
    /// Copy the input file to node-local scratch first.
    #[arg(long)]
    pub stage: bool,
    /// Job name.
    #[arg(long, default_value = "chunkwise")]
    pub job_name: String,
    /// Write the script here (atomically) instead of standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Replace an existing --output.
    #[arg(long)]
    pub force: bool,
    /// chunkwise arguments for the job, after `--`.
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// Arguments of `chunkwise scaling`.
#[derive(Debug, Args)]
pub struct ScalingArgs {
    /// `run` or `report`.
    #[command(subcommand)]
    pub command: ScalingCommand,
}

/// The `scaling` subcommands.
#[derive(Debug, Subcommand)]
pub enum ScalingCommand {
    /// Launch `reduce` for every rank count (a warm-up plus --repeat runs) and
    /// append each run to DIR/results.jsonl; resumes an interrupted study.
    Run(ScalingRunArgs),
    /// Tables (speedup, efficiency, phase shares) and SVG/PNG plots of a study.
    Report(ScalingReportArgs),
}

/// Arguments of `chunkwise scaling run`.
#[derive(Debug, Args)]
pub struct ScalingRunArgs {
    /// strong: fixed data; weak: data grows with the rank count.
    #[arg(long, value_parser = PossibleValuesParser::new(Mode::ALL.map(Mode::name)).map(|s| s.parse::<Mode>().expect("listed value")))]
    pub mode: Mode,
    /// Rank counts, e.g. 1,2,4,8.
    #[arg(long)]
    pub ranks: String,
    /// Threads per rank (default: SLURM_CPUS_PER_TASK, else 1).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Measured runs per rank count (after one warm-up run).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Strong mode without an input file: generate one dataset of this size.
    #[arg(long, conflicts_with = "bytes_per_rank")]
    pub bytes: Option<String>,
    /// Weak mode: generate a dataset of this size × P for each rank count P.
    #[arg(long)]
    pub bytes_per_rank: Option<String>,
    /// Element type of generated datasets.
    #[arg(long, default_value = "f64")]
    pub dtype: String,
    /// Study directory (results, generated data, plots).
    #[arg(long, default_value = "scaling")]
    pub out: PathBuf,
    /// How to launch: srun inside a Slurm allocation, mpirun outside (auto).
    #[arg(long, default_value = "auto", value_parser = PossibleValuesParser::new(Launcher::ALL.map(Launcher::name)).map(|s| s.parse::<Launcher>().expect("listed value")))]
    pub launcher: Launcher,
    /// Time limit of each launched run, e.g. 30m, 2h.
    #[arg(long, default_value = "1h")]
    pub timeout: String,
    /// Skip the warm-up run before each rank count.
    #[arg(long)]
    pub no_warmup: bool,
    /// Start over when DIR holds a study with other parameters (its results are removed).
    #[arg(long)]
    pub force: bool,
    /// One progress line per finished run on standard error.
    #[command(flatten)]
    pub progress: ProgressArgs,
    /// `reduce` arguments after `--` (the input file may be left out when data is generated).
    #[arg(last = true, required = true)]
    pub args: Vec<String>,
}

/// Arguments of `chunkwise scaling report`.
#[derive(Debug, Args)]
pub struct ScalingReportArgs {
    /// Study directory written by `scaling run`.
    pub dir: PathBuf,
    /// Table format.
    #[arg(long, value_enum, default_value = "md")]
    pub format: ReportFormat,
    /// Do not write the SVG/PNG plots.
    #[arg(long)]
    pub no_plots: bool,
}

/// Output format of `scaling report`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Markdown tables, one per mode.
    Md,
    /// Comma-separated values, one header line.
    Csv,
    /// One JSON object: the tables and the plot files.
    Json,
}

/// Progress on rank 0's standard error (shared by the long-running commands).
#[derive(Debug, Args, Clone)]
pub struct ProgressArgs {
    /// `auto` (a bar on a terminal, plain lines otherwise), `bar`, `lines` or `none`.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: crate::progress::Mode,
    /// Time between two plain progress lines, e.g. 30s, 500ms, 2m.
    #[arg(long, default_value = "30s", value_parser = crate::progress::parse_interval)]
    pub progress_interval: std::time::Duration,
}

impl ProgressArgs {
    /// The settings these flags ask for.
    pub fn settings(&self) -> crate::progress::Settings {
        crate::progress::Settings {
            mode: self.progress,
            interval: self.progress_interval,
        }
    }
}

/// How to read a raw binary input (shared by `reduce`, `convert` and `formats`).
#[derive(Debug, Args, Clone, Default)]
pub struct RawInputArgs {
    /// Element type of a raw binary input: f32, f64, i8..i64, u8..u64
    /// (little-endian), or a NumPy type string with byte order, e.g. `>f8`.
    #[arg(long)]
    pub raw_dtype: Option<String>,
    /// Shape of a raw binary input in C order, e.g. `1000,2000`.
    #[arg(long)]
    pub raw_shape: Option<String>,
}

impl RawInputArgs {
    /// The typed input: `path`, `var` and the raw layout, if given.
    pub fn input(&self, path: &std::path::Path, var: Option<&str>) -> Result<InputSpec, CwError> {
        Ok(InputSpec {
            path: path.to_path_buf(),
            var: var.map(str::to_string),
            raw: RawSpec::parse(self.raw_dtype.as_deref(), self.raw_shape.as_deref())?,
            ..InputSpec::default()
        })
    }
}

impl TryFrom<&ReduceArgs> for ReduceRequest {
    type Error = CwError;
    fn try_from(a: &ReduceArgs) -> Result<ReduceRequest, CwError> {
        let mut r = ReduceRequest::parse_parts(
            InputSpec {
                more: a.files[1..].to_vec(),
                concat: a.concat.clone(),
                ..a.raw.input(&a.files[0], a.var.as_deref())?
            },
            a.op.as_deref().unwrap_or(crate::request::DEFAULT_OPS),
            a.block_bytes.as_deref(),
            a.dim.as_deref(),
            a.axis.as_deref(),
            &a.select,
        )?;
        r.ddof = a.ddof;
        r.threads = a.threads;
        r.keep_nan = a.keep_nan;
        r.json = a.json;
        r.output = a.output.clone();
        r.force = a.force;
        if let Some(q) = &a.quantile {
            r.quantiles = crate::quantile::parse_quantiles(q)?;
            if a.op.is_none() {
                r.ops.clear();
            }
        }
        r.weights = a
            .weights
            .as_deref()
            .map(crate::weights::WeightSpec::parse)
            .transpose()?;
        r.grouping = crate::grouping::Grouping::parse(a.groupby.as_deref(), a.resample.as_deref())?;
        if let Some(g) = &r.grouping {
            r.over = g.reduce_over(std::mem::take(&mut r.over))?;
        }
        Ok(r)
    }
}

impl TryFrom<&ConvertArgs> for ConvertRequest {
    type Error = CwError;
    fn try_from(a: &ConvertArgs) -> Result<ConvertRequest, CwError> {
        let (out, inputs) = a
            .files
            .split_last()
            .ok_or_else(|| CwError::Parse("convert needs an input and an output".into()))?;
        Ok(ConvertRequest {
            input: InputSpec {
                more: inputs[1..].to_vec(),
                concat: a.concat.clone(),
                ..a.raw.input(&inputs[0], a.var.as_deref())?
            },
            out: out.clone(),
            chunks: a.chunks.clone(),
            compression: a.compression.clone(),
            shuffle: a.shuffle,
            block_bytes: BlockBytes::parse(Some(&a.block_bytes))?,
            force: a.force,
        })
    }
}

impl TryFrom<&GenerateArgs> for GenerateRequest {
    type Error = CwError;
    fn try_from(a: &GenerateArgs) -> Result<GenerateRequest, CwError> {
        let dtype = crate::element::Dtype::parse(&a.dtype).ok_or_else(|| {
            CwError::Parse(format!(
                "unknown --dtype '{}': choose f32, f64, i8, i16, i32, i64, u8, u16, u32, u64",
                a.dtype
            ))
        })?;
        Ok(GenerateRequest {
            out: a.out.clone(),
            var: a.var.clone(),
            shape: crate::parse::parse_shape(&a.shape, "--shape")?,
            chunks: a
                .chunks
                .as_deref()
                .map(|c| crate::parse::parse_shape(c, "--chunks"))
                .transpose()?,
            dtype,
            dist: a.dist.clone(),
            seed: a.seed,
            nan_fraction: a.nan_fraction,
            block_bytes: BlockBytes::parse(Some(&a.block_bytes))?,
            force: a.force,
        })
    }
}

/// Arguments of `chunkwise convert`.
#[derive(Debug, Args, Clone)]
pub struct ConvertArgs {
    /// Input(s), then the output. Input: HDF5 / NetCDF-4 file, `.npy` file,
    /// Zarr v3 array, or raw binary (with --raw-dtype, --raw-shape); several
    /// HDF5 / NetCDF-4 files or quoted glob patterns ('era5/t2m_*.nc') are
    /// written as the one dataset they form. Output (last): `.npy` → NumPy,
    /// `.raw`/`.bin` → raw little-endian binary, `.zarr` → Zarr v3 store (as
    /// xarray writes one), anything else → HDF5 / NetCDF-4.
    #[arg(required = true, num_args = 2.., value_name = "INPUT... OUT")]
    pub files: Vec<PathBuf>,
    /// Record dimension several files are concatenated along (default: the
    /// unlimited dimension, else `time`).
    #[arg(long, value_name = "DIM")]
    pub concat: Option<String>,
    /// Variable to convert (required for HDF5 / NetCDF-4 input); for other
    /// inputs, the name of the output variable (default: the file stem).
    #[arg(long)]
    pub var: Option<String>,
    /// Type and shape of raw binary input.
    #[command(flatten)]
    pub raw: RawInputArgs,
    /// Output chunk shape `C0,C1,...`, `auto` (row slabs of at most 4 MiB)
    /// or `contiguous` (default: the input's chunking).
    #[arg(long)]
    pub chunks: Option<String>,
    /// `none`, `gzip` (level 4) or `gzip:LEVEL` with LEVEL 0-9; for Zarr
    /// output also `zstd[:LEVEL]` (3) and `blosc[:LEVEL]` (lz4, 5).
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// Byte-shuffle before compressing (helps gzip on floating-point data;
    /// for Zarr output, blosc's shuffle).
    #[arg(long)]
    pub shuffle: bool,
    /// Bytes per block each rank reads and writes at a time (rounded to whole output chunks).
    #[arg(long, default_value = "64MiB")]
    pub block_bytes: String,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Progress display.
    #[command(flatten)]
    pub progress: ProgressArgs,
}

/// Arguments of `chunkwise formats`.
#[derive(Debug, Args, Clone)]
pub struct FormatsArgs {
    /// Input: HDF5 / NetCDF-4 file, `.npy` file, or raw binary (with --raw-dtype, --raw-shape).
    pub file: PathBuf,
    /// Variable to measure (required for HDF5 / NetCDF-4 input).
    #[arg(long)]
    pub var: Option<String>,
    /// Type and shape of raw binary input.
    #[command(flatten)]
    pub raw: RawInputArgs,
    /// Sample size: the leading rows of the variable up to this many bytes.
    #[arg(long, default_value = "256MiB")]
    pub sample: String,
    /// Directory for the candidate files (default: a temporary directory
    /// next to the input, removed afterwards).
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// Reduction threads per rank for the read measurements.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Progress display.
    #[command(flatten)]
    pub progress: ProgressArgs,
}
