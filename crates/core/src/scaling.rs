//! Scaling studies, the pure part: the study's parameters and their
//! compatibility on resume, the list of runs, the results file (JSON Lines)
//! and its records, the launcher command line, the shape of generated data,
//! and the statistics and tables of a report. No MPI, no HDF5, no processes;
//! `cmd::scaling` runs the study and `plot` draws it.
//!
//! Definitions (T = median `reduce` time over the measured runs of a rank
//! count P, P₀ = the smallest rank count of the study):
//! * strong scaling (fixed data): speedup S(P) = P₀·T(P₀)/T(P), so the ideal
//!   is S = P; efficiency E = S/P = P₀·T(P₀) / (P·T(P)).
//! * weak scaling (data ∝ P): efficiency E = T(P₀)/T(P) (ideal: constant time);
//!   the scaled speedup S = P·E (Gustafson), ideal S = P.

use crate::error::CwError;
use crate::request::ReduceRequest;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Name of the results file inside the study directory.
pub const RESULTS_FILE: &str = "results.jsonl";
/// Name of the study-parameters file inside the study directory.
pub const STUDY_FILE: &str = "study.json";
/// Version of the study and results format.
pub const FORMAT_VERSION: u32 = 1;

/// Strong scaling (fixed total data) or weak scaling (data grows with P).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Fixed total data; ideal time falls as 1/P.
    Strong,
    /// Fixed data per rank; ideal time stays constant.
    Weak,
}

impl Mode {
    /// Lower-case name (`strong`, `weak`).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Strong => "strong",
            Mode::Weak => "weak",
        }
    }
}

/// How each run is launched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Launcher {
    /// `srun` inside a Slurm allocation (`SLURM_JOB_ID` set), else `mpirun`.
    Auto,
    /// `mpirun -n P` (OpenMPI).
    Mpirun,
    /// `srun -n P -c T` (Slurm).
    Srun,
}

impl Mode {
    /// Every mode, for the command line's list of values.
    pub const ALL: [Mode; 2] = [Mode::Strong, Mode::Weak];
}

impl std::str::FromStr for Mode {
    type Err = CwError;
    fn from_str(s: &str) -> Result<Mode, CwError> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| CwError::Parse(format!("unknown mode '{s}': strong or weak")))
    }
}

impl Launcher {
    /// Every launcher, for the command line's list of values.
    pub const ALL: [Launcher; 3] = [Launcher::Auto, Launcher::Mpirun, Launcher::Srun];

    /// Lower-case name (`auto`, `mpirun`, `srun`).
    pub fn name(self) -> &'static str {
        match self {
            Launcher::Auto => "auto",
            Launcher::Mpirun => "mpirun",
            Launcher::Srun => "srun",
        }
    }

    /// Resolve `Auto` from whether we run inside a Slurm allocation.
    pub fn resolve(self, slurm_job_id: Option<&str>) -> Launcher {
        match self {
            Launcher::Auto if slurm_job_id.is_some_and(|s| !s.is_empty()) => Launcher::Srun,
            Launcher::Auto => Launcher::Mpirun,
            other => other,
        }
    }
}

impl std::str::FromStr for Launcher {
    type Err = CwError;
    fn from_str(s: &str) -> Result<Launcher, CwError> {
        Launcher::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| CwError::Parse(format!("unknown launcher '{s}': auto, mpirun or srun")))
    }
}

/// Ranks per CPU beyond which a local (`mpirun`, no allocation) study is
/// refused: `--oversubscribe` makes a few ranks per core work, but a
/// hundred thousand processes on a laptop only runs until killed.
pub const MAX_RANKS_PER_CPU: usize = 16;

