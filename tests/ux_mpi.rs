//! What users expect around the core: progress on standard error (lines in
//! a log file, a bar on a terminal, nothing with `--progress none`, results
//! unchanged), `inspect` and `plan` on every input format (checked against
//! NumPy and zarr-python), shell completions that bash loads and man pages
//! that `man` renders.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A generated 2-D f64 file of 96 rows of 1000 values (768 kB), one row
/// per chunk (so blocks of 8000 bytes are single rows).
fn generated(d: &Path) -> std::path::PathBuf {
    let f = d.join("g.h5");
    mpirun(
        2,
        &[
            "generate",
            s(&f),
            "--var",
            "a",
            "--shape",
            "96,1000",
            "--chunks",
            "1,1000",
            "--nan-fraction",
            "0.01",
            "--progress",
            "none",
        ],
    )
    .ok();
    f
}

/// `(elapsed seconds, percent)` of every progress line of `what` in `stderr`.
fn progress_lines(stderr: &str, what: &str) -> Vec<(f64, f64)> {
    let tag = format!(" chunkwise {what}: ");
    stderr
        .lines()
        .filter(|l| l.contains(&tag))
        .map(|l| {
            // 2026-12-02T19:04:05.123Z chunkwise reduce: X of Y (P%), R/s, elapsed E s, ETA T
            assert!(l.as_bytes()[10] == b'T' && l.contains("Z chunkwise"), "{l}");
            let pct: f64 = l
                .split(" (")
                .nth(1)
                .unwrap()
                .split('%')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let el: f64 = l
                .split("elapsed ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(l.contains("/s, elapsed") && l.contains(", ETA "), "{l}");
            (el, pct)
        })
        .collect()
}

#[test]
fn progress_lines_at_the_interval_global_and_results_unchanged() {
    let d = scratch("progress");
    let f = generated(&d);
    // 96 one-row blocks in all, each delayed 100 ms.
    let args = |mode: &'static str| -> Vec<String> {
        [
            "reduce",
            s(&f),
            "--var",
            "a",
            "--block-bytes",
            "8000",
            "--json",
            "--progress",
            mode,
            "--progress-interval",
            "0.5s",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect()
    };
    for p in [2, 3] {
        let a = args("lines");
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let r = mpirun_env(p, &a, &[("CHUNKWISE_TEST_SLOW", "100")]).ok();
        let lines = progress_lines(&r.stderr, "reduce");
        // Every rank sleeps at least its blocks × 100 ms.
        let min_run = (96 / p) as f64 * 0.1;
        assert!(
            lines.len() as f64 >= (min_run / 0.5).floor() - 1.0 && lines.len() >= 2,
            "P={p}: too few lines for a run of at least {min_run} s:\n{}",
            r.stderr
        );
        // At most one line per interval: elapsed figures 0.5 s apart
        // (printed with one decimal).
        for w in lines.windows(2) {
            assert!(
                w[1].0 - w[0].0 >= 0.45,
                "P={p}: lines closer than the interval: {lines:?}"
            );
        }
        // The figure is global: in the last second every rank has at most
        // 10 of its blocks left, so a line shows more than rank 0's half.
        let max = lines.iter().map(|l| l.1).fold(0.0, f64::max);
        assert!(
            max > 100.0 / p as f64,
            "P={p}: never above rank 0's share: {lines:?}"
        );
        assert!(lines.iter().all(|l| l.1 <= 100.0), "{lines:?}");
        // Standard output is the JSON alone.
        assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
        let with = r.json();
        let a = args("none");
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let r = mpirun(p, &a).ok();
        assert_eq!(r.stderr, "", "--progress none printed: {}", r.stderr);
        let without = r.json();
        // Bit-identical: every result, as printed with round-trip floats.
        assert_eq!(with["results"], without["results"], "P={p}");
        assert_eq!(with["count"], without["count"]);
    }
}

#[test]
fn progress_on_convert_and_generate_and_none_in_a_log() {
    let d = scratch("progress-cg");
    let f = generated(&d);
    let out = d.join("c.h5");
    let r = mpirun_env(
        2,
        &[
            "convert",
            s(&f),
            s(&out),
            "--var",
            "a",
            "--block-bytes",
            "8000",
            "--progress-interval",
            "300ms",
        ],
        &[("CHUNKWISE_TEST_SLOW", "60")],
    )
    .ok();
    // auto, not a terminal: lines.
    assert!(
        progress_lines(&r.stderr, "convert").len() >= 2,
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("chunkwise convert:"), "{}", r.stdout);
    let g = d.join("g2.h5");
    let r = mpirun_env(
        2,
        &[
            "generate",
            s(&g),
            "--var",
            "b",
            "--shape",
            "40,1000",
            "--chunks",
            "2,1000",
            "--block-bytes",
            "16000",
            "--progress",
            "lines",
            "--progress-interval",
            "0.2",
        ],
        &[("CHUNKWISE_TEST_SLOW", "50")],
    )
    .ok();
    assert!(
        !progress_lines(&r.stderr, "generate").is_empty(),
        "{}",
        r.stderr
    );
    // Default interval (30 s) in a short run: nothing on stderr.
    let r = mpirun(2, &["reduce", s(&f), "--var", "a", "--json"]).ok();
    assert_eq!(r.stderr, "");
}

/// Remove terminal escape sequences and carriage-return redraws.
fn strip_ansi(t: &str) -> String {
    let mut out = String::new();
    let mut it = t.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\x1b' {
            if it.peek() == Some(&'[') {
                it.next();
                while let Some(&n) = it.peek() {
                    it.next();
                    if n.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[test]
fn bar_in_a_pseudo_terminal_leaves_json_intact() {
    let d = scratch("progress-pty");
    let f = generated(&d);
    let cmd = format!(
        "{} reduce {} --var a --block-bytes 8000 --json --progress auto",
        bin(),
        s(&f)
    );
    // util-linux `script` runs the command in a new pseudo-terminal.
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("CHUNKWISE_TEST_SLOW", "20")
        .output()
        .expect("script (util-linux)");
    assert!(out.status.success(), "{out:?}");
    let raw = String::from_utf8_lossy(&out.stdout);
    let text = strip_ansi(&raw);
    assert!(
        text.contains("reduce [") && text.contains("ETA") && text.contains("B/s"),
        "no bar drawn:\n{raw:?}"
    );
    assert!(
        !text.contains(" chunkwise reduce: "),
        "lines on a terminal: {text}"
    );
    // The JSON line is whole: the bar is cleared before it is printed.
    let json = text
        .split(['\r', '\n'])
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line in {text:?}"));
    let j: serde_json::Value = serde_json::from_str(json.trim()).expect("JSON intact");
    let plain = direct(&[
        "reduce",
        s(&f),
        "--var",
        "a",
        "--block-bytes",
        "8000",
        "--json",
    ])
    .ok()
    .json();
    assert_eq!(j["results"], plain["results"]);
}

#[test]
fn completions_load_in_bash_and_man_pages_render() {
    let r = direct(&["completions", "bash"]).ok();
    assert!(r.stdout.contains("_chunkwise"), "{}", r.stdout);
    let d = scratch("completions");
    let f = d.join("chunkwise.bash");
    std::fs::write(&f, &r.stdout).unwrap();
    let out = Command::new("bash")
        .args(["-c", &format!("source {} && complete -p chunkwise", s(&f))])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let spec = String::from_utf8_lossy(&out.stdout);
    assert!(
        spec.contains("_chunkwise") && spec.trim_end().ends_with("chunkwise"),
        "{spec}"
    );
    // The completion function offers the commands and a command's flags.
    let probe = format!(
        "source {} && COMP_WORDS=(chunkwise re) COMP_CWORD=1 COMP_LINE='chunkwise re' COMP_POINT=12 && _chunkwise chunkwise re chunkwise && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        s(&f)
    );
    let out = Command::new("bash").args(["-c", &probe]).output().unwrap();
    let words = String::from_utf8_lossy(&out.stdout);
    assert!(words.lines().any(|w| w == "reduce"), "{out:?}");
    for (sh, needle) in [
        ("zsh", "#compdef chunkwise"),
        ("fish", "complete -c chunkwise"),
    ] {
        let r = direct(&["completions", sh]).ok();
        assert!(
            r.stdout.contains(needle) && r.stdout.contains("progress-interval"),
            "{sh}"
        );
    }
    // Man pages: the main one and one per command, rendered by man(1).
    let r = direct(&["man"]).ok();
    let page = d.join("chunkwise.1");
    std::fs::write(&page, &r.stdout).unwrap();
    let render = |p: &Path| {
        let out = Command::new("man")
            .args(["-P", "cat", "-l"])
            .arg(p)
            .env("MANWIDTH", "100")
            .output()
            .expect("man (man-db)");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = render(&page);
    for want in ["NAME", "SYNOPSIS", "chunkwise", "reduce", "completions"] {
        assert!(text.contains(want), "no {want} in:\n{text}");
    }
    direct(&["man", "--dir", s(&d)]).ok();
    let text = render(&d.join("chunkwise-reduce.1"));
    assert!(
        text.contains("--block-bytes") && text.contains("--progress"),
        "{text}"
    );
    expect_error(&["man", "nosuch"], "no command 'nosuch'");
}

/// Writes an `.npy`, a big-endian raw file and a gzip Zarr v3 array with
/// NumPy / zarr-python, and prints what those libraries report about them.
const WRITER: &str = r#"
import json, sys, numpy as np, zarr
d = sys.argv[1]
a = (np.arange(3 * 4 * 5, dtype=np.float32) / 7).reshape(3, 4, 5)
np.save(d + "/a.npy", a)
b = np.arange(6 * 7, dtype=">i2").reshape(6, 7)
b.tofile(d + "/b.raw")
z = zarr.create_array(d + "/c.zarr", shape=(10, 9), chunks=(4, 5), dtype="uint16",
                      compressors=zarr.codecs.GzipCodec(level=5),
                      dimension_names=["y", "x"], attributes={"units": "K"}, fill_value=7)
z[:8, :] = np.arange(8 * 9, dtype="uint16").reshape(8, 9)
g = zarr.open_group(d + "/g.zarr", mode="w", attributes={"title": "t"})
g.create_array("v", shape=(5,), chunks=(2,), dtype="float64", dimension_names=["t"])[:] = 1.5
m = np.load(d + "/a.npy", mmap_mode="r")
zz = zarr.open_array(d + "/c.zarr")
print(json.dumps({"npy": [list(m.shape), str(m.dtype)],
                  "zarr": [list(zz.shape), str(zz.dtype), list(zz.chunks)],
                  "raw_dtype": np.dtype(">i2").name}))
"#;

#[test]
fn inspect_and_plan_describe_every_input_like_numpy_and_zarr() {
    let Some(py) = python_with("numpy, zarr") else {
        panic!("no Python with numpy and zarr (modules/local.sh installs them in .venv-test)");
    };
    let d = scratch("inspect-all");
    let out = Command::new(py)
        .args(["-c", WRITER, s(&d)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let want: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let one = |args: &[&str]| {
        let j = direct(args).ok().json();
        let ds = j["datasets"].as_array().unwrap();
        assert_eq!(ds.len(), 1, "{j}");
        (j["format"].clone(), ds[0].clone())
    };
    // .npy
    let (fmt, a) = one(&["inspect", s(&d.join("a.npy")), "--json"]);
    assert_eq!(fmt, "npy");
    assert_eq!(a["shape"], want["npy"][0]);
    assert_eq!(a["dtype"], want["npy"][1]);
    assert_eq!(a["logical_bytes"], 3 * 4 * 5 * 4);
    assert_eq!(a["storage_bytes"], 3 * 4 * 5 * 4);
    // raw, big-endian int16
    let raw = s(&d.join("b.raw")).to_string();
    let (fmt, b) = one(&[
        "inspect",
        &raw,
        "--raw-dtype",
        ">i2",
        "--raw-shape",
        "6,7",
        "--json",
    ]);
    assert_eq!(fmt, "raw");
    assert_eq!(b["shape"], serde_json::json!([6, 7]));
    assert_eq!(b["dtype"], want["raw_dtype"]);
    expect_error(
        &["inspect", &raw, "--raw-dtype", ">i2", "--raw-shape", "6,8"],
        "",
    );
    // Zarr v3 array
    let (fmt, c) = one(&["inspect", s(&d.join("c.zarr")), "--json"]);
    assert_eq!(fmt, "zarr");
    assert_eq!(c["shape"], want["zarr"][0]);
    assert_eq!(c["dtype"], want["zarr"][1]);
    assert_eq!(c["chunks"], want["zarr"][2]);
    assert_eq!(c["dims"], serde_json::json!(["y", "x"]));
    assert_eq!(c["fill_value"], "7");
    assert!(
        c["filters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().starts_with("gzip(level=5")),
        "{c}"
    );
    assert!(
        c["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "units" && a["value"] == "K")
    );
    // Zarr v3 group: its attributes and arrays.
    let j = direct(&["inspect", s(&d.join("g.zarr")), "--json"])
        .ok()
        .json();
    assert_eq!(j["datasets"][0]["path"], "/v");
    assert_eq!(j["datasets"][0]["shape"], serde_json::json!([5]));
    assert_eq!(j["groups"][0]["attributes"][0]["name"], "title");
    let text = direct(&["inspect", s(&d.join("c.zarr"))]).ok().stdout;
    assert!(text.contains("/c uint16 (y=10, x=9)"), "{text}");
    // plan: same planner input as from an HDF5 file of the same array.
    let plan = |args: &[&str]| {
        let mut a = vec!["plan", "--cluster", "local", "--json"];
        a.extend_from_slice(args);
        direct(&a).ok().json()["plan"].clone()
    };
    let h = d.join("c.h5");
    mpirun(
        1,
        &["convert", s(&d.join("c.zarr")), s(&h), "--progress", "none"],
    )
    .ok();
    let pz = plan(&["--file", s(&d.join("c.zarr"))]);
    let ph = plan(&["--file", s(&h), "--var", "c"]);
    assert_eq!(pz["n_blocks"], ph["n_blocks"]);
    assert_eq!(pz["block_shape"], ph["block_shape"]);
    let pn = plan(&["--file", s(&d.join("a.npy"))]);
    assert!(pn["n_blocks"].as_u64().unwrap() >= 1, "{pn}");
    let pr = plan(&["--file", &raw, "--raw-dtype", ">i2", "--raw-shape", "6,7"]);
    assert!(pr["n_blocks"].as_u64().unwrap() >= 1, "{pr}");
    // The rendered job script reads the raw input the same way.
    let r = direct(&[
        "plan",
        "--cluster",
        "local",
        "--file",
        &raw,
        "--raw-dtype",
        ">i2",
        "--raw-shape",
        "6,7",
        "--jobscript",
        "--account",
        "p1",
    ])
    .ok();
    assert!(
        r.stdout.contains("--raw-dtype '>i2'") || r.stdout.contains("--raw-dtype >i2"),
        "{}",
        r.stdout
    );
    expect_error(&["plan", "--cluster", "local", "--file", s(&h)], "--var");
}
