//! Chunk-direct reads of deflate / shuffle / fletcher32 compressed HDF5
//! datasets, decoded outside libhdf5 in the rank's thread pool.
//!
//! libhdf5 decodes one chunk at a time behind its global lock, with stock
//! zlib. Here the reading thread only fetches each chunk's raw (still
//! filtered) bytes with `H5Dread_chunk` — after `H5Dget_chunk_storage_size`
//! says whether the chunk is allocated and how big it is — and the chunks of a block are then
//! decoded in parallel by the rayon pool: the pipeline is undone in reverse
//! write order (fletcher32 checked and stripped, inflated with libdeflate,
//! unshuffled), byte-swapped if the file's byte order is not the host's,
//! and the part of each chunk inside the block is copied to its place in
//! the block buffer. Unallocated chunks read as the dataset's fill value
//! (0 when none is set), as libhdf5 does. A pipeline with any other filter,
//! a file type that is not the element type in either byte order, or a
//! strided selection keeps the libhdf5 path.
//!
//! Decoder: libdeflate (via `libdeflater`) inflates a whole chunk into a
//! buffer of known size in one call and checks the zlib adler32 with SIMD;
//! it was the fastest of the decoders measured (see the README's
//! *Performance* section and `benches/climate.sh`).

use crate::IoError;
use crate::decomp::Block;
use crate::element::{Dtype, Element};
use crate::hyperslab::Hyperslab;
use crate::selection::AxisRange;
use hdf5::Dataset;
use hdf5::filters::Filter;
use hdf5_sys::h5::{HADDR_UNDEF, haddr_t, herr_t, hsize_t};
use hdf5_sys::h5d::{H5Dget_chunk_info_by_coord, H5Dget_create_plist, H5Dget_type, H5Dread_chunk};
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5p::{H5P_DEFAULT, H5Pclose, H5Pget_fill_value};
use hdf5_sys::h5t::{H5T_order_t, H5Tclose, H5Tcopy, H5Tequal, H5Tget_order, H5Tset_order};
use rayon::prelude::*;

unsafe extern "C" {
    /// Stored size of the chunk at `offset` (0 when it is not allocated);
    /// HDF5 ≥ 1.10.2. A keyed lookup, unlike `H5Dget_chunk_info_by_coord`,
    /// which in HDF5 1.10 walks the whole chunk index on every call.
    fn H5Dget_chunk_storage_size(
        dset_id: hid_t,
        offset: *const hsize_t,
        chunk_bytes: *mut hsize_t,
    ) -> herr_t;
}

/// One step of a supported filter pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Byte shuffle (element size = the type's size).
    Shuffle,
    /// zlib-format deflate.
    Deflate,
    /// Fletcher-32 checksum appended to the data.
    Fletcher32,
}

/// How to read one dataset chunk by chunk, decided once per open.
#[derive(Clone, Debug)]
pub struct ChunkDirect {
    /// Chunk extents.
    pub chunk: Vec<usize>,
    /// The filter pipeline in write order.
    pub steps: Vec<Step>,
    /// Bytes per element.
    pub elem: usize,
    /// The file's byte order is not the host's.
    pub swap: bool,
    /// The fill value, one element in host order.
    pub fill: Vec<u8>,
}

/// The pipeline of `filters` when every filter can be undone here.
pub fn supported_steps(filters: &[Filter]) -> Option<Vec<Step>> {
    filters
        .iter()
        .map(|f| match f {
            Filter::Deflate(_) => Some(Step::Deflate),
            Filter::Shuffle => Some(Step::Shuffle),
            Filter::Fletcher32 => Some(Step::Fletcher32),
            _ => None,
        })
        .collect()
}