/// Check, before the first launch, that every rank count in `ranks` can run
/// here. Inside a Slurm allocation (`slurm_tasks`: its `SLURM_NTASKS`) no
/// count may exceed the allocation's tasks, whatever the launcher; outside
/// one, `mpirun` oversubscribes the `cpus` of this machine, up to
/// [`MAX_RANKS_PER_CPU`] ranks per CPU. The error names the limit that
/// applies and how to get past it.
pub fn check_rank_counts(
    ranks: &[usize],
    slurm_tasks: Option<usize>,
    cpus: usize,
) -> Result<(), CwError> {
    let Some(&most) = ranks.iter().max() else {
        return Ok(());
    };
    match slurm_tasks {
        Some(n) if most > n => Err(CwError::Parse(format!(
            "--ranks {most} exceeds this Slurm allocation's {n} tasks (SLURM_NTASKS); ask sbatch/salloc for more tasks or study at most {n} ranks"
        ))),
        Some(_) => Ok(()),
        None if most > MAX_RANKS_PER_CPU * cpus.max(1) => Err(CwError::Parse(format!(
            "--ranks {most} cannot run on this machine: {cpus} CPUs allow at most {} ranks ({MAX_RANKS_PER_CPU} per CPU, oversubscribed); run larger studies inside a Slurm allocation",
            MAX_RANKS_PER_CPU * cpus.max(1)
        ))),
        None => Ok(()),
    }
}

/// The full command line for `p` ranks × `threads` threads running `exe args…`.
/// `mpirun` gets `--bind-to none` (threads must not share one core) and
/// `--oversubscribe` when P exceeds `cores`; `srun` gets `-c threads` and
/// `--kill-on-bad-exit=1`. Every rank is told `--threads`.
pub fn launch_argv(
    launcher: Launcher,
    p: usize,
    threads: usize,
    cores: usize,
    exe: &str,
    args: &[String],
    pass_threads: bool,
) -> Vec<String> {
    let mut v: Vec<String> = match launcher {
        Launcher::Srun => vec![
            "srun".into(),
            "-n".into(),
            p.to_string(),
            "-c".into(),
            threads.to_string(),
            "--kill-on-bad-exit=1".into(),
        ],
        Launcher::Mpirun | Launcher::Auto => {
            let mut m = vec![
                "mpirun".into(),
                "-n".into(),
                p.to_string(),
                "--bind-to".into(),
                "none".into(),
            ];
            if p > cores {
                m.push("--oversubscribe".into());
            }
            m
        }
    };
    v.push(exe.into());
    v.extend(args.iter().cloned());
    if pass_threads {
        v.push("--threads".into());
        v.push(threads.to_string());
    }
    v
}

/// Parse `--ranks 1,2,4`: positive, distinct, returned in increasing order.
pub fn parse_ranks(s: &str) -> Result<Vec<usize>, CwError> {
    let bad = || {
        CwError::Parse(format!(
            "invalid --ranks '{s}': expected comma-separated positive integers, e.g. 1,2,4"
        ))
    };
    let mut set = BTreeSet::new();
    for part in s.split(',') {
        let p: usize = part.trim().parse().map_err(|_| bad())?;
        if p == 0 || !set.insert(p) {
            return Err(bad());
        }
    }
    Ok(set.into_iter().collect())
}

/// The `reduce` of a study: the input file if one was given (else the study
/// generates one) and the typed request every run renders to a command line.
#[derive(Clone, Debug, PartialEq)]
pub struct ReduceCall {
    /// The input file, when given.
    pub file: Option<String>,
    /// The request; its input path is replaced per run (see [`ReduceCall::argv`]).
    pub request: ReduceRequest,
}

impl ReduceCall {
    /// Check a study's `reduce` request: `--threads` belongs to `scaling run
    /// --threads` and `--output` would be written by every run. Generated
    /// data is always variable `a`.
    pub fn new(file: Option<String>, mut request: ReduceRequest) -> Result<ReduceCall, CwError> {
        if request.threads.is_some() {
            return Err(CwError::Parse(
                "give the thread count to `scaling run --threads`, not to reduce".into(),
            ));
        }
        if request.output.is_some() {
            return Err(CwError::Parse(
                "reduce --output is not allowed in a scaling study (every run would write it)"
                    .into(),
            ));
        }
        if file.is_none() && request.input.var.is_none() {
            request.input.var = Some("a".into());
        }
        request.json = true;
        Ok(ReduceCall { file, request })
    }

    /// The variable read (`a` for generated data).
    pub fn var(&self) -> &str {
        self.request.input.var.as_deref().unwrap_or("a")
    }

