//! Read a dataset's extents and chunk index from HDF5 and check them with
//! [`chunkwise_core::chunk_index`] before any data is read (see there for
//! why). Every rank runs it on its serial open, so a damaged file is one
//! agreed error naming the dataset and the chunk.
//!
//! Cost: the index is walked by position (`H5Dget_chunk_info`), which HDF5
//! 1.10 answers by walking the index from its start, so quadratic — well
//! under a second for a grid of [`BY_POSITION_MAX`] = 4096 chunks.
//! `H5Dget_chunk_info_by_coord` is no faster there (a linear scan per call:
//! 4 minutes for 90 000 chunks) and `H5Dchunk_iter` needs HDF5 1.14, so the
//! index of a larger grid is not checked (said in the log at info level);
//! its extents still are.
//!
//! First the dataset's object header is read from the file's bytes and its
//! datatype, fill value, layout and filter pipeline messages checked
//! ([`chunkwise_core::h5_header`]): HDF5 1.10 trusts fields there that a
//! damaged byte makes wrong (a fill value larger than its message crashes
//! it).

use crate::IoError;
use chunkwise_core::chunk_index::{ChunkEntry, check_btree_keys, check_entries, check_extents};
use chunkwise_core::h5_header;
use hdf5::Dataset;
use hdf5_sys::h5::{HADDR_UNDEF, haddr_t, hsize_t};
use hdf5_sys::h5d::{
    H5Dget_chunk_info, H5Dget_chunk_info_by_coord, H5Dget_num_chunks, H5Dget_space,
};
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5o::{H5O_INFO_BASIC, H5O_info1_t, H5Oget_info2};
use hdf5_sys::h5s::{H5S_UNLIMITED, H5Sclose, H5Sget_simple_extent_dims};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A dataspace closed on drop.
struct Space(hid_t);

impl Drop for Space {
    fn drop(&mut self) {
        unsafe {
            H5Sclose(self.0);
        }
    }
}

/// Chunk grids of up to this many positions have their index checked.
pub const BY_POSITION_MAX: u64 = 4096;

/// Bytes read at each end of the file (before the first chunk, after the
/// last) to find the chunk index's B-tree nodes ([`check_btree_keys`]).
const KEY_SCAN_MAX: u64 = 16 << 20;

/// Check the extents and (chunked datasets) the chunk index of `ds`, named
/// `var` in `file_name` (at `path`), a file of `file_len` bytes.
pub fn check_dataset(
    ds: &Dataset,
    var: &str,
    file_name: &str,
    path: &Path,
    file_len: u64,
) -> Result<(), IoError> {
    let what = format!("variable '{var}' in '{file_name}'");
    let fail = |m: String| IoError::Input(m);
    let elem = ds.dtype().map(|t| t.size() as u64).unwrap_or(1);
    check_header(ds, path, elem).map_err(|m| fail(format!("{what} is damaged: {m}")))?;
    let (shape, maxdims) = extents(ds)
        .ok_or_else(|| fail(format!("{what} is damaged: its dataspace cannot be read")))?;
    let chunk: Option<Vec<u64>> = ds.chunk().map(|c| c.iter().map(|&x| x as u64).collect());
    check_extents(&what, &shape, &maxdims, chunk.as_deref()).map_err(fail)?;
    let Some(chunk) = chunk else { return Ok(()) };
    let grid: u64 = shape
        .iter()
        .zip(&chunk)
        .fold(1u64, |g, (&d, &c)| g.saturating_mul(d.div_ceil(c.max(1))));
    if grid > BY_POSITION_MAX {
        // Even counting walks the whole index (and caches it: 17 MiB for
        // 90 000 chunks); see the module docs.
        log::info!("{what}: a grid of {grid} chunks; the chunk index is not checked");
        return Ok(());
    }
    // HDF5 1.10 takes no H5S_ALL here: the dataset's own (all-selected) space.
    let space = unsafe { H5Dget_space(ds.id()) };
    if space < 0 {
        return Err(fail(format!(
            "{what} is damaged: its dataspace cannot be read"
        )));
    }
    let _close = Space(space);
    let mut stored: hsize_t = 0;
    if unsafe { H5Dget_num_chunks(ds.id(), space, &mut stored) } < 0 {
        return Err(fail(format!(
            "{what} is damaged: its chunk index cannot be read"
        )));
    }
    let n = shape.len();
    let mut entries = Vec::new();
    if stored <= grid {
        for i in 0..stored {
            let mut offset = vec![0 as hsize_t; n];
            let (mut mask, mut addr, mut size) = (0u32, 0 as haddr_t, 0 as hsize_t);
            let r = unsafe {
                H5Dget_chunk_info(
                    ds.id(),
                    space,
                    i,
                    offset.as_mut_ptr(),
                    &mut mask,
                    &mut addr,
                    &mut size,
                )
            };
            if r < 0 || addr == HADDR_UNDEF {
                return Err(fail(format!(
                    "{what} is damaged: entry {i} of its chunk index cannot be read"
                )));
            }
            let (mut m2, mut a2, mut s2) = (0u32, HADDR_UNDEF, 0 as hsize_t);
            let found = unsafe {
                H5Dget_chunk_info_by_coord(ds.id(), offset.as_ptr(), &mut m2, &mut a2, &mut s2)
            };
            entries.push(ChunkEntry {
                offset,
                addr,
                size,
                by_coord: (found >= 0 && a2 != HADDR_UNDEF).then_some((a2, s2)),
            });
        }
    }
    let unfiltered = ds
        .filters()
        .is_empty()
        .then(|| chunk.iter().product::<u64>() * elem);
    check_entries(
        &what, &shape, &chunk, file_len, stored, &entries, unfiltered,
    )
    .map_err(fail)?;
    let mut dims = chunk.clone();
    dims.push(elem);
    check_keys(&what, path, file_len, &dims, &entries).map_err(fail)
}