impl ChunkDirect {
    /// The chunk-direct plan for `ds` read as `dtype`, or `None` when the
    /// libhdf5 path must be used (contiguous layout, no filter, another
    /// filter, or a file type that is not `dtype` in either byte order).
    pub fn plan(ds: &Dataset, dtype: Dtype) -> Option<ChunkDirect> {
        let chunk = ds.chunk()?;
        let filters = ds.filters();
        if filters.is_empty() {
            return None;
        }
        let steps = supported_steps(&filters)?;
        let native = crate::h5io::native_type(dtype).ok()?;
        let elem = dtype.size();
        // SAFETY: plain HDF5 C calls on valid identifiers; every id made here is closed.
        let (swap, fill) = unsafe {
            let ft = H5Dget_type(ds.id());
            if ft < 0 {
                return None;
            }
            let swap = if H5Tequal(ft, native.id()) > 0 {
                Some(false)
            } else {
                let other = H5Tcopy(native.id());
                let order = match H5Tget_order(native.id()) {
                    H5T_order_t::H5T_ORDER_LE => H5T_order_t::H5T_ORDER_BE,
                    _ => H5T_order_t::H5T_ORDER_LE,
                };
                let same = H5Tset_order(other, order) >= 0 && H5Tequal(ft, other) > 0;
                H5Tclose(other);
                same.then_some(true)
            };
            H5Tclose(ft);
            let dcpl = H5Dget_create_plist(ds.id());
            if dcpl < 0 {
                return None;
            }
            let mut fill = vec![0u8; elem];
            let ok = H5Pget_fill_value(dcpl, native.id(), fill.as_mut_ptr().cast()) >= 0;
            H5Pclose(dcpl);
            if !ok {
                return None;
            }
            (swap?, fill)
        };
        Some(ChunkDirect {
            chunk,
            steps,
            elem,
            swap,
            fill,
        })
    }

    /// True when blocks of selection `sel` can be read chunk by chunk (no
    /// strided axis).
    pub fn handles(&self, sel: &[AxisRange]) -> bool {
        sel.iter().all(|r| r.step == 1)
    }

    /// Read `block` (selected index space of `sel`, which [`Self::handles`])
    /// into the first `block.len()` elements of `buf`: raw chunks fetched by
    /// the calling thread, decoded and placed by `pool` (or the current rayon
    /// context when `None`).
    pub fn read_block<T: Element>(
        &self,
        ds: &Dataset,
        block: &Block,
        sel: &[AxisRange],
        buf: &mut [T],
        pool: Option<&rayon::ThreadPool>,
    ) -> Result<(), IoError> {
        let mut staged = Staged::default();
        self.stage(ds, block, sel, 0, &mut staged)?;
        match pool {
            Some(p) => p.install(|| staged.finish(buf)),
            None => staged.finish(buf),
        }
    }

    /// Fetch the raw chunks of `block` (as [`Self::read_block`]) into
    /// `staged`, to be decoded by [`Staged::finish`] into the block buffer
    /// from element `at` on. HDF5 calls: this thread only.
    pub fn stage(
        &self,
        ds: &Dataset,
        block: &Block,
        sel: &[AxisRange],
        at: usize,
        staged: &mut Staged,
    ) -> Result<(), IoError> {
        let slab = Hyperslab::of_block(block, sel);
        let mut jobs = Vec::new();
        self.fetch_into(ds, &slab, &mut jobs, &mut staged.spare)?;
        staged.parts.push(Part {
            plan: self.clone(),
            slab,
            at,
            len: block.len(),
            jobs,
            what: format!(
                "'{}' in '{}' (block {})",
                ds.name(),
                ds.filename(),
                block.index
            ),
        });
        Ok(())
    }

    /// Raw bytes (and filter mask) of every chunk the box `slab` touches;
    /// `None` for unallocated chunks. HDF5 calls: this thread only.
    pub fn fetch(&self, ds: &Dataset, slab: &Hyperslab) -> Result<Vec<Job>, IoError> {
        let mut jobs = Vec::new();
        self.fetch_into(ds, slab, &mut jobs, &mut Vec::new())?;
        Ok(jobs)
    }

