//! Shared helpers for the integration tests: run the built binary under
//! `mpirun -n P` with a hard timeout, read datasets back with `h5dump`
//! (an independent reader), and exact reference statistics.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Path of the `chunkwise` binary Cargo built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_chunkwise")
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("chunkwise-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Result of one run.
pub struct Run {
    /// Exit code (None when killed by a signal or by the timeout).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
    /// True when the timeout killed it.
    pub timed_out: bool,
    /// When a signal was sent ([`run_signalled`]), counted from the start.
    pub signalled_at: Option<Duration>,
}

impl Run {
    /// Time from the signal to the end of the run (panics if none was sent).
    pub fn after_signal(&self) -> Duration {
        self.elapsed - self.signalled_at.expect("no signal was sent")
    }
}

impl Run {
    /// Panic with the output unless the run succeeded.
    pub fn ok(self) -> Run {
        assert!(
            self.code == Some(0),
            "run failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    /// The stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", self.stdout))
    }
}

/// Run `cmd` with a timeout, killing its whole process group on expiry.
pub fn run_with_timeout(cmd: Command, timeout: Duration) -> Run {
    run_signalled(cmd, timeout, None)
}

/// When to send a signal to a running command: `after` this long once its
/// stderr contains `marker`.
pub struct SignalAt {
    /// Text the stderr must contain first.
    pub marker: &'static str,
    /// Delay after the marker appeared.
    pub after: Duration,
    /// Signal number.
    pub sig: i32,
}

/// Like [`run_with_timeout`]; with a [`SignalAt`], send its signal to the
/// launched process's children — the ranks under `mpirun` — at that point,
/// as Slurm's time limit and `scancel` signal every task. (Signalling
/// `mpirun` itself also ends the job, but `mpirun` may drop the ranks'
/// last stderr lines while it tears down.)
pub fn run_signalled(cmd: Command, timeout: Duration, signal: Option<SignalAt>) -> Run {
    run_signalled_to(cmd, timeout, signal, false)
}

/// Like [`mpirun_signalled`], but the signal goes to `mpirun` itself (as
/// Ctrl-C in a terminal, or `kill` of the launcher), which passes it on.
pub fn mpirun_signalled_launcher(
    p: usize,
    args: &[&str],
    env: &[(&str, &str)],
    at: SignalAt,
) -> Run {
    let mut env = env.to_vec();
    env.push(("RUST_LOG", "info"));
    run_signalled_to(
        mpirun_cmd(p, args, &env),
        Duration::from_secs(120),
        Some(at),
        true,
    )
}

fn run_signalled_to(
    mut cmd: Command,
    timeout: Duration,
    signal: Option<SignalAt>,
    launcher: bool,
) -> Run {
    use std::os::unix::process::CommandExt;
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let t0 = Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    let pid = child.id() as i32;
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out_pipe, &mut s).ok();
        s
    });
    let err_seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let err_sink = err_seen.clone();
    let err_t = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut err_pipe, &mut buf) {
            if n == 0 {
                break;
            }
            err_sink
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut timed_out = false;
    let mut pending = signal;
    let mut marked: Option<Instant> = None;
    let mut signalled_at = None;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if let Some(at) = &pending {
            if marked.is_none() && err_seen.lock().unwrap().contains(at.marker) {
                marked = Some(Instant::now());
            }
            if marked.is_some_and(|m| m.elapsed() >= at.after) {
                if launcher {
                    unsafe { libc_kill(pid, at.sig) };
                } else {
                    let _ = Command::new("pkill")
                        .args([format!("-{}", at.sig), "-P".into(), pid.to_string()])
                        .status();
                }
                signalled_at = Some(t0.elapsed());
                pending = None;
            }
        }
        if t0.elapsed() > timeout {
            timed_out = true;
            let _ = Command::new("kill")
                .args(["-9", &format!("-{pid}")])
                .status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.and_then(|s| s.code()),
        stdout: out_t.join().unwrap(),
        stderr: {
            err_t.join().unwrap();

            err_seen.lock().unwrap().clone()
        },
        elapsed: t0.elapsed(),
        timed_out,
        signalled_at,
    }
}

/// `mpirun -n p chunkwise args...` with root allowed and oversubscription.
pub fn mpirun(p: usize, args: &[&str]) -> Run {
    mpirun_env(p, args, &[])
}

/// Like [`mpirun`], with extra environment variables for the ranks.
pub fn mpirun_env(p: usize, args: &[&str], env: &[(&str, &str)]) -> Run {
    run_with_timeout(mpirun_cmd(p, args, env), Duration::from_secs(120))
}

