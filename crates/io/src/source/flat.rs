//! Flat files: one array stored contiguously in C order after a fixed-size
//! header — `.npy` files (header from [`super::npy`]) and raw binary dumps
//! (no header; type and shape given on the command line).
//!
//! Every rank opens the file itself and reads its blocks with positioned
//! reads (`pread`), no MPI-IO needed: a block of whole rows is one byte
//! range; any other hyperslab is one range per row, and adjacent rows are
//! merged into one read. Big-endian data are byte-swapped after reading.

use super::npy;
use crate::IoError;
use crate::decomp::Block;
use crate::element::{Dtype, Element};
use crate::hyperslab::Hyperslab;
use crate::selection::AxisRange;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Where and how a flat array is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlatLayout {
    /// The file.
    pub path: PathBuf,
    /// Offset of the first element.
    pub offset: u64,
    /// Element type.
    pub dtype: Dtype,
    /// True when elements are stored big-endian.
    pub big_endian: bool,
    /// Array shape (C order).
    pub shape: Vec<usize>,
}

impl FlatLayout {
    /// Bytes of data the layout needs after the header.
    pub fn data_bytes(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product::<u64>() * self.dtype.size() as u64
    }

    /// Describe an `.npy` file (reads its header only).
    pub fn from_npy(path: &Path) -> Result<FlatLayout, IoError> {
        let shown = path.display();
        let f = std::fs::File::open(path)
            .map_err(|e| IoError::Input(format!("cannot open '{shown}': {e}")))?;
        let mut pre = [0u8; npy::PREAMBLE];
        f.read_exact_at(&mut pre, 0)
            .map_err(|_| IoError::Input(format!("'{shown}' is too short for an .npy file")))?;
        let len = npy::header_len(&pre).map_err(|e| IoError::Input(format!("'{shown}': {e}")))?;
        let mut head = vec![0u8; len];
        f.read_exact_at(&mut head, 0)
            .map_err(|_| IoError::Input(format!("'{shown}': .npy header is truncated")))?;
        let h = npy::parse_header(&head).map_err(|e| IoError::Input(format!("'{shown}': {e}")))?;
        if h.fortran_order {
            return Err(IoError::Input(format!(
                "'{shown}' is stored in Fortran (column-major) order, which is not supported; rewrite it in C order, e.g. numpy.save(path, numpy.ascontiguousarray(a))"
            )));
        }
        let layout = FlatLayout {
            path: path.to_path_buf(),
            offset: h.data_offset,
            dtype: h.dtype,
            big_endian: h.big_endian,
            shape: h.shape,
        };
        layout.check_size(".npy header")?;
        Ok(layout)
    }

    /// Describe a raw binary file of `dtype` (`big_endian` byte order) and `shape`.
    pub fn from_raw(
        path: &Path,
        dtype: Dtype,
        big_endian: bool,
        shape: Vec<usize>,
    ) -> Result<FlatLayout, IoError> {
        let layout = FlatLayout {
            path: path.to_path_buf(),
            offset: 0,
            dtype,
            big_endian: big_endian && dtype.size() > 1,
            shape,
        };
        layout.check_size("--raw-dtype and --raw-shape")?;
        Ok(layout)
    }

    /// The file must hold exactly the header plus the data.
    fn check_size(&self, from: &str) -> Result<(), IoError> {
        let shown = self.path.display();
        let len = std::fs::metadata(&self.path)
            .map_err(|e| IoError::Input(format!("cannot open '{shown}': {e}")))?
            .len();
        let want = self.offset + self.data_bytes();
        if len != want {
            return Err(IoError::Input(format!(
                "'{shown}' has {len} bytes but {from} say {want} ({} × {} {} bytes{})",
                self.shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(" × "),
                self.dtype.size(),
                self.dtype,
                if self.offset > 0 {
                    format!(" + {} header bytes", self.offset)
                } else {
                    String::new()
                }
            )));
        }
        Ok(())
    }