    /// As [`Self::fetch`], appending to `jobs` and reusing the byte buffers
    /// of `spare` (no allocation, no page faults from block to block).
    fn fetch_into(
        &self,
        ds: &Dataset,
        slab: &Hyperslab,
        jobs: &mut Vec<Job>,
        spare: &mut Vec<Vec<u8>>,
    ) -> Result<(), IoError> {
        let nd = self.chunk.len();
        let lo: Vec<usize> = (0..nd).map(|a| slab.start[a] / self.chunk[a]).collect();
        let hi: Vec<usize> = (0..nd)
            .map(|a| (slab.start[a] + slab.count[a] - 1) / self.chunk[a])
            .collect();
        let mut idx = lo.clone();
        loop {
            let origin: Vec<usize> = (0..nd).map(|a| idx[a] * self.chunk[a]).collect();
            let off: Vec<hsize_t> = origin.iter().map(|&o| o as hsize_t).collect();
            let mut size: hsize_t = 0;
            // SAFETY: `off` has one entry per dimension; the output is an integer.
            let ret = unsafe { H5Dget_chunk_storage_size(ds.id(), off.as_ptr(), &mut size) };
            if ret < 0 && allocated(ds, &off)? {
                return Err(IoError::Hdf5Call(format!(
                    "H5Dget_chunk_storage_size for the chunk at {origin:?} of '{}' in '{}' failed",
                    ds.name(),
                    ds.filename()
                )));
            }
            let raw = if size == 0 {
                None
            } else {
                // A reused buffer: only growth is zeroed; H5Dread_chunk
                // overwrites all `size` bytes.
                let mut raw = spare.pop().unwrap_or_default();
                raw.resize(size as usize, 0);
                let mut filters = 0u32;
                // SAFETY: `raw` has the chunk's stored size, as the call writes.
                let ret = unsafe {
                    H5Dread_chunk(
                        ds.id(),
                        H5P_DEFAULT,
                        off.as_ptr(),
                        &mut filters,
                        raw.as_mut_ptr().cast(),
                    )
                };
                if ret < 0 {
                    return Err(IoError::Hdf5Call(format!(
                        "reading the raw chunk at {origin:?} of '{}' (H5Dread_chunk) failed",
                        ds.name()
                    )));
                }
                Some((raw, filters))
            };
            jobs.push(Job { origin, raw });
            // Next chunk index in C order within lo..=hi.
            let mut a = nd;
            loop {
                if a == 0 {
                    return Ok(());
                }
                a -= 1;
                if idx[a] < hi[a] {
                    idx[a] += 1;
                    break;
                }
                idx[a] = lo[a];
            }
        }
    }