/// Like [`mpirun_env`] with `RUST_LOG=info`, signalling `mpirun` as `at` says.
pub fn mpirun_signalled(p: usize, args: &[&str], env: &[(&str, &str)], at: SignalAt) -> Run {
    let mut env = env.to_vec();
    env.push(("RUST_LOG", "info"));
    run_signalled(
        mpirun_cmd(p, args, &env),
        Duration::from_secs(120),
        Some(at),
    )
}

/// The `mpirun -n p --oversubscribe chunkwise args...` command.
pub fn mpirun_cmd(p: usize, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new("mpirun");
    cmd.args(["-n", &p.to_string(), "--oversubscribe"]);
    for (k, v) in env {
        cmd.args(["-x", &format!("{k}={v}")]);
    }
    cmd.arg(bin()).args(args);
    cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    // Loopback TCP + shared memory only: no probing of other interfaces.
    cmd.env("OMPI_MCA_btl_tcp_if_include", "lo")
        .env("OMPI_MCA_oob_tcp_if_include", "lo");
    cmd
}

/// Run the binary without a launcher.
pub fn direct(args: &[&str]) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    run_with_timeout(cmd, Duration::from_secs(120))
}

/// Read dataset `var` of `file` as little-endian raw bytes via `h5dump -b LE`.
pub fn h5dump_raw(file: &Path, var: &str) -> Vec<u8> {
    let out = file.with_extension(format!("{}.bin", var.replace('/', "_")));
    let st = Command::new("h5dump")
        .args(["-b", "LE", "-d", var, "-o"])
        .arg(&out)
        .arg(file)
        .stdout(Stdio::null())
        .status()
        .expect("h5dump");
    assert!(st.success(), "h5dump failed on {}", file.display());
    std::fs::read(out).unwrap()
}

/// Decode little-endian values of `dtype` from raw bytes into f64 (and i128 for integers).
pub fn decode(bytes: &[u8], dtype: &str) -> (Vec<f64>, Vec<i128>) {
    macro_rules! dec {
        ($t:ty) => {{
            let n = std::mem::size_of::<$t>();
            let v: Vec<$t> = bytes
                .chunks_exact(n)
                .map(|c| <$t>::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (
                v.iter().map(|&x| x as f64).collect(),
                v.iter().map(|&x| x as i128).collect(),
            )
        }};
    }
    match dtype {
        "i8" => dec!(i8),
        "i16" => dec!(i16),
        "i32" => dec!(i32),
        "i64" => dec!(i64),
        "u8" => dec!(u8),
        "u16" => dec!(u16),
        "u32" => dec!(u32),
        "u64" => dec!(u64),
        "f32" => {
            let v: Vec<f64> = bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect();
            (v, Vec::new())
        }
        "f64" => (
            bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            Vec::new(),
        ),
        other => panic!("dtype {other}"),
    }
}

/// Correctly rounded sum (Shewchuk's algorithm, as Python's `math.fsum`).
pub fn fsum(xs: impl IntoIterator<Item = f64>) -> f64 {
    let mut partials: Vec<f64> = Vec::new();
    for mut x in xs {
        let mut i = 0;
        for j in 0..partials.len() {
            let mut y = partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                partials[i] = lo;
                i += 1;
            }
            x = hi;
        }
        partials.truncate(i);
        partials.push(x);
    }
    // Add the partials from the top, with the half-way correction fsum uses.
    let mut n = partials.len();
    if n == 0 {
        return 0.0;
    }
    n -= 1;
    let mut hi = partials[n];
    let mut lo = 0.0;
    while n > 0 {
        n -= 1;
        let x = hi;
        let y = partials[n];
        hi = x + y;
        let yr = hi - x;
        lo = y - yr;
        if lo != 0.0 {
            break;
        }
    }
    if n > 0 && ((lo < 0.0 && partials[n - 1] < 0.0) || (lo > 0.0 && partials[n - 1] > 0.0)) {
        let y = lo * 2.0;
        let x = hi + y;
        if y == x - hi {
            hi = x;
        }
    }
    hi
}

/// Reference statistics of the non-NaN values, from exact sums.
pub struct Reference {
    /// Non-NaN count.
    pub count: usize,
    /// Correctly rounded sum.
    pub sum: f64,
    /// Mean (fsum / n).
    pub mean: f64,
    /// Population variance, two-pass with exact sums.
    pub var: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
}

