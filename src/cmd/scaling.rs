//! `chunkwise scaling run` and `scaling report`. Not an MPI program: `run`
//! launches `chunkwise generate` / `chunkwise reduce` under `srun` or
//! `mpirun` once per run, each with a time limit, and appends every finished
//! run to `DIR/results.jsonl` (written and fsynced line by line, so an
//! interrupted study keeps its runs and a re-run resumes). `report` turns the
//! results into tables and plots. The arithmetic lives in `scaling` and `plot`.

use super::output;
use crate::cli::{ReportFormat, ScalingArgs, ScalingCommand, ScalingReportArgs, ScalingRunArgs};
use crate::element::Dtype;
use crate::error::CwError;
use crate::parse::{human_bytes, parse_bytes, parse_duration};
use crate::scaling::{
    self, FORMAT_VERSION, Launcher, Mode, RESULTS_FILE, ReduceCall, RunRecord, STUDY_FILE,
    StudyParams,
};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Run `scaling run` or `scaling report`.
pub fn run(a: &ScalingArgs) -> anyhow::Result<()> {
    match &a.command {
        ScalingCommand::Run(r) => run_study(r),
        ScalingCommand::Report(r) => report(r),
    }
}

/// Everything `scaling run` needs, validated before anything is launched.
struct Study {
    params: StudyParams,
    call: ReduceCall,
    launcher: Launcher,
    slurm_job_id: Option<String>,
    timeout: Duration,
    dtype: Dtype,
    dir: PathBuf,
}

fn validate(a: &ScalingRunArgs) -> Result<Study, CwError> {
    let ranks = scaling::parse_ranks(&a.ranks)?;
    if a.repeat == 0 {
        return Err(CwError::Parse("--repeat must be at least 1".into()));
    }
    let timeout =
        parse_duration(&a.timeout).map_err(|e| CwError::Parse(format!("--timeout: {e}")))?;
    let size = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| match parse_bytes(s) {
                Ok(0) => Err(CwError::Parse(format!("{flag} must be positive"))),
                Ok(b) => Ok(b),
                Err(e) => Err(CwError::Parse(format!("{flag}: {e}"))),
            })
            .transpose()
    };
    let bytes = size("--bytes", &a.bytes)?;
    let bytes_per_rank = size("--bytes-per-rank", &a.bytes_per_rank)?;
    let dtype = Dtype::parse(&a.dtype).ok_or_else(|| {
        CwError::Parse(format!(
            "unknown --dtype '{}': choose f32, f64, i8, i16, i32, i64, u8, u16, u32, u64",
            a.dtype
        ))
    })?;
    let call = crate::scaling_args::analyse_reduce_args(&a.args)?;
    match (a.mode, &call.file) {
        (Mode::Weak, Some(f)) => {
            return Err(CwError::Parse(format!(
                "weak mode generates its own data (size --bytes-per-rank × P): leave the input file '{f}' out of the reduce arguments"
            )));
        }
        (Mode::Weak, None) if bytes_per_rank.is_none() => {
            return Err(CwError::Parse(
                "weak mode needs --bytes-per-rank (data per rank, e.g. 2GB)".into(),
            ));
        }
        (Mode::Strong, _) if bytes_per_rank.is_some() => {
            return Err(CwError::Parse(
                "--bytes-per-rank is for --mode weak; strong mode takes a file or --bytes".into(),
            ));
        }
        (Mode::Strong, None) if bytes.is_none() => {
            return Err(CwError::Parse(
                "strong mode needs an input file in the reduce arguments, or --bytes to generate one"
                    .into(),
            ));
        }
        (Mode::Strong, Some(f)) => {
            if bytes.is_some() {
                return Err(CwError::Parse(format!(
                    "give either an input file ('{f}') or --bytes, not both"
                )));
            }
            if !Path::new(f).is_file() {
                return Err(CwError::Input(format!("input file '{f}' does not exist")));
            }
        }
        _ => {}
    }
    let threads = match a.threads {
        Some(0) => return Err(CwError::Parse("--threads must be at least 1".into())),
        Some(t) => t,
        None => std::env::var("SLURM_CPUS_PER_TASK")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .filter(|&t: &usize| t > 0)
            .unwrap_or(1),
    };
    let slurm_job_id = std::env::var("SLURM_JOB_ID").ok().filter(|s| !s.is_empty());
    // Refused before the first launch: counts that cannot run here.
    let slurm_tasks = slurm_job_id.as_ref().and_then(|_| {
        std::env::var("SLURM_NTASKS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
    });
    scaling::check_rank_counts(&ranks, slurm_tasks, crate::procinfo::online_cpus())?;
    Ok(Study {
        params: StudyParams {
            version: FORMAT_VERSION,
            mode: a.mode,
            reduce_args: a.args.clone(),
            threads,
            bytes,
            bytes_per_rank,
            dtype: dtype.name().into(),
            ranks,
            repeat: a.repeat,
        },
        call,
        launcher: a.launcher.resolve(slurm_job_id.as_deref()),
        slurm_job_id,
        timeout: Duration::from_secs(timeout),
        dtype,
        dir: a.out.clone(),
    })
}