    /// The `reduce` command line for input `file`.
    pub fn argv(&self, file: &str) -> Vec<String> {
        let mut r = self.request.clone();
        r.input.path = file.into();
        r.to_argv()
    }
}

/// What identifies a study: a re-run with the same `--out` resumes only when
/// these agree (rank counts and repeats may be added).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudyParams {
    /// Format version.
    pub version: u32,
    /// Strong or weak.
    pub mode: Mode,
    /// The `reduce` arguments as given after `--`.
    pub reduce_args: Vec<String>,
    /// Threads per rank.
    pub threads: usize,
    /// Strong mode: bytes of the generated dataset (when no file is given).
    pub bytes: Option<u64>,
    /// Weak mode: bytes per rank of the generated datasets.
    pub bytes_per_rank: Option<u64>,
    /// Element type of generated data.
    pub dtype: String,
    /// Rank counts of the latest invocation (not compared).
    pub ranks: Vec<usize>,
    /// Repeats of the latest invocation (not compared).
    pub repeat: usize,
}

impl StudyParams {
    /// The differences that make `new` a different study from `self`
    /// (empty when `new` may resume `self`).
    pub fn differences(&self, new: &StudyParams) -> Vec<String> {
        let mut d = Vec::new();
        let mut cmp = |what: &str, a: String, b: String| {
            if a != b {
                d.push(format!("{what} {a} -> {b}"));
            }
        };
        cmp("version", self.version.to_string(), new.version.to_string());
        cmp("--mode", self.mode.name().into(), new.mode.name().into());
        cmp(
            "reduce arguments",
            format!("{:?}", self.reduce_args),
            format!("{:?}", new.reduce_args),
        );
        cmp(
            "--threads",
            self.threads.to_string(),
            new.threads.to_string(),
        );
        let b = |v: Option<u64>| v.map_or("none".to_string(), |b| b.to_string());
        cmp("--bytes", b(self.bytes), b(new.bytes));
        cmp(
            "--bytes-per-rank",
            b(self.bytes_per_rank),
            b(new.bytes_per_rank),
        );
        cmp("--dtype", self.dtype.clone(), new.dtype.clone());
        d
    }
}

/// One launched `reduce` (a line of the results file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Strong or weak.
    pub mode: Mode,
    /// MPI ranks.
    pub ranks: usize,
    /// Threads per rank.
    pub threads: usize,
    /// 0 for the warm-up run, 1..=R for the measured runs.
    pub repeat: usize,
    /// True for the warm-up run (stored, never used in statistics).
    pub warmup: bool,
    /// The run exited 0 and printed its JSON.
    pub ok: bool,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Wall time of the whole launched process (launcher and MPI start-up included), s.
    pub wall_s: f64,
    /// Start time, seconds since the Unix epoch.
    pub started_unix: f64,
    /// `SLURM_JOB_ID`, inside an allocation.
    pub slurm_job_id: Option<String>,
    /// The command line that was run.
    pub command: Vec<String>,
    /// Input file.
    pub file: String,
    /// The `reduce --json` output (timings, bytes, ranks, threads, nodes, hosts, …).
    pub reduce: Option<serde_json::Value>,
}

/// Phase timings and sizes taken from a record's `reduce` output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    /// `timings.total_s`.
    pub total_s: f64,
    /// `timings.read_s`.
    pub read_s: f64,
    /// `timings.compute_s`.
    pub compute_s: f64,
    /// `timings.comm_s`.
    pub comm_s: f64,
    /// Wall time of the launched process.
    pub wall_s: f64,
    /// `bytes_read`.
    pub bytes: u64,
    /// `nodes`.
    pub nodes: usize,
}

impl RunRecord {
    /// True when this run counts in the statistics (succeeded, not a warm-up).
    pub fn measured(&self) -> bool {
        self.ok && !self.warmup
    }

