//! The rank-local phase of `reduce`: one reader thread owns every read call
//! and fills one of two reused buffers while the rayon pool decodes and
//! reduces the other (double buffering, [`super::blocks::with_blocks`]); the blocks of each leaf are accumulated in
//! order ([`LeafAcc`]) and leaves are folded along each tile's merge tree
//! into the wire pieces of [`crate::pieces`].

use super::ReducePlan;
use super::blocks::{Feed, with_blocks};
use crate::accum::Acc;
use crate::axis_kernel::LeafAcc;
use crate::decomp::Block;
use crate::element::Element;
use crate::error::CwError;
use crate::source::Reader;
use std::time::Instant;

/// Reduce this rank's `blocks` (those of work positions — leaves — `leaves`) in order. One
/// reader thread owns every read call (HDF5 or `pread`) and fills one of two reusable buffers
/// while the pool decodes and reduces the other ([`with_blocks`]); blocks are folded along each
/// tile's merge tree. Returns the tree pieces (wire form, see [`crate::pieces`]) and
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
    // What the file's CF attributes change, for this element type (a NaN
    // fill value on floats: nothing).
    let decode = plan.meta.decode.effective(T::DTYPE);
    let buf_elems = plan.decomp().block_elems();
    let body = |feed: &mut Feed<'_, T>| {
        let mut compute_s = 0.0;
        let mut next_leaf = leaves.start;
        let mut acc = LeafAcc::default();
        // The next leaf: accumulate its blocks, as they are read, into its kept cells.
        let mut leaf = |_: usize| -> Result<Vec<Acc>, CwError> {
            let n_blocks = plan.tiling().leaf_blocks(next_leaf).len();
            next_leaf += 1;
            for _ in 0..n_blocks {
                let Some((b, buf)) = feed.next()? else {
                    return Err(CwError::Internal(
                        "fewer blocks than the leaves hold".into(),
                    ));
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
                feed.give_back(buf);
            }
            let t = Instant::now();
            let cells = acc.finish();
            compute_s += t.elapsed().as_secs_f64();
            Ok(cells)
        };
        let pieces =
            crate::pieces::fold_tiles(plan.tiling(), leaves.start, leaves.len(), &mut leaf)?;
        Ok((pieces, compute_s))
    };
    let ((pieces, compute_s), read_s) =
        with_blocks(reader, plan.sel(), buf_elems, blocks, pool, progress, body)?;
    Ok((pieces, read_s, compute_s))
}
