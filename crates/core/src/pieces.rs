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

/// Fold work positions `first .. first + n` tile by tile along each tile's
/// merge tree, pulling leaves (one block's kept cells each) in order;
/// returns the pieces in wire form.
pub fn fold_tiles<C: Partial, E>(
    t: &Tiling,
    first: usize,
    n: usize,
    leaf: &mut impl FnMut(usize) -> Result<Vec<C>, E>,
) -> Result<Vec<u64>, E> {
    let mut out = Vec::new();
    let merge = |a: Vec<C>, b: Vec<C>| merge_cells(a, &b);
    let (end, nl) = (first + n, t.n_leaves);
    if n == 0 {
        return Ok(out);
    }
    for tile in first / nl..end.div_ceil(nl) {
        let a = first.max(tile * nl) - tile * nl;
        let b = end.min((tile + 1) * nl) - tile * nl;
        for (lo, hi) in tree::cover(nl, a, b) {
            let cells = tree::fold(lo, hi, leaf, &merge)?;
            out.extend([tile as u64, lo as u64, hi as u64]);
            for c in &cells {
                c.put_words(&mut out);
            }
        }
    }
    Ok(out)
}

/// Kept cells in one tile.
pub fn tile_cells(d: &Decomposition, t: &Tiling, tile: usize) -> usize {
    t.tile_region(d, tile).1.iter().product()
}

/// Rank 0: complete every tile from the gathered pieces (tile-ascending, in
/// rank order) and place it in the result array (C order over
/// [`Tiling::result_shape`]).
pub fn assemble<C: Partial>(
    d: &Decomposition,
    t: &Tiling,
    words: &[u64],
) -> Result<Vec<C>, CwError> {
    let shape = t.result_shape(d);
    let mut cells = vec![C::default(); shape.iter().product()];
    let merge = |a: Vec<C>, b: Vec<C>| merge_cells(a, &b);
    let mut current: Option<usize> = None;
    let mut pieces: Vec<(usize, usize, Vec<C>)> = Vec::new();
    let mut finish_tile = |tile: usize, pieces: Vec<(usize, usize, Vec<C>)>| {
        let tile_cells = tree::complete(t.n_leaves, pieces, &merge)
            .ok_or_else(|| CwError::Internal(format!("tile {tile} is incomplete")))?;
        let (start, count) = t.tile_region(d, tile);
        let row = count.last().copied().unwrap_or(1);
        for_each_row(&shape, &start, &count, |r, off| {
            let off = off as usize;
            cells[off..off + row].clone_from_slice(&tile_cells[r * row..(r + 1) * row]);
        });
        Ok::<(), CwError>(())
    };
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
        let n = tile_cells(d, t, tile);
        let end = at + PIECE_HEADER + n * C::WORDS;
        if end > words.len() {
            return Err(CwError::Internal(format!("truncated piece of tile {tile}")));
        }
        let body = &words[at + PIECE_HEADER..end];
        at = end;
        if let Some(c) = current.filter(|&c| c != tile) {
            finish_tile(c, std::mem::take(&mut pieces))?;
        }
        current = Some(tile);
        pieces.push((lo, hi, body.chunks(C::WORDS).map(C::from_wire).collect()));
    }
    if let Some(c) = current {
        finish_tile(c, pieces)?;
    }
    Ok(cells)
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
                    words.extend(fold_tiles(&t, range.start, range.len(), &mut leaf).unwrap());
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
        let words = fold_tiles(&t, 0, t.n_positions(), &mut leaf).unwrap();
        assert!(assemble::<Acc>(&d, &t, &words[..words.len() - 1]).is_err());
        assert!(assemble::<Acc>(&d, &t, &words[..2]).is_err());
    }
}