    /// The timings of a successful run (None when fields are missing).
    pub fn timings(&self) -> Option<Measured> {
        let r = self.reduce.as_ref()?;
        let t = &r["timings"];
        Some(Measured {
            total_s: t["total_s"].as_f64()?,
            read_s: t["read_s"].as_f64()?,
            compute_s: t["compute_s"].as_f64()?,
            comm_s: t["comm_s"].as_f64()?,
            wall_s: self.wall_s,
            bytes: r["bytes_read"].as_u64()?,
            nodes: r["nodes"].as_u64().unwrap_or(1) as usize,
        })
    }
}

/// The results file parsed: its records, and whether its last line was cut
/// off (a study killed while writing; that line is ignored).
#[derive(Debug, Default)]
pub struct Results {
    /// Complete records, in file order.
    pub records: Vec<RunRecord>,
    /// Byte length of the complete lines (where appending must continue).
    pub valid_len: usize,
    /// True when a partial last line was found.
    pub partial_tail: bool,
}

/// Parse a results file. A bad complete line is an error naming its number;
/// an unterminated last line is reported as `partial_tail` and skipped.
pub fn parse_results(text: &str) -> Result<Results, CwError> {
    let mut out = Results::default();
    let mut pos = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if !line.ends_with('\n') {
            out.partial_tail = true;
            break;
        }
        pos += line.len();
        if line.trim().is_empty() {
            out.valid_len = pos;
            continue;
        }
        let rec: RunRecord = serde_json::from_str(line)
            .map_err(|e| CwError::Parse(format!("{RESULTS_FILE} line {}: {e}", i + 1)))?;
        out.records.push(rec);
        out.valid_len = pos;
    }
    Ok(out)
}

/// One planned launch: `ranks` ranks, repeat index (0 = warm-up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedRun {
    /// MPI ranks.
    pub ranks: usize,
    /// 0 = warm-up, 1..=R measured.
    pub repeat: usize,
}

/// The runs still to do, in order: for each rank count with measured repeats
/// missing from `done` (pairs of ranks and repeat), a warm-up (when `warmup`)
/// followed by the missing repeats. Rank counts whose repeats are all done
/// are skipped entirely (resume).
pub fn pending_runs(
    ranks: &[usize],
    repeat: usize,
    warmup: bool,
    done: &BTreeSet<(usize, usize)>,
) -> Vec<PlannedRun> {
    let mut v = Vec::new();
    for &p in ranks {
        let missing: Vec<usize> = (1..=repeat).filter(|r| !done.contains(&(p, *r))).collect();
        if missing.is_empty() {
            continue;
        }
        if warmup {
            v.push(PlannedRun {
                ranks: p,
                repeat: 0,
            });
        }
        v.extend(missing.into_iter().map(|r| PlannedRun {
            ranks: p,
            repeat: r,
        }));
    }
    v
}

/// The (ranks, repeat) pairs of measured runs already in `records` for `mode`.
pub fn done_runs(records: &[RunRecord], mode: Mode) -> BTreeSet<(usize, usize)> {
    records
        .iter()
        .filter(|r| r.mode == mode && r.measured())
        .map(|r| (r.ranks, r.repeat))
        .collect()
}

/// Shape and chunk shape of a generated 2-D dataset of `elem_size`-byte
/// elements with (at least) `bytes_per_rank` bytes per rank for `p` ranks:
/// rows of at most 1024 elements, the same whole number of rows per rank (so
/// the size is exactly proportional to P), chunks of at most 1 MiB.
pub fn generated_shape(
    bytes_per_rank: u64,
    elem_size: usize,
    p: usize,
) -> ([usize; 2], [usize; 2]) {
    let elems = (bytes_per_rank / elem_size as u64).max(1) as usize;
    let cols = elems.min(1024);
    let rows_per_rank = elems.div_ceil(cols);
    let chunk_rows = ((1 << 20) / (cols * elem_size)).clamp(1, rows_per_rank);
    ([rows_per_rank * p, cols], [chunk_rows, cols])
}

