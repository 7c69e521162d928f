//! Command-line interface (clap derive). Values are kept as strings here and
//! parsed by `parse` so that every rank validates them the same way and
//! errors go through the job-wide error path.

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
    /// Whole-array statistics of one variable, in parallel.
    Reduce(ReduceArgs),
    /// Show groups, datasets, layout, chunking, compression and attributes.
    Inspect(InspectArgs),
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
}

/// Arguments of `chunkwise reduce`.
#[derive(Debug, Args)]
pub struct ReduceArgs {
    /// Input HDF5 / NetCDF-4 file.
    pub file: PathBuf,
    /// Variable (dataset path) to reduce.
    #[arg(long)]
    pub var: String,
    /// Statistics: any of sum,mean,min,max,var,std,count.
    #[arg(long, default_value = "count,sum,mean,std,min,max")]
    pub op: String,
    /// Delta degrees of freedom for var/std: 0 = population, 1 = sample.
    #[arg(long, default_value_t = 0)]
    pub ddof: u64,
    /// Target bytes per block read at a time (rounded to whole storage chunks).
    #[arg(long, default_value = "64MiB")]
    pub block_bytes: String,
    /// Reduction threads per rank (default: SLURM_CPUS_PER_TASK, else the cores available).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Propagate NaN instead of skipping it.
    #[arg(long)]
    pub keep_nan: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `chunkwise inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// File to describe.
    pub file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
