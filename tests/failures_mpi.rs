//! A rank that fails while reading ends the whole job quickly (MPI_Abort),
//! with a message naming the rank and the reason.

mod common;
use common::*;

/// A 400 × 1000 f64 file in 10-row chunks: 40 blocks of 80 KB.
fn faulty_run_input(name: &str) -> std::path::PathBuf {
    let f = scratch(name).join("a.h5");
    mpirun(
        2,
        &[
            "generate",
            f.to_str().unwrap(),
            "--var",
            "a",
            "--shape",
            "400,1000",
            "--chunks",
            "10,1000",
        ],
    )
    .ok();
    f
}

/// `reduce` of `f` under `p` ranks with `CHUNKWISE_TEST_FAIL=spec`; checks
/// that the job ended non-zero within 10 s and printed no result.
fn reduce_with_fault(p: usize, f: &std::path::Path, spec: &str) -> Run {
    let r = mpirun_env(
        p,
        &[
            "reduce",
            f.to_str().unwrap(),
            "--var",
            "a",
            "--block-bytes",
            "80KB",
            "--json",
        ],
        &[("CHUNKWISE_TEST_FAIL", spec)],
    );
    assert!(
        !r.timed_out && r.elapsed.as_secs_f64() < 10.0,
        "P={p} {spec}: took {:?}",
        r.elapsed
    );
    assert!(
        r.code.is_some_and(|c| c != 0),
        "P={p} {spec}: exit {:?}",
        r.code
    );
    assert!(
        !r.stdout.contains("\"results\""),
        "no result may be printed after a failure: {}",
        r.stdout
    );
    r
}

#[test]
fn one_rank_failing_mid_run_ends_every_rank() {
    let f = faulty_run_input("midrun");
    for (p, spec, rank) in [
        (2, "1:2", "rank 1 of 2"),
        (3, "2:1", "rank 2 of 3"),
        (3, "0:3", "rank 0 of 3"),
    ] {
        let r = reduce_with_fault(p, &f, spec);
        assert!(
            r.stderr.contains(rank) && r.stderr.contains("injected test failure"),
            "P={p} {spec}:\n{}",
            r.stderr
        );
        assert_eq!(
            r.stderr.matches("chunkwise: error").count(),
            1,
            "P={p} {spec}: one error message:\n{}",
            r.stderr
        );
    }
}

/// A rank killed outright (`kill -9`, an OOM kill) cannot report anything
/// itself: the launcher must notice, end the other ranks and say which rank
/// died and how.
#[test]
fn a_killed_rank_ends_the_job() {
    let f = faulty_run_input("killed");
    for (p, spec, rank) in [(2, "1:2:kill", "rank 1"), (3, "2:1:kill", "rank 2")] {
        let r = reduce_with_fault(p, &f, spec);
        assert!(
            r.stderr.contains(rank) && r.stderr.contains("signal 9"),
            "P={p} {spec}: the launcher should name the killed rank:\n{}",
            r.stderr
        );
    }
}

/// Files in `dir` whose names mark them as temporary outputs.
fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect()
}

/// SIGTERM (Slurm's time limit, `scancel`) sent to the launcher half-way
/// through a slowed-down `generate`: every rank ends promptly, rank 0 says
/// how far it got, and neither the output nor its temporary file remains.
#[test]
fn sigterm_interrupts_generate_without_leaving_output() {
    let d = scratch("sigterm-generate");
    let f = d.join("big.h5");
    let fs = f.to_str().unwrap();
    let after = std::time::Duration::from_millis(1000);
    let r = mpirun_signalled(
        2,
        &[
            "generate",
            fs,
            "--var",
            "a",
            "--shape",
            "4000,1000",
            "--chunks",
            "50,1000",
            "--block-bytes",
            "400KB",
        ],
        &[("CHUNKWISE_TEST_SLOW", "100")],
        SignalAt {
            marker: "rank 0: 40 blocks to process",
            after,
            sig: 15,
        },
    );
    assert!(!r.timed_out, "hung after SIGTERM:\n{}", r.stderr);
    assert!(
        r.after_signal() < std::time::Duration::from_secs(10),
        "took {:?} after SIGTERM",
        r.after_signal()
    );
    assert!(r.code.is_some_and(|c| c != 0), "exit {:?}", r.code);
    assert!(
        r.stderr.contains("stopped by SIGTERM") && r.stderr.contains("had done"),
        "{}",
        r.stderr
    );
    // 40 blocks per rank at >= 100 ms each cannot have finished in 1 s.
    assert!(!r.stderr.contains("had done 40 of 40"), "{}", r.stderr);
    assert!(!f.exists(), "a half-written output appeared");
    assert_eq!(leftovers(&d), Vec::<String>::new());
}

/// SIGTERM during `reduce --output`, once while reducing and once after the
/// complete temporary file was written but before its rename: no output,
/// no temporary file, a clear message, a prompt non-zero exit.
#[test]
fn sigterm_interrupts_reduce_output_without_leaving_output() {
    let d = scratch("sigterm-reduce");
    let f = ncgen(&d, "climate");
    let fs = f.to_str().unwrap();
    let out = d.join("mean.nc");
    let os = out.to_str().unwrap();
    let args = [
        "reduce",
        fs,
        "--var",
        "tas",
        "--dim",
        "time",
        "--output",
        os,
        "--block-bytes",
        "1B",
    ];
    for (hook, ms) in [
        ("CHUNKWISE_TEST_SLOW", "2000"),
        ("CHUNKWISE_TEST_SLOW_COMMIT", "20000"),
    ] {
        let after = std::time::Duration::from_millis(1000);
        let at = SignalAt {
            marker: "rank 0: ",
            after,
            sig: 15,
        };
        let r = mpirun_signalled(2, &args, &[(hook, ms)], at);
        assert!(!r.timed_out, "{hook}: hung after SIGTERM:\n{}", r.stderr);
        assert!(
            r.after_signal() < std::time::Duration::from_secs(10),
            "{hook}: took {:?} after SIGTERM",
            r.after_signal()
        );
        assert!(r.code.is_some_and(|c| c != 0), "{hook}: exit {:?}", r.code);
        assert!(
            r.stderr.contains("stopped by SIGTERM") && r.stderr.contains("had done"),
            "{hook}: {}",
            r.stderr
        );
        assert!(!out.exists(), "{hook}: an output appeared");
        assert_eq!(leftovers(&d), Vec::<String>::new(), "{hook}");
    }
    // Without a signal the same command completes.
    mpirun(2, &args).ok();
    assert!(out.exists());
}