    /// Read `block` (in the index space of selection `sel`) into the first
    /// `block.len()` elements of `buf`, converting to native byte order.
    /// `T` must be the stored element type.
    pub fn read_block<T: Element>(
        &self,
        file: &std::fs::File,
        block: &Block,
        sel: &[AxisRange],
        buf: &mut [T],
    ) -> Result<(), IoError> {
        assert_eq!(
            T::DTYPE,
            self.dtype,
            "flat read with the wrong element type"
        );
        let size = self.dtype.size();
        let n = block.len();
        let bytes = as_bytes_mut(&mut buf[..n]);
        if self.shape.is_empty() {
            // A 0-d array: its one element.
            file.read_exact_at(bytes, self.offset)
                .map_err(|e| IoError::Input(format!("reading '{}': {e}", self.path.display())))?;
            if self.big_endian != cfg!(target_endian = "big") {
                swap_bytes(bytes, size);
            }
            return Ok(());
        }
        let last = self.shape.len() - 1;
        let row = block.count[last];
        let step = sel[last].step;
        let err = |e: std::io::Error| {
            IoError::Input(format!(
                "reading block {} of '{}': {e}",
                block.index,
                self.path.display()
            ))
        };
        let mut pending: Option<(u64, usize, usize)> = None; // (file byte, buf byte, len)
        let mut scratch = Vec::new();
        let mut result = Ok(());
        for_each_file_row(&self.shape, block, sel, |r, first| {
            if result.is_err() {
                return;
            }
            let fpos = self.offset + first * size as u64;
            let bpos = r * row * size;
            if step == 1 {
                let len = row * size;
                match &mut pending {
                    Some((f, b, l)) if *f + *l as u64 == fpos && *b + *l == bpos => *l += len,
                    _ => {
                        if let Some((f, b, l)) = pending.take() {
                            result = file.read_exact_at(&mut bytes[b..b + l], f).map_err(err);
                        }
                        pending = Some((fpos, bpos, len));
                    }
                }
            } else {
                let span = ((row - 1) * step + 1) * size;
                scratch.resize(span, 0);
                result = file.read_exact_at(&mut scratch, fpos).map_err(err);
                for i in 0..row {
                    bytes[bpos + i * size..bpos + (i + 1) * size]
                        .copy_from_slice(&scratch[i * step * size..(i * step + 1) * size]);
                }
            }
        });
        if let (Ok(()), Some((f, b, l))) = (&result, pending) {
            result = file.read_exact_at(&mut bytes[b..b + l], f).map_err(err);
        }
        result?;
        if self.big_endian != cfg!(target_endian = "big") {
            swap_bytes(bytes, size);
        }
        Ok(())
    }

    /// Write `data` (native byte order) as `block` of the whole array (no
    /// selection) at its place in `file`, which this layout describes.
    pub fn write_block<T: Element>(
        &self,
        file: &std::fs::File,
        block: &Block,
        data: &[T],
    ) -> Result<(), IoError> {
        assert_eq!(
            T::DTYPE,
            self.dtype,
            "flat write with the wrong element type"
        );
        assert!(!self.big_endian || cfg!(target_endian = "big"));
        let size = self.dtype.size();
        let bytes = as_bytes(&data[..block.len()]);
        let row = block.count[self.shape.len() - 1] * size;
        let all: Vec<AxisRange> = self.shape.iter().map(|&d| AxisRange::all(d)).collect();
        let mut result = Ok(());
        for_each_file_row(&self.shape, block, &all, |r, first| {
            if result.is_ok() {
                result = file
                    .write_all_at(
                        &bytes[r * row..(r + 1) * row],
                        self.offset + first * size as u64,
                    )
                    .map_err(|e| {
                        IoError::Output(format!("writing '{}': {e}", self.path.display()))
                    });
            }
        });
        result
    }
}

