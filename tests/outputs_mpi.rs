//! Output files are never lost, never swapped and never clobber what
//! chunkwise did not create (issue 16, items 8–12, 21, 23): temporaries
//! are unique per run and created exclusively, outputs are regular files
//! or absent, names of any legal length work, every error path and signal
//! removes the temporary, a stale temporary of a killed run is found by the
//! next run, and what is printed after a signal matches what is on disk.

mod common;
use chunkwise_core::temp_name::{self, TempOwner};
use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small chunked f64 file made by `generate` (P = 1).
fn small_input(dir: &Path, name: &str) -> PathBuf {
    let f = dir.join(name);
    mpirun(
        1,
        &[
            "generate",
            s(&f),
            "--var",
            "a",
            "--shape",
            "40,30",
            "--chunks",
            "10,30",
        ],
    )
    .ok();
    f
}

/// Names in `dir` that mark temporary outputs or working directories.
/// The tests that signal a run at a chosen moment run one at a time: with
/// two of them overlapping (`--test-threads=2`), four slowed ranks share
/// the CI machine's cores and "300 ms into the run" means another moment.
static SIGNAL_TIMING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_signal_test_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SIGNAL_TIMING.lock().unwrap_or_else(|p| p.into_inner())
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("chunkwise-partial") || n.contains("chunkwise-formats"))
        .collect()
}

/// This host's name hashed as chunkwise records it in temporary names.
fn host_hash() -> u32 {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    temp_name::fnv1a64(h.trim_end().as_bytes()) as u32
}

/// A process id no process has now.
fn dead_pid() -> u32 {
    (3_000_000..3_100_000)
        .rev()
        .find(|p| !Path::new(&format!("/proc/{p}")).exists())
        .unwrap()
}

/// The name a run `owner` would give its temporary of output `out`.
fn temp_of(out: &Path, owner: TempOwner) -> PathBuf {
    let name = out.file_name().unwrap().to_str().unwrap();
    out.with_file_name(temp_name::temp_name(name.as_bytes(), &owner))
}

/// Item 9: an input that has the output's (old or new) temporary name —
/// also as a hard link — is read, never removed or overwritten, by
/// `reduce -o` and `convert`.
#[test]
fn an_input_named_like_the_temporary_is_never_touched() {
    let d = scratch("victim");
    let src = small_input(&d, "src.h5");
    let original = std::fs::read(&src).unwrap();
    let out = d.join("victim.nc");
    let stale_name = temp_of(
        &out,
        TempOwner {
            host: host_hash(),
            pid: dead_pid(),
            nonce: 7,
        },
    );
    let old_name = d.join(".victim.nc.chunkwise-partial");
    for (input, link) in [
        (&old_name, false),
        (&stale_name, false),
        (&stale_name, true),
    ] {
        let _ = std::fs::remove_file(input);
        if link {
            std::fs::hard_link(&src, input).unwrap();
        } else {
            std::fs::write(input, &original).unwrap();
        }
        for cmd in ["reduce", "convert"] {
            let _ = std::fs::remove_file(&out);
            let args: Vec<&str> = match cmd {
                "reduce" => vec![
                    "reduce",
                    s(input),
                    "--var",
                    "a",
                    "--dim",
                    "dim_0",
                    "-o",
                    s(&out),
                ],
                _ => vec!["convert", s(input), s(&out), "--var", "a"],
            };
            let r = mpirun(2, &args).ok();
            assert!(!r.stderr.contains("removed"), "{cmd}: {}", r.stderr);
            assert_eq!(
                std::fs::read(input).unwrap(),
                original,
                "{cmd} changed its input {}",
                input.display()
            );
            assert!(out.is_file(), "{cmd}: no output");
        }
        assert_eq!(std::fs::read(&src).unwrap(), original);
    }
}