    /// Undo the pipeline on one chunk's raw bytes (scratch buffers `a`, `b`) (filters whose bit is set
    /// in `mask` were skipped when it was written); returns the decoded
    /// chunk (full chunk extents, file byte order).
    pub fn decode<'a>(
        &self,
        raw: &'a [u8],
        mask: u32,
        dec: &mut libdeflater::Decompressor,
        a: &'a mut Vec<u8>,
        b: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], String> {
        Ok(match self.undo(raw, mask, dec, a, b, None)? {
            Decoded::Raw(len) => &raw[..len],
            Decoded::Scratch(len) => &a[..len],
            Decoded::Out => unreachable!("no output slice was given"),
        })
    }

    /// [`Self::decode`] into `out` (the chunk's bytes): the pipeline's last
    /// step (inflate or unshuffle) writes there directly, without a copy
    /// through the scratch buffers.
    pub fn decode_to(
        &self,
        raw: &[u8],
        mask: u32,
        dec: &mut libdeflater::Decompressor,
        a: &mut Vec<u8>,
        b: &mut Vec<u8>,
        out: &mut [u8],
    ) -> Result<(), String> {
        match self.undo(raw, mask, dec, a, b, Some(&mut *out))? {
            Decoded::Raw(len) => out.copy_from_slice(&raw[..len]),
            Decoded::Scratch(len) => out.copy_from_slice(&a[..len]),
            Decoded::Out => {}
        }
        Ok(())
    }

    /// The pipeline in reverse write order. The decoded chunk ends in
    /// `raw` (nothing to undo), in `a`, or — when `out` is given and the
    /// last step undone transforms bytes — in `out`.
    fn undo(
        &self,
        raw: &[u8],
        mask: u32,
        dec: &mut libdeflater::Decompressor,
        a: &mut Vec<u8>,
        b: &mut Vec<u8>,
        mut out: Option<&mut [u8]>,
    ) -> Result<Decoded, String> {
        let chunk_bytes = self.chunk.iter().product::<usize>() * self.elem;
        // Size of the data entering each step at write time.
        let mut sizes = Vec::with_capacity(self.steps.len());
        let mut s = chunk_bytes;
        for (i, st) in self.steps.iter().enumerate() {
            sizes.push(s);
            if mask & (1 << i) == 0 && *st == Step::Fletcher32 {
                s += 4;
            }
        }
        // The last step undone (the first applied at write time) writes
        // into `out` when it transforms bytes (not a checksum's strip).
        let last = (0..self.steps.len()).find(|&i| mask & (1 << i) == 0);
        let direct = last.filter(|&i| self.steps[i] != Step::Fletcher32);
        if out.as_ref().is_some_and(|o| o.len() != chunk_bytes) {
            out = None;
        }
        // The data so far: `raw[..len]` until a step has written `a[..len]`.
        let (mut in_raw, mut len) = (true, raw.len());
        for (i, st) in self.steps.iter().enumerate().rev() {
            if mask & (1 << i) != 0 {
                continue;
            }
            let input: &[u8] = if in_raw { &raw[..len] } else { &a[..len] };
            if *st == Step::Fletcher32 {
                if len < 4 {
                    return Err("shorter than its fletcher32 checksum".into());
                }
                let (data, sum) = input.split_at(len - 4);
                let stored = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
                let f = fletcher32(data);
                let c = f.to_ne_bytes();
                let reversed = u32::from_ne_bytes([c[1], c[0], c[3], c[2]]);
                if stored != f && stored != reversed {
                    return Err("fletcher32 checksum mismatch".into());
                }
                len -= 4;
                continue;
            }
            let want = match st {
                Step::Deflate => sizes[i],
                _ => len,
            };
            let into_out = direct == Some(i) && want == chunk_bytes && out.is_some();
            let target: &mut [u8] = match out.as_deref_mut() {
                Some(o) if into_out => o,
                _ => {
                    b.resize(want, 0);
                    &mut b[..]
                }
            };
            match st {
                Step::Deflate => {
                    let got = dec
                        .zlib_decompress(input, target)
                        .map_err(|e| format!("deflate stream cannot be inflated ({e})"))?;
                    if got != sizes[i] {
                        return Err(format!("inflates to {got} bytes, {} expected", sizes[i]));
                    }
                }
                _ => unshuffle(input, target, self.elem),
            }
            if into_out {
                return Ok(Decoded::Out);
            }
            std::mem::swap(a, b);
            in_raw = false;
            len = a.len();
        }
        if len != chunk_bytes {
            return Err(format!("decodes to {len} bytes, {chunk_bytes} expected"));
        }
        Ok(if in_raw {
            Decoded::Raw(len)
        } else {
            Decoded::Scratch(len)
        })
    }

    /// Where the part of the chunk at `origin` inside `slab` goes in the
    /// block (byte range), when it is the whole chunk, stored contiguously
    /// there in the file's byte order (so it can be decoded in place).
    fn contiguous_in(&self, origin: &[usize], slab: &Hyperslab) -> Option<std::ops::Range<usize>> {
        let nd = origin.len();
        if self.swap || nd == 0 {
            return None;
        }
        // The whole chunk lies inside the slab…
        let inside = (0..nd).all(|a| {
            origin[a] >= slab.start[a] && origin[a] + self.chunk[a] <= slab.start[a] + slab.count[a]
        });
        // …and after its first axis longer than 1 it spans the slab's
        // full extent on every axis: its rows follow each other.
        let first = (0..nd).find(|&a| self.chunk[a] > 1).unwrap_or(nd);
        if !inside || (first + 1..nd).any(|a| self.chunk[a] != slab.count[a]) {
            return None;
        }
        let (mut at, mut stride) = (0usize, 1usize);
        for a in (0..nd).rev() {
            at += (origin[a] - slab.start[a]) * stride;
            stride *= slab.count[a];
        }
        let len = self.chunk.iter().product::<usize>();
        Some(at * self.elem..(at + len) * self.elem)
    }

    /// Copy the part of the chunk at `origin` inside `slab` to its place in
    /// the block (`data` = decoded chunk, `None` = fill value).
    fn place(&self, data: Option<&[u8]>, origin: &[usize], slab: &Hyperslab, dst: &Dst) {
        let nd = origin.len();
        let e = self.elem;
        let lo: Vec<usize> = (0..nd).map(|a| origin[a].max(slab.start[a])).collect();
        let hi: Vec<usize> = (0..nd)
            .map(|a| (origin[a] + self.chunk[a]).min(slab.start[a] + slab.count[a]))
            .collect();
        let row = hi[nd - 1] - lo[nd - 1];
        let mut idx = lo.clone();
        loop {
            let (mut src, mut dsto, mut cs, mut bs) = (0usize, 0usize, 1usize, 1usize);
            for a in (0..nd).rev() {
                src += (idx[a] - origin[a]) * cs;
                dsto += (idx[a] - slab.start[a]) * bs;
                cs *= self.chunk[a];
                bs *= slab.count[a];
            }
            debug_assert!((dsto + row) * e <= dst.1);
            // SAFETY: rows of different chunks of one block are disjoint
            // parts of the block buffer, and this row lies inside it.
            let out = unsafe { std::slice::from_raw_parts_mut(dst.0.add(dsto * e), row * e) };
            match data {
                Some(d) => {
                    let inp = &d[src * e..(src + row) * e];
                    if self.swap {
                        for (o, i) in out.chunks_exact_mut(e).zip(inp.chunks_exact(e)) {
                            for k in 0..e {
                                o[k] = i[e - 1 - k];
                            }
                        }
                    } else {
                        out.copy_from_slice(inp);
                    }
                }
                None => {
                    for o in out.chunks_exact_mut(e) {
                        o.copy_from_slice(&self.fill);
                    }
                }
            }
            // Next row: all axes but the last, C order within lo..hi.
            let mut a = nd - 1;
            loop {
                if a == 0 {
                    return;
                }
                a -= 1;
                idx[a] += 1;
                if idx[a] < hi[a] {
                    break;
                }
                idx[a] = lo[a];
            }
        }
    }
}

