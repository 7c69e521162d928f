//! `chunkwise scaling run` / `scaling report` end to end: real local studies
//! under mpirun (P = 1, 2, 3 on small data), the results file, the report's
//! speedup and efficiency recomputed here from the recorded runs, the SVG and
//! PNG plots decoded, weak-mode data growing with P, and an interrupted study
//! (killed with SIGKILL) resumed without re-running its finished runs.

mod common;
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// `chunkwise scaling ARGS` with root allowed for the mpirun it launches, and
/// a private OpenMPI session directory (concurrent mpiruns sharing one under
/// /tmp occasionally fail with "orte_session_dir failed").
fn scaling_cmd(args: &[&str]) -> Command {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let session = std::env::temp_dir().join(format!("cwo-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&session).unwrap();
    let mut cmd = Command::new(bin());
    cmd.arg("scaling").args(args);
    cmd.env("OMPI_MCA_orte_tmpdir_base", &session);
    cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl_tcp_if_include", "lo")
        .env("OMPI_MCA_oob_tcp_if_include", "lo")
        .env_remove("SLURM_JOB_ID");
    cmd
}

fn scaling(args: &[&str]) -> Run {
    let r = run_with_timeout(scaling_cmd(args), Duration::from_secs(300));
    assert!(
        !r.timed_out,
        "scaling {args:?} hung:\n{}\n{}",
        r.stdout, r.stderr
    );
    r
}

/// A small 2000 x 500 f64 file in 100-row chunks (8 MB, 10 blocks of 800 kB).
fn small_file(d: &Path) -> String {
    let f = d.join("a.h5");
    let fs = f.to_str().unwrap().to_string();
    mpirun(
        1,
        &[
            "generate", &fs, "--var", "a", "--shape", "2000,500", "--chunks", "100,500",
        ],
    )
    .ok();
    fs
}

fn records(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line ({e}): {l}")))
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Median reduce time per rank count, from the measured runs of the results file.
fn medians(recs: &[Value]) -> BTreeMap<u64, f64> {
    let mut by: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for r in recs
        .iter()
        .filter(|r| r["ok"] == true && r["warmup"] == false)
    {
        by.entry(r["ranks"].as_u64().unwrap())
            .or_default()
            .push(r["reduce"]["timings"]["total_s"].as_f64().unwrap());
    }
    by.into_iter().map(|(p, v)| (p, median(v))).collect()
}

fn measured_pairs(recs: &[Value]) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = recs
        .iter()
        .filter(|r| r["ok"] == true && r["warmup"] == false)
        .map(|r| (r["ranks"].as_u64().unwrap(), r["repeat"].as_u64().unwrap()))
        .collect();
    v.sort();
    v
}

fn check_plots(dir: &Path, mode: &str) {
    for fig in ["speedup", "efficiency", "breakdown"] {
        let svg = std::fs::read_to_string(dir.join(format!("{mode}-{fig}.svg"))).unwrap();
        assert!(
            (svg.starts_with("<svg") || svg.starts_with("<?xml")) && svg.contains("</svg>"),
            "{mode}-{fig}.svg is not SVG"
        );
        assert!(
            svg.contains("MPI ranks"),
            "{mode}-{fig}.svg has no axis label"
        );
        let png = dir.join(format!("{mode}-{fig}.png"));
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", png.display());
        let mut dec = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; dec.output_buffer_size().unwrap()];
        let info = dec.next_frame(&mut buf).unwrap();
        assert!(info.width > 0 && info.height > 0);
        let px = &buf[..info.buffer_size()];
        // Not blank: more than one colour.
        let first = &px[..3];
        assert!(
            px.chunks(3).any(|c| c != first),
            "{} is a blank image",
            png.display()
        );
    }
}

#[test]
fn strong_study_p123_report_and_plots() {
    let d = scratch("scaling-strong");
    let f = small_file(&d);
    let out = d.join("study");
    let o = out.to_str().unwrap();
    let r = scaling(&[
        "run",
        "--mode",
        "strong",
        "--ranks",
        "1,2,3",
        "--repeat",
        "2",
        "--launcher",
        "mpirun",
        "--out",
        o,
        "--",
        "reduce",
        &f,
        "--var",
        "a",
        "--op",
        "mean,std",
        "--block-bytes",
        "800kB",
    ])
    .ok();
    assert!(r.stdout.contains("6 to run"), "{}", r.stdout);
    // One progress line per launched run (3 warm-ups + 6) on stderr only.
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains(" chunkwise scaling: "))
        .collect();
    assert_eq!(lines.len(), 9, "{}", r.stderr);
    assert!(
        lines[8].contains("9 of 9 runs done (P=3, repeat 2"),
        "{}",
        lines[8]
    );
    assert!(!r.stdout.contains("runs done"), "{}", r.stdout);
    let recs = records(&out);
    // A warm-up and two measured runs per rank count, in order.
    assert_eq!(recs.len(), 9);
    let want: Vec<(u64, u64)> = (1..=3).flat_map(|p| [(p, 1), (p, 2)]).collect();
    assert_eq!(measured_pairs(&recs), want);
    for r in &recs {
        let p = r["ranks"].as_u64().unwrap();
        assert_eq!(r["mode"], "strong");
        assert_eq!(
            r["reduce"]["ranks"].as_u64(),
            Some(p),
            "the run really had P ranks"
        );
        assert_eq!(r["reduce"]["threads"], 1);
        assert_eq!(r["reduce"]["bytes_read"], 8_000_000);
        assert_eq!(r["reduce"]["n_blocks"], 10);
        assert!(
            r["wall_s"].as_f64().unwrap() >= r["reduce"]["timings"]["total_s"].as_f64().unwrap()
        );
        assert_eq!(r["command"][0], "mpirun");
        assert!(
            r["reduce"]["hosts"]
                .as_array()
                .is_some_and(|h| !h.is_empty())
        );
    }
    assert_eq!(recs.iter().filter(|r| r["warmup"] == true).count(), 3);

    // Report: speedup and efficiency recomputed from the recorded runs.
    let t = medians(&recs);
    let j = scaling(&["report", o, "--format", "json"]).ok().json();
    let rows = j["tables"][0]["rows"].as_array().unwrap();
    assert_eq!(j["tables"][0]["mode"], "strong");
    assert_eq!(rows.len(), 3);
    for row in rows {
        let p = row["ranks"].as_u64().unwrap();
        let s = t[&1] / t[&p];
        close("median", row["median_s"].as_f64().unwrap(), t[&p], 1e-12);
        close("speedup", row["speedup"].as_f64().unwrap(), s, 1e-12);
        close(
            "efficiency",
            row["efficiency"].as_f64().unwrap(),
            s / p as f64,
            1e-12,
        );
        close(
            "throughput",
            row["throughput_gbs"].as_f64().unwrap(),
            8e6 / t[&p] / 1e9,
            1e-12,
        );
        assert_eq!(row["runs"], 2);
        let shares: f64 = ["read_pct", "compute_pct", "comm_pct"]
            .iter()
            .map(|k| row[k].as_f64().unwrap())
            .sum();
        close("phase shares", shares, 100.0, 1e-9);
    }
    let csv = scaling(&["report", o, "--format", "csv", "--no-plots"])
        .ok()
        .stdout;
    let mut lines = csv.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| head.iter().position(|h| *h == n).unwrap();
    let mut n = 0;
    for l in lines {
        let c: Vec<&str> = l.split(',').collect();
        let p: u64 = c[col("ranks")].parse().unwrap();
        let s = t[&1] / t[&p];
        close("csv speedup", c[col("speedup")].parse().unwrap(), s, 1e-12);
        close(
            "csv efficiency",
            c[col("efficiency")].parse().unwrap(),
            s / p as f64,
            1e-12,
        );
        n += 1;
    }
    assert_eq!(n, 3);
    let md = scaling(&["report", o]).ok().stdout;
    assert!(
        md.contains("## strong scaling") && md.contains("| 3 | 1 | 1 | 2 |"),
        "{md}"
    );
    check_plots(&out, "strong");
}