/// Item 21: two runs writing the same output at once. Without `--force`
/// exactly one succeeds and the file holds that run's variable; the other
/// fails saying so and leaves no temporary. With `--force` both succeed,
/// each renaming only its own complete file.
#[test]
fn concurrent_runs_never_put_the_other_runs_file_in_place() {
    let d = scratch("concurrent");
    let out = d.join("same.h5");
    for force in [false, true] {
        let _ = std::fs::remove_file(&out);
        let launch = |var: &'static str| {
            let mut args = vec![
                "generate",
                s(&out),
                "--var",
                var,
                "--shape",
                "400,1000",
                "--chunks",
                "10,1000",
                "--block-bytes",
                "80KB",
            ];
            if force {
                args.push("--force");
            }
            let cmd = mpirun_cmd(2, &args, &[("CHUNKWISE_TEST_SLOW", "20")]);
            std::thread::spawn(move || run_with_timeout(cmd, Duration::from_secs(60)))
        };
        let (a, b) = (launch("first"), launch("second"));
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        let vars = datasets(&out);
        let ok: Vec<&str> = [("first", &a), ("second", &b)]
            .iter()
            .filter(|(_, r)| r.code == Some(0))
            .map(|(v, _)| *v)
            .collect();
        if force {
            assert_eq!(ok.len(), 2, "{}\n{}", a.stderr, b.stderr);
            assert!(vars == ["first"] || vars == ["second"], "{vars:?}");
        } else {
            assert_eq!(ok.len(), 1, "one run wins:\n{}\n{}", a.stderr, b.stderr);
            assert_eq!(vars, [ok[0]], "the file holds the winner's variable");
            let loser = if ok[0] == "first" { &b } else { &a };
            assert!(
                loser.stderr.contains("exists") || loser.stderr.contains("appeared"),
                "{}",
                loser.stderr
            );
        }
        assert_eq!(leftovers(&d), Vec::<String>::new());
    }
}

