//! Decomposition of an N-d array into chunk-aligned blocks, and of the blocks
//! into per-rank ranges. Pure: depends only on the shape, the storage chunk
//! shape, the element size and the block budget — never on the rank count —
//! which is what makes results identical for every number of ranks.

use std::ops::Range;

/// Most storage chunks one block may span. With 1×1 chunks of a 300×300
/// array, one 4 MiB block of all 90 000 chunks peaked at 602 MiB per rank
/// in HDF5's chunk bookkeeping and a collective write of them did not end
/// in minutes; blocks of at most 1024 chunks stay within 2 blocks + 64 MiB
/// and take well under a second. Blocks of chunks of 4 KiB and more
/// (at the 4 MiB default) are not affected.
pub const MAX_CHUNKS_PER_BLOCK: u64 = 1024;

/// One rectangular block of the array: a hyperslab `start .. start+count`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// Position of the block in C order over the block grid.
    pub index: usize,
    /// First element of the block along each axis.
    pub start: Vec<usize>,
    /// Extent of the block along each axis.
    pub count: Vec<usize>,
}

impl Block {
    /// Number of elements in the block.
    pub fn len(&self) -> usize {
        self.count.iter().product()
    }

    /// True when the block holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A fixed tiling of an array into blocks of (at most) `block_shape`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decomposition {
    /// The array's shape.
    pub shape: Vec<usize>,
    /// The storage chunk shape the blocks are aligned to (all ones if contiguous).
    pub unit: Vec<usize>,
    /// Shape of a full block; edge blocks are clipped to the array.
    pub block_shape: Vec<usize>,
    /// Number of blocks along each axis.
    pub grid: Vec<usize>,
}

impl Decomposition {
    /// Tile `shape` into blocks made of whole storage chunks (`chunk`, or single
    /// elements for contiguous storage) holding at most `budget_bytes`, except
    /// that a block is never smaller than one chunk. Blocks grow along the
    /// fastest axis first so that each is as contiguous in the file as possible.
    pub fn new(
        shape: &[usize],
        chunk: Option<&[usize]>,
        elem_size: usize,
        budget_bytes: u64,
    ) -> Self {
        let n = shape.len();
        let unit: Vec<usize> = match chunk {
            Some(c) if c.len() == n => c
                .iter()
                .zip(shape)
                .map(|(&c, &d)| c.clamp(1, d.max(1)))
                .collect(),
            _ => vec![1; n],
        };
        let mut block = unit.clone();
        // Tiny chunks: HDF5 keeps per-chunk bookkeeping (selections, chunk
        // records) for every chunk one read or write touches, and its cost
        // grows faster than the chunk count, so cap the chunks per block.
        let unit_elems = unit.iter().map(|&u| u as u64).product::<u64>().max(1);
        let budget_bytes = match chunk {
            Some(_) => budget_bytes.min(
                MAX_CHUNKS_PER_BLOCK
                    .saturating_mul(unit_elems)
                    .saturating_mul(elem_size.max(1) as u64),
            ),
            None => budget_bytes,
        };
        let budget_elems = (budget_bytes / elem_size.max(1) as u64).max(1);
        for k in (0..n).rev() {
            let others: u64 = (0..n)
                .filter(|&j| j != k)
                .map(|j| block[j] as u64)
                .product();
            let m = budget_elems / (others * unit[k] as u64).max(1);
            let want = (m.max(1) as usize).saturating_mul(unit[k]);
            if want >= shape[k] {
                block[k] = shape[k].max(1);
            } else {
                block[k] = want;
                break;
            }
        }
        let grid = shape
            .iter()
            .zip(&block)
            .map(|(&d, &b)| d.div_ceil(b))
            .collect();
        Decomposition {
            shape: shape.to_vec(),
            unit,
            block_shape: block,
            grid,
        }
    }

    /// Total number of blocks.
    pub fn n_blocks(&self) -> usize {
        if self.shape.contains(&0) {
            0
        } else {
            self.grid.iter().product()
        }
    }

    /// Number of elements in a full block (the size of a reusable buffer).
    pub fn block_elems(&self) -> usize {
        self.block_shape.iter().product()
    }

    /// The block with C-order index `index` over the block grid.
    pub fn block(&self, index: usize) -> Block {
        let n = self.shape.len();
        let mut rem = index;
        let mut start = vec![0; n];
        let mut count = vec![0; n];
        for k in (0..n).rev() {
            let g = rem % self.grid[k];
            rem /= self.grid[k];
            start[k] = g * self.block_shape[k];
            count[k] = self.block_shape[k].min(self.shape[k] - start[k]);
        }
        Block {
            index,
            start,
            count,
        }
    }

