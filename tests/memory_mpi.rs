//! Memory per rank is bounded by the block size, not by the data size: the
//! peak resident memory `reduce` reports (getrusage high-water mark, largest
//! rank) stays under 2 × block + 64 MiB for a 32 MiB and a 256 MiB dataset,
//! and barely differs between them; a time mean of a map adds at most three
//! times the result's accumulator state.

mod common;
use common::*;

#[test]
fn peak_memory_does_not_grow_with_the_data() {
    let d = scratch("memory");
    let mut peaks = Vec::new();
    for rows in [512usize, 4096] {
        let f = d.join(format!("m{rows}.h5"));
        let fs = f.to_str().unwrap();
        let shape = format!("{rows},8192");
        mpirun(
            2,
            &[
                "generate", fs, "--var", "a", "--shape", &shape, "--chunks", "64,8192",
            ],
        )
        .ok();
        let bytes = rows as u64 * 8192 * 8;
        assert_eq!(std::fs::metadata(&f).unwrap().len() / bytes, 1);
        for p in [1, 2] {
            let j = mpirun(
                p,
                &[
                    "reduce",
                    fs,
                    "--var",
                    "a",
                    "--op",
                    "mean,std",
                    "--block-bytes",
                    "1MiB",
                    "--json",
                ],
            )
            .ok()
            .json();
            // Blocks are equal parts of the 4 MiB chunks: 16 rows × 8192 f64.
            assert_eq!(j["block_shape"], serde_json::json!([16, 8192]));
            let peak = j["peak_rss_mib"].as_f64().unwrap();
            assert!(peak > 1.0, "peak {peak} MiB is not a measurement");
            assert!(
                peak <= 2.0 * 1.0 + 64.0,
                "{rows} rows, P={p}: peak {peak} MiB exceeds 2 × block + 64 MiB"
            );
            peaks.push(peak);
        }
    }
    // 8 × more data, same block: the peak moves by less than 8 MiB.
    let spread = peaks.iter().cloned().fold(f64::MIN, f64::max)
        - peaks.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread < 8.0, "peaks {peaks:?} MiB depend on the data size");
}

/// A time mean of an ERA5-like map (float32, 181 × 360 cells, one map per
/// chunk): the per-cell partial results of every rank stream to rank 0,
/// which completes the merge tree as they arrive, so no rank holds every
/// rank's partial maps at once. Peak memory per rank ≤ 2 × block + 3 × the
/// result's accumulator state + 64 MiB at P = 1..3 (P = 3 cuts the tree into
/// seven pieces: gathered whole on rank 0, they took ~150 MiB), and the
/// results are the same bits for every P.
#[test]
fn time_mean_of_a_map_stays_within_its_state() {
    let d = scratch("memory_map");
    let f = d.join("map.h5");
    let fs = f.to_str().unwrap();
    let (nt, ny, nx) = (512usize, 181usize, 360usize);
    let shape = format!("{nt},{ny},{nx}");
    let chunks = format!("1,{ny},{nx}");
    mpirun(
        2,
        &[
            "generate", fs, "--var", "t2m", "--shape", &shape, "--chunks", &chunks, "--dtype",
            "f32",
        ],
    )
    .ok();
    // The accumulator state of the result: one `Acc` (112 bytes) per cell.
    let state_mib = (ny * nx * 112) as f64 / (1u64 << 20) as f64;
    let mut first: Option<serde_json::Value> = None;
    for p in 1..=3 {
        let j = reduce_json(
            p,
            &[
                fs,
                "--var",
                "t2m",
                "--dim",
                "dim_0",
                "--op",
                "mean,std,min,max",
            ],
        );
        let block: usize = j["block_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .product();
        let block_mib = (block * 4) as f64 / (1u64 << 20) as f64;
        let bound = 2.0 * block_mib + 3.0 * state_mib + 64.0;
        let peak = j["peak_rss_mib"].as_f64().unwrap();
        assert!(peak > 1.0, "peak {peak} MiB is not a measurement");
        assert!(
            peak <= bound,
            "P={p}: peak {peak:.1} MiB exceeds 2 × block + 3 × state + 64 MiB = {bound:.1} MiB"
        );
        match &first {
            None => first = Some(j["results"].clone()),
            Some(r) => assert_eq!(&j["results"], r, "P={p} differs from P=1"),
        }
    }
}