/// Top-level datasets of an HDF5 file, via `h5ls` (an independent reader).
fn datasets(f: &Path) -> Vec<String> {
    let o = std::process::Command::new("h5ls").arg(f).output().unwrap();
    assert!(o.status.success(), "h5ls {}", f.display());
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

/// Item 10: output names up to the 255-byte limit work for `generate`,
/// `convert` and `reduce -o` at P = 2 (they crashed inside Open MPI's
/// shared-file-pointer component, or their temporary name was too long);
/// one byte more is refused up front with the limit.
#[test]
fn output_names_up_to_the_limit_work() {
    let d = scratch("long-names");
    let src = small_input(&d, "src.h5");
    for len in [228, 249, 255] {
        let name = |c: char| format!("{}.h5", c.to_string().repeat(len - 3));
        let g = d.join(name('g'));
        mpirun(
            2,
            &[
                "generate",
                s(&g),
                "--var",
                "a",
                "--shape",
                "40,30",
                "--chunks",
                "10,30",
            ],
        )
        .ok();
        let c = d.join(name('c'));
        mpirun(
            2,
            &[
                "convert",
                s(&src),
                s(&c),
                "--var",
                "a",
                "--chunks",
                "20,30",
                "--compression",
                "gzip:1",
            ],
        )
        .ok();
        let r = d.join(name('r'));
        mpirun(
            2,
            &[
                "reduce",
                s(&src),
                "--var",
                "a",
                "--dim",
                "dim_0",
                "-o",
                s(&r),
            ],
        )
        .ok();
        // h5dump writes its dump next to the file: read through short links.
        for (f, link) in [(&g, "g.h5"), (&c, "c.h5")] {
            let l = d.join(link);
            let _ = std::fs::remove_file(&l);
            std::os::unix::fs::symlink(f, &l).unwrap();
            assert_eq!(h5dump_raw(&l, "a"), h5dump_raw(&src, "a"), "len {len}");
        }
        assert!(r.is_file());
        for f in [g, c, r] {
            std::fs::remove_file(f).unwrap();
        }
    }
    let too_long = d.join(format!("{}.h5", "x".repeat(253)));
    expect_error(
        &["generate", s(&too_long), "--var", "a", "--shape", "4"],
        "256 bytes",
    );
    assert_eq!(leftovers(&d), Vec::<String>::new());
}

/// Item 11: an output that exists but is not a regular file (a device
/// node, a FIFO, a symbolic link) is refused with or without `--force`,
/// and stays what it was.
#[test]
fn outputs_must_be_regular_files_or_absent() {
    use std::os::unix::fs::FileTypeExt;
    let d = scratch("not-regular");
    let src = small_input(&d, "src.h5");
    let dev = d.join("dev.h5");
    let made_dev = std::process::Command::new("mknod")
        .arg(&dev)
        .args(["c", "1", "3"])
        .status()
        .is_ok_and(|s| s.success());
    if !made_dev {
        println!("skipping the device node: mknod needs root");
    }
    let fifo = d.join("fifo.h5");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let link = d.join("link.h5");
    std::os::unix::fs::symlink(&src, &link).unwrap();
    let mut cases = vec![(fifo.clone(), "FIFO"), (link.clone(), "symbolic link")];
    if made_dev {
        cases.push((dev.clone(), "character device"));
    }
    for (out, what) in &cases {
        for force in [false, true] {
            let mut gen_args = vec!["generate", s(out), "--var", "a", "--shape", "4"];
            let mut conv = vec!["convert", s(&src), s(out), "--var", "a"];
            let mut red = vec!["reduce", s(&src), "--var", "a", "-o", s(out)];
            if force {
                for a in [&mut gen_args, &mut conv, &mut red] {
                    a.push("--force");
                }
            }
            for args in [&gen_args, &conv, &red] {
                expect_error(args, what);
            }
        }
    }
    if made_dev {
        assert!(
            std::fs::symlink_metadata(&dev)
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(leftovers(&d), Vec::<String>::new());
}

/// Item 8: a rank failing in the middle of a collective write (P = 2,
/// HDF5 output) leaves no temporary; a rank killed outright (SIGKILL,
/// nothing can run) does, and the next run on the same output removes it
/// with a warning. A temporary of a live process or of another host is
/// reported and left alone.
#[test]
fn temporaries_are_removed_on_errors_and_found_after_a_kill() {
    let d = scratch("stale");
    let src = small_input(&d, "src.h5");
    let out = d.join("o.h5");
    let conv = |p: usize, extra: &[(&str, &str)]| {
        mpirun_env(
            p,
            &[
                "convert",
                s(&src),
                s(&out),
                "--var",
                "a",
                "--chunks",
                "2,30",
                "--block-bytes",
                "480B",
                "--compression",
                "gzip:1",
            ],
            extra,
        )
    };
    let r = conv(2, &[("CHUNKWISE_TEST_FAIL", "1:2")]);
    assert!(r.code.is_some_and(|c| c != 0), "{}", r.stderr);
    assert!(r.stderr.contains("injected test failure"), "{}", r.stderr);
    assert_eq!(
        leftovers(&d),
        Vec::<String>::new(),
        "error path left a temporary"
    );
    // A corrupt compressed chunk in the input (the case): rank 1
    // fails reading it inside the collective writes.
    let gz = d.join("gz.h5");
    mpirun(
        1,
        &[
            "convert",
            s(&src),
            s(&gz),
            "--var",
            "a",
            "--chunks",
            "2,30",
            "--compression",
            "gzip:1",
        ],
    )
    .ok();
    // Damage the deflate stream of the middle chunk (zlib header 78 01).
    let mut bytes = std::fs::read(&gz).unwrap();
    let starts: Vec<usize> = bytes
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w == &[0x78, 0x01])
        .map(|(i, _)| i)
        .collect();
    assert!(starts.len() >= 10, "{} zlib streams", starts.len());
    let at = starts[starts.len() / 2] + 4;
    for b in &mut bytes[at..at + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(&gz, bytes).unwrap();
    let r = mpirun(
        2,
        &[
            "convert",
            s(&gz),
            s(&out),
            "--var",
            "a",
            "--block-bytes",
            "480B",
        ],
    );
    assert!(r.code.is_some_and(|c| c != 0), "{}", r.stderr);
    assert_eq!(
        leftovers(&d),
        Vec::<String>::new(),
        "a corrupt chunk left a temporary"
    );
    assert!(!out.exists());
    // The only rank killed while writing: its temporary stays behind.
    let r = conv(1, &[("CHUNKWISE_TEST_FAIL", "0:2:kill")]);
    assert!(r.code.is_some_and(|c| c != 0));
    let stale = leftovers(&d);
    assert_eq!(stale.len(), 1, "a SIGKILL leaves the temporary: {stale:?}");
    assert!(!out.exists());
    // Temporaries of another live process and of another host are kept.
    let live = temp_of(
        &out,
        TempOwner {
            host: host_hash(),
            pid: std::process::id(),
            nonce: 1,
        },
    );
    let foreign = temp_of(
        &out,
        TempOwner {
            host: host_hash() ^ 1,
            pid: dead_pid(),
            nonce: 2,
        },
    );
    std::fs::write(&live, b"live").unwrap();
    std::fs::write(&foreign, b"foreign").unwrap();
    let r = conv(2, &[]).ok();
    assert!(
        r.stderr.contains("removed") && r.stderr.contains(&stale[0]),
        "the stale temporary is removed with a warning:\n{}",
        r.stderr
    );
    assert!(!d.join(&stale[0]).exists());
    assert!(live.exists() && foreign.exists(), "{}", r.stderr);
    assert!(
        r.stderr.contains("still running") && r.stderr.contains("another host"),
        "{}",
        r.stderr
    );
    assert_eq!(h5dump_raw(&out, "a"), h5dump_raw(&src, "a"));
}

/// Item 12: a signal that arrives just after `generate --force` renamed
/// its output into place: the run ends normally (exit 0) saying the output
/// is complete — as it is. Just before the rename: the run stops, says no
/// output was written, and the old output is still there.
#[test]
fn what_a_signal_reports_matches_what_is_on_disk() {
    let _serial = one_signal_test_at_a_time();
    let d = scratch("after-rename");
    let want = h5dump_raw(&small_input(&d, "ref.h5"), "a");
    let out = d.join("g.h5");
    let args = [
        "generate",
        s(&out),
        "--var",
        "a",
        "--shape",
        "40,30",
        "--chunks",
        "10,30",
        "--force",
    ];
    std::fs::write(&out, b"old").unwrap();
    let r = mpirun_signalled(
        2,
        &args,
        &[("CHUNKWISE_TEST_SLOW_AFTER_COMMIT", "300")],
        SignalAt {
            marker: "renamed into place",
            after: Duration::from_millis(100),
            sig: 15,
        },
    );
    assert!(r.signalled_at.is_some());
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains("complete and in place") && !r.stderr.contains("no output"),
        "{}",
        r.stderr
    );
    assert_eq!(h5dump_raw(&out, "a"), want);

    std::fs::write(&out, b"old").unwrap();
    let r = mpirun_signalled(
        2,
        &args,
        &[("CHUNKWISE_TEST_SLOW_COMMIT", "20000")],
        SignalAt {
            marker: "renaming it into place",
            after: Duration::from_millis(100),
            sig: 15,
        },
    );
    assert!(!r.timed_out && r.after_signal() < Duration::from_secs(10));
    assert!(r.code.is_some_and(|c| c != 0), "{:?}", r.code);
    assert!(r.stderr.contains("no output was written"), "{}", r.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), b"old");
    assert_eq!(leftovers(&d), Vec::<String>::new());
}

/// Item 23: SIGTERM and SIGINT sent to `mpirun` itself (Ctrl-C, `kill`
/// of the launcher) and to the ranks (Slurm's time limit, `scancel`) while
/// `generate`, `convert` and `formats` work, at several moments: never a
/// temporary or working directory left, never an output, always a
/// non-zero exit and exactly one chunkwise message, the signal's (or, when
/// `formats` had ended, what `signals_to_the_launcher_near_the_end_are_reported`
/// accepts).
#[test]
fn signals_to_the_launcher_leave_nothing_behind() {
    let _serial = one_signal_test_at_a_time();
    let d = scratch("launcher-signals");
    let src = small_input(&d, "src.h5");
    let out = d.join("o.h5");
    let gen_args = [
        "generate",
        s(&out),
        "--var",
        "a",
        "--shape",
        "4000,1000",
        "--chunks",
        "50,1000",
        "--block-bytes",
        "400KB",
    ];
    let conv = [
        "convert",
        s(&src),
        s(&out),
        "--var",
        "a",
        "--chunks",
        "1,30",
        "--block-bytes",
        "240B",
    ];
    let form = ["formats", s(&src), "--var", "a"];
    // Moments after the first block starts (ms), and for `formats` also
    // while it writes its last candidates, Zarr stores: a chunk written
    // after a removal re-created the store and the working directory above
    // it (4 of 12 runs under load left it) until writes were stopped
    // before the removal (`interrupt::writing`).
    let first = "blocks to process";
    let early = [(first, 50), (first, 300), (first, 550), (first, 800)];
    let zarr = "formats: candidate zarr";
    let late = [(zarr, 0), (zarr, 60), (zarr, 120), (zarr, 180)];
    let cases = [
        (&gen_args[..], early),
        (&conv[..], early),
        (&form[..], early),
        (&form[..], late),
    ];
    for to_launcher in [true, false] {
        for (args, moments) in cases {
            for (i, (sig, (marker, ms))) in [15, 2, 15, 2].into_iter().zip(moments).enumerate() {
                let at = SignalAt {
                    marker,
                    after: Duration::from_millis(ms),
                    sig,
                };
                let env = [("CHUNKWISE_TEST_SLOW", "100")];
                let r = if to_launcher {
                    mpirun_signalled_launcher(2, args, &env, at)
                } else {
                    mpirun_signalled(2, args, &env, at)
                };
                let what = format!(
                    "{} signal {sig} {ms} ms after '{marker}' (#{i}) to {}",
                    args[0],
                    if to_launcher { "mpirun" } else { "the ranks" }
                );
                assert!(!r.timed_out, "{what}: hung");
                let msgs: Vec<&str> = r
                    .stderr
                    .lines()
                    .filter(|l| l.starts_with("chunkwise: "))
                    .collect();
                let finalized = r.stderr.matches("MPI finalized").count() == 2;
                if args[0] == "formats"
                    && (finalized && msgs.is_empty()
                        || msgs.len() == 1 && msgs[0].contains("after formats had ended"))
                {
                    // It had ended (its report printed) when the signal came.
                    assert_eq!(leftovers(&d), Vec::<String>::new(), "{what}");
                    continue;
                }
                assert!(r.code != Some(0), "{what}: exit {:?}", r.code);
                assert!(
                    msgs.len() == 1
                        && msgs[0].contains("stopped by")
                        && msgs[0].contains("no output was written"),
                    "{what}: {}",
                    r.stderr
                );
                assert!(!out.exists(), "{what}: an output appeared");
                // Every rank has ended once mpirun has: nothing may follow.
                assert_eq!(leftovers(&d), Vec::<String>::new(), "{what}");
            }
        }
    }
}

/// Item 23: a signal to `mpirun` near the end of a run. Open MPI's `mpirun`
/// answers it with SIGCONT to the ranks, SIGTERM a second later and SIGKILL
/// a second after that; a run that ended meanwhile used to wait in
/// `MPI_Finalize` until killed — output complete, exit 1, not a word. At
/// every moment (while reading, while finishing, after the end): a
/// non-zero exit (mpirun's), exactly one chunkwise message that describes
/// what is on disk, and no temporary left (or, when the job had ended
/// before the signal, exit 0 and the output).
#[test]
fn signals_to_the_launcher_near_the_end_are_reported() {
    let _serial = one_signal_test_at_a_time();
    let d = scratch("launcher-signals-end");
    let src = d.join("src.h5");
    mpirun(
        1,
        &[
            "generate",
            s(&src),
            "--var",
            "a",
            "--shape",
            "400,300",
            "--chunks",
            "20,300",
        ],
    )
    .ok();
    let out_nc = d.join("o.nc");
    let out_h5 = d.join("o.h5");
    // 20 blocks, 10 per rank, 100 ms each: about one second of work.
    let red = [
        "reduce",
        s(&src),
        "--var",
        "a",
        "--dim",
        "dim_0",
        "-o",
        s(&out_nc),
        "--block-bytes",
        "48000",
    ];
    let conv = [
        "convert",
        s(&src),
        s(&out_h5),
        "--var",
        "a",
        "--block-bytes",
        "48000",
    ];
    for (args, out) in [(&red[..], &out_nc), (&conv[..], &out_h5)] {
        for (i, after_ms) in [300u64, 700, 900, 1000, 1100, 1200, 1400]
            .into_iter()
            .enumerate()
        {
            let _ = std::fs::remove_file(out);
            let sig = [15, 2][i % 2];
            let r = mpirun_signalled_launcher(
                2,
                args,
                &[("CHUNKWISE_TEST_SLOW", "100")],
                SignalAt {
                    marker: "blocks to process",
                    after: Duration::from_millis(after_ms),
                    sig,
                },
            );
            let what = format!("{} signal {sig} at +{after_ms} ms", args[0]);
            assert!(!r.timed_out, "{what}: hung");
            let msgs: Vec<&str> = r
                .stderr
                .lines()
                .filter(|l| l.starts_with("chunkwise: "))
                .collect();
            let finalized = r.stderr.matches("MPI finalized").count() == 2;
            if r.code == Some(0) || (finalized && msgs.is_empty()) {
                // The job had ended before the signal reached mpirun (or
                // reached it only after every rank had left MPI_Finalize:
                // then mpirun's own status is non-zero and no rank is left
                // to say anything); the output is complete and in place.
                assert!(out.exists() && msgs.is_empty(), "{what}: {}", r.stderr);
                assert_eq!(leftovers(&d), Vec::<String>::new(), "{what}");
                continue;
            }
            assert_eq!(msgs.len(), 1, "{what}: {}", r.stderr);
            if out.exists() {
                assert!(
                    msgs[0].contains("complete and in place"),
                    "{what}: output in place but: {}",
                    r.stderr
                );
            } else {
                assert!(
                    msgs[0].contains("no output was written"),
                    "{what}: {}",
                    r.stderr
                );
            }
            assert_eq!(leftovers(&d), Vec::<String>::new(), "{what}");
        }
    }
}