#[test]
fn weak_study_data_grows_with_p() {
    let d = scratch("scaling-weak");
    let out = d.join("weak");
    let o = out.to_str().unwrap();
    scaling(&[
        "run",
        "--mode",
        "weak",
        "--ranks",
        "1,2",
        "--repeat",
        "1",
        "--bytes-per-rank",
        "1MB",
        "--launcher",
        "mpirun",
        "--out",
        o,
        "--",
        "reduce",
        "--op",
        "mean",
    ])
    .ok();
    let recs = records(&out);
    assert_eq!(measured_pairs(&recs), vec![(1, 1), (2, 1)]);
    let by_p = |p: u64| {
        recs.iter()
            .find(|r| r["ranks"] == p && r["warmup"] == false)
            .unwrap()
    };
    let (r1, r2) = (by_p(1), by_p(2));
    // 1 MB per rank of f64 in rows of 1024: 123 rows per rank.
    assert_eq!(r1["reduce"]["shape"], serde_json::json!([123, 1024]));
    assert_eq!(r2["reduce"]["shape"], serde_json::json!([246, 1024]));
    assert_eq!(r1["reduce"]["bytes_read"], 123 * 1024 * 8);
    assert_eq!(r2["reduce"]["bytes_read"], 2 * 123 * 1024 * 8);
    let size = |p: u64| {
        std::fs::metadata(out.join(format!("data/weak-{p}.h5")))
            .unwrap()
            .len()
    };
    assert!(size(2) > size(1) + 900_000, "{} vs {}", size(2), size(1));
    assert_eq!(r2["file"], out.join("data/weak-2.h5").to_str().unwrap());
    let t = medians(&recs);
    let j = scaling(&["report", o, "--format", "json"]).ok().json();
    let rows = j["tables"][0]["rows"].as_array().unwrap();
    assert_eq!(j["tables"][0]["mode"], "weak");
    close(
        "weak efficiency",
        rows[1]["efficiency"].as_f64().unwrap(),
        t[&1] / t[&2],
        1e-12,
    );
    close(
        "scaled speedup",
        rows[1]["speedup"].as_f64().unwrap(),
        2.0 * t[&1] / t[&2],
        1e-12,
    );
    check_plots(&out, "weak");

    // Strong mode without a file: one dataset of --bytes, the same for every P.
    let strong = d.join("strong");
    scaling(&[
        "run",
        "--mode",
        "strong",
        "--ranks",
        "1,2",
        "--repeat",
        "1",
        "--bytes",
        "2MB",
        "--dtype",
        "f32",
        "--launcher",
        "mpirun",
        "--out",
        strong.to_str().unwrap(),
        "--",
        "reduce",
        "--var",
        "t",
        "--op",
        "count",
    ])
    .ok();
    let recs = records(&strong);
    assert_eq!(measured_pairs(&recs), vec![(1, 1), (2, 1)]);
    for r in &recs {
        // 2 MB of f32 in rows of 1024: 489 rows.
        assert_eq!(r["reduce"]["shape"], serde_json::json!([489, 1024]));
        assert_eq!(r["reduce"]["var"], "t");
        assert_eq!(r["reduce"]["dtype"], "f32");
        assert_eq!(r["file"], strong.join("data/strong.h5").to_str().unwrap());
    }
}

