//! Where a block lives in the file: the one mapping from a block of the
//! selected index space to file coordinates that every input format uses
//! (HDF5 hyperslab selections, `pread` offsets of flat files, Zarr regions).

use crate::decomp::Block;
use crate::selection::AxisRange;

/// A strided box in file coordinates: along each axis `count` indices
/// `start, start + stride, …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hyperslab {
    /// First file index along each axis.
    pub start: Vec<usize>,
    /// Distance between selected indices along each axis (≥ 1).
    pub stride: Vec<usize>,
    /// Number of selected indices along each axis.
    pub count: Vec<usize>,
}

impl Hyperslab {
    /// The file region of `block`, whose coordinates are in the index space
    /// of the selection `sel` (one range per axis): file index =
    /// `sel.start + block index × sel.step`.
    /// A block must not cross the seam of a wrapped range ([`split_at_seam`]).
    pub fn of_block(block: &Block, sel: &[AxisRange]) -> Hyperslab {
        debug_assert_eq!(block.start.len(), sel.len());
        debug_assert!(split_at_seam(block, sel).is_none(), "block crosses a seam");
        Hyperslab {
            start: block
                .start
                .iter()
                .zip(sel)
                .map(|(&s, r)| r.index(s))
                .collect(),
            stride: sel.iter().map(|r| r.step).collect(),
            count: block.count.clone(),
        }
    }

    /// The file region of `block` when nothing is selected (stride 1).
    pub fn of_whole_block(block: &Block) -> Hyperslab {
        Hyperslab {
            start: block.start.clone(),
            stride: vec![1; block.start.len()],
            count: block.count.clone(),
        }
    }

    /// Extent of the bounding box along each axis: `(count − 1) × stride + 1`.
    pub fn extent(&self) -> Vec<usize> {
        self.count
            .iter()
            .zip(&self.stride)
            .map(|(&c, &s)| if c == 0 { 0 } else { (c - 1) * s + 1 })
            .collect()
    }

    /// True when every stride is 1 (a plain box).
    pub fn is_contiguous_box(&self) -> bool {
        self.stride.iter().all(|&s| s == 1)
    }

    /// File index along `axis` of the `i`-th selected index.
    pub fn file_index(&self, axis: usize, i: usize) -> usize {
        self.start[axis] + i * self.stride[axis]
    }
}

/// A block that crosses the seam of a wrapped range (a longitude range that
/// continues from the last index of the axis to the first), cut there:
/// `(axis, part before the seam, part after it)`. Each part is one
/// hyperslab; a reader reads both and [`join_at_seam`] puts them together.
/// `None` when the block crosses no seam (split the parts again for a
/// second wrapped axis).
pub fn split_at_seam(block: &Block, sel: &[AxisRange]) -> Option<(usize, Block, Block)> {
    sel.iter().enumerate().find_map(|(a, r)| {
        let k = r.seam()?;
        let (s, c) = (block.start[a], block.count[a]);
        if s >= k || s + c <= k {
            return None;
        }
        let mut first = block.clone();
        first.count[a] = k - s;
        let mut second = block.clone();
        second.start[a] = k;
        second.count[a] = s + c - k;
        Some((a, first, second))
    })
}

/// Interleave the C-order data of the two parts of a block cut along `axis`
/// (`first` holds `first_count` of its indices, `second` the rest) into
/// `out`, the C-order data of the whole block of shape `count`.
pub fn join_at_seam<T: Copy>(
    axis: usize,
    count: &[usize],
    first_count: usize,
    first: &[T],
    second: &[T],
    out: &mut [T],
) {
    let outer: usize = count[..axis].iter().product();
    let inner: usize = count[axis + 1..].iter().product();
    let (a, b) = (first_count * inner, (count[axis] - first_count) * inner);
    for o in 0..outer {
        let dst = &mut out[o * (a + b)..(o + 1) * (a + b)];
        dst[..a].copy_from_slice(&first[o * a..(o + 1) * a]);
        dst[a..].copy_from_slice(&second[o * b..(o + 1) * b]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selection::Wrap;

    #[test]
    fn blocks_across_a_seam_are_two_hyperslabs() {
        // Axis 1 of length 10, selected 7, 8, 9, 0, 1 (a wrapped longitude).
        let sel = [
            AxisRange::all(2),
            AxisRange {
                start: 7,
                count: 5,
                step: 1,
                wrap: Some(Wrap {
                    len: 10,
                    turns: [-1, 0],
                }),
            },
        ];
        let whole = Block {
            index: 3,
            start: vec![0, 1],
            count: vec![2, 4],
        };
        let (axis, a, b) = split_at_seam(&whole, &sel).unwrap();
        assert_eq!(
            (axis, a.count.clone(), b.count.clone()),
            (1, vec![2, 2], vec![2, 2])
        );
        let (ha, hb) = (Hyperslab::of_block(&a, &sel), Hyperslab::of_block(&b, &sel));
        assert_eq!((&ha.start, &ha.count), (&vec![0, 8], &vec![2, 2]));
        assert_eq!((&hb.start, &hb.count), (&vec![0, 0], &vec![2, 2]));
        // A file row r holds 10·r + column; read each part, then join.
        let read = |h: &Hyperslab| -> Vec<usize> {
            let mut v = vec![];
            for i in 0..h.count[0] {
                for j in 0..h.count[1] {
                    v.push(10 * h.file_index(0, i) + h.file_index(1, j));
                }
            }
            v
        };
        let mut out = vec![0; 8];
        join_at_seam(1, &whole.count, 2, &read(&ha), &read(&hb), &mut out);
        assert_eq!(out, [8, 9, 0, 1, 18, 19, 10, 11]);
        // Blocks on one side of the seam are not cut.
        let left = Block {
            index: 0,
            start: vec![0, 0],
            count: vec![2, 3],
        };
        assert!(split_at_seam(&left, &sel).is_none());
        assert_eq!(Hyperslab::of_block(&left, &sel).start, vec![0, 7]);
    }

    #[test]
    fn block_of_a_strided_selection() {
        // Rows 1, 3, 5, … and columns 0, 3, 6, … of the file; block starts at
        // selected row 1 (file row 3), selected column 2 (file column 6).
        let sel = [
            AxisRange {
                start: 1,
                count: 4,
                step: 2,
                wrap: None,
            },
            AxisRange {
                start: 0,
                count: 3,
                step: 3,
                wrap: None,
            },
        ];
        let b = Block {
            index: 0,
            start: vec![1, 2],
            count: vec![2, 1],
        };
        let h = Hyperslab::of_block(&b, &sel);
        assert_eq!(h.start, vec![3, 6]);
        assert_eq!(h.stride, vec![2, 3]);
        assert_eq!(h.extent(), vec![3, 1]);
        assert_eq!(h.file_index(0, 1), 5);
        assert!(!h.is_contiguous_box());
        let w = Hyperslab::of_whole_block(&b);
        assert_eq!((w.start.clone(), w.extent()), (vec![1, 2], vec![2, 1]));
        assert!(w.is_contiguous_box());
    }
}
