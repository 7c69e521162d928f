//! The pieces protocol: how ranks fold their blocks' partial results along
//! each tile's fixed merge tree ([`crate::tree`]) and send the tree pieces to
//! rank 0 as flat `u64` words, and how rank 0 completes every tile from them.
//!
//! Wire form of one piece: `[tile, lo, hi, cell₀ words…, cell₁ words…]`,
//! each cell [`Partial::WORDS`] words ([`Acc::to_words`] for the plain
//! statistics; weighted statistics carry their own [`Partial`]). Pieces arrive
//! tile-ascending in rank order, because every rank owns a contiguous range
//! of work positions ([`crate::decomp::split_range`]). The tree does not
//! depend on where the ranges split, so the assembled result is
//! bit-identical for every rank count.

use crate::accum::{ACC_WORDS, Acc, Finish, FloatAcc, Value};
use crate::decomp::{Decomposition, Tiling, for_each_row};
use crate::error::CwError;
use crate::parse::Op;
use crate::tree;

/// Words before the cells of a piece: tile, lo, hi.
pub const PIECE_HEADER: usize = 3;

/// A partial result of one cell that the pieces protocol carries: merged
/// in the fixed tree order, sent as a fixed number of `u64` words.
pub trait Partial: Clone + Default {
    /// Words of the wire form.
    const WORDS: usize;
    /// Combine `self` (the earlier part) with `later`.
    fn merge_with(&self, later: &Self) -> Self;
    /// Append the wire form to `out`.
    fn put_words(&self, out: &mut Vec<u64>);
    /// Inverse of [`Partial::put_words`] (`w` holds exactly `WORDS` words).
    fn from_wire(w: &[u64]) -> Self;
}

impl Partial for Acc {
    const WORDS: usize = ACC_WORDS;
    fn merge_with(&self, later: &Acc) -> Acc {
        self.merge(later)
    }
    fn put_words(&self, out: &mut Vec<u64>) {
        out.extend(self.to_words());
    }
    fn from_wire(w: &[u64]) -> Acc {
        Acc::from_words(w)
    }
}

/// Number of u64 words in the wire form of a [`FloatAcc`].
pub const FLOAT_ACC_WORDS: usize = 8;

impl Partial for FloatAcc {
    const WORDS: usize = FLOAT_ACC_WORDS;
    fn merge_with(&self, later: &Self) -> Self {
        self.merge(later)
    }
    fn put_words(&self, out: &mut Vec<u64>) {
        out.extend([
            self.n,
            self.nan,
            self.sum.to_bits(),
            self.sum_c.to_bits(),
            self.mean.to_bits(),
            self.m2.to_bits(),
            self.min.to_bits(),
            self.max.to_bits(),
        ]);
    }
    fn from_wire(w: &[u64]) -> Self {
        let f = |i: usize| f64::from_bits(w[i]);
        FloatAcc {
            n: w[0],
            nan: w[1],
            sum: f(2),
            sum_c: f(3),
            mean: f(4),
            m2: f(5),
            min: f(6),
            max: f(7),
        }
    }
}

/// A partial-statistics cell a grouped reduction carries: [`Acc`], or the
/// smaller [`FloatAcc`] where the data are floats (or decoded).
pub trait StatCell: Partial + Copy + for<'a> From<&'a Acc> {
    /// The value of `op`.
    fn value(&self, op: Op, fin: &Finish) -> Value;
    /// Values counted and NaN values seen.
    fn counts(&self) -> (u64, u64);
}

impl From<&Acc> for Acc {
    fn from(a: &Acc) -> Acc {
        *a
    }
}

impl StatCell for Acc {
    fn value(&self, op: Op, fin: &Finish) -> Value {
        Acc::value(self, op, fin)
    }
    fn counts(&self) -> (u64, u64) {
        (self.n, self.nan)
    }
}

