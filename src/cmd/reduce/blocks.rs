//! A rank's blocks, read in order by one reader thread into two reused
//! buffers (double buffering) and handed to the caller one at a time: the
//! read loop of the passes that are not the plain statistics (weighted
//! statistics, quantile passes). Memory: two block buffers.

use super::ReducePlan;
use crate::decomp::{Block, split_range};
use crate::element::Element;
use crate::error::CwError;
use crate::selection::AxisRange;
use crate::source::Reader;
use chunkwise_io::chunk_direct::Staged;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

/// This rank's share of the work: its contiguous range of work positions
/// (leaves of the tiles, see [`crate::decomp::Tiling`]) and the blocks of
/// those leaves, in order.
pub fn rank_share(
    plan: &ReducePlan,
    rank: usize,
    size: usize,
) -> (std::ops::Range<usize>, Vec<Block>) {
    let (d, t) = (plan.decomp(), plan.tiling());
    let range = split_range(t.n_positions(), rank, size);
    let blocks = range
        .clone()
        .flat_map(|p| t.leaf_blocks(p))
        .map(|b| d.block(t.block_index(d, b)))
        .collect();
    (range, blocks)
}

/// A block buffer with the raw chunks staged for it (decoded by the
/// consumer, see [`Staged`]); both are reused from block to block.
type Slot<T> = (Vec<T>, Staged);

/// The caller's side of the double buffer: [`Feed::next`] gives the next
/// block's values, [`Feed::give_back`] returns the buffer for the next read.
pub struct Feed<'a, T> {
    blocks: &'a [Block],
    at: usize,
    full: Receiver<Result<Slot<T>, CwError>>,
    free: SyncSender<Slot<T>>,
    /// Staging areas of the buffers handed out, returned with them.
    spent: Vec<Staged>,
    pool: &'a rayon::ThreadPool,
    decode_s: f64,
}

impl<'a, T: Element> Feed<'a, T> {
    /// The next block and its values (the buffer's first `block.len()`
    /// elements), or `None` after the last. Chunks the reader left encoded
    /// are decoded here, in the pool, while the reader fetches the next
    /// block's.
    pub fn next(&mut self) -> Result<Option<(&'a Block, Vec<T>)>, CwError> {
        let Some(b) = self.blocks.get(self.at) else {
            return Ok(None);
        };
        self.at += 1;
        let (mut buf, mut staged) = match self.full.recv() {
            Ok(r) => r?,
            Err(_) => {
                return Err(CwError::Internal(
                    "reader thread stopped unexpectedly".into(),
                ));
            }
        };
        if !staged.is_empty() {
            let t = Instant::now();
            self.pool.install(|| staged.finish(&mut buf[..b.len()]))?;
            self.decode_s += t.elapsed().as_secs_f64();
        }
        self.spent.push(staged);
        Ok(Some((b, buf)))
    }

    /// Return a buffer so the reader can fill it with a later block.
    pub fn give_back(&mut self, buf: Vec<T>) {
        let staged = self.spent.pop().unwrap_or_default();
        let _ = self.free.send((buf, staged));
    }
}

/// Read `blocks` (of the selection `sel`, buffers of `buf_elems`) in order
/// on a reader thread while `body` consumes them. The reader thread makes
/// every call into the file; compressed chunks read chunk-direct are
/// fetched raw by it and decoded in `pool` by [`Feed::next`], so fetching
/// block i + 1 overlaps decoding and reducing block i. Returns `body`'s
/// result and the seconds spent reading (fetching and decoding).
pub fn with_blocks<T: Element, R>(
    reader: &Reader,
    sel: &[AxisRange],
    buf_elems: usize,
    blocks: &[Block],
    pool: &rayon::ThreadPool,
    progress: &crate::progress::Progress,
    body: impl FnOnce(&mut Feed<'_, T>) -> Result<R, CwError>,
) -> Result<(R, f64), CwError> {
    let n_bufs = blocks.len().clamp(1, 2);
    let (free_tx, free_rx) = sync_channel::<Slot<T>>(n_bufs);
    let (full_tx, full_rx) = sync_channel::<Result<Slot<T>, CwError>>(n_bufs);
    for _ in 0..n_bufs.min(blocks.len()) {
        free_tx
            .send((vec![T::default(); buf_elems], Staged::default()))
            .expect("channel has room");
    }
    std::thread::scope(|s| {
        let rd = s.spawn(move || {
            let mut read_s = 0.0;
            for (i, b) in blocks.iter().enumerate() {
                let Ok((mut buf, mut staged)) = free_rx.recv() else {
                    break;
                };
                let t = Instant::now();
                let r = crate::testhooks::before_block(i + 1).and_then(|()| {
                    Ok(reader.stage_block(b, sel, &mut buf, &mut staged, Some(pool))?)
                });
                read_s += t.elapsed().as_secs_f64();
                // This thread makes the rank's MPI calls during block work,
                // so it is the one that reports progress (serialized MPI).
                progress.add((b.len() * std::mem::size_of::<T>()) as u64);
                let failed = r.is_err();
                if full_tx.send(r.map(|()| (buf, staged))).is_err() || failed {
                    break;
                }
            }
            read_s
        });
        let mut feed = Feed {
            blocks,
            at: 0,
            full: full_rx,
            free: free_tx,
            spent: Vec::new(),
            pool,
            decode_s: 0.0,
        };
        let result = body(&mut feed);
        let decode_s = feed.decode_s;
        drop(feed);
        let fetch_s = rd.join().unwrap_or(0.0);
        log::debug!("reader thread {fetch_s:.3} s, decoding {decode_s:.3} s");
        let read_s = fetch_s + decode_s;
        result.map(|r| (r, read_s))
    })
}
