//! A dataset's HDF5 object header read from the file's bytes and checked
//! before libhdf5 acts on it (issue 16, the damaged-file matrix). HDF5 1.10
//! trusts some fields that later versions check: a fill value whose stored
//! size is larger than its message crashes it (`H5Pget_fill_value`), a
//! chunk layout whose element size differs from the datatype's, or a
//! shuffle filter whose element size differs from it, is read as if nothing
//! were wrong (HDF5 2.0 refuses the first and reads other values for the
//! second). Pure: the io layer reads the bytes.
//!
//! Format (HDF5 file format specification, "Data Object Headers"): a
//! version-1 header is version 1, a reserved byte, the message count (u16),
//! the reference count (u32) and the header size (u32), then, aligned to 8,
//! messages of type (u16), size (u16), flags (u8), 3 reserved bytes and
//! `size` bytes of data. A version-2 header is `OHDR`, version 2, flags,
//! optional times and attribute-storage limits, the size of chunk 0 (1, 2,
//! 4 or 8 bytes by the flags), then messages of type (u8), size (u16), flags
//! (u8), an optional creation order (u16) and data, a gap and a checksum.
//! Continuation messages (type 0x10: address, length) name further blocks
//! (version 2: `OCHK`, messages, checksum). Offsets and lengths are 8 bytes
//! (HDF5's default; other sizes are not checked).

/// One header message: its type and its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Message type (1 dataspace, 3 datatype, 5 fill value, 8 layout, 11
    /// filter pipeline, 16 continuation, ...).
    pub kind: u16,
    /// Message flags (bit 1: the data is a reference to a shared message).
    pub flags: u8,
    /// The message's data bytes.
    pub data: Vec<u8>,
}

/// Blocks of a header followed at most (a cycle of continuations is damage).
const MAX_BLOCKS: usize = 64;
/// Largest header block read (HDF5 limits a chunk of a header to 4 GiB; real
/// dataset headers are a few KiB).
const MAX_BLOCK: u64 = 1 << 24;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Read the messages of the object header at `addr`; `read(addr, len)`
/// returns the file's bytes there (relative to the base address), or `None`
/// past the end. An error names what does not parse.
pub fn read_messages(
    addr: u64,
    read: &dyn Fn(u64, u64) -> Option<Vec<u8>>,
) -> Result<Vec<Message>, String> {
    let head = read(addr, 16).ok_or("its object header lies outside the file")?;
    let mut out = Vec::new();
    // Blocks still to parse: (address, length, first block).
    let mut todo: Vec<(u64, u64, bool)> = Vec::new();
    let v2 = head.starts_with(b"OHDR");
    if v2 {
        if head[4] != 2 {
            return Err(format!("object header version {} is unknown", head[4]));
        }
        let flags = head[5];
        let mut at = 6 + if flags & 0x20 != 0 { 16 } else { 0 };
        at += if flags & 0x10 != 0 { 4 } else { 0 };
        let width = 1usize << (flags & 3);
        let pre = read(addr, (at + width) as u64).ok_or("its object header is cut short")?;
        let mut size = 0u64;
        for (i, &b) in pre[at..at + width].iter().enumerate() {
            size |= (b as u64) << (8 * i);
        }
        let start = addr + (at + width) as u64;
        // Chunk 0 holds `size` bytes of messages (and gap) and a checksum.
        todo.push((start, size, true));
        parse_blocks(&mut todo, &mut out, read, Some(flags & 0x04 != 0))?;
    } else {
        if head[0] != 1 {
            return Err(format!("object header version {} is unknown", head[0]));
        }
        let size = u32_at(&head, 8).unwrap_or(0) as u64;
        todo.push((addr + 16, size, true));
        parse_blocks(&mut todo, &mut out, read, None)?;
    }
    Ok(out)
}

