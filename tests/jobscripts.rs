//! Committed job scripts are exactly what `chunkwise jobscript` renders,
//! they pass `bash -n` and `shellcheck`, and `plan --jobscript` renders a
//! script that uses the plan's numbers.

mod common;
use common::*;
use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rendered_scripts() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for site in std::fs::read_dir(repo().join("jobscripts")).unwrap() {
        let site = site.unwrap().path();
        if !site.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&site).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "sh") && f.file_name().unwrap() != "quickstart.sh"
            {
                out.push(f);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_site_has_its_three_jobs() {
    for site in ["kebnekaise", "cosmos", "pelle", "tetralith", "local"] {
        for job in ["reduce.sh", "scaling-strong.sh", "scaling-weak.sh"] {
            let p = repo().join("jobscripts").join(site).join(job);
            assert!(p.is_file(), "missing {}", p.display());
        }
        assert!(
            repo().join("modules").join(format!("{site}.sh")).is_file(),
            "missing modules/{site}.sh"
        );
    }
}

#[test]
fn committed_jobscripts_match_the_renderer() {
    let scripts = rendered_scripts();
    assert!(scripts.len() >= 15);
    for f in scripts {
        let text = std::fs::read_to_string(&f).unwrap();
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("# chunkwise-jobscript-args: "))
            .unwrap_or_else(|| panic!("{} has no chunkwise-jobscript-args line", f.display()));
        let args: Vec<String> = serde_json::from_str(line).unwrap();
        let mut all = vec!["jobscript".to_string()];
        all.extend(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let out = direct(&refs).ok().stdout;
        assert_eq!(
            out,
            text,
            "{} differs from what `chunkwise jobscript` renders; run bash jobscripts/render.sh",
            f.display()
        );
    }
}

fn shell_ok(files: &[PathBuf]) {
    for f in files {
        let st = Command::new("bash").arg("-n").arg(f).status().unwrap();
        assert!(st.success(), "bash -n {}", f.display());
    }
    let out = Command::new("shellcheck")
        .arg("-x")
        .args(files)
        .current_dir(repo())
        .output()
        .expect("shellcheck (Debian package)");
    assert!(
        out.status.success(),
        "shellcheck:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn scripts_pass_bash_n_and_shellcheck() {
    let mut files = rendered_scripts();
    for extra in [
        "jobscripts/local/quickstart.sh",
        "jobscripts/render.sh",
        "tests/run.sh",
        ".ci/run",
        "benches/throughput.sh",
        "benches/scaling-local.sh",
    ] {
        files.push(repo().join(extra));
    }
    for m in std::fs::read_dir(repo().join("modules")).unwrap() {
        files.push(m.unwrap().path());
    }
    // Relative paths so `# shellcheck source=modules/...` directives resolve from the repo root.
    let rel: Vec<PathBuf> = files
        .iter()
        .map(|f| f.strip_prefix(repo()).unwrap().to_path_buf())
        .collect();
    let abs: Vec<PathBuf> = rel.iter().map(|r| repo().join(r)).collect();
    for f in &abs {
        assert!(
            Command::new("bash")
                .arg("-n")
                .arg(f)
                .status()
                .unwrap()
                .success(),
            "bash -n {}",
            f.display()
        );
    }
    let out = Command::new("shellcheck")
        .arg("-x")
        .args(&rel)
        .current_dir(repo())
        .output()
        .expect("shellcheck (Debian package)");
    assert!(
        out.status.success(),
        "shellcheck:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn plan_renders_a_runnable_jobscript_with_its_numbers() {
    let d = scratch("plan");
    let f = d.join("a.h5");
    mpirun(
        1,
        &[
            "generate",
            f.to_str().unwrap(),
            "--var",
            "a",
            "--shape",
            "2000,1000",
            "--chunks",
            "100,1000",
        ],
    )
    .ok();
    let j = direct(&[
        "plan",
        "--file",
        f.to_str().unwrap(),
        "--var",
        "a",
        "--cluster",
        "tetralith",
        "--json",
    ])
    .ok()
    .json();
    let p = &j["plan"];
    // 16 MB in 0.8 MB chunks (unfiltered) on one thin node: reduce's policy is
    // 4 MiB blocks of whole chunks, 5 chunk rows = 500 x 1000 x 8 B = 4 MB,
    // 2000 / 500 = 4 blocks -> 8 ranks would idle, so 4 ranks.
    assert_eq!(p["block_shape"], serde_json::json!([500, 1000]));
    assert_eq!(p["n_blocks"], 4);
    assert_eq!(p["ranks"], 4);
    // The prediction is what reduce really does with this file.
    let r = mpirun(2, &["reduce", f.to_str().unwrap(), "--var", "a", "--json"])
        .ok()
        .json();
    assert_eq!(r["block_shape"], p["block_shape"]);
    assert_eq!(r["n_blocks"], p["n_blocks"]);
    assert!(
        p["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("hold only"))
    );
    let script = direct(&[
        "plan",
        "--file",
        f.to_str().unwrap(),
        "--var",
        "a",
        "--cluster",
        "tetralith",
        "--jobscript",
        "--account",
        "naiss2026-1-2",
    ])
    .ok()
    .stdout;
    // No --block-bytes: the job applies the policy the plan predicted with.
    assert!(!script.contains("--block-bytes"), "{script}");
    assert!(
        script.contains("#SBATCH --ntasks-per-node=4") && script.contains("mpprun"),
        "{script}"
    );
    let sf = d.join("job.sh");
    std::fs::write(&sf, &script).unwrap();
    shell_ok(&[sf]);
    // Bad input: one clear error.
    let bad = direct(&["plan", "--bytes", "3.2XB", "--cluster", "tetralith"]);
    assert!(
        bad.code == Some(1) && bad.stderr.contains("--bytes"),
        "{}",
        bad.stderr
    );
    let bad = direct(&["plan", "--bytes", "3GB", "--cluster", "atlantis"]);
    assert!(
        bad.code == Some(1) && bad.stderr.contains("kebnekaise"),
        "{}",
        bad.stderr
    );
}