/// Check the raw B-tree keys of the chunk index ([`check_btree_keys`]) in
/// the metadata before the first chunk and after the last one (at most
/// [`KEY_SCAN_MAX`] bytes each; h5py, netCDF-C and HDF5 put the index there).
fn check_keys(
    what: &str,
    path: &Path,
    file_len: u64,
    dims: &[u64],
    entries: &[ChunkEntry],
) -> Result<(), String> {
    let (Some(first), Some(last)) = (
        entries.iter().map(|e| e.addr).min(),
        entries.iter().map(|e| e.addr.saturating_add(e.size)).max(),
    ) else {
        return Ok(());
    };
    let Ok(f) = std::fs::File::open(path) else {
        return Ok(());
    };
    let tail = last
        .max(file_len.saturating_sub(KEY_SCAN_MAX))
        .min(file_len);
    for (from, to) in [(0, first.min(KEY_SCAN_MAX).min(file_len)), (tail, file_len)] {
        let mut buf = vec![0u8; (to - from) as usize];
        if f.read_exact_at(&mut buf, from).is_err() {
            return Err(format!("{what}: cannot read its metadata"));
        }
        check_btree_keys(what, &buf, from, dims, entries)?;
    }
    Ok(())
}

/// The HDF5 format signature, at byte 0, 512, 1024, 2048, ... of a file.
const SIGNATURE: &[u8] = b"\x89HDF\r\n\x1a\n";

/// Read `ds`'s object header from the file at `path` and check its messages
/// ([`h5_header::check_messages`]). Files whose superblock uses other than
/// 8-byte offsets and lengths are not checked (HDF5's default is 8).
fn check_header(ds: &Dataset, path: &Path, elem: u64) -> Result<(), String> {
    let mut info = H5O_info1_t::default();
    // Safety: a valid object id and an info struct of the 1.10 layout.
    if unsafe { H5Oget_info2(ds.id(), &mut info, H5O_INFO_BASIC) } < 0 {
        return Err("its object header cannot be found".into());
    }
    let Ok(f) = std::fs::File::open(path) else {
        return Ok(());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let at = |a: u64, n: u64| -> Option<Vec<u8>> {
        let end = a.checked_add(n)?;
        if end > len {
            return None;
        }
        let mut b = vec![0u8; n as usize];
        f.read_exact_at(&mut b, a).ok().map(|_| b)
    };
    let mut sb = 0u64;
    let head = loop {
        match at(sb, 40) {
            Some(h) if h.starts_with(SIGNATURE) => break h,
            Some(_) if sb < len => sb = if sb == 0 { 512 } else { sb * 2 },
            _ => return Ok(()),
        }
    };
    let (sizes, base_at) = match head[8] {
        0 => ((head[13], head[14]), 24),
        1 => ((head[13], head[14]), 28),
        _ => ((head[9], head[10]), 12),
    };
    if sizes != (8, 8) {
        log::info!(
            "{}: {sizes:?}-byte offsets and lengths; the object header is not checked",
            path.display()
        );
        return Ok(());
    }
    let base = u64::from_le_bytes(head[base_at..base_at + 8].try_into().unwrap());
    let read = |a: u64, n: u64| at(a.checked_add(base)?, n);
    let msgs = h5_header::read_messages(info.addr, &read)?;
    h5_header::check_messages(&msgs, ds.ndim(), elem)
}

/// Current and maximum extents (`None`: unlimited) of a dataset.
fn extents(ds: &Dataset) -> Option<(Vec<u64>, Vec<Option<u64>>)> {
    unsafe {
        let space = H5Dget_space(ds.id());
        if space < 0 {
            return None;
        }
        let n = ds.ndim();
        let mut dims = vec![0 as hsize_t; n];
        let mut max = vec![0 as hsize_t; n];
        let r = H5Sget_simple_extent_dims(space, dims.as_mut_ptr(), max.as_mut_ptr());
        H5Sclose(space);
        if r < 0 || r as usize != n {
            return None;
        }
        let max = max
            .into_iter()
            .map(|m| (m != H5S_UNLIMITED).then_some(m))
            .collect();
        Some((dims, max))
    }
}