/// Median of `xs` (mean of the middle two for an even count); NaN when empty.
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One row of a report table: the statistics of one rank count.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// MPI ranks.
    pub ranks: usize,
    /// Nodes the ranks ran on (largest seen).
    pub nodes: usize,
    /// Threads per rank.
    pub threads: usize,
    /// Measured runs.
    pub runs: usize,
    /// Median `reduce` time (`timings.total_s`), s.
    pub median_s: f64,
    /// Minimum `reduce` time, s.
    pub min_s: f64,
    /// Maximum `reduce` time, s.
    pub max_s: f64,
    /// Median wall time of the whole launched process, s.
    pub wall_median_s: f64,
    /// Bytes read per run.
    pub bytes: u64,
    /// bytes / median time, GB/s (10⁹ B/s).
    pub throughput_gbs: f64,
    /// Speedup (see the module docs); ideal = ranks.
    pub speedup: f64,
    /// Parallel efficiency (1 = ideal).
    pub efficiency: f64,
    /// Share of the median read time in the sum of the median phase times, %.
    pub read_pct: f64,
    /// Share of compute, %.
    pub compute_pct: f64,
    /// Share of communication, %.
    pub comm_pct: f64,
}

/// The report of one mode.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Table {
    /// Strong or weak.
    pub mode: Mode,
    /// Rows by increasing rank count.
    pub rows: Vec<Row>,
}

/// Speedup and efficiency of a run taking `t` s on `p` ranks, against the
/// baseline `t0` s on `p0` ranks.
pub fn speedup_efficiency(mode: Mode, p0: usize, t0: f64, p: usize, t: f64) -> (f64, f64) {
    let (p0, p) = (p0 as f64, p as f64);
    match mode {
        Mode::Strong => {
            let s = p0 * t0 / t;
            (s, s / p)
        }
        Mode::Weak => {
            let e = t0 / t;
            (p * e, e)
        }
    }
}

/// The tables of all modes in `records` (measured runs only), one row per rank count.
pub fn summarize(records: &[RunRecord]) -> Vec<Table> {
    let mut groups: BTreeMap<(Mode, usize), Vec<(&RunRecord, Measured)>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.measured()) {
        if let Some(m) = r.timings() {
            groups.entry((r.mode, r.ranks)).or_default().push((r, m));
        }
    }
    let mut tables: Vec<Table> = Vec::new();
    for ((mode, ranks), runs) in groups {
        let col = |f: fn(&Measured) -> f64| runs.iter().map(|(_, m)| f(m)).collect::<Vec<_>>();
        let totals = col(|m| m.total_s);
        let (read, compute, comm) = (
            median(&col(|m| m.read_s)),
            median(&col(|m| m.compute_s)),
            median(&col(|m| m.comm_s)),
        );
        let phases = read + compute + comm;
        let pct = |x: f64| {
            if phases > 0.0 {
                100.0 * x / phases
            } else {
                0.0
            }
        };
        let median_s = median(&totals);
        let bytes = runs.iter().map(|(_, m)| m.bytes).max().unwrap_or(0);
        let row = Row {
            ranks,
            nodes: runs.iter().map(|(_, m)| m.nodes).max().unwrap_or(1),
            threads: runs.iter().map(|(r, _)| r.threads).max().unwrap_or(1),
            runs: runs.len(),
            median_s,
            min_s: totals.iter().copied().fold(f64::INFINITY, f64::min),
            max_s: totals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            wall_median_s: median(&col(|m| m.wall_s)),
            bytes,
            throughput_gbs: bytes as f64 / median_s / 1e9,
            speedup: f64::NAN,
            efficiency: f64::NAN,
            read_pct: pct(read),
            compute_pct: pct(compute),
            comm_pct: pct(comm),
        };
        match tables.last_mut() {
            Some(t) if t.mode == mode => t.rows.push(row),
            _ => tables.push(Table {
                mode,
                rows: vec![row],
            }),
        }
    }
    for t in &mut tables {
        let (p0, t0) = (t.rows[0].ranks, t.rows[0].median_s);
        for r in &mut t.rows {
            (r.speedup, r.efficiency) = speedup_efficiency(t.mode, p0, t0, r.ranks, r.median_s);
        }
    }
    tables
}

