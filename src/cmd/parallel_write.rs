//! The parallel write loop shared by `generate` and `convert`: every rank
//! fills its own blocks and writes them collectively into one HDF5 dataset.
//!
//! Collective writes are required for compressed (filtered) datasets under
//! parallel HDF5 and make MPI-IO aggregate the others, so every rank makes
//! the same number of `H5Dwrite` calls: ranks with fewer blocks take part
//! with empty selections.

use crate::comm::Comm;
use crate::decomp::{Block, Decomposition};
use crate::element::Element;
use crate::error::CwError;
use crate::h5io;

/// Write every block of `d` into `ds`: this rank fills its own blocks with
/// `fill(block, buf)` (buf has `block.len()` elements) and writes them.
/// A failure in `fill` or in the write aborts the job ([`Comm::or_abort`]),
/// since the other ranks are already inside collective calls.
/// Progress is shown as `what` (see [`crate::progress`]).
pub fn write_blocks<T: Element>(
    comm: &Comm,
    what: &'static str,
    ds: &hdf5::Dataset,
    d: &Decomposition,
    mut fill: impl FnMut(&Block, &mut [T]) -> Result<(), CwError>,
) {
    let mine = d.rank_range(comm.rank(), comm.size());
    let rounds = d.rank_range(0, comm.size()).len();
    let mut buf = vec![T::default(); if mine.is_empty() { 0 } else { d.block_elems() }];
    crate::interrupt::set_total(mine.len());
    let total = d.shape.iter().product::<usize>() as u64 * T::DTYPE.size() as u64;
    let progress = crate::progress::Progress::start(comm, what, total);
    for round in 0..rounds {
        let idx = mine.start + round;
        if idx < mine.end {
            comm.or_abort(crate::testhooks::before_block(round + 1));
            let b = d.block(idx);
            comm.or_abort(fill(&b, &mut buf[..b.len()]));
            comm.or_abort(
                h5io::write_block_collective(ds, Some((&b, &buf[..b.len()]))).map_err(Into::into),
            );
            crate::interrupt::tick();
            progress.add((b.len() * T::DTYPE.size()) as u64);
        } else {
            comm.or_abort(h5io::write_block_collective::<T>(ds, None).map_err(Into::into));
        }
    }
    progress.finish();
}