/// Parse the blocks in `todo` (and the continuations they name) into
/// `out`; `v2` is `Some(creation order stored)` for version-2 headers.
fn parse_blocks(
    todo: &mut Vec<(u64, u64, bool)>,
    out: &mut Vec<Message>,
    read: &dyn Fn(u64, u64) -> Option<Vec<u8>>,
    v2: Option<bool>,
) -> Result<(), String> {
    let mut blocks = 0;
    while let Some((addr, len, first)) = todo.pop() {
        blocks += 1;
        if blocks > MAX_BLOCKS || len > MAX_BLOCK {
            return Err("its object header is damaged (continuations)".into());
        }
        let b = read(addr, len).ok_or("its object header lies outside the file")?;
        let (mut at, end, hdr) = match v2 {
            None => (0usize, b.len(), 8usize),
            Some(order) => {
                let skip = if first { 0 } else { 4 };
                if !first && !b.starts_with(b"OCHK") {
                    return Err("a continuation of its object header is damaged".into());
                }
                // A block ends in a 4-byte checksum (chunk 0's size excludes it).
                let end = if first {
                    b.len()
                } else {
                    b.len().saturating_sub(4)
                };
                (skip, end, if order { 6 } else { 4 })
            }
        };
        while at + hdr <= end {
            let (kind, size, flags) = match v2 {
                None => (
                    u16_at(&b, at).unwrap(),
                    u16_at(&b, at + 2).unwrap(),
                    b[at + 4],
                ),
                Some(_) => (b[at] as u16, u16_at(&b, at + 1).unwrap(), b[at + 3]),
            };
            let data_at = at + hdr;
            let data_end = data_at + size as usize;
            if data_end > end {
                return Err(format!(
                    "its object header is damaged: message type {kind} of {size} bytes runs past its block"
                ));
            }
            let data = b[data_at..data_end].to_vec();
            if kind == 0x10 {
                let (Some(a), Some(l)) = (u64_at(&data, 0), u64_at(&data, 8)) else {
                    return Err("its object header has a damaged continuation message".into());
                };
                todo.push((a, l, false));
            }
            out.push(Message { kind, flags, data });
            at = data_end;
        }
    }
    Ok(())
}

/// Check the dataset messages in `msgs` against the datatype size `elem`
/// and rank `rank` that libhdf5 reports: the datatype message's size; a
/// fill value's stored size (0 or `elem`) and that it fits its message
/// (HDF5 2.0: "invalid combination of fill-value info"); a chunk layout's
/// dimensionality (`rank` + 1) and element size (`elem`; HDF5 2.0: "stored
/// datatype size in chunk layout does not match datatype description"); the
/// filter pipeline's entries fit their message, shuffle's element size is
/// `elem` and deflate's level is 0..=9. The error says what is wrong.
pub fn check_messages(msgs: &[Message], rank: usize, elem: u64) -> Result<(), String> {
    // A shared message's data is a reference, not the message itself.
    for m in msgs.iter().filter(|m| m.flags & 0x02 == 0) {
        let d = &m.data;
        let short = || format!("its header message of type {} is cut short", m.kind);
        match m.kind {
            3 => {
                let size = u32_at(d, 4).ok_or_else(short)? as u64;
                if size != elem {
                    return Err(format!(
                        "its datatype message says {size}-byte elements, not {elem}"
                    ));
                }
            }
            4 => {
                let size = u32_at(d, 0).ok_or_else(short)? as u64;
                fill_size(size, d.len() - 4, elem)?;
            }
            5 => check_fill(d, elem)?,
            8 => check_layout(d, rank, elem)?,
            11 => check_filters(d, elem)?,
            _ => {}
        }
    }
    Ok(())
}

fn fill_size(size: u64, room: usize, elem: u64) -> Result<(), String> {
    if size > room as u64 || (size != 0 && size != elem) {
        return Err(format!(
            "its fill value message stores a {size}-byte value for {elem}-byte elements"
        ));
    }
    Ok(())
}

