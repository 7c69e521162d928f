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
    pub fn of_block(block: &Block, sel: &[AxisRange]) -> Hyperslab {
        debug_assert_eq!(block.start.len(), sel.len());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_of_a_strided_selection() {
        // Rows 1, 3, 5, … and columns 0, 3, 6, … of the file; block starts at
        // selected row 1 (file row 3), selected column 2 (file column 6).
        let sel = [
            AxisRange {
                start: 1,
                count: 4,
                step: 2,
            },
            AxisRange {
                start: 0,
                count: 3,
                step: 3,
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