impl StatCell for FloatAcc {
    fn value(&self, op: Op, fin: &Finish) -> Value {
        FloatAcc::value(self, op, fin)
    }
    fn counts(&self) -> (u64, u64) {
        (self.n, self.nan)
    }
}

/// Element-wise merge of two partial results of the same cells (`a` earlier).
pub fn merge_cells<C: Partial>(mut a: Vec<C>, b: &[C]) -> Vec<C> {
    for (x, y) in a.iter_mut().zip(b) {
        *x = x.merge_with(y);
    }
    a
}

/// Words of one message, at most, into which [`fold_tiles`] packs
/// consecutive small pieces (a bigger piece is a message of its own).
pub const MSG_WORDS: usize = 1 << 16;

/// Fold work positions `first .. first + n` tile by tile along each tile's
/// merge tree, pulling leaves (one block's kept cells each) in order;
/// returns the pieces in wire form, packed in order into messages of at
/// most [`MSG_WORDS`] words (or one piece).
pub fn fold_tiles<C: Partial, E>(
    t: &Tiling,
    first: usize,
    n: usize,
    leaf: &mut impl FnMut(usize) -> Result<Vec<C>, E>,
) -> Result<Vec<Vec<u64>>, E> {
    let mut out: Vec<Vec<u64>> = Vec::new();
    let merge = |a: Vec<C>, b: Vec<C>| merge_cells(a, &b);
    fold_nodes(t, first, n, leaf, &merge, |tile, lo, hi, cells| {
        let len = PIECE_HEADER + cells.len() * C::WORDS;
        let msg = match out.last_mut() {
            Some(m) if m.len() + len <= MSG_WORDS => m,
            _ => {
                out.push(Vec::with_capacity(len.max(MSG_WORDS.min(len * 4))));
                out.last_mut().expect("just pushed")
            }
        };
        msg.extend([tile as u64, lo as u64, hi as u64]);
        for c in &cells {
            c.put_words(msg);
        }
    })?;
    Ok(out)
}

/// The tree nodes that work positions `first .. first + n` cover, tile by
/// tile: each node folded from its leaves (pulled from `leaf` in order)
/// with `merge`, and handed to `emit(tile, lo, hi, value)` in order.
pub fn fold_nodes<V, E>(
    t: &Tiling,
    first: usize,
    n: usize,
    leaf: &mut impl FnMut(usize) -> Result<V, E>,
    merge: &impl Fn(V, V) -> V,
    mut emit: impl FnMut(usize, usize, usize, V),
) -> Result<(), E> {
    let (end, nl) = (first + n, t.n_leaves);
    if n == 0 {
        return Ok(());
    }
    for tile in first / nl..end.div_ceil(nl) {
        let a = first.max(tile * nl) - tile * nl;
        let b = end.min((tile + 1) * nl) - tile * nl;
        for (lo, hi) in tree::cover(nl, a, b) {
            emit(tile, lo, hi, tree::fold(lo, hi, leaf, merge)?);
        }
    }
    Ok(())
}

/// Kept cells in one tile.
pub fn tile_cells(d: &Decomposition, t: &Tiling, tile: usize) -> usize {
    t.tile_region(d, tile).1.iter().product()
}

/// Rank 0's side of the pieces protocol: takes the pieces in order (tile
/// ascending, leaves ascending within a tile — every rank's messages in
/// rank order) and completes each tile's tree as its pieces arrive, by
/// shift-reduce: a piece is pushed on a stack, and while the two top nodes
/// are the two children of one tree node they are merged into it. This is
/// the same evaluation as [`tree::complete`] (each node is
/// `merge(left, right)`), but only the stack — at most one node per tree
/// level — and the current message are held, never every rank's partial
/// results at once. A completed tile is placed in the result (C order over
/// [`Tiling::result_shape`]).
pub struct Assembler<'a, C> {
    d: &'a Decomposition,
    t: &'a Tiling,
    shape: Vec<usize>,
    cells: Vec<C>,
    stack: TreeStack<Vec<C>>,
}

