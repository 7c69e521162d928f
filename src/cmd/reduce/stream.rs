//! The rank-local phase of `reduce`: one reader thread owns every read call
//! and fills one of two reused buffers while the rayon pool reduces the
//! other (double buffering); the blocks of each leaf are accumulated in
//! order ([`LeafAcc`]) and leaves are folded along each tile's merge tree
//! into the wire pieces of [`crate::pieces`].

use super::ReducePlan;
use crate::accum::Acc;
use crate::axis_kernel::LeafAcc;
use crate::decomp::Block;
use crate::element::Element;
use crate::error::CwError;
use crate::source::Reader;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

/// Reduce this rank's `blocks` (those of work positions — leaves — `leaves`) in order. One
/// reader thread owns every read call (HDF5 or `pread`) and fills one of two reusable buffers
/// while the pool reduces the other; blocks are folded along each tile's
/// merge tree. Returns the tree pieces (wire form, see [`crate::pieces`]) and
/// the read and compute seconds.
pub fn reduce_blocks<T: Element>(
    reader: &Reader,
    plan: &ReducePlan,
    blocks: &[Block],
    leaves: std::ops::Range<usize>,
    pool: &rayon::ThreadPool,
    want_m2: bool,
    progress: &crate::progress::Progress,
) -> Result<(Vec<Vec<u64>>, f64, f64), CwError> {
    crate::interrupt::set_total(blocks.len());
    if blocks.is_empty() {
        return Ok((Vec::new(), 0.0, 0.0));
    }
    let buf_elems = plan.decomp().block_elems();
    let n_bufs = blocks.len().min(2);
    let (free_tx, free_rx) = sync_channel::<Vec<T>>(n_bufs);
    let (full_tx, full_rx) = sync_channel::<Result<Vec<T>, CwError>>(n_bufs);
    for _ in 0..n_bufs {
        free_tx
            .send(vec![T::default(); buf_elems])
            .expect("channel has room");
    }
    let sel = plan.sel();
    // What the file's CF attributes change, for this element type (a NaN
    // fill value on floats: nothing).
    let decode = plan.meta.decode.effective(T::DTYPE);
    std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut read_s = 0.0;
            for (i, b) in blocks.iter().enumerate() {
                let Ok(mut buf) = free_rx.recv() else { break };
                let t = Instant::now();
                let r = crate::testhooks::before_block(i + 1)
                    .and_then(|()| Ok(reader.read_block_in(b, sel, &mut buf, Some(pool))?));
                read_s += t.elapsed().as_secs_f64();
                // This thread makes the rank's MPI calls during block work,
                // so it is the one that reports progress (serialized MPI).
                progress.add((b.len() * std::mem::size_of::<T>()) as u64);
                let failed = r.is_err();
                if full_tx.send(r.map(|()| buf)).is_err() || failed {
                    break;
                }
            }
            read_s
        });
        let mut compute_s = 0.0;
        let mut next = 0usize;
        let mut next_leaf = leaves.start;
        let mut acc = LeafAcc::default();
        // The next leaf: accumulate its blocks, as they are read, into its kept cells.
        let mut leaf = |_: usize| -> Result<Vec<Acc>, CwError> {
            let n_blocks = plan.tiling().leaf_blocks(next_leaf).len();
            next_leaf += 1;
            for _ in 0..n_blocks {
                let b = &blocks[next];
                next += 1;
                let buf = match full_rx.recv() {
                    Ok(r) => r?,
                    Err(_) => {
                        return Err(CwError::Internal(
                            "reader thread stopped unexpectedly".into(),
                        ));
                    }
                };
                let t = Instant::now();
                pool.install(|| {
                    acc.add(
                        &buf[..b.len()],
                        &b.count,
                        &plan.tiling().reduced,
                        &decode,
                        want_m2,
                    )
                });
                compute_s += t.elapsed().as_secs_f64();
                crate::interrupt::tick();
                let _ = free_tx.send(buf);
            }
            let t = Instant::now();
            let cells = acc.finish();
            compute_s += t.elapsed().as_secs_f64();
            Ok(cells)
        };
        let result =
            crate::pieces::fold_tiles(plan.tiling(), leaves.start, leaves.len(), &mut leaf);
        drop(free_tx);
        drop(full_rx);
        let read_s = reader.join().unwrap_or(0.0);
        result.map(|pieces| (pieces, read_s, compute_s))
    })
}