/// Column names of the CSV and Markdown tables.
const COLUMNS: [&str; 16] = [
    "mode",
    "ranks",
    "nodes",
    "threads",
    "runs",
    "median_s",
    "min_s",
    "max_s",
    "wall_median_s",
    "bytes",
    "throughput_gbs",
    "speedup",
    "efficiency",
    "read_pct",
    "compute_pct",
    "comm_pct",
];

/// The cells of a row; `digits` decimals, or `None` for full precision
/// (the shortest text that reads back as the same f64).
fn cells(mode: Mode, r: &Row, digits: Option<usize>) -> Vec<String> {
    let f = |x: f64| match digits {
        Some(d) => format!("{x:.d$}"),
        None => format!("{x}"),
    };
    let pct = |x: f64| match digits {
        Some(_) => format!("{x:.1}"),
        None => format!("{x}"),
    };
    vec![
        mode.name().into(),
        r.ranks.to_string(),
        r.nodes.to_string(),
        r.threads.to_string(),
        r.runs.to_string(),
        f(r.median_s),
        f(r.min_s),
        f(r.max_s),
        f(r.wall_median_s),
        r.bytes.to_string(),
        f(r.throughput_gbs),
        f(r.speedup),
        f(r.efficiency),
        pct(r.read_pct),
        pct(r.compute_pct),
        pct(r.comm_pct),
    ]
}

/// CSV: a header line and one line per row of every table (full precision).
pub fn render_csv(tables: &[Table]) -> String {
    let mut s = COLUMNS.join(",") + "\n";
    for t in tables {
        for r in &t.rows {
            s += &(cells(t.mode, r, None).join(",") + "\n");
        }
    }
    s
}

