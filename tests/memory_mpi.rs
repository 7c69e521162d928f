//! Memory per rank is bounded by the block size, not by the data size: the
//! peak resident memory `reduce` reports (getrusage high-water mark, largest
//! rank) stays under 2 × block + 64 MiB for a 32 MiB and a 256 MiB dataset,
//! and barely differs between them.

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
