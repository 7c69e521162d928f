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
//! Wire form of one piece: a header message `[tile, lo, hi, n]`, then n
//! messages `[group, cells…]`, cells as in [`crate::pieces`]
//! ([`Partial::WORDS`] words each).

use crate::decomp::{Decomposition, Tiling, for_each_row};
use crate::error::CwError;
use crate::pieces::{Partial, TreeStack, merge_cells, tile_cells};

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
        self.merge_recycling(later, &drop)
    }

    /// [`GroupCells::merge`], handing each vector of cells it no longer
    /// needs to `recycle` (to be reused instead of freed).
    pub fn merge_recycling(self, later: GroupCells<C>, recycle: &impl Fn(Vec<C>)) -> GroupCells<C> {
        let mut out = Vec::with_capacity(self.groups.len().max(later.groups.len()));
        let mut a = self.groups.into_iter().peekable();
        let mut b = later.groups.into_iter().peekable();
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    let (g, xa) = a.next().expect("peeked");
                    let (_, yb) = b.next().expect("peeked");
                    let merged = merge_cells(xa, &yb);
                    recycle(yb);
                    (g, merged)
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
}

/// Fold work positions `first .. first + n` tile by tile along each tile's
/// merge tree, pulling leaves (their groups' kept cells) in order; returns
/// the tree nodes covered, in order. Cell vectors merged away go to
/// `recycle`.
pub fn fold_tiles<C: Partial, E>(
    t: &Tiling,
    first: usize,
    n: usize,
    leaf: &mut impl FnMut(usize) -> Result<GroupCells<C>, E>,
    recycle: &impl Fn(Vec<C>),
) -> Result<Vec<Piece<C>>, E> {
    let mut out = Vec::new();
    let merge = |a: GroupCells<C>, b: GroupCells<C>| a.merge_recycling(b, recycle);
    crate::pieces::fold_nodes(t, first, n, leaf, &merge, |tile, lo, hi, cells| {
        out.push(Piece {
            tile,
            lo,
            hi,
            cells,
        });
    })?;
    Ok(out)
}

/// One tree node's partial results: node `[lo, hi)` of `tile`'s tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Piece<C> {
    /// Tile of the node.
    pub tile: usize,
    /// First leaf of the node.
    pub lo: usize,
    /// One past its last leaf.
    pub hi: usize,
    /// The node's cells of each group present.
    pub cells: GroupCells<C>,
}

impl<C: Partial> Piece<C> {
    /// The wire form: a header message `[tile, lo, hi, n]`, then one
    /// message `[group, cells…]` per group (each group's cells are dropped
    /// as they are encoded, and the receiver holds one group's message at a
    /// time, never a whole piece twice).
    pub fn into_messages(self) -> Vec<Vec<u64>> {
        let groups = self.cells.groups;
        let mut out = Vec::with_capacity(1 + groups.len());
        out.push(vec![
            self.tile as u64,
            self.lo as u64,
            self.hi as u64,
            groups.len() as u64,
        ]);
        for (g, cells) in groups {
            let mut m = Vec::with_capacity(1 + cells.len() * C::WORDS);
            m.push(u64::from(g));
            for c in &cells {
                c.put_words(&mut m);
            }
            out.push(m);
        }
        out
    }
}

/// Rank 0's side of the grouped protocol: pieces arrive in order (tile
/// ascending, leaves ascending: rank 0's own, then each other rank's
/// messages in rank order) and each tile's tree is completed by
/// shift-reduce ([`TreeStack`]) as they come, group by group with an
/// absent group as the identity — the same evaluation as every rank's
/// fold, so the same bits for every P. Holds one node per tree level (each
/// with the groups it met) and never every rank's pieces at once. A
/// completed tile's groups are handed row by row to `place(offset, cells)`
/// (offset in the group-major result: `n_groups` blocks, each in C order
/// over [`Tiling::result_shape`]); a group without any value in a tile is
/// not placed there.
pub struct GroupAssembler<'a, C> {
    d: &'a Decomposition,
    t: &'a Tiling,
    n_groups: usize,
    shape: Vec<usize>,
    stack: TreeStack<GroupCells<C>>,
    /// The piece whose group messages are arriving, and how many it has.
    pending: Option<(Piece<C>, usize)>,
}

impl<'a, C: Partial> GroupAssembler<'a, C> {
    /// Nothing assembled yet, for `n_groups` groups over the tiling `t` of `d`.
    pub fn new(d: &'a Decomposition, t: &'a Tiling, n_groups: usize) -> Self {
        GroupAssembler {
            d,
            t,
            n_groups,
            shape: t.result_shape(d),
            stack: TreeStack::new(t),
            pending: None,
        }
    }

    /// Add one piece.
    pub fn push(
        &mut self,
        piece: Piece<C>,
        place: &mut impl FnMut(usize, &[C]),
    ) -> Result<(), CwError> {
        let Piece {
            tile,
            lo,
            hi,
            cells,
        } = piece;
        let per_tile = tile_cells(self.d, self.t, tile);
        let ascending = cells.groups.windows(2).all(|w| w[0].0 < w[1].0);
        for (g, c) in &cells.groups {
            if !ascending || *g as usize >= self.n_groups || c.len() != per_tile {
                return Err(CwError::Internal(format!(
                    "grouped piece ({tile}, {lo}, {hi}): group {g} of {} with {} cells",
                    self.n_groups,
                    c.len()
                )));
            }
        }
        let Some(done) = self.stack.push(tile, lo, hi, cells, |a, b| a.merge(b))? else {
            return Ok(());
        };
        let per_group: usize = self.shape.iter().product();
        let (start, count) = self.t.tile_region(self.d, tile);
        let row = count.last().copied().unwrap_or(1);
        for (g, cells) in done.groups {
            let base = g as usize * per_group;
            for_each_row(&self.shape, &start, &count, |r, off| {
                place(base + off as usize, &cells[r * row..(r + 1) * row]);
            });
        }
        Ok(())
    }

