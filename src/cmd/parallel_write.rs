//! The parallel write loop shared by `generate` and `convert`: every rank
//! fills its own blocks and writes them collectively into one HDF5 dataset.
//!
//! Collective writes are required for compressed (filtered) datasets under
//! parallel HDF5 and make MPI-IO aggregate the others, so every rank makes
//! the same number of `H5Dwrite` calls: ranks with fewer blocks take part
//! with empty selections.
//!
//! A collective HDF5 call that fails (disk full, quota, I/O error) may fail
//! on some ranks only, after the others have gone on into HDF5's own
//! collectives, so no agreement can follow it: the failing rank names the
//! output and the cause, removes the temporary output and ends the job
//! ([`Comm::abort`]). The file is always closed before `MPI_Finalize`
//! ([`close`]).

use crate::comm::Comm;
use crate::decomp::{Block, Decomposition};
use crate::element::Element;
use crate::error::CwError;
use crate::h5io;
use std::path::Path;

use super::output::write_failed as writing;

/// Collective: create dataset `var` in the MPI-IO `file` (the temporary
/// file of `out`) with `create` (the dataset and its attributes). A failure
/// (disk full while allocating chunks) ends the job as a failed write does:
/// the ranks may be inside different collectives of HDF5 by then.
pub fn create(
    comm: &Comm,
    out: &Path,
    var: &str,
    create: impl FnOnce() -> Result<hdf5::Dataset, hdf5::Error>,
) -> hdf5::Dataset {
    comm.or_abort(create().map_err(|e| {
        // HDF5 often has no account of a failed allocation ("unknown
        // library error"); `writing` adds the cause when the disk is full.
        let why = e.to_string();
        if why == "unknown library error" {
            writing(out, format!("cannot create '{var}'"))
        } else {
            writing(out, format!("cannot create '{var}': {why}"))
        }
    }))
}

/// Collective: close the MPI-IO `file` (the temporary file of `out`),
/// flushing HDF5's metadata. A failure (disk full while flushing) ends
/// the job as a failed write does: closing is collective inside HDF5.
pub fn close(comm: &Comm, file: hdf5::File, out: &Path) -> anyhow::Result<()> {
    comm.or_abort(file.close().map_err(|e| writing(out, e)));
    Ok(())
}

/// Write every block of `d` into `ds`: this rank fills its own blocks with
/// `fill(block, buf)` (buf has `block.len()` elements) and writes them.
/// A failure in `fill` or in the write aborts the job ([`Comm::or_abort`]),
/// since the other ranks are already inside collective calls.
/// Progress is shown as `what` (see [`crate::progress`]).
pub fn write_blocks<T: Element>(
    comm: &Comm,
    what: &'static str,
    ds: &hdf5::Dataset,
    out: &Path,
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
                h5io::write_block_collective(ds, Some((&b, &buf[..b.len()])))
                    .map_err(|e| writing(out, e)),
            );
            crate::interrupt::tick();
            progress.add((b.len() * T::DTYPE.size()) as u64);
        } else {
            comm.or_abort(h5io::write_block_collective::<T>(ds, None).map_err(|e| writing(out, e)));
        }
    }
    progress.finish();
}
