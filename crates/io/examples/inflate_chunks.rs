//! The decoder's limit for benches/climate.sh: read every stored chunk of a
//! deflate(/shuffle) compressed dataset into memory, then time decoding all
//! of them on one core — with libdeflate (what `reduce` uses, through
//! `chunk_direct`), with zlib-rs (flate2) for comparison — and libhdf5's own
//! serial read of the whole dataset chunk by chunk (stock zlib).
//!
//! Usage: inflate_chunks FILE VAR  → one JSON line of seconds.

use chunkwise_core::decomp::Block;
use chunkwise_core::selection::AxisRange;
use chunkwise_io::chunk_direct::ChunkDirect;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (path, var) = (&args[1], &args[2]);
    let file = hdf5::File::open(path)?;
    let ds = file.dataset(var)?;
    let shape = ds.shape();
    let plan = ChunkDirect::plan(&ds, chunkwise_core::element::Dtype::F32)
        .ok_or_else(|| anyhow::anyhow!("not an f32 deflate/shuffle dataset"))?;
    // One box over the whole dataset: every chunk's raw bytes, in order.
    let whole = Block {
        index: 0,
        start: vec![0; shape.len()],
        count: shape.clone(),
    };
    let sel: Vec<AxisRange> = shape.iter().map(|&n| AxisRange::all(n)).collect();
    let slab = chunkwise_core::hyperslab::Hyperslab::of_block(&whole, &sel);
    let t = Instant::now();
    let jobs = plan.fetch(&ds, &slab)?;
    let fetch_s = t.elapsed().as_secs_f64();
    let stored: usize = jobs
        .iter()
        .filter_map(|j| j.raw.as_ref().map(|r| r.0.len()))
        .sum();

    let mut dec = libdeflater::Decompressor::new();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let t = Instant::now();
    let mut check = 0u64;
    for j in &jobs {
        if let Some((raw, mask)) = &j.raw {
            let out = plan
                .decode(raw, *mask, &mut dec, &mut a, &mut b)
                .map_err(|e| anyhow::anyhow!(e))?;
            check = check.wrapping_add(u64::from(out[out.len() / 2]));
        }
    }
    let libdeflate_s = t.elapsed().as_secs_f64();

    // libdeflate, inflate only (no unshuffle, no checksum strip): the
    // decoder's own limit.
    let chunk_bytes = plan.chunk.iter().product::<usize>() * plan.elem;
    let mut out = vec![0u8; chunk_bytes];
    let t = Instant::now();
    for j in &jobs {
        if let Some((raw, _)) = &j.raw {
            let got = dec
                .zlib_decompress(raw, &mut out)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            check = check.wrapping_add(u64::from(out[got / 2]));
        }
    }
    let inflate_s = t.elapsed().as_secs_f64();

    // zlib-rs: inflate only.
    let t = Instant::now();
    for j in &jobs {
        if let Some((raw, _)) = &j.raw {
            let mut d = flate2::Decompress::new(true);
            d.decompress(raw, &mut out, flate2::FlushDecompress::Finish)?;
            check = check.wrapping_add(u64::from(out[out.len() / 2]));
        }
    }
    let zlib_rs_s = t.elapsed().as_secs_f64();

    // libhdf5 (stock zlib, one chunk at a time): read the dataset slab by slab.
    let step = plan.chunk[0];
    let mut buf = vec![0f32; step * shape[1..].iter().product::<usize>()];
    let t = Instant::now();
    let mut i = 0;
    while i < shape[0] {
        let mut count = shape.clone();
        count[0] = step.min(shape[0] - i);
        let mut start = vec![0; shape.len()];
        start[0] = i;
        let blk = Block {
            index: i,
            start,
            count,
        };
        chunkwise_io::h5io::read_block(&ds, &blk, &sel, &mut buf)?;
        check = check.wrapping_add(buf[0] as u64);
        i += blk.count[0];
    }
    let hdf5_s = t.elapsed().as_secs_f64();
    println!(
        "{{\"chunks\":{},\"stored_bytes\":{stored},\"fetch_s\":{fetch_s},\"libdeflate_s\":{libdeflate_s},\"inflate_s\":{inflate_s},\"zlib_rs_s\":{zlib_rs_s},\"libhdf5_s\":{hdf5_s},\"check\":{check}}}",
        jobs.len()
    );
    Ok(())
}