/// Exact-sum reference statistics, skipping NaN.
pub fn reference(xs: &[f64]) -> Reference {
    let v: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    let n = v.len();
    let sum = fsum(v.iter().copied());
    let mean = sum / n as f64;
    let var = fsum(v.iter().map(|x| (x - mean) * (x - mean))) / n as f64;
    Reference {
        count: n,
        sum,
        mean,
        var,
        min: v.iter().copied().fold(f64::INFINITY, f64::min),
        max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}

/// Assert `got` equals `want` to `rel` relative tolerance.
pub fn close(what: &str, got: f64, want: f64, rel: f64) {
    let err = (got - want).abs();
    assert!(
        err <= rel * want.abs().max(f64::MIN_POSITIVE),
        "{what}: got {got}, want {want} (rel err {:e})",
        err / want.abs()
    );
}

/// The literal JSON text of `key` inside the `"results"` object of `stdout`
/// (integers beyond u64 lose precision in `serde_json::Value`).
pub fn raw_result(stdout: &str, key: &str) -> String {
    let res = &stdout[stdout.find("\"results\":{").expect("results object")..];
    let at = res
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key} in {res}"))
        + key.len()
        + 3;
    res[at..].split([',', '}']).next().unwrap().to_string()
}

/// Build `tests/data/NAME.cdl` into `dir/NAME.nc` with the external writer `ncgen -4`.
pub fn ncgen(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(format!("{name}.nc"));
    let cdl = format!("{}/tests/data/{name}.cdl", env!("CARGO_MANIFEST_DIR"));
    let st = Command::new("ncgen")
        .args(["-4", "-o"])
        .arg(&out)
        .arg(cdl)
        .status()
        .expect("ncgen (netcdf-bin)");
    assert!(st.success(), "ncgen failed for {name}.cdl");
    out
}

/// Run `args` under 2 ranks; expect failure within 10 s and one message containing `needle`.
pub fn expect_error(args: &[&str], needle: &str) {
    expect_error_p(2, args, needle)
}

/// Run `args` under `p` ranks; expect failure within 10 s and one message containing `needle`.
pub fn expect_error_p(p: usize, args: &[&str], needle: &str) {
    let r = mpirun(p, args);
    assert!(!r.timed_out, "hung: {args:?}");
    assert!(
        r.code.is_some_and(|c| c != 0),
        "expected failure for {args:?}, got {:?}\n{}",
        r.code,
        r.stdout
    );
    assert!(
        r.elapsed.as_secs_f64() < 10.0,
        "took {:?} for {args:?}",
        r.elapsed
    );
    let msgs = r.stderr.matches("chunkwise: error").count();
    assert_eq!(
        msgs, 1,
        "want exactly one message for {args:?}, got:\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(needle),
        "message for {args:?} should mention '{needle}':\n{}",
        r.stderr
    );
}

/// The test venv `modules/local.sh` makes (`.venv-test/` of the checkout).
pub fn test_venv_python() -> String {
    std::env::var("CHUNKWISE_PYTHON")
        .unwrap_or_else(|_| format!("{}/.venv-test/bin/python", env!("CARGO_MANIFEST_DIR")))
}

/// A Python interpreter that can import `modules` (e.g. `"xarray, netCDF4"`):
/// the test venv (current xarray, h5py, netCDF4, cftime from PyPI), else
/// `python3` on PATH, else the system one (Debian's python3-* packages).
pub fn python_with(modules: &str) -> Option<&'static str> {
    let venv: &'static str = Box::leak(test_venv_python().into_boxed_str());
    [venv, "python3", "/usr/bin/python3"]
        .into_iter()
        .find(|py| {
            Command::new(py)
                .args(["-c", &format!("import {modules}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// `reduce ARGS --json` under `p` ranks; the parsed report.
pub fn reduce_json(p: usize, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["reduce"];
    a.extend_from_slice(args);
    a.push("--json");
    mpirun(p, &a).ok().json()
}

/// A JSON number, or one of the strings "NaN", "Infinity", "-Infinity".
pub fn json_float(x: &serde_json::Value) -> f64 {
    match x.as_str() {
        Some("NaN") => f64::NAN,
        Some("Infinity") => f64::INFINITY,
        Some("-Infinity") => f64::NEG_INFINITY,
        _ => x.as_f64().unwrap_or_else(|| panic!("not a number: {x}")),
    }
}

/// A JSON array of numbers (see [`json_float`]); a single number as a
/// one-element array.
pub fn json_floats(v: &serde_json::Value) -> Vec<f64> {
    match v.as_array() {
        Some(a) => a.iter().map(json_float).collect(),
        None => vec![json_float(v)],
    }
}

/// Run `script` with a Python that can import `modules` (see
/// [`python_with`]) and `args`; its standard output (the test fails with
/// Python's standard error when the script fails).
pub fn run_python(modules: &str, script: &str, args: &[&str]) -> String {
    let py = python_with(modules).unwrap_or_else(|| panic!("{modules} (the test venv)"));
    let out = Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Lines `KEY v1 v2 …` (as the oracle scripts print them) as keys and numbers.
pub fn keyed_floats(text: &str) -> Vec<(String, Vec<f64>)> {
    text.lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (
                k.to_string(),
                v.split(' ').map(|x| x.parse().unwrap()).collect(),
            )
        })
        .collect()
}
