//! Real MPI runs of the core: `generate` is identical for any rank count
//! (checked with `h5diff`), `reduce` is bit-identical for P = 1..4 and 1 or 2
//! threads, and matches an exact reference computed here from `h5dump` output.

mod common;
use common::*;

fn make(dir: &std::path::Path, name: &str, p: usize, extra: &[&str]) -> std::path::PathBuf {
    let f = dir.join(name);
    let fs = f.to_str().unwrap();
    let mut args = vec!["generate", fs, "--var", "a"];
    args.extend_from_slice(extra);
    mpirun(p, &args).ok();
    f
}

#[test]
fn generate_is_identical_for_any_rank_count() {
    let d = scratch("gen-ranks");
    let extra = [
        "--shape",
        "301,77,5",
        "--chunks",
        "40,20,5",
        "--dist",
        "uniform:-3,7",
        "--seed",
        "11",
        "--nan-fraction",
        "0.1",
        "--block-bytes",
        "40k",
    ];
    let f1 = make(&d, "p1.h5", 1, &extra);
    let f3 = make(&d, "p3.h5", 3, &extra);
    let st = std::process::Command::new("h5diff")
        .arg(&f1)
        .arg(&f3)
        .status()
        .unwrap();
    assert!(st.success(), "h5diff found differences between P=1 and P=3");
    // And the data are what the generator promises: independent check of shape and NaN share.
    let (v, _) = decode(&h5dump_raw(&f1, "/a"), "f64");
    assert_eq!(v.len(), 301 * 77 * 5);
    let nan = v.iter().filter(|x| x.is_nan()).count() as f64 / v.len() as f64;
    assert!((nan - 0.1).abs() < 0.01, "NaN share {nan}");
    assert!(
        v.iter()
            .filter(|x| !x.is_nan())
            .all(|&x| (-3.0..7.0).contains(&x))
    );
}

#[test]
fn reduce_is_bit_identical_across_ranks_and_threads_and_exact() {
    let d = scratch("reduce-f64");
    let f = make(
        &d,
        "a.h5",
        2,
        &[
            "--shape",
            "1234,321",
            "--chunks",
            "50,100",
            "--dist",
            "normal:10,2",
            "--seed",
            "3",
            "--nan-fraction",
            "0.02",
        ],
    );
    let fs = f.to_str().unwrap();
    let (v, _) = decode(&h5dump_raw(&f, "/a"), "f64");
    let r = reference(&v);

    let mut first: Option<serde_json::Value> = None;
    for p in 1..=4 {
        for t in ["1", "2"] {
            // 100 KiB blocks: many blocks, uneven per rank, some ranks idle at P=4? no: 25 blocks.
            let run = mpirun(
                p,
                &[
                    "reduce",
                    fs,
                    "--var",
                    "a",
                    "--op",
                    "sum,mean,min,max,var,std,count",
                    "--threads",
                    t,
                    "--block-bytes",
                    "100KiB",
                    "--json",
                ],
            )
            .ok();
            let j = run.json();
            assert_eq!(j["ranks"], p);
            let res = j["results"].clone();
            match &first {
                None => first = Some(res.clone()),
                Some(f0) => assert_eq!(&res, f0, "P={p} threads={t} differs from P=1 threads=1"),
            }
            assert_eq!(j["count"].as_u64().unwrap() as usize, r.count);
            assert_eq!(j["bytes_read"].as_u64().unwrap(), 1234 * 321 * 8);
        }
    }
    let res = first.unwrap();
    close("sum", res["sum"].as_f64().unwrap(), r.sum, 1e-12);
    close("mean", res["mean"].as_f64().unwrap(), r.mean, 1e-12);
    close("var", res["var"].as_f64().unwrap(), r.var, 1e-12);
    close("std", res["std"].as_f64().unwrap(), r.var.sqrt(), 1e-12);
    assert_eq!(res["min"].as_f64().unwrap(), r.min);
    assert_eq!(res["max"].as_f64().unwrap(), r.max);
    assert_eq!(res["count"].as_u64().unwrap() as usize, r.count);
}

