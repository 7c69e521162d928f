//! How a `reduce` request lays out over a variable: the selected index
//! space, the block size and shape (the one block-size policy, shared with
//! `plan`), the order of blocks for the reduction, and how statistics are
//! finished. Pure: works on a [`VariableMeta`] the io layer has read.

use crate::accum::Finish;
use crate::blocksize::{auto_block_bytes, read_unit};
use crate::decomp::{Decomposition, Tiling};
use crate::error::CwError;
use crate::parse::Op;
use crate::request::ReduceRequest;
use crate::selection::{AxisRange, resolve_reduced, resolve_selection};
use crate::variable::VariableMeta;

/// A request laid out over a variable.
#[derive(Clone, Debug)]
pub struct ReduceLayout {
    /// Selected range along each axis.
    pub sel: Vec<AxisRange>,
    /// Block size in bytes the decomposition was made with.
    pub block_bytes: u64,
    /// Block decomposition of the selected part.
    pub decomp: Decomposition,
    /// Order of the blocks for the reduction (which axes are reduced).
    pub tiling: Tiling,
    /// Finalisation settings.
    pub finish: Finish,
}

/// The block decomposition `reduce` uses for a variable stored with chunks
/// `chunk` (in file indices; `None` when contiguous), `filtered` or not,
/// over the selected ranges `sel`, with blocks of at most `block_bytes`
/// (see [`crate::blocksize`]). `plan` predicts blocks with the same function.
pub fn decomposition(
    chunk: Option<&[usize]>,
    filtered: bool,
    elem_size: usize,
    sel: &[AxisRange],
    block_bytes: u64,
) -> Decomposition {
    let sel_shape: Vec<usize> = sel.iter().map(|r| r.count).collect();
    // Blocks are made of whole chunks of the selected index space, or of
    // equal parts of big unfiltered chunks (see `blocksize`).
    let chunk_in_sel: Option<Vec<usize>> = chunk.map(|c| {
        c.iter()
            .zip(sel)
            .map(|(&c, r)| (c / r.step).max(1))
            .collect()
    });
    let unit = read_unit(chunk_in_sel.as_deref(), filtered, elem_size, block_bytes);
    Decomposition::new(&sel_shape, unit.as_deref(), elem_size, block_bytes)
}

/// The block size of a variable: `--block-bytes` when given, else the
/// automatic policy for its storage and the memory per rank.
pub fn block_bytes(req: &ReduceRequest, filtered: bool, mem_per_rank: Option<u64>) -> u64 {
    req.block_bytes.or(auto_block_bytes(filtered, mem_per_rank))
}

/// Lay `req` out over `meta`; `mem_per_rank` caps the automatic block size.
pub fn layout(
    req: &ReduceRequest,
    meta: &VariableMeta,
    mem_per_rank: Option<u64>,
) -> Result<ReduceLayout, CwError> {
    let select = crate::date_select::dates_to_values(meta, &req.select)?;
    let sel = resolve_selection(&meta.dims, &select)?;
    let reduced = resolve_reduced(&meta.dims, &req.over)?;
    let block_bytes = block_bytes(req, meta.filtered, mem_per_rank);
    let decomp = decomposition(
        meta.chunk.as_deref(),
        meta.filtered,
        meta.dtype.size(),
        &sel,
        block_bytes,
    );
    let tiling = Tiling::new(&decomp, &reduced);
    let finish = Finish {
        ddof: req.ddof,
        keep_nan: req.keep_nan,
        integer: !meta.dtype.is_float() && meta.decode.effective(meta.dtype).is_identity(),
    };
    Ok(ReduceLayout {
        sel,
        block_bytes,
        decomp,
        tiling,
        finish,
    })
}

/// True when the statistics need the second moment.
pub fn wants_m2(ops: &[Op]) -> bool {
    ops.iter().any(|o| matches!(o, Op::Var | Op::Std))
}

/// Coordinates of the selected indices along axis `a` (the indices
/// themselves where the file has no coordinate variable).
pub fn result_coords(meta: &VariableMeta, sel: &[AxisRange], a: usize) -> Vec<f64> {
    let r = sel[a];
    (0..r.count)
        .map(|i| match &meta.dims.coords[a] {
            Some(c) => c[r.index(i)],
            None => r.index(i) as f64,
        })
        .collect()
}

/// CF `cell_methods` name of a statistic.
pub fn cell_method(op: Op) -> &'static str {
    match op {
        Op::Sum => "sum",
        Op::Mean => "mean",
        Op::Min => "minimum",
        Op::Max => "maximum",
        Op::Var => "variance",
        Op::Std => "standard_deviation",
        Op::Count => "point",
    }
}