/// Shift-reduce evaluation of the tiles' merge trees from their pieces
/// (tree nodes) arriving in order — tile ascending, leaves ascending
/// within a tile: a piece is pushed, and while the two top nodes are the
/// two children of one tree node they are merged into it
/// (`merge(left, right)`, as [`tree::complete`] evaluates a node). Holds at
/// most one node per tree level.
pub struct TreeStack<V> {
    n_leaves: usize,
    n_tiles: usize,
    /// Tile of the nodes on the stack (or the last completed), and the
    /// tiles completed so far.
    tile: Option<usize>,
    done: usize,
    nodes: Vec<(usize, usize, V)>,
}

impl<V> TreeStack<V> {
    /// An empty stack for the trees of tiling `t`.
    pub fn new(t: &Tiling) -> Self {
        TreeStack {
            n_leaves: t.n_leaves,
            n_tiles: t.n_tiles,
            tile: None,
            done: 0,
            nodes: Vec::new(),
        }
    }

    /// Push node `[lo, hi)` of `tile`'s tree; returns the tile's value when
    /// this completes it. A node out of order is an error.
    pub fn push(
        &mut self,
        tile: usize,
        lo: usize,
        hi: usize,
        v: V,
        merge: impl Fn(V, V) -> V,
    ) -> Result<Option<V>, CwError> {
        let nl = self.n_leaves;
        if tile >= self.n_tiles || lo >= hi || hi > nl {
            return Err(CwError::Internal(format!(
                "piece ({tile}, {lo}, {hi}) is outside the tiling"
            )));
        }
        let expect_lo = self.nodes.last().map_or(0, |s| s.1);
        let fresh = self.nodes.is_empty() && self.tile.is_none_or(|c| c < tile);
        if !(fresh && lo == 0 || self.tile == Some(tile) && lo == expect_lo && lo > 0) {
            return Err(CwError::Internal(format!(
                "piece ({tile}, {lo}, {hi}) out of order"
            )));
        }
        self.tile = Some(tile);
        self.nodes.push((lo, hi, v));
        while self.nodes.len() >= 2 {
            let k = self.nodes.len();
            let ((l1, h1), (l2, h2)) = (
                (self.nodes[k - 2].0, self.nodes[k - 2].1),
                (self.nodes[k - 1].0, self.nodes[k - 1].1),
            );
            if !(h1 == l2 && tree::is_node(nl, l1, h2) && tree::split(l1, h2) == h1) {
                break;
            }
            let (_, _, right) = self.nodes.pop().expect("two on the stack");
            let (_, _, left) = self.nodes.pop().expect("two on the stack");
            self.nodes.push((l1, h2, merge(left, right)));
        }
        if self.nodes.len() == 1 && self.nodes[0].0 == 0 && self.nodes[0].1 == nl {
            self.done += 1;
            return Ok(self.nodes.pop().map(|(_, _, v)| v));
        }
        Ok(None)
    }

    /// Every tile complete, or an error naming the first incomplete one.
    pub fn check_complete(&self) -> Result<(), CwError> {
        if !self.nodes.is_empty() || self.done != self.n_tiles {
            let tile = self
                .tile
                .map_or(0, |c| c + usize::from(self.nodes.is_empty()));
            return Err(CwError::Internal(format!("tile {tile} is incomplete")));
        }
        Ok(())
    }
}

impl<'a, C: Partial> Assembler<'a, C> {
    /// An empty result of the tiling `t` of `d`.
    pub fn new(d: &'a Decomposition, t: &'a Tiling) -> Self {
        let shape = t.result_shape(d);
        let n = if t.n_tiles == 1 {
            0 // the single tile's cells become the result (no copy)
        } else {
            shape.iter().product()
        };
        Assembler {
            d,
            t,
            shape,
            cells: vec![C::default(); n],
            stack: TreeStack::new(t),
        }
    }

