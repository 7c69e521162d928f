//! The combine step of `reduce`: every rank's tree pieces (wire form, see
//! [`crate::pieces`]) stream to rank 0 in rank order, one message at a
//! time, and rank 0 completes each tile's merge tree as they arrive
//! ([`crate::pieces::Assembler`]). Rank 0 holds its merge stack (one
//! partial result per tree level at most), one received message and the
//! result — never all ranks' partial results at once, which for a time
//! mean of a large map would be several maps of per-cell state per rank.

use crate::comm::Comm;
use crate::decomp::{Decomposition, Tiling};
use crate::error::CwError;
use crate::pieces::{Assembler, Partial};

/// Combine this rank's `msgs` (from [`crate::pieces::fold_tiles`]) with
/// every other rank's: the result cells on rank 0, `None` elsewhere.
/// Collective; an error (a malformed piece) is rank 0's alone and must end
/// the job (`Comm::or_abort`), since the others may wait in a send.
pub fn to_root<C: Partial>(
    comm: &Comm,
    d: &Decomposition,
    t: &Tiling,
    msgs: Vec<Vec<u64>>,
) -> Result<Option<Vec<C>>, CwError> {
    if !comm.is_root() {
        comm.stream_to_root(msgs, |_| Ok::<(), CwError>(()))?;
        return Ok(None);
    }
    let mut asm = Assembler::<C>::new(d, t);
    comm.stream_to_root(msgs, |m| asm.add(m))?;
    asm.finish().map(Some)
}