#[test]
fn more_ranks_than_blocks_and_sample_variance() {
    let d = scratch("few-blocks");
    // Two blocks only (contiguous 10x1000 f64 with 40 KB blocks): ranks 2 and 3 idle.
    let f = make(
        &d,
        "a.h5",
        1,
        &[
            "--shape",
            "10,1000",
            "--dist",
            "uniform:0,1",
            "--block-bytes",
            "40KB",
        ],
    );
    let fs = f.to_str().unwrap();
    let (v, _) = decode(&h5dump_raw(&f, "/a"), "f64");
    let r = reference(&v);
    let n = v.len() as f64;
    let j4 = mpirun(
        4,
        &[
            "reduce",
            fs,
            "--var",
            "a",
            "--op",
            "var,mean",
            "--ddof",
            "1",
            "--block-bytes",
            "40KB",
            "--json",
        ],
    )
    .ok()
    .json();
    let j1 = mpirun(
        1,
        &[
            "reduce",
            fs,
            "--var",
            "a",
            "--op",
            "var,mean",
            "--ddof",
            "1",
            "--block-bytes",
            "40KB",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(j4["n_blocks"], 2);
    assert_eq!(j4["results"], j1["results"]);
    close(
        "sample var",
        j4["results"]["var"].as_f64().unwrap(),
        r.var * n / (n - 1.0),
        1e-12,
    );
}

#[test]
fn every_dtype_matches_h5dump_reference() {
    let d = scratch("dtypes");
    let cases = [
        ("i8", "uniform:-120,120"),
        ("i16", "uniform:-30000,30000"),
        ("i32", "uniform:-2e9,2e9"),
        ("i64", "uniform:-9e18,9e18"),
        ("u8", "uniform:0,255"),
        ("u16", "uniform:0,65535"),
        ("u32", "uniform:0,4e9"),
        ("u64", "uniform:0,1.8e19"),
        ("f32", "normal:1000,3"),
    ];
    for (dt, dist) in cases {
        let name = format!("{dt}.h5");
        let f = make(
            &d,
            &name,
            2,
            &[
                "--shape", "257,129", "--chunks", "32,129", "--dtype", dt, "--dist", dist,
            ],
        );
        let fs = f.to_str().unwrap();
        let (v, ints) = decode(&h5dump_raw(&f, "/a"), dt);
        let run = mpirun(
            3,
            &[
                "reduce",
                fs,
                "--var",
                "a",
                "--op",
                "sum,mean,min,max,var,count",
                "--block-bytes",
                "8KiB",
                "--json",
            ],
        )
        .ok();
        let j = run.json();
        let res = &j["results"];
        assert_eq!(j["dtype"], dt);
        if dt.starts_with('f') {
            let r = reference(&v);
            close(
                &format!("{dt} sum"),
                res["sum"].as_f64().unwrap(),
                r.sum,
                1e-12,
            );
            close(
                &format!("{dt} var"),
                res["var"].as_f64().unwrap(),
                r.var,
                1e-10,
            );
            assert_eq!(res["min"].as_f64().unwrap(), r.min);
        } else {
            // Integer sums, min and max are exact (sums may exceed u64: compare as text).
            let exact: i128 = ints.iter().sum();
            assert_eq!(
                raw_result(&run.stdout, "sum"),
                exact.to_string(),
                "{dt} sum"
            );
            assert_eq!(
                raw_result(&run.stdout, "min"),
                ints.iter().min().unwrap().to_string(),
                "{dt} min"
            );
            assert_eq!(
                raw_result(&run.stdout, "max"),
                ints.iter().max().unwrap().to_string(),
                "{dt} max"
            );
            close(
                &format!("{dt} mean"),
                res["mean"].as_f64().unwrap(),
                exact as f64 / ints.len() as f64,
                1e-12,
            );
            let r = reference(&v);
            close(
                &format!("{dt} var"),
                res["var"].as_f64().unwrap(),
                r.var,
                1e-9,
            );
        }
        assert_eq!(res["count"].as_u64().unwrap(), 257 * 129);
    }
}

#[test]
fn keep_nan_propagates() {
    let d = scratch("keep-nan");
    let f = make(
        &d,
        "a.h5",
        1,
        &["--shape", "100,10", "--nan-fraction", "0.01", "--seed", "5"],
    );
    let fs = f.to_str().unwrap();
    let j = mpirun(
        2,
        &[
            "reduce",
            fs,
            "--var",
            "a",
            "--op",
            "mean,count",
            "--keep-nan",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        j["results"]["mean"], "NaN",
        "a NaN mean is the string \"NaN\" in JSON: {j}"
    );
    assert_eq!(j["results"]["count"], 1000);
}

#[test]
fn text_output_has_every_statistic() {
    let d = scratch("text");
    let f = make(
        &d,
        "a.h5",
        1,
        &["--shape", "50,40", "--dist", "uniform:1,2"],
    );
    let out = mpirun(2, &["reduce", f.to_str().unwrap(), "--var", "a"])
        .ok()
        .stdout;
    for op in ["count", "sum", "mean", "std", "min", "max"] {
        assert!(
            out.lines().any(|l| l.trim_start().starts_with(op)),
            "missing {op} in:\n{out}"
        );
    }
    assert!(out.contains("2000"), "count 2000 missing:\n{out}");
}