    /// Add one message: one or more whole pieces in wire form.
    pub fn add(&mut self, words: &[u64]) -> Result<(), CwError> {
        let mut at = 0;
        while at < words.len() {
            if at + PIECE_HEADER > words.len() {
                return Err(CwError::Internal("truncated piece header".into()));
            }
            let (tile, lo, hi) = (
                words[at] as usize,
                words[at + 1] as usize,
                words[at + 2] as usize,
            );
            if tile >= self.t.n_tiles || lo >= hi || hi > self.t.n_leaves {
                return Err(CwError::Internal(format!(
                    "piece ({tile}, {lo}, {hi}) is outside the tiling"
                )));
            }
            let n = tile_cells(self.d, self.t, tile);
            let end = at + PIECE_HEADER + n * C::WORDS;
            if end > words.len() {
                return Err(CwError::Internal(format!("truncated piece of tile {tile}")));
            }
            let body = &words[at + PIECE_HEADER..end];
            at = end;
            self.push(
                tile,
                lo,
                hi,
                body.chunks(C::WORDS).map(C::from_wire).collect(),
            )?;
        }
        Ok(())
    }

    /// Push one piece and merge what can be merged.
    fn push(&mut self, tile: usize, lo: usize, hi: usize, v: Vec<C>) -> Result<(), CwError> {
        if let Some(cells) = self
            .stack
            .push(tile, lo, hi, v, |a, b| merge_cells(a, &b))?
        {
            self.place(tile, cells);
        }
        Ok(())
    }

    /// Put a completed tile's cells in the result.
    fn place(&mut self, tile: usize, tile_cells: Vec<C>) {
        if self.t.n_tiles == 1 {
            self.cells = tile_cells;
            return;
        }
        let (start, count) = self.t.tile_region(self.d, tile);
        let row = count.last().copied().unwrap_or(1);
        let cells = &mut self.cells;
        for_each_row(&self.shape, &start, &count, |r, off| {
            let off = off as usize;
            cells[off..off + row].clone_from_slice(&tile_cells[r * row..(r + 1) * row]);
        });
    }

    /// The result, once every tile is complete.
    pub fn finish(self) -> Result<Vec<C>, CwError> {
        self.stack.check_complete()?;
        Ok(self.cells)
    }
}