#[test]
fn interrupted_study_keeps_runs_and_resumes() {
    use std::os::unix::process::CommandExt;
    let d = scratch("scaling-resume");
    let f = small_file(&d);
    let out = d.join("study");
    let o = out.to_str().unwrap();
    let args = [
        "run",
        "--mode",
        "strong",
        "--ranks",
        "1,2,3",
        "--repeat",
        "2",
        "--launcher",
        "mpirun",
        "--out",
        o,
        "--",
        "reduce",
        &f,
        "--var",
        "a",
        "--op",
        "mean",
    ];
    // Start the study in its own process group; SIGKILL the group (the study
    // and the mpirun it is running) as soon as the first measured run is written.
    let mut cmd = scaling_cmd(&args);
    cmd.process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let results = out.join("results.jsonl");
    let t0 = Instant::now();
    let mut lock_checked = false;
    loop {
        let text = std::fs::read_to_string(&results).unwrap_or_default();
        if text.contains("\"warmup\":false") {
            break;
        }
        if !lock_checked && text.contains("\"warmup\":true") {
            lock_checked = true;
            // While it runs, a second study in the same directory is refused.
            let r = scaling(&args);
            assert!(
                r.code == Some(1) && r.stderr.contains("another `chunkwise scaling run`"),
                "{}",
                r.stderr
            );
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "study ended before it was interrupted"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no result line appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: kill(2) on the process group this test started.
    assert_eq!(
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) },
        0
    );
    let st = child.wait().unwrap();
    assert!(lock_checked, "the lock was not tried");
    assert!(st.code().is_none(), "the study was killed, not finished");
    let text = std::fs::read_to_string(&results).unwrap();
    let kept_text = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    let kept: Vec<Value> = kept_text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kept_pairs = measured_pairs(&kept);
    assert!(
        !kept_pairs.is_empty() && kept_pairs.len() < 6,
        "interrupted half-way: {kept_pairs:?}"
    );

    // A different study in the same directory is refused, and nothing is changed.
    let other = [
        "run",
        "--mode",
        "strong",
        "--ranks",
        "1,2,3",
        "--repeat",
        "2",
        "--launcher",
        "mpirun",
        "--out",
        o,
        "--",
        "reduce",
        &f,
        "--var",
        "a",
        "--op",
        "max",
    ];
    let r = scaling(&other);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("different study") && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read_to_string(&results).unwrap(), text);

    // Resume: the kept runs stay as they were, the missing ones are added.
    let r = scaling(&args).ok();
    assert!(
        r.stdout
            .contains(&format!("{} run(s) already done", kept_pairs.len())),
        "{}",
        r.stdout
    );
    let all = std::fs::read_to_string(&results).unwrap();
    assert!(all.starts_with(kept_text), "finished runs were rewritten");
    let recs = records(&out);
    let want: Vec<(u64, u64)> = (1..=3).flat_map(|p| [(p, 1), (p, 2)]).collect();
    assert_eq!(measured_pairs(&recs), want, "every run exactly once");
    let started = |rs: &[Value]| -> BTreeSet<(u64, u64, String)> {
        rs.iter()
            .filter(|r| r["warmup"] == false)
            .map(|r| {
                (
                    r["ranks"].as_u64().unwrap(),
                    r["repeat"].as_u64().unwrap(),
                    r["started_unix"].to_string(),
                )
            })
            .collect()
    };
    assert!(
        started(&kept).is_subset(&started(&recs)),
        "kept runs were re-run"
    );

    // A second resume has nothing to do.
    let r = scaling(&args).ok();
    assert!(
        r.stdout.contains("6 run(s) already done, 0 to run"),
        "{}",
        r.stdout
    );
    assert_eq!(std::fs::read_to_string(&results).unwrap(), all);

    // --force starts the other study over.
    let mut forced: Vec<&str> = other.to_vec();
    forced.insert(1, "--force");
    for (from, to) in [("1,2,3", "1"), ("2", "1")] {
        let i = forced.iter().position(|a| *a == from).unwrap();
        forced[i] = to;
    }
    scaling(&forced).ok();
    let recs = records(&out);
    assert_eq!(measured_pairs(&recs), vec![(1, 1)]);
    assert!(
        recs.iter()
            .all(|r| r["command"].to_string().contains("\"max\""))
    );
}