fn io_err(what: &str, p: &Path, e: std::io::Error) -> CwError {
    CwError::Output(format!("cannot {what} '{}': {e}", p.display()))
}

/// Write `text` to `path` via a temporary file and rename.
fn write_atomic(path: &Path, text: &str) -> Result<(), CwError> {
    output::write_atomic(path, text.as_bytes(), true)
}

/// Take an exclusive lock on the study directory (`DIR/.lock`, flock), held
/// while the returned file is open; the kernel releases it when the process
/// ends, however it ends. Launched processes do not inherit it (close-on-exec).
fn lock(dir: &Path) -> Result<std::fs::File, CwError> {
    use std::os::fd::AsRawFd;
    let p = dir.join(".lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(|e| io_err("create", &p, e))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(CwError::Output(format!(
            "another `chunkwise scaling run` is using '{}'",
            dir.display()
        )));
    }
    Ok(f)
}

/// Create and lock the study directory, and check that it holds the same
/// study (removing the old one with `force`); returns the lock and the
/// records already there.
fn open_study(s: &Study, force: bool) -> Result<(std::fs::File, Vec<RunRecord>), CwError> {
    let dir = &s.dir;
    std::fs::create_dir_all(dir).map_err(|e| io_err("create", dir, e))?;
    let held = lock(dir)?;
    let study = dir.join(STUDY_FILE);
    let results = dir.join(RESULTS_FILE);
    let old: Option<StudyParams> = match std::fs::read_to_string(&study) {
        Ok(t) => Some(serde_json::from_str(&t).map_err(|e| {
            CwError::Input(format!(
                "'{}' is not a chunkwise study file: {e}",
                study.display()
            ))
        })?),
        Err(_) => None,
    };
    let conflict = match &old {
        Some(o) => o.differences(&s.params).join("; "),
        None if results.exists() => format!("'{}' has no {STUDY_FILE}", dir.display()),
        None => String::new(),
    };
    if !conflict.is_empty() {
        if !force {
            return Err(CwError::Output(format!(
                "'{}' holds a different study ({conflict}); use another --out, or --force to start over",
                dir.display()
            )));
        }
        crate::error::say(&format!(
            "chunkwise: --force: removing the earlier study in '{}'",
            dir.display()
        ));
        for f in [&results, &study] {
            let _ = std::fs::remove_file(f);
        }
        let _ = std::fs::remove_dir_all(dir.join("data"));
    }
    write_atomic(
        &study,
        &(serde_json::to_string_pretty(&s.params).expect("plain data") + "\n"),
    )?;
    let text = match std::fs::read_to_string(&results) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_err("read", &results, e)),
    };
    let parsed = scaling::parse_results(&text)?;
    if parsed.partial_tail {
        crate::error::say(&format!(
            "chunkwise: dropping the unfinished last line of '{}' (an interrupted write)",
            results.display()
        ));
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&results)
            .map_err(|e| io_err("open", &results, e))?;
        f.set_len(parsed.valid_len as u64)
            .map_err(|e| io_err("truncate", &results, e))?;
    }
    Ok((held, parsed.records))
}

/// Append one record as a line and flush it to disk.
fn append(dir: &Path, rec: &RunRecord) -> Result<(), CwError> {
    let path = dir.join(RESULTS_FILE);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| io_err("open", &path, e))?;
    let line = serde_json::to_string(rec).expect("plain data") + "\n";
    f.write_all(line.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| io_err("append to", &path, e))
}

/// SIGTERM/SIGINT received by `scaling run` (0: none). The handler only
/// stores it; `launch` passes it on to the running launcher (SIGTERM) and the
/// study stops after that run without recording it.
static STOP: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_stop(sig: libc::c_int) {
    STOP.store(sig, Ordering::SeqCst);
}

fn install_stop_handlers() {
    // SAFETY: the handler only stores into an atomic (async-signal-safe).
    unsafe {
        let h = on_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGTERM, h);
        libc::signal(libc::SIGINT, h);
    }
}

/// The error for a study stopped by a signal, if one came.
fn stopped(dir: &Path) -> Result<(), CwError> {
    match STOP.load(Ordering::SeqCst) {
        0 => Ok(()),
        sig => Err(CwError::Input(format!(
            "interrupted by {}: the run in progress was stopped and not recorded; the finished runs are kept in '{}'; re-run the same command to resume",
            if sig == libc::SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            },
            dir.join(RESULTS_FILE).display()
        ))),
    }
}

