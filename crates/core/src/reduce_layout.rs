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
    let longitude: Vec<bool> = meta
        .coord_attrs
        .iter()
        .map(|a| crate::periodic::is_longitude(a))
        .collect();
    let sel = resolve_selection(&meta.dims, &longitude, &select)?;
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

/// What the result of a reduction costs in memory, known before any read.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ResultMemory {
    /// Cells of the result (the product of the kept, selected extents).
    pub cells: u64,
    /// Bytes rank 0 holds while it combines the tiles: per cell one
    /// accumulator, its gathered wire form (as large), and one `f64` per
    /// statistic for the report or output.
    pub rank0_bytes: u64,
    /// Bytes every rank holds for partial results: per level of a tile's
    /// merge tree (log2 of its blocks, plus two) one accumulator per kept
    /// cell of a block.
    pub per_rank_bytes: u64,
}

/// The result memory of `layout` with `n_ops` statistics (see
/// [`ResultMemory`]; sizes saturate instead of overflowing).
pub fn result_memory(layout: &ReduceLayout, n_ops: usize) -> ResultMemory {
    let acc = std::mem::size_of::<crate::accum::Acc>() as u64;
    let kept = |v: &[usize]| -> u64 {
        v.iter()
            .zip(&layout.tiling.reduced)
            .filter(|(_, r)| !**r)
            .fold(1u64, |p, (&x, _)| p.saturating_mul(x as u64))
    };
    let cells = kept(&layout.decomp.shape);
    let levels = (usize::BITS - layout.tiling.n_leaves.max(1).leading_zeros()) as u64 + 2;
    ResultMemory {
        cells,
        rank0_bytes: cells.saturating_mul(2 * acc + 8 * n_ops as u64),
        per_rank_bytes: kept(&layout.decomp.block_shape)
            .saturating_mul(acc)
            .saturating_mul(levels),
    }
}

/// Refuse a result that cannot fit: rank 0's share of `mem` (plus the
/// blocks) above `limit` bytes, which `limit_from` describes (Slurm's memory
/// per rank, or the machine's RAM). Checked before any read, so a huge
/// `--dim` result is one clear message instead of a run that never ends.
pub fn check_result_memory(
    mem: &ResultMemory,
    layout: &ReduceLayout,
    limit: u64,
    limit_from: &str,
) -> Result<(), CwError> {
    let need = mem
        .rank0_bytes
        .saturating_add(mem.per_rank_bytes)
        .saturating_add(2 * layout.block_bytes);
    if need <= limit {
        return Ok(());
    }
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    Err(CwError::Input(format!(
        "the result has {} cells (shape {:?}), which need about {:.1} GiB on rank 0 to combine ({:.1} GiB of partial results on every rank), more than the {:.1} GiB {limit_from}; select less (--select), reduce over more dimensions (--dim), or split the job",
        mem.cells,
        layout.tiling.result_shape(&layout.decomp),
        gib(mem.rank0_bytes),
        gib(mem.per_rank_bytes),
        gib(limit)
    )))
}

/// True when the statistics need the second moment.
pub fn wants_m2(ops: &[Op]) -> bool {
    ops.iter().any(|o| matches!(o, Op::Var | Op::Std))
}

/// Coordinates of the selected indices along axis `a` (the indices
/// themselves where the file has no coordinate variable). A range across
/// the seam of a periodic longitude gets continuous values inside the
/// requested range (`-10, …, 10`; see [`crate::periodic`]).
pub fn result_coords(meta: &VariableMeta, sel: &[AxisRange], a: usize) -> Vec<f64> {
    let r = sel[a];
    (0..r.count)
        .map(|i| match &meta.dims.coords[a] {
            Some(c) => c[r.index(i)] + r.coord_shift(i),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::element::Dtype;
    use crate::request::{InputSpec, ReduceRequest};
    use crate::selection::{Dims, ReduceOver};

    fn meta(shape: &[usize]) -> VariableMeta {
        let n = shape.len();
        VariableMeta {
            dtype: Dtype::F32,
            shape: shape.to_vec(),
            chunk: None,
            filtered: false,
            dims: Dims {
                names: (0..n).map(|i| format!("dim_{i}")).collect(),
                shape: shape.to_vec(),
                coords: vec![None; n],
            },
            decode: Default::default(),
            attrs: vec![],
            globals: vec![],
            coord_attrs: vec![vec![]; n],
        }
    }

    #[test]
    fn result_memory_counts_kept_cells_and_refuses_huge_results() {
        let mut req = ReduceRequest::new(InputSpec::file("x", None));
        // All reduced: one cell.
        let l = layout(&req, &meta(&[1000, 300]), None).unwrap();
        let m = result_memory(&l, 2);
        assert_eq!(m.cells, 1);
        assert!(check_result_memory(&m, &l, 1 << 30, "x").is_ok());
        // --dim dim_0 of a 2 × 10^12 array: 10^12 cells, 2 × Acc + 16 B each.
        req.over = ReduceOver::Dims(vec!["dim_0".into()]);
        let l = layout(&req, &meta(&[2, 1_000_000_000_000]), None).unwrap();
        let m = result_memory(&l, 2);
        assert_eq!(m.cells, 1_000_000_000_000);
        let acc = std::mem::size_of::<crate::accum::Acc>() as u64;
        assert_eq!(m.rank0_bytes, m.cells * (2 * acc + 16));
        let e = check_result_memory(&m, &l, 64 << 30, "of RAM here").unwrap_err();
        assert!(e.to_string().contains("1000000000000 cells"), "{e}");
        assert!(e.to_string().contains("64.0 GiB of RAM here"), "{e}");
    }
}