#[test]
fn failed_run_is_recorded_and_stops_the_study() {
    let d = scratch("scaling-fail");
    let f = small_file(&d);
    let out = d.join("study");
    let o = out.to_str().unwrap();
    let r = scaling(&[
        "run",
        "--mode",
        "strong",
        "--ranks",
        "1,2",
        "--repeat",
        "1",
        "--launcher",
        "mpirun",
        "--out",
        o,
        "--",
        "reduce",
        &f,
        "--var",
        "nope",
    ]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert_eq!(
        r.stderr.matches("chunkwise: error").count(),
        1,
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("'nope' not found") && r.stderr.contains("resume"),
        "{}",
        r.stderr
    );
    let recs = records(&out);
    assert_eq!(recs.len(), 1, "stopped after the first failure");
    assert_eq!(recs[0]["ok"], false);
    assert!(
        recs[0]["error"]
            .as_str()
            .unwrap()
            .contains("'nope' not found")
    );
    // The report has nothing to show.
    let r = scaling(&["report", o]);
    assert!(
        r.code == Some(1) && r.stderr.contains("no finished measured runs"),
        "{}",
        r.stderr
    );
    // Bad studies are refused before anything is launched.
    for (args, needle) in [
        (
            vec![
                "run",
                "--mode",
                "weak",
                "--ranks",
                "1",
                "--bytes-per-rank",
                "1MB",
                "--",
                "reduce",
                f.as_str(),
                "--var",
                "a",
            ],
            "leave the input file",
        ),
        (
            vec![
                "run", "--mode", "weak", "--ranks", "1", "--", "reduce", "--op", "mean",
            ],
            "--bytes-per-rank",
        ),
        (
            vec![
                "run", "--mode", "strong", "--ranks", "1", "--", "reduce", "--var", "a",
            ],
            "--bytes",
        ),
        (
            vec![
                "run",
                "--mode",
                "strong",
                "--ranks",
                "0,1",
                "--",
                "reduce",
                f.as_str(),
                "--var",
                "a",
            ],
            "--ranks",
        ),
        (
            vec![
                "run",
                "--mode",
                "strong",
                "--ranks",
                "1",
                "--",
                "reduce",
                f.as_str(),
                "--var",
                "a",
                "--threads",
                "2",
            ],
            "scaling run --threads",
        ),
    ] {
        let mut a = args.clone();
        let fresh = d.join("fresh");
        a.splice(1..1, ["--out", fresh.to_str().unwrap()]);
        let r = scaling(&a);
        assert_eq!(r.code, Some(1), "{a:?}");
        assert!(r.stderr.contains(needle), "{a:?}: {}", r.stderr);
        assert!(!fresh.join("results.jsonl").exists());
    }
    let missing: PathBuf = d.join("none");
    let r = scaling(&["report", missing.to_str().unwrap()]);
    assert!(
        r.code == Some(1) && r.stderr.contains("scaling run"),
        "{}",
        r.stderr
    );
}

/// Processes whose command line mentions `needle` (other than this test).
fn processes_with(needle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == me {
            continue;
        }
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(needle) {
                found.push(format!("{name}: {c}"));
            }
        }
    }
    found
}

