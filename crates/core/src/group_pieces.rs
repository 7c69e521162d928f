//! The pieces protocol of a grouped reduction (`--groupby`, `--resample`):
//! as [`crate::pieces`], but a leaf holds partial results only for the
//! groups its time steps belong to (sparse), so a rank's memory is the
//! groups it met × one tile's kept cells, not every group.
//!
//! Each group of a tile is combined along the tile's fixed merge tree
//! ([`crate::tree`]); where one side of a tree node has no values of a
//! group, the node's value for that group is the other side's, unchanged.
//! Which leaves hold which groups depends only on the data layout, never on
//! the rank count, so the result is bit-identical for every P.
//!
//! Wire form of one piece: `[tile, lo, hi, n, (group, cells…)ₙ]`, cells as
//! in [`crate::pieces`] ([`Partial::WORDS`] words each).

use crate::decomp::{Decomposition, Tiling, for_each_row};
use crate::error::CwError;
use crate::pieces::{Partial, merge_cells, tile_cells};
use crate::tree;

/// Partial results of one tile's kept cells, for each group present
/// (ascending group index).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupCells<C> {
    /// `(group, cells)` in ascending group order.
    pub groups: Vec<(u32, Vec<C>)>,
}

impl<C: Partial> GroupCells<C> {
    /// Combine `self` (the earlier part) with `later`, group by group.
    pub fn merge(self, later: GroupCells<C>) -> GroupCells<C> {
        let mut out = Vec::with_capacity(self.groups.len().max(later.groups.len()));
        let mut a = self.groups.into_iter().peekable();
        let mut b = later.groups.into_iter().peekable();
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    let (g, xa) = a.next().expect("peeked");
                    let (_, yb) = b.next().expect("peeked");
                    (g, merge_cells(xa, &yb))
                }
                (Some(x), Some(y)) if x.0 < y.0 => a.next().expect("peeked"),
                (Some(_), Some(_)) | (None, Some(_)) => b.next().expect("peeked"),
                (Some(_), None) => a.next().expect("peeked"),
                (None, None) => break,
            };
            out.push(next);
        }
        GroupCells { groups: out }
    }

    fn put_words(&self, out: &mut Vec<u64>) {
        out.push(self.groups.len() as u64);
        for (g, cells) in &self.groups {
            out.push(u64::from(*g));
            for c in cells {
                c.put_words(out);
            }
        }
    }
}

/// Fold work positions `first .. first + n` tile by tile along each tile's
/// merge tree, pulling leaves (their groups' kept cells) in order; returns
/// the pieces in wire form.
pub fn fold_tiles<C: Partial, E>(
    t: &Tiling,
    first: usize,
    n: usize,
    leaf: &mut impl FnMut(usize) -> Result<GroupCells<C>, E>,
) -> Result<Vec<u64>, E> {
    let mut out = Vec::new();
    let merge = |a: GroupCells<C>, b: GroupCells<C>| a.merge(b);
    crate::pieces::fold_nodes(t, first, n, leaf, &merge, |tile, lo, hi, cells| {
        out.extend([tile as u64, lo as u64, hi as u64]);
        cells.put_words(&mut out);
    })?;
    Ok(out)
}

