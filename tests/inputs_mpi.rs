//! Issue 16, inputs: what `chunkwise` reads must never give a wrong name, a
//! silent answer, a panic or a hang — coordinate variables named by their own
//! dimension, 0-d variables, every HDF5 type h5py writes, link cycles,
//! non-regular files, absurd thread counts, huge results, many tiny chunks
//! and damaged chunk indexes. Inputs are written inside each test by ncgen or
//! h5py (the test venv), and values are checked against closed forms or
//! NumPy on what h5py reads.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Run a Python script (the test venv's h5py/NumPy) with `args`; its stdout.
fn py(script: &str, args: &[&str]) -> String {
    run_python("h5py, numpy", script, args)
}

/// Write `cdl` to `dir/NAME.cdl` and build it with `ncgen -4`.
fn ncgen_text(dir: &Path, name: &str, cdl: &str) -> PathBuf {
    let src = dir.join(format!("{name}.cdl"));
    std::fs::write(&src, cdl).unwrap();
    let out = dir.join(format!("{name}.nc"));
    let st = Command::new("ncgen")
        .args(["-4", "-o", s(&out), s(&src)])
        .status()
        .expect("ncgen (netcdf-bin)");
    assert!(st.success(), "ncgen failed for {name}");
    out
}

/// Item 1: a coordinate variable is indexed by its own dimension, in
/// `reduce --select/--dim` and in `inspect` alike.
#[test]
fn coordinate_variable_is_named_by_its_own_dimension() {
    let d = scratch("own-dim");
    let nc = ncgen(&d, "climate");
    let f = s(&nc);
    for p in [1, 2] {
        // lat = 60, 30, -30, -60: the first two average to 45.
        let j = reduce_json(
            p,
            &[f, "--var", "lat", "--select", "lat=0:2", "--op", "mean"],
        );
        assert_eq!(j["results"]["mean"].as_f64(), Some(45.0), "{j}");
        // By value, on its own coordinate: 30..60 holds 60 and 30.
        let j = reduce_json(
            p,
            &[f, "--var", "lat", "--select", "lat=30..60", "--op", "sum"],
        );
        assert_eq!(j["results"]["sum"].as_f64(), Some(90.0), "{j}");
        // lon = 0, 72, ..., 288: mean 144; time = 0, 31, 59, 90, 120, 151.
        let j = reduce_json(p, &[f, "--var", "lon", "--dim", "lon", "--op", "mean"]);
        assert_eq!(j["results"]["mean"].as_f64(), Some(144.0), "{j}");
        let j = reduce_json(p, &[f, "--var", "time", "--dim", "time", "--op", "sum"]);
        assert_eq!(j["results"]["sum"].as_f64(), Some(451.0), "{j}");
    }
    // Item 2: lon = 0, 72, ..., 288 (degrees_east) spans the globe; -100..10
    // also means 288 (= -72): both points are read, in that order, and the
    // longitude is written -72, 0 (tests/lonwrap_mpi.rs compares with CDO).
    for p in [1, 2] {
        let j = reduce_json(
            p,
            &[
                f,
                "--var",
                "tas",
                "--select",
                "lon=-100..10",
                "--dim",
                "time,lat",
                "--op",
                "min",
            ],
        );
        assert_eq!(j["coords"]["lon"], serde_json::json!([-72.0, 0.0]), "{j}");
        // tas = 100·time + 10·lat_index + lon_index: minima 4 and 0.
        assert_eq!(j["results"]["min"], serde_json::json!([4.0, 0.0]), "{j}");
    }
    let j = direct(&["inspect", f, "--json"]).ok().json();
    let lat = j["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["path"] == "/lat")
        .unwrap()
        .clone();
    assert_eq!(lat["dims"], serde_json::json!(["lat"]));
    // An h5py dimension scale (make_scale) is its own dimension too.
    py(
        "import h5py, numpy as np, sys\n\
         with h5py.File(sys.argv[1], 'w') as f:\n\
         \x20   x = f.create_dataset('x', data=np.arange(5.0))\n\
         \x20   x.make_scale('x')\n\
         \x20   v = f.create_dataset('v', data=np.ones((5, 2)))\n\
         \x20   v.dims[0].attach_scale(x)\n",
        &[s(&d.join("scale.h5"))],
    );
    let j = reduce_json(
        1,
        &[
            s(&d.join("scale.h5")),
            "--var",
            "x",
            "--select",
            "x=1..3",
            "--op",
            "sum",
        ],
    );
    assert_eq!(j["results"]["sum"].as_f64(), Some(6.0), "{j}");
}

/// Item 3: a 0-d variable reduces to its own value (as NCO's `ncwa` does),
/// from NetCDF-4 (ncgen), HDF5 (h5py) and `.npy`.
#[test]
fn scalar_variables_reduce_to_their_value() {
    let d = scratch("scalar");
    let nc = ncgen_text(
        &d,
        "scalars",
        "netcdf scalars {\nvariables:\n  double x ;\n    x:units = \"K\" ;\n  int k ;\n\
         data:\n  x = 3.5 ;\n  k = -7 ;\n}\n",
    );
    py(
        "import h5py, numpy as np, sys\n\
         with h5py.File(sys.argv[1], 'w') as f:\n\
         \x20   f.create_dataset('s', data=np.float32(2.25))\n\
         np.save(sys.argv[2], np.array(1.5, dtype='<f8'))\n",
        &[s(&d.join("s.h5")), s(&d.join("s.npy"))],
    );
    for p in [1, 2, 3] {
        let j = reduce_json(
            p,
            &[s(&nc), "--var", "x", "--op", "sum,mean,min,max,std,count"],
        );
        let r = &j["results"];
        assert_eq!(r["sum"].as_f64(), Some(3.5), "{j}");
        assert_eq!(r["mean"].as_f64(), Some(3.5), "{j}");
        assert_eq!(r["min"].as_f64(), Some(3.5), "{j}");
        assert_eq!(r["max"].as_f64(), Some(3.5), "{j}");
        assert_eq!(r["std"].as_f64(), Some(0.0), "{j}");
        assert_eq!(r["count"].as_f64(), Some(1.0), "{j}");
        let j = reduce_json(p, &[s(&nc), "--var", "k", "--op", "mean,sum"]);
        assert_eq!(j["results"]["mean"].as_f64(), Some(-7.0), "{j}");
        let j = reduce_json(p, &[s(&d.join("s.h5")), "--var", "s", "--op", "mean"]);
        assert_eq!(j["results"]["mean"].as_f64(), Some(2.25), "{j}");
        let j = reduce_json(p, &[s(&d.join("s.npy")), "--op", "max"]);
        assert_eq!(j["results"]["max"].as_f64(), Some(1.5), "{j}");
    }
    // Written out, the result is again a 0-d variable holding the value.
    let out = d.join("x_mean.nc");
    mpirun(
        2,
        &[
            "reduce",
            s(&nc),
            "--var",
            "x",
            "--op",
            "mean",
            "-o",
            s(&out),
        ],
    )
    .ok();
    let got = py(
        "import h5py, sys\n\
         with h5py.File(sys.argv[1], 'r') as f:\n\
         \x20   v = f['x_mean'] if 'x_mean' in f else f['x']\n\
         \x20   print(v.shape, float(v[()]))\n",
        &[s(&out)],
    );
    assert_eq!(got.trim(), "() 3.5", "{got}");
}

/// Item 16: every HDF5 type h5py writes — enum, bool, compound, variable-length
/// strings and arrays, references, opaque, fixed arrays — as datasets and as
/// attributes, is described by `inspect` (text and JSON) without a panic;
/// `reduce` refuses them with one message.
#[test]
fn inspect_describes_every_type_h5py_writes() {
    let d = scratch("types");
    let f = d.join("types.h5");
    py(
        "import h5py, numpy as np, sys\n\
         with h5py.File(sys.argv[1], 'w') as f:\n\
         \x20   e = h5py.enum_dtype({'RED': 0, 'GREEN': 1}, basetype='i1')\n\
         \x20   c = np.dtype([('x', 'f8'), ('n', 'i4'), ('s', 'S3')])\n\
         \x20   cv = np.dtype([('x', 'f8'), ('name', h5py.string_dtype())])\n\
         \x20   vi = h5py.vlen_dtype(np.int32)\n\
         \x20   f.create_dataset('enum', data=np.array([0, 1, 1], dtype='i1'), dtype=e)\n\
         \x20   f.create_dataset('bool', data=np.array([True, False]))\n\
         \x20   f.create_dataset('compound', data=np.zeros(3, dtype=c))\n\
         \x20   f.create_dataset('compound_vlen', data=np.array([(1.0, 'a')], dtype=cv))\n\
         \x20   f.create_dataset('vlen_str', data=np.array(['a', 'bcd'], dtype=object), dtype=h5py.string_dtype())\n\
         \x20   x = f.create_dataset('vlen_int', (2,), dtype=vi)\n\
         \x20   x[0] = [1, 2, 3]\n\
         \x20   x[1] = [4]\n\
         \x20   r = f.create_dataset('refs', (2,), dtype=h5py.ref_dtype)\n\
         \x20   r[0] = f['bool'].ref\n\
         \x20   rr = f.create_dataset('region_refs', (1,), dtype=h5py.regionref_dtype)\n\
         \x20   rr[0] = f['bool'].regionref[0:1]\n\
         \x20   f.create_dataset('opaque', data=np.void(b'\\x01\\x02\\x03'))\n\
         \x20   f.create_dataset('array', data=np.zeros(2, dtype=np.dtype(('f4', (3,)))))\n\
         \x20   f.create_dataset('chunked_vlen', (4,), dtype=h5py.string_dtype(), chunks=(2,), fillvalue='')\n\
         \x20   f.create_dataset('ok', data=np.arange(4.0))\n\
         \x20   for name, obj in [('/', f), ('ok', f['ok'])]:\n\
         \x20       a = obj.attrs\n\
         \x20       a.create('enum', data=np.array([1], dtype='i1'), dtype=e)\n\
         \x20       a['bool'] = np.bool_(True)\n\
         \x20       a['bools'] = np.array([True, False])\n\
         \x20       a['compound'] = np.zeros(2, dtype=c)\n\
         \x20       a.create('compound_vlen', data=np.array([(1.0, 'a')], dtype=cv))\n\
         \x20       arr = np.empty(1, dtype=object)\n\
         \x20       arr[0] = np.array([1, 2], dtype='i4')\n\
         \x20       a.create('vlen_int', data=arr, dtype=vi)\n\
         \x20       a['ref'] = f['bool'].ref\n\
         \x20       a['strs'] = ['x', 'yz']\n\
         \x20       a['bytes'] = np.bytes_(b'abc')\n\
         \x20       a['opaque'] = np.void(b'\\x00\\xff')\n\
         \x20       a['empty'] = h5py.Empty('f4')\n\
         \x20       a['array2d'] = np.arange(6).reshape(2, 3)\n",
        &[s(&f)],
    );
    for args in [vec!["inspect", s(&f)], vec!["inspect", s(&f), "--json"]] {
        let r = direct(&args);
        assert_eq!(r.code, Some(0), "{args:?}: {}\n{}", r.stdout, r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
    let j = direct(&["inspect", s(&f), "--json"]).ok().json();
    let ds = j["datasets"].as_array().unwrap();
    let names: Vec<&str> = ds.iter().map(|x| x["path"].as_str().unwrap()).collect();
    for want in [
        "/enum",
        "/bool",
        "/compound",
        "/compound_vlen",
        "/vlen_str",
        "/vlen_int",
        "/refs",
        "/region_refs",
        "/opaque",
        "/array",
        "/chunked_vlen",
        "/ok",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let ok = ds.iter().find(|x| x["path"] == "/ok").unwrap();
    let attr = |n: &str| {
        ok["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == n)
            .unwrap_or_else(|| panic!("attribute {n} missing: {ok}"))["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(attr("strs"), "x, yz");
    assert_eq!(attr("bytes"), "abc");
    assert_eq!(attr("array2d"), "0, 1, 2, 3, 4, 5");
    // reduce refuses the non-numeric ones with one message, at P = 2.
    for v in ["enum", "compound", "vlen_str", "refs", "opaque"] {
        expect_error(&["reduce", s(&f), "--var", v], "unsupported datatype");
    }
}

/// Item 24: a hard-link cycle (`/g/loop → /`) and a dangling soft or
/// external link: `inspect` visits each object once and reports the odd
/// links; `reduce` through a dangling link is one clear error.
#[test]
fn inspect_survives_link_cycles_and_dangling_links() {
    let d = scratch("links");
    let f = d.join("links.h5");
    py(
        "import h5py, numpy as np, sys\n\
         with h5py.File(sys.argv[1], 'w') as f:\n\
         \x20   g = f.create_group('g')\n\
         \x20   g['v'] = np.arange(3.0)\n\
         \x20   g['loop'] = f['/']\n\
         \x20   g['again'] = g['v']\n\
         \x20   f['dangling'] = h5py.SoftLink('/nowhere')\n\
         \x20   f['external'] = h5py.ExternalLink('missing.h5', '/x')\n",
        &[s(&f)],
    );
    let r = direct(&["inspect", s(&f), "--json"]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    let paths: Vec<&str> = j["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["path"].as_str().unwrap())
        .collect();
    // /g/v is the same object as /g/again (first in name order): listed
    // once, the other name as a link.
    assert_eq!(paths, ["/g/again"], "{j}");
    let links = j["links"].as_array().unwrap();
    let note = |p: &str| {
        links
            .iter()
            .find(|l| l["path"] == p)
            .unwrap_or_else(|| panic!("{p} not in {links:?}"))["note"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(note("/dangling").contains("broken: soft link to /nowhere"));
    assert!(note("/external").contains("broken: external link to missing.h5:/x"));
    assert!(note("/g/loop").contains("already listed"));
    assert!(note("/g/v").contains("already listed"));
    let text = direct(&["inspect", s(&f)]).ok().stdout;
    assert!(text.contains("link /dangling (soft): broken"), "{text}");
    expect_error(&["reduce", s(&f), "--var", "dangling"], "'dangling'");
    // The cycle does not trap reduce either: the variable is read once.
    let j = reduce_json(2, &[s(&f), "--var", "g/loop/g/v", "--op", "sum"]);
    assert_eq!(j["results"]["sum"].as_f64(), Some(3.0), "{j}");
}

/// Item 25: a command-line error under `mpirun -n 3` is printed once, not
/// once per rank; `--help` likewise.
#[test]
fn command_line_errors_are_printed_once() {
    let r = mpirun(3, &["reduce", "--no-such-flag"]);
    assert_ne!(r.code, Some(0));
    assert_eq!(r.stderr.matches("error:").count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("--no-such-flag"), "{}", r.stderr);
    let r = mpirun(3, &["inspect"]);
    assert_ne!(r.code, Some(0));
    assert_eq!(r.stderr.matches("error:").count(), 1, "{}", r.stderr);
    let r = mpirun(3, &["reduce", "--help"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout.matches("Usage:").count(), 1, "{}", r.stdout);
}

/// No command panics on a closed stdout (`chunkwise plan --json | head -c1`):
/// the reader going away ends the output quietly.
#[test]
fn closed_stdout_is_a_quiet_end() {
    let d = scratch("epipe");
    let nc = ncgen(&d, "climate");
    for args in [
        vec![
            "plan",
            "--file",
            s(&nc),
            "--var",
            "tas",
            "--cluster",
            "local",
            "--json",
        ],
        vec!["plan", "--bytes", "1GB", "--cluster", "local"],
        vec!["inspect", s(&nc), "--json"],
        vec!["inspect", s(&nc)],
        vec![
            "jobscript",
            "--cluster",
            "local",
            "--account",
            "x",
            "--",
            "reduce",
            "f.nc",
        ],
    ] {
        let mut cmd = Command::new(bin());
        cmd.args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        // Close the pipe's read end before the command writes (what `head
        // -c1` does after its byte): every write then fails with EPIPE.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

/// Item 13: a FIFO as input (HDF5 or raw) is refused at once, on every rank.
#[test]
fn fifo_input_is_refused_not_waited_on() {
    let d = scratch("fifo");
    let fifo = d.join("fifo.h5");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let f = s(&fifo);
    expect_error(&["reduce", f, "--var", "a"], "FIFO");
    expect_error(
        &[
            "reduce",
            f,
            "--raw-dtype",
            "f32",
            "--raw-shape",
            "4",
            "--op",
            "mean",
        ],
        "FIFO",
    );
    expect_error(&["convert", f, s(&d.join("o.nc")), "--var", "a"], "FIFO");
    let r = direct(&["inspect", f]);
    assert!(!r.timed_out && r.code == Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("FIFO"), "{}", r.stderr);
    expect_error(
        &[
            "reduce",
            "/dev/zero",
            "--raw-dtype",
            "f32",
            "--raw-shape",
            "4",
        ],
        "character device",
    );
}

/// Item 14: `--threads 10000` and `SLURM_CPUS_PER_TASK=99999` are capped at
/// the machine's CPUs with one warning; a non-numeric SLURM_CPUS_PER_TASK is
/// ignored with a warning. Results are those of one thread.
#[test]
fn absurd_thread_counts_are_capped() {
    let d = scratch("threads");
    let nc = ncgen(&d, "climate");
    let args = [s(&nc), "--var", "lat", "--op", "sum"];
    let cpus: u64 = String::from_utf8(
        Command::new("getconf")
            .arg("_NPROCESSORS_ONLN")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    let base = reduce_json(2, &[&args[..], &["--threads", "1"]].concat());
    let mut a = vec!["reduce"];
    a.extend_from_slice(&args);
    a.extend_from_slice(&["--json", "--threads", "10000"]);
    let r = mpirun(2, &a).ok();
    assert!(r.elapsed.as_secs() < 30, "took {:?}", r.elapsed);
    assert_eq!(r.stderr.matches("warning").count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("--threads 10000"), "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["threads"].as_u64(), Some(cpus), "{j}");
    assert_eq!(j["results"], base["results"]);
    let a: Vec<&str> = a[..a.len() - 2].to_vec();
    let r = mpirun_env(2, &a, &[("SLURM_CPUS_PER_TASK", "99999")]).ok();
    assert!(
        r.stderr.contains("SLURM_CPUS_PER_TASK 99999"),
        "{}",
        r.stderr
    );
    assert_eq!(r.json()["results"], base["results"]);
    let r = mpirun_env(2, &a, &[("SLURM_CPUS_PER_TASK", "lots")]).ok();
    assert_eq!(r.stderr.matches("warning").count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("'lots'"), "{}", r.stderr);
    assert_eq!(r.json()["results"], base["results"]);
}

/// Item 19: a job name or account that would break the script (a newline
/// starting a command) is refused with the rule; arguments after `--` are
/// quoted so the script still passes `bash -n` (the property test over
/// arbitrary strings is `crates/core/tests/jobscript_prop.rs`).
#[test]
fn jobscript_values_cannot_inject_commands() {
    let base = ["jobscript", "--cluster", "local"];
    for (flag, value) in [
        ("--job-name", "a\nrm -rf /tmp/x"),
        ("--account", "acct\ntouch /tmp/pwned"),
        ("--job-name", "$(id)"),
    ] {
        let mut a = base.to_vec();
        if flag != "--account" {
            a.extend_from_slice(&["--account", "x"]);
        }
        a.extend_from_slice(&[flag, value, "--", "reduce", "f.h5"]);
        let r = direct(&a);
        assert_eq!(r.code, Some(1), "{a:?}: {}", r.stdout);
        assert!(r.stderr.contains(flag), "{}", r.stderr);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
    }
    let r = direct(&[
        "jobscript",
        "--cluster",
        "local",
        "--account",
        "x",
        "--",
        "reduce",
        "a\n$(touch /tmp/pwned)'\"",
    ])
    .ok();
    let mut bash = Command::new("bash")
        .arg("-n")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(bash.stdin.as_mut().unwrap(), r.stdout.as_bytes()).unwrap();
    assert!(bash.wait().unwrap().success(), "{}", r.stdout);
}

/// Item 20: `scaling run --ranks 100000` is refused before the first
/// launch, naming the limit; nothing is started or written.
#[test]
fn scaling_refuses_rank_counts_that_cannot_run() {
    let d = scratch("ranks");
    let out = d.join("study");
    let mut cmd = Command::new(bin());
    cmd.args([
        "scaling",
        "run",
        "--mode",
        "strong",
        "--ranks",
        "1,100000",
        "--bytes",
        "1MB",
        "--out",
        s(&out),
        "--",
        "reduce",
        "--var",
        "a",
    ])
    .env_remove("SLURM_JOB_ID");
    let r = run_with_timeout(cmd, std::time::Duration::from_secs(20));
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("--ranks 100000"), "{}", r.stderr);
    assert!(r.stderr.contains("at most"), "{}", r.stderr);
    assert!(!out.join("results.jsonl").exists());
    assert!(!out.join("data").exists());
    // Inside an allocation, its task count is the limit.
    let mut cmd = Command::new(bin());
    cmd.args([
        "scaling",
        "run",
        "--mode",
        "strong",
        "--ranks",
        "1,4",
        "--bytes",
        "1MB",
        "--out",
        s(&out),
        "--",
        "reduce",
        "--var",
        "a",
    ])
    .env("SLURM_JOB_ID", "42")
    .env("SLURM_NTASKS", "2");
    let r = run_with_timeout(cmd, std::time::Duration::from_secs(20));
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("2 tasks"), "{}", r.stderr);
}

/// Item 17: a `--dim` result of 10^11 cells (a fill-value-only dataset) is
/// refused before any read, with the figures, at P = 1 and 2, with and
/// without `-o`; `plan` carries the same estimate.
#[test]
fn results_too_big_for_memory_are_refused_up_front() {
    let d = scratch("huge-result");
    let f = d.join("huge.h5");
    py(
        "import h5py, sys\n\
         with h5py.File(sys.argv[1], 'w') as f:\n\
         \x20   f.create_dataset('a', shape=(2, 10**11), dtype='f4', chunks=(1, 2**20))\n",
        &[s(&f)],
    );
    let out = d.join("out.nc");
    for p in [1, 2] {
        expect_error_p(
            p,
            &["reduce", s(&f), "--var", "a", "--dim", "dim_0"],
            "100000000000 cells",
        );
        expect_error_p(
            p,
            &[
                "reduce",
                s(&f),
                "--var",
                "a",
                "--dim",
                "dim_0",
                "-o",
                s(&out),
            ],
            "GiB on rank 0",
        );
    }
    assert!(!out.exists());
    // Selecting less fits: 10 cells of fill value (NaN-free zeros).
    let j = reduce_json(
        2,
        &[
            s(&f),
            "--var",
            "a",
            "--dim",
            "dim_0",
            "--select",
            "dim_1=0:10",
            "--op",
            "sum",
        ],
    );
    assert_eq!(j["results"]["sum"], serde_json::json!(vec![0.0; 10]));
    let j = direct(&[
        "plan",
        "--file",
        s(&f),
        "--var",
        "a",
        "--dim",
        "dim_0",
        "--cluster",
        "local",
        "--json",
    ])
    .ok()
    .json();
    assert_eq!(j["result_memory"]["cells"], 100_000_000_000u64);
    let warned = j["plan"]["warnings"].as_array().unwrap();
    assert!(
        warned
            .iter()
            .any(|w| w.as_str().unwrap().contains("does not fit")),
        "{j}"
    );
}

/// Item 15: 300×300 f32 in 1×1 chunks (90 000 chunks, written by h5py):
/// `reduce` stays within 2 blocks + 64 MiB per rank and agrees with NumPy;
/// `convert --chunks 1,1` completes, and h5py reads back the same values.
#[test]
fn many_tiny_chunks_keep_memory_bounded() {
    let d = scratch("tiny-chunks");
    let f = d.join("tiny.h5");
    py(
        "import h5py, numpy as np, sys\n\
         with h5py.File(sys.argv[1], 'w') as f:\n\
         \x20   f.create_dataset('b', data=np.arange(90000, dtype='f4').reshape(300, 300), chunks=(1, 1))\n",
        &[s(&f)],
    );
    for p in [1, 2] {
        let j = reduce_json(p, &[s(&f), "--var", "b", "--op", "mean,max"]);
        // arange(90000): mean 44999.5 and max 89999, exact in f64.
        assert_eq!(j["results"]["mean"].as_f64(), Some(44999.5), "{j}");
        assert_eq!(j["results"]["max"].as_f64(), Some(89999.0), "{j}");
        let block: u64 = j["block_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .product();
        assert!(block <= 1024, "block of {block} chunks: {j}");
        let peak = j["peak_rss_mib"].as_f64().unwrap();
        let bound = 2.0 * (block * 4) as f64 / 1048576.0 + 64.0;
        assert!(peak <= bound, "P={p}: peak {peak} MiB > {bound} MiB");
    }
    let out = d.join("c11.h5");
    mpirun(
        2,
        &["convert", s(&f), s(&out), "--var", "b", "--chunks", "1,1"],
    )
    .ok();
    let got = py(
        "import h5py, numpy as np, sys\n\
         with h5py.File(sys.argv[1], 'r') as f:\n\
         \x20   v = f['b']\n\
         \x20   print(v.chunks, bool((v[...] == np.arange(90000, dtype='f4').reshape(300, 300)).all()))\n",
        &[s(&out)],
    );
    assert_eq!(got.trim(), "(1, 1) True");
}

/// Writes the damaged-file matrix's input (h5py, fixed seed), flips every
/// byte of its metadata region (before the first chunk) and a fixed-seed
/// sample of the chunk data, one at a time, and for each flipped copy
/// prints what h5py reads: `null` when it fails, else NumPy's count, exact
/// sum (math.fsum), min and max of the non-NaN values. `p2` marks the
/// fixed-seed sample also run at P = 2.
const DAMAGE: &str = r#"
import h5py, numpy as np, sys, json, math, random
d = sys.argv[1]
rng = np.random.default_rng(16)
a = rng.standard_normal((60, 50)).astype('f4')
good = d + '/good.h5'
with h5py.File(good, 'w') as f:
    f.create_dataset('v', data=a, chunks=(10, 10), compression='gzip', shuffle=True)
with h5py.File(good, 'r') as f:
    ds = f['v']
    first = min(ds.id.get_chunk_info(i).byte_offset for i in range(ds.id.get_num_chunks()))
src = open(good, 'rb').read()
r = random.Random(16)
meta = list(range(first))
data = sorted(r.sample(range(first, len(src)), int(sys.argv[2])))
p2 = set(r.sample(meta, int(sys.argv[3]))) | set(data)
out = []
for i in meta + data:
    b = bytearray(src); b[i] ^= 0xFF
    p = '%s/flip%05d.h5' % (d, i)
    open(p, 'wb').write(b)
    try:
        with h5py.File(p, 'r') as f:
            v = f['v'][...].astype('f8').ravel()
        v = v[~np.isnan(v)]
        res = {'count': int(v.size), 'sum': math.fsum(v.tolist()),
               'min': float(v.min()) if v.size else None,
               'max': float(v.max()) if v.size else None}
    except Exception:
        res = None
    out.append({'byte': i, 'meta': i < first, 'path': p, 'h5py': res, 'p2': i in p2})
print(json.dumps(out))
"#;

/// The damaged-file matrix (issue 16): one byte of a small gzip+shuffle f32
/// file flipped at a time — every byte of the metadata region (about 4000)
/// and a fixed-seed sample of 20 bytes of chunk data at P = 1 (the binary
/// run alone, an isolated MPI singleton with only the `self` transport:
/// 0.1 s each), and a fixed-seed sample of 30 metadata bytes and the data
/// bytes at P = 2 under `mpirun`; six cases at a time, each bounded at 10 s. Where h5py (a
/// current HDF5) reads the damaged file, chunkwise gives its statistics;
/// where h5py fails, chunkwise ends non-zero with exactly one chunkwise
/// error naming the file and the variable. Asserted: never a hang, never a
/// panic, never exit 0 with values h5py does not read, never a failure
/// without exactly one chunkwise error. The cases that once failed (HDF5
/// 1.10 trusts what HDF5 2.0 checks; see `chunkwise_core::h5_header`): the
/// fill value's size (byte 911, a segfault), the filter pipeline message's
/// type (912–913: both libraries read compressed bytes as values), shuffle's
/// element size (944–947: h5py reads other values), the layout's element
/// size (1003–1006) and the last chunk-index key (2632, 2640).
#[test]
fn damaged_file_matrix() {
    let d = scratch("matrix");
    let cases: serde_json::Value = serde_json::from_str(&py(DAMAGE, &[s(&d), "20", "30"])).unwrap();
    let cases = cases.as_array().unwrap().clone();
    let work: Vec<(serde_json::Value, usize)> = cases
        .iter()
        .flat_map(|c| {
            let mut v = vec![(c.clone(), 1)];
            if c["p2"] == true {
                v.push((c.clone(), 2));
            }
            v
        })
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let problems = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for w in 0..6 {
            // Each worker's singletons keep their Open MPI session
            // directories apart (concurrent isolated singletons share one
            // name under the default base and race on it).
            let session = d.join(format!("ompi{w}"));
            std::fs::create_dir_all(&session).unwrap();
            let (next, problems, work) = (&next, &problems, &work);
            sc.spawn(move || {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some((c, p)) = work.get(k) else { break };
                    let path = c["path"].as_str().unwrap();
                    let args = [
                        "reduce",
                        path,
                        "--var",
                        "v",
                        "--op",
                        "count,sum,min,max",
                        "--json",
                    ];
                    let cmd = if *p == 1 {
                        // Alone: no daemon, no shared-memory transport.
                        let mut x = Command::new(bin());
                        x.args(args)
                            .env("OMPI_MCA_ess_singleton_isolated", "1")
                            .env("OMPI_MCA_btl", "self")
                            .env("OMPI_MCA_pml", "ob1")
                            .env("OMPI_MCA_orte_tmpdir_base", &session);
                        x
                    } else {
                        mpirun_cmd(2, &args, &[])
                    };
                    let r = run_with_timeout(cmd, std::time::Duration::from_secs(10));
                    let what = format!("byte {} at P={p}", c["byte"]);
                    let bad = |m: String| problems.lock().unwrap().push(format!("{what}: {m}"));
                    if r.timed_out {
                        bad("hung (10 s)".into());
                        continue;
                    }
                    if r.stderr.contains("panicked") {
                        bad(format!("panicked: {}", r.stderr));
                        continue;
                    }
                    // Exactly one chunkwise error, naming the file and the
                    // variable.
                    let errors: Vec<&str> = r
                        .stderr
                        .lines()
                        .filter(|l| l.contains("chunkwise: error"))
                        .collect();
                    let one_error = errors.len() == 1
                        && errors[0].contains(path)
                        && (errors[0].contains("'v'") || errors[0].contains("'/v'"));
                    match (&c["h5py"], r.code) {
                        (serde_json::Value::Null, Some(0)) => {
                            bad(format!("h5py fails, chunkwise exit 0: {}", r.stdout.trim()))
                        }
                        (serde_json::Value::Null, code) => {
                            if !one_error {
                                bad(format!(
                                    "exit {code:?} without exactly one chunkwise error naming the file and 'v':\n{}",
                                    r.stderr
                                ));
                            }
                        }
                        (want, Some(0)) => {
                            let got = &r.json()["results"];
                            let same = got["count"] == want["count"]
                                && got["min"] == want["min"]
                                && got["max"] == want["max"]
                                && (got["sum"].as_f64().unwrap() - want["sum"].as_f64().unwrap())
                                    .abs()
                                    <= 1e-9 * want["sum"].as_f64().unwrap().abs().max(1.0);
                            if !same {
                                bad(format!("h5py reads {want}, chunkwise {got}"));
                            }
                        }
                        (_, code) => {
                            // Refusing what h5py reads is allowed (stricter
                            // checks), with one clear error.
                            if !one_error {
                                bad(format!("h5py reads it; chunkwise {code:?}:\n{}", r.stderr));
                            }
                        }
                    }
                }
            });
        }
    });
    let problems = problems.into_inner().unwrap();
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