    /// The contiguous range of block indices owned by `rank` out of `size`
    /// ranks. Ranks beyond the number of blocks get an empty range.
    pub fn rank_range(&self, rank: usize, size: usize) -> Range<usize> {
        split_range(self.n_blocks(), rank, size)
    }
}

/// Order of the blocks for a reduction over some axes. Blocks sharing their
/// position along the kept axes form a *tile* (they feed the same output
/// cells), in C order over the reduced axes. A tile's *leaves* are
/// `n_leaves` runs of consecutive blocks, as equal as can be: a leaf is reduced
/// into one partial result, its blocks accumulated in order, and leaves are
/// merged along the tile's fixed tree. Work positions are leaves, tile-major:
/// `pos = tile × n_leaves + leaf`, and ranks own contiguous ranges of them.
/// With every axis reduced there is one tile.
///
/// A leaf is one block unless the last axis is kept and a block holds fewer
/// than [`LEAF_ROWS`] values per kept cell (a time mean of maps): then a
/// tile has a power-of-two number of leaves, at least [`TILE_LEAVES`] and
/// enough that a leaf holds about [`LEAF_ROWS`] values per cell — so the
/// per-cell partial results, which are larger than the values, are made
/// and merged rarely, and ranks that split a tile evenly (P = 2, 4, 8, …)
/// each own one subtree of its merge tree: one partial result to send.
/// It depends on the decomposition only, never on the number of ranks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tiling {
    /// Reduced flag per axis.
    pub reduced: Vec<bool>,
    /// Number of tiles.
    pub n_tiles: usize,
    /// Leaves per tile.
    pub n_leaves: usize,
    /// Blocks per tile.
    pub tile_blocks: usize,
}

/// Values per kept cell a leaf gathers, at most, when the last axis is kept.
pub const LEAF_ROWS: usize = 1024;

/// Leaves per tile, at least, when blocks are grouped into leaves (so
/// that up to this many ranks share a tile's work evenly).
pub const TILE_LEAVES: usize = 16;

impl Tiling {
    /// Tiling of `d` for a reduction over the axes flagged in `reduced`.
    pub fn new(d: &Decomposition, reduced: &[bool]) -> Self {
        let prod = |want: bool| -> usize {
            d.grid
                .iter()
                .zip(reduced)
                .filter(|(_, r)| **r == want)
                .map(|(g, _)| *g)
                .product()
        };
        let empty = d.n_blocks() == 0;
        let tile_blocks = if empty { 0 } else { prod(true) };
        let rows: usize = d
            .block_shape
            .iter()
            .zip(reduced)
            .filter(|(_, r)| **r)
            .map(|(b, _)| *b)
            .product();
        let last_kept = reduced.last() == Some(&false);
        // Leaves of about LEAF_ROWS values per cell, a power-of-two count
        // of at least TILE_LEAVES (see the type's doc).
        let n_leaves = if last_kept && rows < LEAF_ROWS {
            (tile_blocks * rows)
                .div_ceil(LEAF_ROWS)
                .max(TILE_LEAVES)
                .next_power_of_two()
                .min(tile_blocks)
        } else {
            tile_blocks
        };
        Tiling {
            reduced: reduced.to_vec(),
            n_tiles: if empty { 0 } else { prod(false) },
            n_leaves,
            tile_blocks,
        }
    }

    /// Total work positions (leaves of all tiles).
    pub fn n_positions(&self) -> usize {
        self.n_tiles * self.n_leaves
    }

    /// Block positions (`tile × tile_blocks + block of the tile`) of the
    /// blocks of work position (leaf) `pos`, in order.
    pub fn leaf_blocks(&self, pos: usize) -> Range<usize> {
        let (tile, leaf) = (pos / self.n_leaves, pos % self.n_leaves);
        let r = split_range(self.tile_blocks, leaf, self.n_leaves);
        tile * self.tile_blocks + r.start..tile * self.tile_blocks + r.end
    }

    /// Block index (C order over the block grid) of block position `bpos`
    /// (`tile × tile_blocks + block of the tile`).
    pub fn block_index(&self, d: &Decomposition, bpos: usize) -> usize {
        let (mut tile, mut leaf) = (bpos / self.tile_blocks, bpos % self.tile_blocks);
        let n = d.grid.len();
        let mut coords = vec![0; n];
        for a in (0..n).rev() {
            let rem = if self.reduced[a] {
                &mut leaf
            } else {
                &mut tile
            };
            coords[a] = *rem % d.grid[a];
            *rem /= d.grid[a];
        }
        coords
            .iter()
            .zip(&d.grid)
            .fold(0, |idx, (&c, &g)| idx * g + c)
    }

