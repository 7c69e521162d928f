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

use crate::accum::{ACC_WORDS, Acc};
use crate::decomp::{Decomposition, Tiling, for_each_row};
use crate::error::CwError;
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
    /// Tile of the pieces on the stack, and the tiles completed so far.
    tile: Option<usize>,
    done: usize,
    stack: Vec<(usize, usize, Vec<C>)>,
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
            tile: None,
            done: 0,
            stack: Vec::new(),
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
        let expect_lo = self.stack.last().map_or(0, |s| s.1);
        let fresh = self.stack.is_empty() && self.tile.is_none_or(|c| c < tile);
        if !(fresh && lo == 0 || self.tile == Some(tile) && lo == expect_lo && lo > 0) {
            return Err(CwError::Internal(format!(
                "piece ({tile}, {lo}, {hi}) out of order"
            )));
        }
        self.tile = Some(tile);
        self.stack.push((lo, hi, v));
        let nl = self.t.n_leaves;
        while self.stack.len() >= 2 {
            let k = self.stack.len();
            let ((l1, h1), (l2, h2)) = (
                (self.stack[k - 2].0, self.stack[k - 2].1),
                (self.stack[k - 1].0, self.stack[k - 1].1),
            );
            if !(h1 == l2 && tree::is_node(nl, l1, h2) && tree::split(l1, h2) == h1) {
                break;
            }
            let (_, _, right) = self.stack.pop().expect("two on the stack");
            let left = &mut self.stack.last_mut().expect("two on the stack").2;
            for (x, y) in left.iter_mut().zip(&right) {
                *x = x.merge_with(y);
            }
            self.stack[k - 2].1 = h2;
        }
        if self.stack.len() == 1 && self.stack[0].0 == 0 && self.stack[0].1 == nl {
            let (_, _, tile_cells) = self.stack.pop().expect("one on the stack");
            self.place(tile, tile_cells);
        }
        Ok(())
    }

    /// Put a completed tile's cells in the result.
    fn place(&mut self, tile: usize, tile_cells: Vec<C>) {
        self.done += 1;
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
        if !self.stack.is_empty() || self.done != self.t.n_tiles {
            let tile = self
                .tile
                .map_or(0, |c| c + usize::from(self.stack.is_empty()));
            return Err(CwError::Internal(format!("tile {tile} is incomplete")));
        }
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
                Acc {
                    n: 1,
                    sum: x,
                    mean: x,
                    min: x,
                    max: x,
                    ..Acc::default()
                }
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