/// Whether the chunk at `off` is allocated, by `H5Dget_chunk_info_by_coord`
/// (HDF5 1.10's `H5Dget_chunk_storage_size` fails on unallocated chunks;
/// this slower call tells them apart from real failures).
fn allocated(ds: &Dataset, off: &[hsize_t]) -> Result<bool, IoError> {
    let (mut mask, mut addr, mut size) = (0u32, 0 as haddr_t, 0 as hsize_t);
    // SAFETY: `off` has one entry per dimension; outputs are plain integers.
    let ret = unsafe {
        H5Dget_chunk_info_by_coord(ds.id(), off.as_ptr(), &mut mask, &mut addr, &mut size)
    };
    if ret < 0 {
        return Err(IoError::Hdf5Call(format!(
            "H5Dget_chunk_info_by_coord for the chunk at {off:?} of '{}' failed",
            ds.name()
        )));
    }
    Ok(addr != HADDR_UNDEF)
}

thread_local! {
    /// Each pool thread's decoder and two scratch buffers of a chunk's size,
    /// kept from chunk to chunk and block to block (no allocation per chunk).
    static SCRATCH: std::cell::RefCell<(libdeflater::Decompressor, Vec<u8>, Vec<u8>)> =
        std::cell::RefCell::new((libdeflater::Decompressor::new(), Vec::new(), Vec::new()));
}

/// One chunk of a block: its origin and raw bytes with filter mask (`None`:
/// not allocated).
pub struct Job {
    /// File coordinates of the chunk's first element.
    pub origin: Vec<usize>,
    /// Stored bytes and filter mask; `None` when the chunk is not allocated.
    pub raw: Option<(Vec<u8>, u32)>,
}

/// Where [`ChunkDirect::undo`] left a decoded chunk.
enum Decoded {
    /// The first bytes of the raw input (no step to undo).
    Raw(usize),
    /// The first bytes of the scratch buffer `a`.
    Scratch(usize),
    /// The output slice given.
    Out,
}

/// The raw chunks of one block, fetched by the reading thread
/// ([`ChunkDirect::stage`]) and decoded later, in the pool, by
/// [`Staged::finish`] — so the reading thread fetches the next block while
/// the pool decodes this one. Keeps its byte buffers from block to block.
#[derive(Default)]
pub struct Staged {
    parts: Vec<Part>,
    spare: Vec<Vec<u8>>,
}

/// The chunks of one dataset's part of a block (a block of a multi-file
/// input may span files).
struct Part {
    plan: ChunkDirect,
    slab: Hyperslab,
    /// First element of this part in the block buffer, and its length.
    at: usize,
    len: usize,
    jobs: Vec<Job>,
    /// Dataset, file and block, for error messages.
    what: String,
}

impl Staged {
    /// True when nothing waits to be decoded.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Decode every staged chunk in the current rayon context (chunks in
    /// parallel) and place it in `buf`; the raw buffers are kept for the
    /// next block. A chunk that cannot be decoded is an error naming it.
    pub fn finish<T: Element>(&mut self, buf: &mut [T]) -> Result<(), IoError> {
        let mut result = Ok(());
        for part in self.parts.drain(..) {
            if result.is_ok() {
                result = part.decode_into(buf);
            }
            self.spare
                .extend(part.jobs.into_iter().filter_map(|j| j.raw.map(|r| r.0)));
        }
        result
    }
}

