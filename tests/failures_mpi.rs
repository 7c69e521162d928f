//! A rank that fails while reading ends the whole job quickly (MPI_Abort),
//! with a message naming the rank and the reason.

mod common;
use common::*;

#[test]
fn one_rank_failing_mid_run_ends_every_rank() {
    let d = scratch("midrun");
    let f = d.join("a.h5");
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
    for (p, spec, rank) in [
        (2, "1:2", "rank 1 of 2"),
        (3, "2:1", "rank 2 of 3"),
        (3, "0:3", "rank 0 of 3"),
    ] {
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
            r.stderr.contains(rank) && r.stderr.contains("injected test failure"),
            "P={p} {spec}:\n{}",
            r.stderr
        );
        assert!(
            !r.stdout.contains("\"results\""),
            "no result may be printed after a failure: {}",
            r.stdout
        );
    }
}