/// Fill value message (type 5), versions 1..=3.
fn check_fill(d: &[u8], elem: u64) -> Result<(), String> {
    let short = || "its fill value message is cut short".to_string();
    let version = *d.first().ok_or_else(short)?;
    match version {
        1 | 2 => {
            let (alloc, write, defined) = (
                *d.get(1).ok_or_else(short)?,
                *d.get(2).ok_or_else(short)?,
                *d.get(3).ok_or_else(short)?,
            );
            let alloc_ok = (1..=3).contains(&alloc) || (version == 1 && alloc == 0);
            if !alloc_ok || write > 2 || defined > 1 {
                return Err(format!(
                    "its fill value message is damaged (allocation time {alloc}, write time {write}, defined {defined})"
                ));
            }
            if version == 1 || defined == 1 {
                let size = u32_at(d, 4).ok_or_else(short)? as u64;
                fill_size(size, d.len() - 8, elem)?;
            }
        }
        3 => {
            let flags = *d.get(1).ok_or_else(short)?;
            if flags & 0xC0 != 0 || flags & 0x30 == 0x30 || flags & 3 == 0 || (flags >> 2) & 3 > 2 {
                return Err(format!(
                    "its fill value message is damaged (flags {flags:#04x})"
                ));
            }
            if flags & 0x20 != 0 {
                let size = u32_at(d, 2).ok_or_else(short)? as u64;
                fill_size(size, d.len() - 6, elem)?;
            }
        }
        v => return Err(format!("its fill value message has unknown version {v}")),
    }
    Ok(())
}

/// Data layout message (type 8): the chunked layouts of versions 3 and 4.
fn check_layout(d: &[u8], rank: usize, elem: u64) -> Result<(), String> {
    let short = || "its layout message is cut short".to_string();
    let (version, class) = (*d.first().ok_or_else(short)?, *d.get(1).ok_or_else(short)?);
    if class != 2 || !(3..=5).contains(&version) {
        return Ok(());
    }
    let dims: Vec<u64> = if version == 3 {
        let n = *d.get(2).ok_or_else(short)? as usize;
        (0..n)
            .map(|i| u32_at(d, 11 + 4 * i).map(u64::from))
            .collect::<Option<_>>()
            .ok_or_else(short)?
    } else {
        let n = *d.get(3).ok_or_else(short)? as usize;
        let w = *d.get(4).ok_or_else(short)? as usize;
        if !(1..=8).contains(&w) {
            return Err(format!("its layout message has {w}-byte chunk dimensions"));
        }
        (0..n)
            .map(|i| {
                let b = d.get(5 + w * i..5 + w * (i + 1))?;
                Some(b.iter().rev().fold(0u64, |x, &y| (x << 8) | y as u64))
            })
            .collect::<Option<_>>()
            .ok_or_else(short)?
    };
    if dims.len() != rank + 1 {
        return Err(format!(
            "its chunk layout has {} dimensions for a rank-{rank} dataset",
            dims.len()
        ));
    }
    if dims[..rank].contains(&0) {
        return Err(format!(
            "its chunk layout has a zero chunk extent: {:?}",
            &dims[..rank]
        ));
    }
    if dims[rank] != elem {
        return Err(format!(
            "its chunk layout stores {}-byte elements, the datatype {elem}-byte ones",
            dims[rank]
        ));
    }
    Ok(())
}

