//! A real Slurm: start munge, slurmctld and two emulated slurmd nodes
//! (tests/slurm/start.sh), submit the committed `jobscripts/local/reduce.sh`
//! with `sbatch --wait` — `srun` launches 2 ranks, one per node — and check the
//! job's output against a reference computed here from `h5dump`; then submit
//! `jobscripts/local/scaling-strong.sh`, whose `chunkwise scaling run` launches
//! every run with `srun` inside the allocation, and check its results and report.

mod common;
use common::*;
use std::path::PathBuf;
use std::process::Command;

/// Stops the Slurm this test started, whatever happens.
struct SlurmGuard {
    repo: PathBuf,
    state: PathBuf,
}

impl Drop for SlurmGuard {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(self.repo.join("tests/slurm/stop.sh"))
            .env("CHUNKWISE_SLURM_STATE", &self.state)
            .status();
    }
}

#[test]
fn local_reduce_jobscript_runs_under_slurm_on_two_nodes() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let work = scratch("slurm");
    std::fs::create_dir_all(work.join("data")).unwrap();
    let data = work.join("data/default.h5");
    mpirun(
        2,
        &[
            "generate",
            data.to_str().unwrap(),
            "--var",
            "temperature",
            "--shape",
            "600,500",
            "--chunks",
            "50,500",
            "--dist",
            "normal:15,8",
            "--seed",
            "1",
        ],
    )
    .ok();
    let (v, _) = decode(&h5dump_raw(&data, "/temperature"), "f64");
    let r = reference(&v);

    let state = work.join("slurm-state");
    let start = Command::new("bash")
        .arg(repo.join("tests/slurm/start.sh"))
        .env("CHUNKWISE_SLURM_STATE", &state)
        .output()
        .unwrap();
    let _guard = SlurmGuard {
        repo: repo.clone(),
        state: state.clone(),
    };
    assert!(
        start.status.success(),
        "slurm start failed:\n{}",
        String::from_utf8_lossy(&start.stderr)
    );
    let conf = state.join("slurm.conf");
    let out = work.join("job.out");
    let mut sb = Command::new("sbatch");
    sb.args(["--wait", "--parsable"])
        .arg(format!("--chdir={}", work.display()))
        .arg(format!("--output={}", out.display()))
        .arg(repo.join("jobscripts/local/reduce.sh"))
        .env("SLURM_CONF", &conf)
        .env("CHUNKWISE_HOME", &repo)
        .env("CHUNKWISE", bin());
    let run = run_with_timeout(sb, std::time::Duration::from_secs(180));
    let log = std::fs::read_to_string(&out).unwrap_or_default();
    assert_eq!(
        run.code,
        Some(0),
        "sbatch failed: {}\n{}\njob output:\n{log}",
        run.stdout,
        run.stderr
    );
    let json_line = log
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON in job output:\n{log}"));
    let j: serde_json::Value = serde_json::from_str(json_line).unwrap();
    assert_eq!(j["ranks"], 2, "{log}");
    assert!(log.contains("2 node(s), 2 rank(s)"), "{log}");
    let res = &j["results"];
    assert_eq!(res["count"].as_u64().unwrap() as usize, r.count);
    close("sum", res["sum"].as_f64().unwrap(), r.sum, 1e-12);
    close("mean", res["mean"].as_f64().unwrap(), r.mean, 1e-12);
    close("std", res["std"].as_f64().unwrap(), r.var.sqrt(), 1e-12);
    assert_eq!(res["min"].as_f64().unwrap(), r.min);
    assert_eq!(res["max"].as_f64().unwrap(), r.max);

    // The scaling job: `scaling run` (srun for each rank count 1, 2, 4 inside
    // the allocation), then `scaling report`.
    let out = work.join("scaling.out");
    let mut sb = Command::new("sbatch");
    sb.args(["--wait", "--parsable"])
        .arg(format!("--chdir={}", work.display()))
        .arg(format!("--output={}", out.display()))
        .arg(repo.join("jobscripts/local/scaling-strong.sh"))
        .env("SLURM_CONF", &conf)
        .env("CHUNKWISE_HOME", &repo)
        .env("CHUNKWISE", bin());
    let run = run_with_timeout(sb, std::time::Duration::from_secs(300));
    let log = std::fs::read_to_string(&out).unwrap_or_default();
    assert_eq!(
        run.code,
        Some(0),
        "sbatch failed: {}\n{}\njob output:\n{log}",
        run.stdout,
        run.stderr
    );
    let job_id = run.stdout.trim().split(';').next().unwrap().to_string();
    assert!(log.contains("## strong scaling"), "{log}");
    let study = work.join("scaling-strong");
    let recs: Vec<serde_json::Value> = std::fs::read_to_string(study.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut measured: Vec<(u64, u64)> = recs
        .iter()
        .filter(|r| r["warmup"] == false && r["ok"] == true)
        .map(|r| (r["ranks"].as_u64().unwrap(), r["repeat"].as_u64().unwrap()))
        .collect();
    measured.sort();
    let want: Vec<(u64, u64)> = [1, 2, 4]
        .iter()
        .flat_map(|&p| (1..=3).map(move |r| (p, r)))
        .collect();
    assert_eq!(measured, want, "{log}");
    for r in &recs {
        assert_eq!(r["command"][0], "srun", "{r}");
        assert_eq!(r["slurm_job_id"].as_str(), Some(job_id.as_str()));
        assert_eq!(r["reduce"]["ranks"], r["ranks"]);
    }
    for f in [
        "strong-speedup.png",
        "strong-efficiency.svg",
        "strong-breakdown.png",
    ] {
        assert!(study.join(f).is_file(), "missing {f}");
    }
}