impl Part {
    /// Decode this part's chunks in parallel into `buf[at..at + len]`.
    fn decode_into<T: Element>(&self, buf: &mut [T]) -> Result<(), IoError> {
        let plan = &self.plan;
        assert_eq!(
            std::mem::size_of::<T>(),
            plan.elem,
            "element type of the plan"
        );
        let out = &mut buf[self.at..self.at + self.len];
        let n = self.len * plan.elem;
        // SAFETY: `out` holds `len` elements of plain numeric type; viewing
        // them as bytes is sound.
        let bytes = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), n) };
        let dst = Dst(bytes.as_mut_ptr(), n);
        self.jobs.par_iter().try_for_each(|job| {
            SCRATCH.with_borrow_mut(|(dec, a, b)| {
                let corrupt = |why: String| {
                    IoError::Input(format!(
                        "chunk at {:?} of {} is corrupt: {why}",
                        job.origin, self.what
                    ))
                };
                let Some((raw, mask)) = &job.raw else {
                    plan.place(None, &job.origin, &self.slab, &dst);
                    return Ok(());
                };
                if let Some(r) = plan.contiguous_in(&job.origin, &self.slab) {
                    debug_assert!(r.end <= dst.1);
                    // SAFETY: chunks of one block fill disjoint parts of the
                    // block buffer, and this range lies inside it.
                    let out =
                        unsafe { std::slice::from_raw_parts_mut(dst.0.add(r.start), r.len()) };
                    return plan.decode_to(raw, *mask, dec, a, b, out).map_err(corrupt);
                }
                let data = plan.decode(raw, *mask, dec, a, b).map_err(corrupt)?;
                plan.place(Some(data), &job.origin, &self.slab, &dst);
                Ok(())
            })
        })
    }
}

/// The block buffer, written by several threads at disjoint rows.
struct Dst(*mut u8, usize);
// SAFETY: every thread writes rows no other thread writes (see `place`).
unsafe impl Send for Dst {}
// SAFETY: as above.
unsafe impl Sync for Dst {}

/// Undo HDF5's byte shuffle: byte `b` of element `i` was stored at
/// `b × n + i` (`n` = whole elements); trailing bytes were kept in place.
/// Element sizes 2, 4 and 8 interleave 16 elements at a time with SSE2
/// byte/word unpacks on x86-64 (the scalar loop gathers one byte at a time).
pub fn unshuffle(inp: &[u8], out: &mut [u8], elem: usize) {
    assert_eq!(inp.len(), out.len(), "unshuffle: input and output sizes");
    let n = inp.len() / elem;
    let done = match elem {
        1 => {
            out.copy_from_slice(inp);
            return;
        }
        #[cfg(target_arch = "x86_64")]
        2 | 4 | 8 => {
            // SAFETY: SSE2 is part of x86-64; the bounds are checked inside.
            unsafe { unshuffle_sse2(inp, out, elem, n) }
        }
        _ => 0,
    };
    for b in 0..elem {
        let plane = &inp[b * n + done..(b + 1) * n];
        for (i, &x) in plane.iter().enumerate() {
            out[(done + i) * elem + b] = x;
        }
    }
    out[n * elem..].copy_from_slice(&inp[n * elem..]);
}

