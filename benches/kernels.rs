//! Criterion benchmark of the per-block kernels (`kernels::reduce_block`):
//! GB/s per element type and op set, on one thread and on the default rayon
//! pool. `cargo bench --bench kernels` (add `-- --quick` for a short run).
//!
//! Op sets: `sum,mean,min,max,count` needs one pass over the block;
//! adding `var`/`std` needs the second, `Σ(x−mean)²`, pass (`want_m2`).
//!
//! `time_mean/f32`: the kept-last-axis kernel (`axis_kernel::LeafAcc`) on
//! blocks of 16 ERA5-like maps (181 × 360 f32), the time mean's kernel.

use chunkwise_core::axis_kernel::LeafAcc;
use chunkwise_core::cf::Decode;
use chunkwise_core::element::Element;
use chunkwise_core::generate_values::uniform01;
use chunkwise_core::kernels::reduce_block;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// Bytes per benchmarked block: 16 MiB, the order of a real block and larger than L2.
const BLOCK_BYTES: usize = 16 << 20;

fn block<T: Element>() -> Vec<T> {
    let n = BLOCK_BYTES / std::mem::size_of::<T>();
    (0..n as u64)
        .map(|i| T::from_f64((uniform01(7, i) * 200.0 - 100.0).round()))
        .collect()
}

fn bench_type<T: Element>(c: &mut Criterion, name: &str) {
    let xs = block::<T>();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut g = c.benchmark_group(format!("reduce_block/{name}"));
    g.throughput(Throughput::BytesDecimal(BLOCK_BYTES as u64)); // GB/s (10⁹ B/s), as reduce reports
    g.sample_size(20);
    for (ops, m2) in [("sum,mean,min,max", false), ("+var,std", true)] {
        g.bench_with_input(BenchmarkId::new(ops, "1 thread"), &xs, |b, xs| {
            one.install(|| b.iter(|| black_box(reduce_block(black_box(xs), m2))))
        });
        let all = rayon::current_num_threads();
        g.bench_with_input(
            BenchmarkId::new(ops, format!("{all} threads")),
            &xs,
            |b, xs| b.iter(|| black_box(reduce_block(black_box(xs), m2))),
        );
    }
    g.finish();
}

/// The time mean's kernel: 16 maps of 181 × 360 f32 per block, reduced over
/// the first axis into 65 160 cells.
fn bench_time_mean(c: &mut Criterion) {
    let count = [16usize, 181, 360];
    let n: usize = count.iter().product();
    let xs: Vec<f32> = (0..n as u64)
        .map(|i| (250.0 + uniform01(7, i) * 40.0) as f32)
        .collect();
    let reduced = [true, false, false];
    let decode = Decode::default();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    // A leaf of 8 blocks, then its cells (into a reused vector).
    let mut g = c.benchmark_group("time_mean/f32");
    g.throughput(Throughput::BytesDecimal((8 * n * 4) as u64));
    g.sample_size(20);
    for (ops, m2) in [("sum,mean,min,max", false), ("+var,std", true)] {
        g.bench_function(BenchmarkId::new(ops, "1 thread"), |b| {
            let (mut acc, mut cells) = (LeafAcc::default(), Vec::new());
            one.install(|| {
                b.iter(|| {
                    for _ in 0..8 {
                        acc.add(black_box(&xs), &count, &reduced, &decode, m2);
                    }
                    acc.finish_into(&mut cells, |a| *a);
                    black_box(cells.len())
                })
            })
        });
    }
    g.finish();
}

fn kernels(c: &mut Criterion) {
    bench_time_mean(c);
    bench_type::<f64>(c, "f64");
    bench_type::<f32>(c, "f32");
    bench_type::<i64>(c, "i64");
    bench_type::<i32>(c, "i32");
    bench_type::<i16>(c, "i16");
    bench_type::<u8>(c, "u8");
}

criterion_group!(benches, kernels);
criterion_main!(benches);