/// Markdown: one table per mode, with a heading and a note on the definitions.
pub fn render_md(tables: &[Table]) -> String {
    let head = [
        "ranks",
        "nodes",
        "threads",
        "runs",
        "median s",
        "min s",
        "max s",
        "wall median s",
        "GB/s",
        "speedup",
        "efficiency",
        "read %",
        "compute %",
        "comm %",
    ];
    let mut s = String::new();
    for t in tables {
        let what = match t.mode {
            Mode::Strong => "fixed total data; speedup = P₀·T(P₀)/T(P), efficiency = speedup/P",
            Mode::Weak => {
                "data grows with P; efficiency = T(P₀)/T(P), scaled speedup = P·efficiency"
            }
        };
        s += &format!("## {} scaling ({what})\n\n", t.mode.name());
        s += &format!("| {} |\n|{}\n", head.join(" | "), "---|".repeat(head.len()));
        for r in &t.rows {
            let mut c = cells(t.mode, r, Some(4));
            c.remove(0); // mode
            c.remove(8); // bytes
            c[8] = format!("{:.2}", r.throughput_gbs);
            c[9] = format!("{:.2}", r.speedup);
            c[10] = format!("{:.0} %", 100.0 * r.efficiency);
            s += &format!("| {} |\n", c.join(" | "));
        }
        s += "\n";
    }
    if s.is_empty() {
        s += "no finished runs\n";
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(mode: Mode, p: usize, rep: usize, total: f64, read: f64, comm: f64) -> RunRecord {
        RunRecord {
            mode,
            ranks: p,
            threads: 1,
            repeat: rep,
            warmup: rep == 0,
            ok: true,
            error: None,
            wall_s: total + 0.5,
            started_unix: 0.0,
            slurm_job_id: None,
            command: vec![],
            file: "x.h5".into(),
            reduce: Some(serde_json::json!({
                "bytes_read": 8_000_000u64, "nodes": 1,
                "timings": {"total_s": total, "read_s": read, "compute_s": total - read - comm, "comm_s": comm}
            })),
        }
    }

    #[test]
    fn ranks_are_sorted_distinct_positive() {
        assert_eq!(parse_ranks("4, 1,2").unwrap(), vec![1, 2, 4]);
        for bad in ["", "0,1", "1,1", "a", "1,,2", "-1"] {
            assert!(parse_ranks(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn strong_and_weak_speedup_efficiency() {
        // Strong: 1 rank 8 s, 4 ranks 2.5 s -> S = 3.2, E = 0.8.
        let (s, e) = speedup_efficiency(Mode::Strong, 1, 8.0, 4, 2.5);
        assert!((s - 3.2).abs() < 1e-12 && (e - 0.8).abs() < 1e-12);
        // Baseline 2 ranks: S(2) = 2 (ideal), 8 ranks at a quarter of the time -> S = 8, E = 1.
        let (s, e) = speedup_efficiency(Mode::Strong, 2, 4.0, 8, 1.0);
        assert!((s - 8.0).abs() < 1e-12 && (e - 1.0).abs() < 1e-12);
        // Weak: time grows 2 -> 2.5 s: E = 0.8, scaled speedup on 4 ranks 3.2.
        let (s, e) = speedup_efficiency(Mode::Weak, 1, 2.0, 4, 2.5);
        assert!((s - 3.2).abs() < 1e-12 && (e - 0.8).abs() < 1e-12);
    }

    #[test]
    fn summary_uses_medians_and_skips_warmups_and_failures() {
        let mut recs = vec![
            rec(Mode::Strong, 1, 0, 100.0, 1.0, 0.0), // warm-up: ignored
            rec(Mode::Strong, 1, 1, 4.0, 1.0, 0.0),
            rec(Mode::Strong, 1, 2, 6.0, 1.0, 0.0),
            rec(Mode::Strong, 1, 3, 5.0, 1.0, 0.0),
            rec(Mode::Strong, 2, 1, 2.0, 0.5, 0.5),
            rec(Mode::Strong, 2, 2, 3.0, 0.5, 0.5),
        ];
        let mut failed = rec(Mode::Strong, 2, 3, 0.001, 0.0, 0.0);
        failed.ok = false;
        recs.push(failed);
        let t = summarize(&recs);
        assert_eq!(t.len(), 1);
        let r = &t[0].rows;
        assert_eq!((r[0].ranks, r[0].runs, r[1].runs), (1, 3, 2));
        assert_eq!((r[0].median_s, r[0].min_s, r[0].max_s), (5.0, 4.0, 6.0));
        assert_eq!(r[1].median_s, 2.5);
        assert_eq!(r[0].wall_median_s, 5.5);
        assert!((r[1].speedup - 2.0).abs() < 1e-12 && (r[1].efficiency - 1.0).abs() < 1e-12);
        assert!((r[0].throughput_gbs - 8e6 / 5.0 / 1e9).abs() < 1e-15);
        // Shares of the median phases: 0.5 read, 1.5 compute, 0.5 comm of 2.5.
        assert!((r[1].read_pct - 20.0).abs() < 1e-9 && (r[1].compute_pct - 60.0).abs() < 1e-9);
        let md = render_md(&t);
        assert!(md.contains("## strong scaling") && md.contains("| 2 | 1 | 1 | 2 | 2.5000 | 2.0000 | 3.0000 | 3.0000 | 0.00 | 2.00 | 100 % | 20.0 | 60.0 | 20.0 |"), "{md}");
        let csv = render_csv(&t);
        assert_eq!(csv.lines().count(), 3);
        assert!(
            csv.lines()
                .nth(2)
                .unwrap()
                .starts_with("strong,2,1,1,2,2.5,2,3,3,8000000,0.0032,2,1,20,60,20"),
            "{csv}"
        );
    }

    #[test]
    fn results_file_round_trip_and_partial_tail() {
        let a = rec(Mode::Weak, 1, 1, 1.0, 0.2, 0.1);
        let b = rec(Mode::Weak, 2, 1, 1.2, 0.2, 0.1);
        let mut text = serde_json::to_string(&a).unwrap() + "\n";
        text += &(serde_json::to_string(&b).unwrap() + "\n");
        let full = text.len();
        text += "{\"mode\":\"weak\",\"ran";
        let r = parse_results(&text).unwrap();
        assert_eq!(r.records, vec![a.clone(), b]);
        assert!(r.partial_tail);
        assert_eq!(r.valid_len, full);
        let bad = format!("{}\nnot json\n", serde_json::to_string(&a).unwrap());
        assert!(
            parse_results(&bad)
                .unwrap_err()
                .to_string()
                .contains("line 2")
        );
    }

    #[test]
    fn resume_plans_only_missing_runs() {
        let done: BTreeSet<_> = [(1, 1), (1, 2), (2, 1)].into_iter().collect();
        let p = pending_runs(&[1, 2, 3], 2, true, &done);
        let got: Vec<_> = p.iter().map(|r| (r.ranks, r.repeat)).collect();
        assert_eq!(got, vec![(2, 0), (2, 2), (3, 0), (3, 1), (3, 2)]);
        assert!(pending_runs(&[1], 2, false, &[(1, 1), (1, 2)].into_iter().collect()).is_empty());
        let recs = vec![
            rec(Mode::Strong, 1, 0, 1.0, 0.0, 0.0),
            rec(Mode::Strong, 1, 1, 1.0, 0.0, 0.0),
        ];
        assert_eq!(
            done_runs(&recs, Mode::Strong),
            [(1, 1)].into_iter().collect()
        );
        assert!(done_runs(&recs, Mode::Weak).is_empty());
    }

    #[test]
    fn generated_sizes_grow_exactly_with_p() {
        let (s1, c1) = generated_shape(1_000_000, 8, 1);
        let (s3, c3) = generated_shape(1_000_000, 8, 3);
        assert_eq!(s1, [123, 1024]);
        assert_eq!(s3, [369, 1024]);
        assert_eq!(c1, [123, 1024]);
        assert_eq!(c3, c1);
        assert_eq!(generated_shape(2_000_000_000, 8, 1).1, [128, 1024]);
        assert_eq!(generated_shape(10, 8, 2).0, [2, 1]);
    }

    #[test]
    fn rank_counts_beyond_what_can_run_are_refused() {
        assert!(check_rank_counts(&[1, 2, 4], None, 2).is_ok());
        assert!(check_rank_counts(&[1, 32], None, 2).is_ok());
        let e = check_rank_counts(&[1, 100_000], None, 2).unwrap_err();
        assert!(e.to_string().contains("at most 32 ranks"), "{e}");
        assert!(check_rank_counts(&[4, 8], Some(8), 1).is_ok());
        let e = check_rank_counts(&[4, 16], Some(8), 1000).unwrap_err();
        assert!(e.to_string().contains("8 tasks"), "{e}");
    }

    #[test]
    fn launch_lines() {
        let args = vec!["reduce".to_string(), "x.h5".to_string()];
        let m = launch_argv(Launcher::Mpirun, 3, 2, 2, "/bin/cw", &args, true).join(" ");
        assert_eq!(
            m,
            "mpirun -n 3 --bind-to none --oversubscribe /bin/cw reduce x.h5 --threads 2"
        );
        let m = launch_argv(Launcher::Mpirun, 2, 1, 2, "cw", &args, false).join(" ");
        assert_eq!(m, "mpirun -n 2 --bind-to none cw reduce x.h5");
        let s = launch_argv(Launcher::Srun, 4, 8, 2, "cw", &args, true).join(" ");
        assert_eq!(
            s,
            "srun -n 4 -c 8 --kill-on-bad-exit=1 cw reduce x.h5 --threads 8"
        );
        assert_eq!(Launcher::Auto.resolve(Some("123")), Launcher::Srun);
        assert_eq!(Launcher::Auto.resolve(None), Launcher::Mpirun);
        assert_eq!(Launcher::Mpirun.resolve(Some("1")), Launcher::Mpirun);
    }

    #[test]
    fn study_differences() {
        let a = StudyParams {
            version: 1,
            mode: Mode::Strong,
            reduce_args: vec!["reduce".into(), "x.h5".into()],
            threads: 1,
            bytes: None,
            bytes_per_rank: None,
            dtype: "f64".into(),
            ranks: vec![1, 2],
            repeat: 2,
        };
        let mut b = a.clone();
        b.ranks = vec![1, 2, 4];
        b.repeat = 5;
        assert!(a.differences(&b).is_empty());
        b.mode = Mode::Weak;
        b.threads = 2;
        let d = a.differences(&b);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].contains("--mode strong -> weak"));
    }
}