/// The first `n / 16 × 16` elements of [`unshuffle`] for element sizes 2,
/// 4 and 8; returns how many elements it wrote.
#[cfg(target_arch = "x86_64")]
unsafe fn unshuffle_sse2(inp: &[u8], out: &mut [u8], elem: usize, n: usize) -> usize {
    use std::arch::x86_64::*;
    let whole = n / 16 * 16;
    assert!(inp.len() >= elem * n && out.len() >= elem * whole);
    let (ip, op) = (inp.as_ptr(), out.as_mut_ptr());
    // SAFETY (all loads and stores): plane `b` is `inp[b n .. (b + 1) n]`,
    // 16 bytes are read at `i + 16 ≤ whole ≤ n`, and 16 elements written at
    // `elem × i`, below `elem × whole`.
    unsafe {
        let ld = |b: usize, i: usize| _mm_loadu_si128(ip.add(b * n + i).cast());
        let st = |k: usize, v: __m128i| _mm_storeu_si128(op.add(k).cast(), v);
        let mut i = 0;
        while i < whole {
            let o = i * elem;
            match elem {
                2 => {
                    let (p0, p1) = (ld(0, i), ld(1, i));
                    st(o, _mm_unpacklo_epi8(p0, p1));
                    st(o + 16, _mm_unpackhi_epi8(p0, p1));
                }
                4 => {
                    let (p0, p1, p2, p3) = (ld(0, i), ld(1, i), ld(2, i), ld(3, i));
                    let (l01, h01) = (_mm_unpacklo_epi8(p0, p1), _mm_unpackhi_epi8(p0, p1));
                    let (l23, h23) = (_mm_unpacklo_epi8(p2, p3), _mm_unpackhi_epi8(p2, p3));
                    st(o, _mm_unpacklo_epi16(l01, l23));
                    st(o + 16, _mm_unpackhi_epi16(l01, l23));
                    st(o + 32, _mm_unpacklo_epi16(h01, h23));
                    st(o + 48, _mm_unpackhi_epi16(h01, h23));
                }
                _ => {
                    let p: [__m128i; 8] = std::array::from_fn(|b| ld(b, i));
                    // Pairs of planes, then quads: bytes 0–3 and 4–7 of
                    // each element, four elements per register.
                    let pair = |x: usize| {
                        (
                            _mm_unpacklo_epi8(p[x], p[x + 1]),
                            _mm_unpackhi_epi8(p[x], p[x + 1]),
                        )
                    };
                    let ((l01, h01), (l23, h23)) = (pair(0), pair(2));
                    let ((l45, h45), (l67, h67)) = (pair(4), pair(6));
                    let lo = [
                        _mm_unpacklo_epi16(l01, l23),
                        _mm_unpackhi_epi16(l01, l23),
                        _mm_unpacklo_epi16(h01, h23),
                        _mm_unpackhi_epi16(h01, h23),
                    ];
                    let hi = [
                        _mm_unpacklo_epi16(l45, l67),
                        _mm_unpackhi_epi16(l45, l67),
                        _mm_unpacklo_epi16(h45, h67),
                        _mm_unpackhi_epi16(h45, h67),
                    ];
                    for q in 0..4 {
                        st(o + 32 * q, _mm_unpacklo_epi32(lo[q], hi[q]));
                        st(o + 32 * q + 16, _mm_unpackhi_epi32(lo[q], hi[q]));
                    }
                }
            }
            i += 16;
        }
    }
    whole
}