/// What a launched process did.
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    wall: Duration,
    timed_out: bool,
}

impl Outcome {
    /// A one-line reason for a failure, with the end of its standard error.
    fn failure(&self, timeout: Duration) -> String {
        // chunkwise's own message when there is one, else the end of stderr.
        let mut tail: Vec<&str> = Vec::new();
        for l in self
            .stderr
            .lines()
            .filter_map(|l| l.split_once("chunkwise: error: "))
        {
            let l = l.1;
            if !tail.contains(&l) {
                tail.push(l);
            }
        }
        if tail.is_empty() {
            let last: Vec<&str> = self
                .stderr
                .lines()
                .rev()
                .filter(|l| !l.trim().is_empty())
                .take(5)
                .collect();
            tail = last.into_iter().rev().collect();
        }
        let why = if self.timed_out {
            format!("timed out after {} s (--timeout)", timeout.as_secs())
        } else {
            match self.code {
                Some(c) => format!("exit code {c}"),
                None => "killed by a signal".into(),
            }
        };
        if tail.is_empty() {
            why
        } else {
            format!("{why}: {}", tail.join(" | "))
        }
    }
}

/// Run `argv` to completion, or until `timeout` or a SIGTERM/SIGINT to this
/// process (then SIGTERM to the launcher, and SIGKILL 10 s later).
fn launch(argv: &[String], timeout: Duration) -> Result<Outcome, CwError> {
    let t0 = Instant::now();
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CwError::Input(format!("cannot start '{}': {e}", argv[0])))?;
    let pump = |mut p: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            p.read_to_string(&mut s).ok();
            s
        })
    };
    let out = pump(Box::new(child.stdout.take().expect("piped")));
    let err = pump(Box::new(child.stderr.take().expect("piped")));
    let pid = child.id() as libc::pid_t;
    let mut timed_out = false;
    let mut term_at: Option<Instant> = None;
    let status = loop {
        if let Some(st) = child
            .try_wait()
            .map_err(|e| CwError::Input(e.to_string()))?
        {
            break st;
        }
        let stop = STOP.load(Ordering::SeqCst) != 0;
        if t0.elapsed() > timeout || stop {
            timed_out = !stop;
            match term_at {
                None => {
                    // SAFETY: signalling our own child process.
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                    term_at = Some(Instant::now());
                }
                Some(t) if t.elapsed() > Duration::from_secs(10) => {
                    let _ = child.kill();
                }
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = t0.elapsed();
    Ok(Outcome {
        code: status.code(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        wall,
        timed_out,
    })
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn exe() -> Result<String, CwError> {
    std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| CwError::Input(format!("cannot find the chunkwise binary: {e}")))
}

/// The input file for `p` ranks: the given one, or a generated dataset
/// (made now, under the launcher with `p` ranks, unless already there —
/// `generate` renames its output into place only when complete).
fn input_for(s: &Study, p: usize) -> Result<String, CwError> {
    if let Some(f) = &s.call.file {
        return Ok(f.clone());
    }
    let (path, bytes, parts) = match s.params.mode {
        Mode::Weak => (
            s.dir.join("data").join(format!("weak-{p}.h5")),
            s.params.bytes_per_rank.expect("validated"),
            p,
        ),
        Mode::Strong => (
            s.dir.join("data").join("strong.h5"),
            s.params.bytes.expect("validated"),
            1,
        ),
    };
    let file = path.to_string_lossy().into_owned();
    if path.is_file() {
        return Ok(file);
    }
    std::fs::create_dir_all(s.dir.join("data")).map_err(|e| io_err("create", &s.dir, e))?;
    let (shape, chunks) = scaling::generated_shape(bytes, s.dtype.size(), parts);
    let join = |v: [usize; 2]| format!("{},{}", v[0], v[1]);
    let args: Vec<String> = [
        "generate",
        &file,
        "--var",
        s.call.var(),
        "--shape",
        &join(shape),
        "--chunks",
        &join(chunks),
        "--dtype",
        s.dtype.name(),
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    let argv = scaling::launch_argv(
        s.launcher,
        p,
        s.params.threads,
        cores(),
        &exe()?,
        &args,
        false,
    );
    let size = (shape[0] * shape[1] * s.dtype.size()) as u64;
    crate::outln!(
        "generating {file}: {}x{} {} ({}) on {p} rank(s)",
        shape[0],
        shape[1],
        s.dtype.name(),
        human_bytes(size)
    )?;
    let o = launch(&argv, s.timeout)?;
    stopped(&s.dir)?;
    if o.code != Some(0) {
        return Err(CwError::Output(format!(
            "generating '{file}' failed ({}); command: {}",
            o.failure(s.timeout),
            argv.join(" ")
        )));
    }
    Ok(file)
}

fn run_study(a: &ScalingRunArgs) -> anyhow::Result<()> {
    let s = validate(a)?;
    let (_lock, records) = open_study(&s, a.force)?;
    let mode = s.params.mode;
    let done = scaling::done_runs(&records, mode);
    let todo = scaling::pending_runs(&s.params.ranks, s.params.repeat, !a.no_warmup, &done);
    let measured_todo = todo.iter().filter(|r| r.repeat > 0).count();
    crate::outln!(
        "{} scaling study in '{}': ranks {:?} x {} thread(s), {} run(s) already done, {} to run, launcher {:?}",
        mode.name(),
        s.dir.display(),
        s.params.ranks,
        s.params.threads,
        s.params.ranks.len() * s.params.repeat - measured_todo,
        measured_todo,
        s.launcher
    )?;
    let exe = exe()?;
    install_stop_handlers();
    let (n_runs, t_study) = (todo.len(), std::time::Instant::now());
    for (k, run) in todo.into_iter().enumerate() {
        let p = run.ranks;
        stopped(&s.dir)?;
        let file = input_for(&s, p)?;
        stopped(&s.dir)?;
        let argv = scaling::launch_argv(
            s.launcher,
            p,
            s.params.threads,
            cores(),
            &exe,
            &s.call.argv(&file),
            true,
        );
        let started_unix = now_unix();
        let o = launch(&argv, s.timeout)?;
        stopped(&s.dir)?;
        let json: Option<serde_json::Value> = o
            .stdout
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))
            .and_then(|l| serde_json::from_str(l).ok());
        let error = match (&json, o.code) {
            (Some(_), Some(0)) => None,
            (None, Some(0)) => Some("exit code 0 but no JSON result on standard output".into()),
            _ => Some(o.failure(s.timeout)),
        };
        let rec = RunRecord {
            mode,
            ranks: p,
            threads: s.params.threads,
            repeat: run.repeat,
            warmup: run.repeat == 0,
            ok: error.is_none(),
            error: error.clone(),
            wall_s: o.wall.as_secs_f64(),
            started_unix,
            slurm_job_id: s.slurm_job_id.clone(),
            command: argv.clone(),
            file: file.clone(),
            reduce: json,
        };
        append(&s.dir, &rec)?;
        if let Some(e) = error {
            return Err(CwError::Input(format!(
                "run with {p} rank(s), repeat {} failed ({e}); command: {}. The finished runs are kept in '{}'; fix the cause and re-run the same command to resume",
                run.repeat,
                argv.join(" "),
                s.dir.join(RESULTS_FILE).display()
            ))
            .into());
        }
        let t = rec.timings();
        crate::outln!(
            "P={p:<4} {:<8} reduce {:>9.4} s   whole process {:>8.3} s",
            if run.repeat == 0 {
                "warm-up".to_string()
            } else {
                format!("run {}/{}", run.repeat, s.params.repeat)
            },
            t.map_or(f64::NAN, |m| m.total_s),
            rec.wall_s
        )?;
        crate::progress::run_line(
            k + 1,
            n_runs,
            &format!("P={p}, repeat {}, {:.3} s", run.repeat, rec.wall_s),
            t_study.elapsed(),
        );
    }
    crate::outln!(
        "results: {}   report: chunkwise scaling report {}",
        s.dir.join(RESULTS_FILE).display(),
        s.dir.display()
    )?;
    Ok(())
}

fn report(a: &ScalingReportArgs) -> anyhow::Result<()> {
    let path = a.dir.join(RESULTS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        CwError::Input(format!(
            "cannot read '{}': {e} (run `chunkwise scaling run --out {}` first)",
            path.display(),
            a.dir.display()
        ))
    })?;
    let results = scaling::parse_results(&text)?;
    let tables = scaling::summarize(&results.records);
    if tables.is_empty() {
        return Err(CwError::Input(format!(
            "'{}' has no finished measured runs",
            path.display()
        ))
        .into());
    }
    let mut plots = Vec::new();
    if !a.no_plots {
        for t in &tables {
            plots.extend(super::plot::write_plots(&a.dir, t)?);
        }
    }
    let failed = results.records.iter().filter(|r| !r.ok).count();
    match a.format {
        ReportFormat::Md => {
            crate::out!("{}", scaling::render_md(&tables))?;
            if failed > 0 {
                crate::outln!(
                    "({failed} failed run(s) in {} are not counted)\n",
                    path.display()
                )?;
            }
            for p in &plots {
                crate::outln!("plot: {}", p.display())?;
            }
        }
        ReportFormat::Csv => crate::out!("{}", scaling::render_csv(&tables))?,
        ReportFormat::Json => {
            let j = serde_json::json!({
                "results": path,
                "runs": results.records.len(),
                "failed": failed,
                "tables": tables,
                "plots": plots,
            });
            crate::outln!("{j}")?;
        }
    }
    Ok(())
}