/// Filter pipeline message (type 11), versions 1 and 2.
fn check_filters(d: &[u8], elem: u64) -> Result<(), String> {
    let short = || "its filter pipeline message is damaged (entries run past it)".to_string();
    let (version, n) = (*d.first().ok_or_else(short)?, *d.get(1).ok_or_else(short)?);
    if !(1..=2).contains(&version) || n > 32 {
        return Err(format!(
            "its filter pipeline message is damaged (version {version}, {n} filters)"
        ));
    }
    let mut at = if version == 1 { 8 } else { 2 };
    for _ in 0..n {
        let id = u16_at(d, at).ok_or_else(short)?;
        at += 2;
        let name_len = if version == 1 || id >= 256 {
            let l = u16_at(d, at).ok_or_else(short)? as usize;
            at += 2;
            l
        } else {
            0
        };
        let _flags = u16_at(d, at).ok_or_else(short)?;
        let nv = u16_at(d, at + 2).ok_or_else(short)? as usize;
        at += 4;
        at += if version == 1 {
            name_len.next_multiple_of(8)
        } else {
            name_len
        };
        let vals: Vec<u32> = (0..nv)
            .map(|i| u32_at(d, at + 4 * i))
            .collect::<Option<_>>()
            .ok_or_else(short)?;
        at += 4 * nv + if version == 1 && nv % 2 == 1 { 4 } else { 0 };
        if at > d.len() {
            return Err(short());
        }
        match (id, vals.first()) {
            (1, Some(&level)) if level > 9 => {
                return Err(format!("its deflate filter has level {level} (0..9)"));
            }
            (2, Some(&size)) if size as u64 != elem => {
                return Err(format!(
                    "its shuffle filter has element size {size}, the datatype {elem}"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header h5py (HDF5 1.10, default file format) writes for a
    /// (60, 50) f32 dataset in (10, 10) chunks with shuffle and gzip, at
    /// byte 800 of its file (bytes 0..800 are zero here).
    fn file() -> Vec<u8> {
        let mut f = vec![0u8; 800];
        let hex = "01000600010000000001000000000000\
                   01002800000000000102010000000000\
                   3c000000000000003200000000000000\
                   3c000000000000003200000000000000\
                   03001800010000001120 1f0004000000\
                   00002000170800177f00000000000000\
                   05000800010000000203020100000000\
                   0b003800010000000102000000000000\
                   0200080001000100 7368756666 6c6500\
                   04000000000000000100080001000100\
                   6465666c617465000400000000000000\
                   08001800000000000302037805000000\
                   0000000a0000000a0000000400000000\
                   00003800000000000000000000000000";
        let hex: String = hex.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        f.extend(
            (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()),
        );
        f.resize(800 + 16 + 256, 0);
        f
    }

    fn check(f: &[u8]) -> Result<(), String> {
        let read = |a: u64, l: u64| f.get(a as usize..(a + l) as usize).map(|b| b.to_vec());
        let msgs = read_messages(800, &read)?;
        check_messages(&msgs, 2, 4)
    }

    #[test]
    fn a_good_header_passes_and_lists_its_messages() {
        let f = file();
        let read = |a: u64, l: u64| f.get(a as usize..(a + l) as usize).map(|b| b.to_vec());
        let kinds: Vec<u16> = read_messages(800, &read)
            .unwrap()
            .iter()
            .map(|m| m.kind)
            .collect();
        assert_eq!(&kinds[..5], &[1, 3, 5, 11, 8]);
        check(&f).unwrap();
    }

    #[test]
    fn damaged_fields_are_named() {
        // (byte, what the error says): the fill value's size, shuffle's
        // element size, the layout's element size, deflate's level.
        for (at, says) in [
            (911, "fill value"),
            (944, "shuffle"),
            (947, "shuffle"),
            (1003, "chunk layout"),
            (1006, "chunk layout"),
            (968, "deflate"),
            (986, "layout"),
            (873 + 3, "datatype"),
        ] {
            let mut f = file();
            f[at] ^= 0xFF;
            let e = check(&f).unwrap_err();
            assert!(e.contains(says), "byte {at}: {e}");
        }
    }

    #[test]
    fn a_message_running_past_its_block_is_damage() {
        let mut f = file();
        f[0x3d2] = 0xF0; // the layout message's size
        assert!(check(&f).unwrap_err().contains("runs past"));
    }
}