/// Call `f(row, first)` for every row (run along the last axis) of `block`
/// in the selected index space `sel`: `row` counts rows in C order within
/// the block, `first` is the C-order element index in the file of the row's
/// first selected element.
fn for_each_file_row(
    shape: &[usize],
    block: &Block,
    sel: &[AxisRange],
    mut f: impl FnMut(usize, u64),
) {
    let slab = Hyperslab::of_block(block, sel);
    let n = shape.len();
    let rows: usize = slab.count[..n - 1].iter().product();
    let mut idx = vec![0usize; n - 1];
    for r in 0..rows {
        let mut off = 0u64;
        for k in 0..n - 1 {
            off = off * shape[k] as u64 + slab.file_index(k, idx[k]) as u64;
        }
        off = off * shape[n - 1] as u64 + slab.start[n - 1] as u64;
        f(r, off);
        for k in (0..n - 1).rev() {
            idx[k] += 1;
            if idx[k] < block.count[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

/// Reverse the bytes of every `size`-byte element.
fn swap_bytes(bytes: &mut [u8], size: usize) {
    if size > 1 {
        for e in bytes.chunks_exact_mut(size) {
            e.reverse();
        }
    }
}

/// The bytes of a slice of plain numbers.
pub(crate) fn as_bytes<T: Element>(v: &[T]) -> &[u8] {
    // SAFETY: `Element` types are plain integers and floats: no padding, any
    // byte pattern is valid, and u8 has alignment 1.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), std::mem::size_of_val(v)) }
}

/// The bytes of a mutable slice of plain numbers.
pub(crate) fn as_bytes_mut<T: Element>(v: &mut [T]) -> &mut [u8] {
    // SAFETY: as in `as_bytes`; every byte pattern is a valid `T`.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast(), std::mem::size_of_val(v)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decomp::Decomposition;

    fn tmp(name: &str, bytes: &[u8]) -> PathBuf {
        let p = std::env::temp_dir().join(format!("cw-flat-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn reads_hyperslabs_with_steps_and_swaps_big_endian() {
        // 5 × 7 i32, big-endian, value = 10 × i + j.
        let shape = vec![5usize, 7];
        let bytes: Vec<u8> = (0..5i32)
            .flat_map(|i| (0..7i32).flat_map(move |j| (10 * i + j).to_be_bytes()))
            .collect();
        let p = tmp("be.raw", &bytes);
        let l = FlatLayout::from_raw(&p, Dtype::I32, true, shape.clone()).unwrap();
        let f = std::fs::File::open(&p).unwrap();
        let all: Vec<AxisRange> = shape.iter().map(|&d| AxisRange::all(d)).collect();
        let d = Decomposition::new(&shape, Some(&[2, 3]), 4, 4 * 6);
        for b in 0..d.n_blocks() {
            let blk = d.block(b);
            let mut buf = vec![0i32; d.block_elems()];
            l.read_block(&f, &blk, &all, &mut buf).unwrap();
            let mut k = 0;
            for i in 0..blk.count[0] {
                for j in 0..blk.count[1] {
                    let want = 10 * (blk.start[0] + i) + blk.start[1] + j;
                    assert_eq!(buf[k], want as i32);
                    k += 1;
                }
            }
        }
        // Selection rows 1,3 and columns 0,3,6 (steps 2 and 3).
        let sel = vec![
            AxisRange {
                start: 1,
                count: 2,
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
        let blk = Block {
            index: 0,
            start: vec![0, 0],
            count: vec![2, 3],
        };
        let mut buf = vec![0i32; 6];
        l.read_block(&f, &blk, &sel, &mut buf).unwrap();
        assert_eq!(buf, vec![10, 13, 16, 30, 33, 36]);
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn raw_size_must_match() {
        let p = tmp("short.raw", &[0u8; 40]);
        let e = FlatLayout::from_raw(&p, Dtype::F64, false, vec![3, 2]).unwrap_err();
        assert!(e.to_string().contains("has 40 bytes but"), "{e}");
        assert!(FlatLayout::from_raw(&p, Dtype::F64, false, vec![5]).is_ok());
        std::fs::remove_file(p).unwrap();
    }
}