#[test]
fn sigterm_stops_the_study_and_its_run() {
    let d = scratch("scaling-sigterm");
    let f = small_file(&d);
    let out = d.join("study");
    let o = out.to_str().unwrap();
    let args = [
        "run",
        "--mode",
        "strong",
        "--ranks",
        "1,2",
        "--repeat",
        "20",
        "--launcher",
        "mpirun",
        "--out",
        o,
        "--",
        "reduce",
        &f,
        "--var",
        "a",
        "--op",
        "mean",
    ];
    let mut cmd = scaling_cmd(&args);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let results = out.join("results.jsonl");
    let t0 = Instant::now();
    while !std::fs::read_to_string(&results)
        .unwrap_or_default()
        .contains("\"warmup\":false")
    {
        assert!(child.try_wait().unwrap().is_none(), "study ended early");
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no result line appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // SIGTERM to the study process alone (as `kill PID` or a scheduler would send).
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let t1 = Instant::now();
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t1.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the study did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(st.code(), Some(1), "{err}");
    assert!(
        err.contains("interrupted by SIGTERM") && err.contains("resume"),
        "{err}"
    );
    // The launched run went with it, and every recorded line is a complete, successful run.
    let t2 = Instant::now();
    while !processes_with(&f).is_empty() && t2.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        processes_with(&f).is_empty(),
        "left running: {:?}",
        processes_with(&f)
    );
    let recs = records(&out);
    assert!(!recs.is_empty() && recs.len() < 42);
    assert!(
        recs.iter().all(|r| r["ok"] == true),
        "an interrupted run was recorded"
    );
}

#[test]
fn a_run_over_its_timeout_is_stopped_and_recorded_as_failed() {
    let d = scratch("scaling-timeout");
    let f = small_file(&d);
    let out = d.join("study");
    let mut cmd = scaling_cmd(&[
        "run",
        "--mode",
        "strong",
        "--ranks",
        "1",
        "--repeat",
        "1",
        "--timeout",
        "2s",
        "--launcher",
        "mpirun",
        "--out",
        out.to_str().unwrap(),
        "--",
        "reduce",
        &f,
        "--var",
        "a",
        "--block-bytes",
        "800kB",
    ]);
    // 10 blocks at 1 s each: far over the 2 s limit.
    cmd.env("CHUNKWISE_TEST_SLOW", "1000");
    let r = run_with_timeout(cmd, Duration::from_secs(60));
    assert!(!r.timed_out, "hung");
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("timed out after 2 s"), "{}", r.stderr);
    let recs = records(&out);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["ok"], false);
    assert!(recs[0]["error"].as_str().unwrap().contains("timed out"));
}