/// Rank 0: complete every tile's merge tree from the gathered pieces
/// (tile-ascending, in rank order) group by group, handing each completed
/// row of kept cells to `place(offset, cells)` (offset in the group-major
/// result: `n_groups` blocks, each in C order over
/// [`Tiling::result_shape`]). Only one group's pieces are decoded from
/// `words` at a time, never every group's partial results at once. A group
/// without any value in a tile is not placed there.
pub fn assemble_each<C: Partial>(
    d: &Decomposition,
    t: &Tiling,
    n_groups: usize,
    words: &[u64],
    mut place: impl FnMut(usize, &[C]),
) -> Result<(), CwError> {
    let shape = t.result_shape(d);
    let per_group: usize = shape.iter().product();
    let bad = |what: String| CwError::Internal(format!("grouped pieces: {what}"));
    let word = |i: usize| -> Result<u64, CwError> {
        words
            .get(i)
            .copied()
            .ok_or_else(|| bad("truncated piece".into()))
    };
    // Index: per piece its tile, node and where each group's cells start.
    struct Piece {
        tile: usize,
        lo: usize,
        hi: usize,
        groups: Vec<(u32, usize)>,
    }
    let mut index: Vec<Piece> = Vec::new();
    let mut at = 0;
    while at < words.len() {
        let (tile, lo, hi, n) = (
            word(at)? as usize,
            word(at + 1)? as usize,
            word(at + 2)? as usize,
            word(at + 3)? as usize,
        );
        at += 4;
        let per_tile = tile_cells(d, t, tile);
        let mut groups = Vec::with_capacity(n);
        for _ in 0..n {
            let g = word(at)? as u32;
            if g as usize >= n_groups {
                return Err(bad(format!("group {g} of {n_groups}")));
            }
            let end = at + 1 + per_tile * C::WORDS;
            if end > words.len() {
                return Err(bad(format!("truncated piece of tile {tile}")));
            }
            groups.push((g, at + 1));
            at = end;
        }
        index.push(Piece {
            tile,
            lo,
            hi,
            groups,
        });
    }
    // Absent (None) is the identity of the merge: a group's value is the
    // tile's tree evaluated over the pieces that hold it.
    let merge = |a: Option<Vec<C>>, b: Option<Vec<C>>| match (a, b) {
        (Some(a), Some(b)) => Some(merge_cells(a, &b)),
        (a, None) => a,
        (None, b) => b,
    };
    let mut at = 0;
    while at < index.len() {
        let tile = index[at].tile;
        let end = at + index[at..].iter().take_while(|p| p.tile == tile).count();
        let pieces = &index[at..end];
        at = end;
        let per_tile = tile_cells(d, t, tile);
        let (start, count) = t.tile_region(d, tile);
        let row = count.last().copied().unwrap_or(1);
        let mut present: Vec<u32> = pieces
            .iter()
            .flat_map(|p| p.groups.iter().map(|(g, _)| *g))
            .collect();
        present.sort_unstable();
        present.dedup();
        for g in present {
            let parts: Vec<(usize, usize, Option<Vec<C>>)> = pieces
                .iter()
                .map(|p| {
                    let cells = p.groups.iter().find(|(k, _)| *k == g).map(|&(_, off)| {
                        words[off..off + per_tile * C::WORDS]
                            .chunks(C::WORDS)
                            .map(C::from_wire)
                            .collect()
                    });
                    (p.lo, p.hi, cells)
                })
                .collect();
            let cells = tree::complete(t.n_leaves, parts, &merge)
                .ok_or_else(|| bad(format!("tile {tile} is incomplete")))?
                .ok_or_else(|| bad(format!("group {g} of tile {tile} vanished")))?;
            let base = g as usize * per_group;
            for_each_row(&shape, &start, &count, |r, off| {
                place(base + off as usize, &cells[r * row..(r + 1) * row]);
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accum::Acc;
    use crate::decomp::split_range;

    /// Time steps × 3 × 4 maps, one step per block; step `s` belongs to
    /// group `s % 5 / 2` (runs of two, sparse per leaf) and its cell `c`
    /// holds an order-sensitive value of `(s, c)`.
    fn value(s: usize, c: usize) -> f64 {
        ((s * 7919 + c * 104_729) % 1000) as f64 * 0.1 + 1e-3 * s as f64
    }

    fn group_of(s: usize) -> u32 {
        (s % 5 / 2) as u32
    }

    /// Every split across p = 1..=5 ranks assembles to the same bits, and
    /// each group's count, min, max and sum agree with a direct computation.
    #[test]
    fn every_split_assembles_to_the_same_bits_and_the_right_groups() {
        let steps = 37;
        let d = Decomposition::new(&[steps, 3, 4], Some(&[1, 3, 4]), 8, 96);
        let t = Tiling::new(&d, &[true, false, false]);
        let n = t.n_positions();
        let leaf = |pos: usize| -> GroupCells<Acc> {
            let blocks = t.leaf_blocks(pos);
            let mut out = GroupCells::default();
            for bi in blocks {
                let b = d.block(t.block_index(&d, bi));
                let s = b.start[0];
                let cells: Vec<Acc> = (0..12)
                    .map(|c| {
                        let x = value(s, c);
                        Acc {
                            n: 1,
                            sum: x,
                            mean: x,
                            min: x,
                            max: x,
                            ..Acc::default()
                        }
                    })
                    .collect();
                out = out.merge(GroupCells {
                    groups: vec![(group_of(s), cells)],
                });
            }
            out
        };
        let run = |p: usize| -> Vec<Acc> {
            let mut words = Vec::new();
            for r in 0..p {
                let range = split_range(n, r, p);
                let mut pos = range.start;
                let mut f = |_| -> Result<GroupCells<Acc>, CwError> {
                    let c = leaf(pos);
                    pos += 1;
                    Ok(c)
                };
                words.extend(fold_tiles(&t, range.start, range.len(), &mut f).unwrap());
            }
            let mut cells = vec![Acc::default(); 3 * 12];
            assemble_each::<Acc>(&d, &t, 3, &words, |off, c| {
                cells[off..off + c.len()].copy_from_slice(c)
            })
            .unwrap();
            cells
        };
        let one = run(1);
        for p in 2..=5 {
            let other = run(p);
            for (a, b) in one.iter().zip(&other) {
                assert_eq!(a.to_words(), b.to_words(), "p = {p}");
            }
        }
        for g in 0..3u32 {
            for c in 0..12 {
                let xs: Vec<f64> = (0..steps)
                    .filter(|&s| group_of(s) == g)
                    .map(|s| value(s, c))
                    .collect();
                let acc = &one[g as usize * 12 + c];
                assert_eq!(acc.n as usize, xs.len());
                assert_eq!(acc.min, xs.iter().copied().fold(f64::INFINITY, f64::min));
                assert_eq!(
                    acc.max,
                    xs.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                );
                let exact: f64 = xs.iter().sum();
                assert!(
                    (acc.sum - exact).abs() <= 1e-9 * exact.abs(),
                    "{} {exact}",
                    acc.sum
                );
            }
        }
    }

    #[test]
    fn merge_keeps_groups_in_order_and_merges_shared_ones() {
        let one = |x: f64| Acc {
            n: 1,
            sum: x,
            mean: x,
            min: x,
            max: x,
            ..Acc::default()
        };
        let a = GroupCells {
            groups: vec![(0, vec![one(1.0)]), (2, vec![one(2.0)])],
        };
        let b = GroupCells {
            groups: vec![(1, vec![one(3.0)]), (2, vec![one(4.0)])],
        };
        let m = a.merge(b);
        let keys: Vec<u32> = m.groups.iter().map(|g| g.0).collect();
        assert_eq!(keys, vec![0, 1, 2]);
        assert_eq!(m.groups[2].1[0].n, 2);
        assert_eq!(m.groups[2].1[0].sum, 6.0);
    }
}