    /// Add one message of a piece's wire form (see [`Piece::into_messages`]).
    pub fn add(
        &mut self,
        words: &[u64],
        place: &mut impl FnMut(usize, &[C]),
    ) -> Result<(), CwError> {
        let bad = |what: String| CwError::Internal(format!("grouped piece: {what}"));
        let Some((mut piece, n)) = self.pending.take() else {
            let &[tile, lo, hi, n] = words else {
                return Err(bad(format!("a header of {} words", words.len())));
            };
            let (tile, n) = (tile as usize, n as usize);
            if tile >= self.t.n_tiles || n > self.n_groups {
                return Err(bad(format!("tile {tile} with {n} groups")));
            }
            let piece = Piece {
                tile,
                lo: lo as usize,
                hi: hi as usize,
                cells: GroupCells::default(),
            };
            return if n == 0 {
                self.push(piece, place)
            } else {
                self.pending = Some((piece, n));
                Ok(())
            };
        };
        let per_tile = tile_cells(self.d, self.t, piece.tile);
        if words.len() != 1 + per_tile * C::WORDS {
            return Err(bad(format!(
                "{} words for a group of {per_tile} cells of tile {}",
                words.len(),
                piece.tile
            )));
        }
        let cells = words[1..].chunks(C::WORDS).map(C::from_wire).collect();
        piece.cells.groups.push((words[0] as u32, cells));
        if piece.cells.groups.len() == n {
            self.push(piece, place)
        } else {
            self.pending = Some((piece, n));
            Ok(())
        }
    }

    /// Every tile complete, or an error naming the first incomplete one.
    pub fn finish(self) -> Result<(), CwError> {
        if let Some((p, _)) = &self.pending {
            return Err(CwError::Internal(format!(
                "grouped piece ({}, {}, {}) is missing groups",
                p.tile, p.lo, p.hi
            )));
        }
        self.stack.check_complete()
    }
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
                        crate::kernels::reduce_slice(&[x], false)
                    })
                    .collect();
                out = out.merge(GroupCells {
                    groups: vec![(group_of(s), cells)],
                });
            }
            out
        };
        // Rank 0's pieces pushed as values, the others' through the wire.
        let run = |p: usize| -> Vec<Acc> {
            let mut cells = vec![Acc::default(); 3 * 12];
            let mut place = |off: usize, c: &[Acc]| cells[off..off + c.len()].copy_from_slice(c);
            let mut asm = GroupAssembler::<Acc>::new(&d, &t, 3);
            for r in 0..p {
                let range = split_range(n, r, p);
                let mut pos = range.start;
                let mut f = |_| -> Result<GroupCells<Acc>, CwError> {
                    let c = leaf(pos);
                    pos += 1;
                    Ok(c)
                };
                for piece in fold_tiles(&t, range.start, range.len(), &mut f, &drop).unwrap() {
                    if r == 0 {
                        asm.push(piece, &mut place).unwrap();
                    } else {
                        for m in piece.into_messages() {
                            asm.add(&m, &mut place).unwrap();
                        }
                    }
                }
            }
            asm.finish().unwrap();
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
    fn malformed_or_misordered_pieces_are_errors_not_panics() {
        let d = Decomposition::new(&[8, 2], Some(&[1, 2]), 8, 16);
        let t = Tiling::new(&d, &[true, false]);
        let cell = Acc {
            n: 1,
            ..Acc::default()
        };
        let piece = |lo: usize, hi: usize, g: u32| Piece {
            tile: 0,
            lo,
            hi,
            cells: GroupCells {
                groups: vec![(g, vec![cell; 2])],
            },
        };
        let mut place = |_: usize, _: &[Acc]| {};
        let whole = piece(0, t.n_leaves, 0).into_messages();
        assert_eq!(whole.len(), 2);
        for cut in [0, 3, 5] {
            let mut asm = GroupAssembler::<Acc>::new(&d, &t, 2);
            assert!(
                asm.add(&whole[0][..cut.min(3)], &mut place).is_err(),
                "header of {cut}"
            );
        }
        for cut in [0, 1, whole[1].len() - 1] {
            let mut asm = GroupAssembler::<Acc>::new(&d, &t, 2);
            asm.add(&whole[0], &mut place).unwrap();
            assert!(
                asm.add(&whole[1][..cut], &mut place).is_err(),
                "group cut at {cut}"
            );
        }
        let mut asm = GroupAssembler::<Acc>::new(&d, &t, 2);
        asm.add(&whole[0], &mut place).unwrap();
        assert!(asm.finish().is_err(), "a piece without its group");
        let mut asm = GroupAssembler::<Acc>::new(&d, &t, 2);
        assert!(
            asm.push(piece(0, 1, 2), &mut place).is_err(),
            "group 2 of 2"
        );
        let mut asm = GroupAssembler::<Acc>::new(&d, &t, 2);
        assert!(
            asm.push(piece(1, 2, 0), &mut place).is_err(),
            "starts at leaf 1"
        );
        let mut asm = GroupAssembler::<Acc>::new(&d, &t, 2);
        asm.push(piece(0, 1, 0), &mut place).unwrap();
        assert!(asm.finish().is_err(), "incomplete tile");
        let mut asm = GroupAssembler::<Acc>::new(&d, &t, 2);
        for m in &whole {
            asm.add(m, &mut place).unwrap();
        }
        asm.finish().unwrap();
    }

    #[test]
    fn merge_keeps_groups_in_order_and_merges_shared_ones() {
        let one = |x: f64| crate::kernels::reduce_slice(&[x], false);
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