/// HDF5's Fletcher-32 checksum (`H5_checksum_fletcher32`): 16-bit words
/// taken big-endian, sums folded every 360 words.
pub fn fletcher32(data: &[u8]) -> u32 {
    let (mut s1, mut s2) = (0u32, 0u32);
    for block in data[..data.len() / 2 * 2].chunks(720) {
        for w in block.chunks_exact(2) {
            s1 += (u32::from(w[0]) << 8) | u32::from(w[1]);
            s2 += s1;
        }
        s1 = (s1 & 0xffff) + (s1 >> 16);
        s2 = (s2 & 0xffff) + (s2 >> 16);
    }
    if data.len() % 2 == 1 {
        s1 += u32::from(data[data.len() - 1]) << 8;
        s2 += s1;
        s1 = (s1 & 0xffff) + (s1 >> 16);
        s2 = (s2 & 0xffff) + (s2 >> 16);
    }
    s1 = (s1 & 0xffff) + (s1 >> 16);
    s2 = (s2 & 0xffff) + (s2 >> 16);
    (s2 << 16) | s1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HDF5's write side of a pipeline: shuffle, deflate (level 4) and
    /// fletcher32 (stored little-endian, as HDF5 writes it) in `steps` order.
    fn encode(data: &[u8], steps: &[Step], elem: usize) -> Vec<u8> {
        let mut v = data.to_vec();
        for st in steps {
            v = match st {
                Step::Shuffle => {
                    let n = v.len() / elem;
                    let mut o = v.clone();
                    for i in 0..n {
                        for b in 0..elem {
                            o[b * n + i] = v[i * elem + b];
                        }
                    }
                    o
                }
                Step::Deflate => {
                    let mut c =
                        libdeflater::Compressor::new(libdeflater::CompressionLvl::new(4).unwrap());
                    let mut o = vec![0u8; c.zlib_compress_bound(v.len())];
                    let k = c.zlib_compress(&v, &mut o).unwrap();
                    o.truncate(k);
                    o
                }
                Step::Fletcher32 => {
                    let mut o = v.clone();
                    o.extend_from_slice(&fletcher32(&v).to_le_bytes());
                    o
                }
            };
        }
        v
    }

    #[test]
    fn decoding_in_place_gives_the_decoded_bytes() {
        use Step::*;
        let data: Vec<u8> = (0..4 * 181 * 3).map(|i| (i * 31 % 251) as u8).collect();
        let pipelines: [&[Step]; 6] = [
            &[],
            &[Deflate],
            &[Shuffle],
            &[Shuffle, Deflate],
            &[Shuffle, Deflate, Fletcher32],
            &[Fletcher32],
        ];
        for steps in pipelines {
            let plan = ChunkDirect {
                chunk: vec![3, 181],
                steps: steps.to_vec(),
                elem: 4,
                swap: false,
                fill: vec![0; 4],
            };
            let raw = encode(&data, steps, 4);
            let mut dec = libdeflater::Decompressor::new();
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let got = plan
                .decode(&raw, 0, &mut dec, &mut a, &mut b)
                .unwrap()
                .to_vec();
            assert_eq!(got, data, "{steps:?}");
            let mut out = vec![0u8; data.len()];
            plan.decode_to(&raw, 0, &mut dec, &mut a, &mut b, &mut out)
                .unwrap();
            assert_eq!(out, data, "{steps:?} in place");
            // A damaged stream is an error either way.
            if steps.contains(&Deflate) {
                let mut bad = raw.clone();
                bad.truncate(raw.len() / 2);
                assert!(
                    plan.decode_to(&bad, 0, &mut dec, &mut a, &mut b, &mut out)
                        .is_err()
                );
            }
        }
    }

    #[test]
    fn contiguous_chunks_are_found() {
        let plan = ChunkDirect {
            chunk: vec![1, 4, 6],
            steps: vec![Step::Deflate],
            elem: 4,
            swap: false,
            fill: vec![0; 4],
        };
        let slab = |start: [usize; 3], count: [usize; 3]| Hyperslab {
            start: start.to_vec(),
            stride: vec![1; 3],
            count: count.to_vec(),
        };
        // Maps of a time block: whole chunks, one after another.
        let s = slab([10, 0, 0], [5, 4, 6]);
        assert_eq!(
            plan.contiguous_in(&[12, 0, 0], &s),
            Some(2 * 24 * 4..3 * 24 * 4)
        );
        // A selection narrower than the chunk: not whole.
        assert_eq!(
            plan.contiguous_in(&[12, 0, 0], &slab([10, 0, 0], [5, 4, 5])),
            None
        );
        // Several chunks across the last axis: rows interleave.
        assert_eq!(
            plan.contiguous_in(&[12, 0, 0], &slab([10, 0, 0], [5, 4, 12])),
            None
        );
        // Several chunks across the middle axis: each is a contiguous run.
        let s = slab([10, 0, 0], [5, 8, 6]);
        assert_eq!(
            plan.contiguous_in(&[11, 4, 0], &s),
            Some((48 + 24) * 4..(48 + 48) * 4)
        );
        // Byte-swapped data are decoded through the scratch buffers.
        let swapped = ChunkDirect {
            swap: true,
            ..plan.clone()
        };
        assert_eq!(
            swapped.contiguous_in(&[12, 0, 0], &slab([10, 0, 0], [5, 4, 6])),
            None
        );
    }

    #[test]
    fn unshuffle_inverts_shuffle() {
        for (elem, n) in [1usize, 2, 3, 4, 8]
            .into_iter()
            .flat_map(|e| [0usize, 1, 15, 16, 37, 1000].map(|n| (e, n)))
        {
            // Fewer trailing bytes than one element (HDF5 copies them as they are).
            let data: Vec<u8> = (0..n * elem + elem - 1)
                .map(|i| (i * 7 + 1) as u8)
                .collect();
            let whole = n * elem;
            let mut shuffled = data.clone();
            for i in 0..n {
                for b in 0..elem {
                    shuffled[b * n + i] = data[i * elem + b];
                }
            }
            let mut out = vec![0u8; data.len()];
            unshuffle(&shuffled, &mut out, elem);
            assert_eq!(out[..whole], data[..whole]);
            assert_eq!(out, data);
        }
    }

    #[test]
    fn fletcher32_known_values() {
        // Fletcher-32 of "abcde" as HDF5 computes it: big-endian 16-bit
        // words 0x6162, 0x6364 and the odd byte as 0x6500.
        let words = [0x6162u32, 0x6364, 0x6500];
        let (mut s1, mut s2) = (0u32, 0u32);
        for w in words {
            s1 += w;
            s2 += s1;
        }
        let fold = |x: u32| {
            let y = (x & 0xffff) + (x >> 16);
            (y & 0xffff) + (y >> 16)
        };
        assert_eq!(fletcher32(b"abcde"), (fold(s2) << 16) | fold(s1));
    }
}