    /// Where tile `tile` lands in the result: start and extent along each
    /// kept axis.
    pub fn tile_region(&self, d: &Decomposition, tile: usize) -> (Vec<usize>, Vec<usize>) {
        let b = d.block(self.block_index(d, tile * self.tile_blocks));
        let keep = |v: &[usize]| -> Vec<usize> {
            v.iter()
                .zip(&self.reduced)
                .filter(|(_, r)| !**r)
                .map(|(x, _)| *x)
                .collect()
        };
        (keep(&b.start), keep(&b.count))
    }

    /// Shape of the result: the kept extents of the array.
    pub fn result_shape(&self, d: &Decomposition) -> Vec<usize> {
        d.shape
            .iter()
            .zip(&self.reduced)
            .filter(|(_, r)| !**r)
            .map(|(x, _)| *x)
            .collect()
    }
}

/// Split `0..n` into `size` contiguous parts differing by at most one; part `rank`.
pub fn split_range(n: usize, rank: usize, size: usize) -> Range<usize> {
    let size = size.max(1);
    let base = n / size;
    let extra = n % size;
    let lo = rank * base + rank.min(extra);
    let hi = lo + base + usize::from(rank < extra);
    lo.min(n)..hi.min(n)
}

/// Call `f(local_row, global_offset)` for every row (run along the last axis)
/// of the hyperslab `start, count` in an array of `shape`, in C order.
/// `global_offset` is the C-order linear index of the row's first element.
pub fn for_each_row(
    shape: &[usize],
    start: &[usize],
    count: &[usize],
    mut f: impl FnMut(usize, u64),
) {
    let n = shape.len();
    if n == 0 {
        f(0, 0);
        return;
    }
    if count.contains(&0) {
        return;
    }
    let rows: usize = count[..n - 1].iter().product();
    let mut idx = vec![0usize; n - 1];
    for row in 0..rows {
        let mut off: u64 = 0;
        for k in 0..n - 1 {
            off = off * shape[k] as u64 + (start[k] + idx[k]) as u64;
        }
        off = off * shape[n - 1] as u64 + start[n - 1] as u64;
        f(row, off);
        for k in (0..n - 1).rev() {
            idx[k] += 1;
            if idx[k] < count[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small deterministic generator so the property test needs no extra crate.
    fn lcg(state: &mut u64) -> u64 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *state >> 33
    }

    #[test]
    fn time_mean_blocks_are_grouped_into_leaves() {
        // 100 maps of 3 × 4, one per block: rows per block 1 < LEAF_ROWS, so
        // TILE_LEAVES = 16 leaves: 100 = 4 × 7 + 12 × 6 blocks.
        let d = Decomposition::new(&[100, 3, 4], Some(&[1, 3, 4]), 8, 96);
        let t = Tiling::new(&d, &[true, false, false]);
        assert_eq!((t.tile_blocks, t.n_leaves), (100, 16));
        let sizes: Vec<usize> = (0..16).map(|p| t.leaf_blocks(p).len()).collect();
        assert_eq!(sizes, [[7; 4].as_slice(), &[6; 12]].concat());
        let mut seen = vec![0; 100];
        for pos in 0..t.n_positions() {
            for b in t.leaf_blocks(pos) {
                seen[t.block_index(&d, b)] += 1;
            }
        }
        assert!(seen.iter().all(|&k| k == 1));
        assert_eq!(t.leaf_blocks(15), 94..100);
        // Many rows: leaves of at most about LEAF_ROWS rows, a power of two.
        let long = Decomposition::new(&[40_000, 3, 4], Some(&[1, 3, 4]), 8, 96);
        let t = Tiling::new(&long, &[true, false, false]);
        assert_eq!(t.n_leaves, 64); // ⌈40000 / 1024⌉ = 40 → 64
        // Last axis reduced (field mean) or few blocks: one block per leaf.
        let t = Tiling::new(&d, &[false, true, true]);
        assert_eq!(t.n_leaves, t.tile_blocks);
        let few = Decomposition::new(&[10, 3, 4], Some(&[1, 3, 4]), 8, 96);
        assert_eq!(Tiling::new(&few, &[true, false, false]).n_leaves, 10);
    }

    #[test]
    fn seed_exercise_blocks() {
        // 20000x20000 f64, chunks 1000x1000, 64 MiB budget: 8 chunks along the
        // fast axis fit (8*1000*1000*8 B = 64 MB <= 67.1 MB), 9 would not.
        let d = Decomposition::new(&[20000, 20000], Some(&[1000, 1000]), 8, 64 << 20);
        assert_eq!(d.block_shape, vec![1000, 8000]);
        assert_eq!(d.grid, vec![20, 3]);
        assert_eq!(d.block(2).count, vec![1000, 4000]);
    }

    #[test]
    fn contiguous_is_row_slabs() {
        let d = Decomposition::new(&[1000, 100], None, 8, 8 * 100 * 64);
        assert_eq!(d.block_shape, vec![64, 100]);
        assert_eq!(d.n_blocks(), 16);
        assert_eq!(d.block(15).count, vec![1000 - 15 * 64, 100]);
    }

    #[test]
    fn chunk_larger_than_budget_gives_one_chunk() {
        let d = Decomposition::new(&[100, 100], Some(&[50, 50]), 8, 16);
        assert_eq!(d.block_shape, vec![50, 50]);
    }

    #[test]
    fn blocks_cover_every_element_exactly_once() {
        let mut s = 42u64;
        for _ in 0..300 {
            let nd = 1 + (lcg(&mut s) % 4) as usize;
            let shape: Vec<usize> = (0..nd).map(|_| 1 + (lcg(&mut s) % 13) as usize).collect();
            let chunk: Vec<usize> = shape
                .iter()
                .map(|&d| 1 + (lcg(&mut s) as usize % d))
                .collect();
            let budget = 8 * (1 + lcg(&mut s) % 200);
            let use_chunk = lcg(&mut s).is_multiple_of(2);
            let d = Decomposition::new(&shape, use_chunk.then_some(&chunk[..]), 8, budget);
            let total: usize = shape.iter().product();
            let mut seen = vec![0u8; total];
            let p = 1 + (lcg(&mut s) % 6) as usize;
            let mut next = 0;
            for r in 0..p {
                let range = d.rank_range(r, p);
                assert_eq!(range.start, next, "rank ranges must be contiguous");
                next = range.end;
                for b in range {
                    let blk = d.block(b);
                    if use_chunk {
                        for k in 0..nd {
                            assert_eq!(blk.start[k] % d.unit[k], 0, "block not chunk aligned");
                        }
                    }
                    let mut elems = 0;
                    for_each_row(&shape, &blk.start, &blk.count, |_, off| {
                        for i in 0..blk.count[nd - 1] {
                            seen[off as usize + i] += 1;
                            elems += 1;
                        }
                    });
                    assert_eq!(elems, blk.len());
                }
            }
            assert_eq!(next, d.n_blocks());
            assert!(
                seen.iter().all(|&c| c == 1),
                "shape {shape:?} chunk {chunk:?} budget {budget}"
            );
        }
    }

    #[test]
    fn tiling_visits_every_block_once_tile_major() {
        let d = Decomposition::new(&[6, 8, 10], Some(&[2, 4, 5]), 8, 8 * 2 * 4 * 5);
        assert_eq!(d.grid, vec![3, 2, 2]);
        for mask in 0..8u32 {
            let reduced: Vec<bool> = (0..3).map(|a| mask & (1 << a) != 0).collect();
            let t = Tiling::new(&d, &reduced);
            assert_eq!(t.n_positions(), d.n_blocks());
            let mut seen = vec![false; d.n_blocks()];
            for pos in 0..t.n_positions() {
                let b = d.block(t.block_index(&d, pos));
                seen[b.index] = true;
                // Every leaf of a tile has the tile's kept region.
                let (start, count) = t.tile_region(&d, pos / t.n_leaves);
                let kept: Vec<usize> = (0..3).filter(|&a| !reduced[a]).collect();
                for (i, &a) in kept.iter().enumerate() {
                    assert_eq!((b.start[a], b.count[a]), (start[i], count[i]));
                }
            }
            assert!(seen.iter().all(|&s| s));
        }
        let all = Tiling::new(&d, &[true; 3]);
        assert_eq!((all.n_tiles, all.n_leaves), (1, 12));
        assert_eq!(all.block_index(&d, 7), 7);
    }

    #[test]
    fn more_ranks_than_blocks() {
        assert_eq!(split_range(2, 3, 4), 2..2);
        assert_eq!(split_range(10, 0, 3), 0..4);
        assert_eq!(split_range(10, 2, 3), 7..10);
    }
}