/// Rank 0: complete every tile from the pieces (tile-ascending, in rank
/// order) and place it in the result array (C order over
/// [`Tiling::result_shape`]); see [`Assembler`].
pub fn assemble<C: Partial>(
    d: &Decomposition,
    t: &Tiling,
    words: &[u64],
) -> Result<Vec<C>, CwError> {
    let mut a = Assembler::new(d, t);
    a.add(words)?;
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_round_trips_and_values_agree_with_acc() {
        let a = crate::kernels::reduce_slice(&[1.5f64, f64::NAN, -2.0, 7.25, 1e300], true);
        let f = FloatAcc::from(&a);
        let mut w = Vec::new();
        f.put_words(&mut w);
        assert_eq!(w.len(), FloatAcc::WORDS);
        assert_eq!(FloatAcc::from_wire(&w), f);
        let fin = Finish {
            ddof: 1,
            keep_nan: false,
            integer: false,
        };
        for op in [
            Op::Count,
            Op::Sum,
            Op::Mean,
            Op::Var,
            Op::Std,
            Op::Min,
            Op::Max,
        ] {
            assert_eq!(f.value(op, &fin), a.value(op, &fin), "{op}");
        }
        assert_eq!(FloatAcc::default(), FloatAcc::from(&Acc::default()));
    }
    use crate::decomp::split_range;

    /// A leaf whose cells are distinct, order-sensitive values of its position.
    fn leaf_cells(d: &Decomposition, t: &Tiling, pos: usize) -> Vec<Acc> {
        let b = d.block(t.block_index(d, t.leaf_blocks(pos).start));
        let n: usize = b
            .count
            .iter()
            .zip(&t.reduced)
            .filter(|(_, r)| !**r)
            .map(|(c, _)| *c)
            .product();
        (0..n)
            .map(|c| {
                let x = ((pos * 7919 + c * 104729) % 1000) as f64 * 0.1 + 1e-3 * pos as f64;
                crate::kernels::reduce_slice(&[x], false)
            })
            .collect()
    }

    /// Every split of the work positions across p = 1..=5 ranks assembles to
    /// the same bits as one rank folding everything, for whole-array, kept
    /// trailing and kept leading axes.
    #[test]
    fn every_split_assembles_to_the_same_bits() {
        let shape = [7usize, 5, 6];
        let d = Decomposition::new(&shape, Some(&[2, 5, 3]), 8, 2 * 5 * 3 * 8);
        // A time mean of maps: 70 one-step blocks grouped into leaves of 4.
        let maps = Decomposition::new(&[70, 3, 4], Some(&[1, 3, 4]), 8, 96);
        let cases = [
            (&d, vec![true, true, true]),
            (&d, vec![true, false, false]),
            (&d, vec![false, true, true]),
            (&d, vec![true, false, true]),
            (&maps, vec![true, false, false]),
        ];
        for (d, reduced) in cases {
            let d = d.clone();
            let t = Tiling::new(&d, &reduced);
            let n = t.n_positions();
            let run = |p: usize| -> Vec<Acc> {
                let mut words = Vec::new();
                for r in 0..p {
                    let range = split_range(n, r, p);
                    let mut pos = range.start;
                    let mut leaf = |_| -> Result<Vec<Acc>, CwError> {
                        let c = leaf_cells(&d, &t, pos);
                        pos += 1;
                        Ok(c)
                    };
                    for m in fold_tiles(&t, range.start, range.len(), &mut leaf).unwrap() {
                        words.extend(m);
                    }
                }
                assemble::<Acc>(&d, &t, &words).unwrap()
            };
            let one = run(1);
            assert_eq!(one.len(), t.result_shape(&d).iter().product::<usize>());
            for p in 2..=5 {
                let other = run(p);
                let bits = |v: &[Acc]| v.iter().map(|a| a.to_words()).collect::<Vec<_>>();
                assert_eq!(bits(&one), bits(&other), "reduced {reduced:?}, p = {p}");
            }
            // Counts: every block's cells were merged exactly once.
            let total: u64 = one.iter().map(|a| a.n).sum();
            let expect: u64 = (0..n).map(|pos| leaf_cells(&d, &t, pos).len() as u64).sum();
            assert_eq!(total, expect);
        }
    }

    #[test]
    fn truncated_words_are_an_error_not_a_panic() {
        let d = Decomposition::new(&[4, 4], Some(&[2, 4]), 8, 64);
        let t = Tiling::new(&d, &[true, false]);
        let mut pos = 0;
        let mut leaf = |_| -> Result<Vec<Acc>, CwError> {
            let c = leaf_cells(&d, &t, pos);
            pos += 1;
            Ok(c)
        };
        let words = fold_tiles(&t, 0, t.n_positions(), &mut leaf)
            .unwrap()
            .concat();
        assert!(assemble::<Acc>(&d, &t, &words[..words.len() - 1]).is_err());
        assert!(assemble::<Acc>(&d, &t, &words[..2]).is_err());
        // A missing piece (the second rank's, of two) leaves a tile incomplete.
        let n = t.n_positions();
        let mut pos = 0;
        let mut leaf = |_| -> Result<Vec<Acc>, CwError> {
            let c = leaf_cells(&d, &t, pos);
            pos += 1;
            Ok(c)
        };
        let first = fold_tiles(&t, 0, split_range(n, 0, 2).len(), &mut leaf).unwrap();
        assert!(assemble::<Acc>(&d, &t, &first.concat()).is_err());
    }
}
