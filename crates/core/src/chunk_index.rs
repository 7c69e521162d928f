//! Consistency of a chunked dataset's storage metadata, checked before any
//! read: a damaged chunk index must be one clear error, never different
//! statistics (HDF5 reads a chunk whose index entry has wrong coordinates
//! as if it were elsewhere, or not at all, and fills the gap with the fill
//! value), and impossible extents must not reach the library (HDF5 1.10
//! loops or crashes on some). Pure: the io layer reads the entries.

/// One stored chunk, as the chunk index lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkEntry {
    /// Logical coordinates of its first element.
    pub offset: Vec<u64>,
    /// Byte address in the file.
    pub addr: u64,
    /// Stored (possibly compressed) size in bytes.
    pub size: u64,
    /// What a lookup of `offset` by coordinate finds (address, size); a
    /// damaged key (HDF5 keys hold one more coordinate than the API shows)
    /// makes the chunk unreachable there although it is listed.
    pub by_coord: Option<(u64, u64)>,
}

/// Check extents: every current extent at most its maximum (`None`:
/// unlimited), and every chunk extent at least 1 and, for a fixed-size
/// axis, at most the maximum. Errors say which axis of `what`.
pub fn check_extents(
    what: &str,
    shape: &[u64],
    maxdims: &[Option<u64>],
    chunk: Option<&[u64]>,
) -> Result<(), String> {
    for (a, (&d, m)) in shape.iter().zip(maxdims).enumerate() {
        if let Some(m) = m
            && d > *m
        {
            return Err(format!(
                "{what} is damaged: axis {a} has {d} elements, more than its maximum {m}"
            ));
        }
    }
    if let Some(c) = chunk {
        if c.len() != shape.len() {
            return Err(format!(
                "{what} is damaged: chunks of rank {} for a rank-{} dataset",
                c.len(),
                shape.len()
            ));
        }
        for (a, (&c, m)) in c.iter().zip(maxdims).enumerate() {
            if c == 0 || m.is_some_and(|m| c > m.max(1)) {
                return Err(format!(
                    "{what} is damaged: chunk extent {c} along axis {a} does not fit the dataset"
                ));
            }
        }
    }
    Ok(())
}

/// Check the chunk index of a dataset of `shape` in chunks of `chunk`,
/// stored in a file of `file_len` bytes: `stored` chunks are counted by the
/// index and `entries` were found (by index position or by coordinate).
/// Every entry must lie on the chunk grid inside the dataset, appear once,
/// have a non-zero size and lie inside the file, no two may share bytes,
/// and every counted chunk must have been found. Without a filter pipeline
/// every chunk is stored whole: `unfiltered` is then its size in bytes,
/// which every entry must have (a header that lost its filter pipeline
/// message reads compressed bytes as values). The error names the chunk.
pub fn check_entries(
    what: &str,
    shape: &[u64],
    chunk: &[u64],
    file_len: u64,
    stored: u64,
    entries: &[ChunkEntry],
    unfiltered: Option<u64>,
) -> Result<(), String> {
    let grid: u64 = shape
        .iter()
        .zip(chunk)
        .fold(1u64, |g, (&d, &c)| g.saturating_mul(d.div_ceil(c.max(1))));
    if stored > grid {
        return Err(format!(
            "{what} is damaged: its chunk index lists {stored} chunks, more than the {grid} the dataset can have"
        ));
    }
    for e in entries {
        let on_grid = e.offset.len() == shape.len()
            && e.offset
                .iter()
                .zip(shape.iter().zip(chunk))
                .all(|(&o, (&d, &c))| o % c.max(1) == 0 && o < d);
        if !on_grid {
            return Err(format!(
                "{what} is damaged: chunk at {:?} is not on the chunk grid {chunk:?} of shape {shape:?}",
                e.offset
            ));
        }
        if e.by_coord != Some((e.addr, e.size)) {
            return Err(format!(
                "{what} is damaged: chunk at {:?} is listed in the chunk index but not found at its coordinates (a damaged index key)",
                e.offset
            ));
        }
        if let Some(full) = unfiltered
            && e.size != full
        {
            return Err(format!(
                "{what} is damaged: chunk at {:?} is stored in {} bytes, but an unfiltered chunk holds {full} (a filter pipeline lost?)",
                e.offset, e.size
            ));
        }
        if e.size == 0 || e.addr.checked_add(e.size).is_none_or(|end| end > file_len) {
            return Err(format!(
                "{what} is damaged: chunk at {:?} ({} bytes at byte {}) lies outside the file of {file_len} bytes",
                e.offset, e.size, e.addr
            ));
        }
    }
    let mut by_pos: Vec<&ChunkEntry> = entries.iter().collect();
    by_pos.sort_by(|a, b| a.offset.cmp(&b.offset));
    if let Some(w) = by_pos.windows(2).find(|w| w[0].offset == w[1].offset) {
        return Err(format!(
            "{what} is damaged: chunk at {:?} is listed twice in the chunk index",
            w[0].offset
        ));
    }
    let mut by_addr = by_pos;
    by_addr.sort_by_key(|e| e.addr);
    if let Some(w) = by_addr
        .windows(2)
        .find(|w| w[0].addr + w[0].size > w[1].addr)
    {
        return Err(format!(
            "{what} is damaged: chunks at {:?} and {:?} share bytes of the file (from byte {})",
            w[0].offset, w[1].offset, w[1].addr
        ));
    }
    if entries.len() as u64 != stored {
        return Err(format!(
            "{what} is damaged: its chunk index counts {stored} chunks but {} are found on the chunk grid (an entry has wrong coordinates)",
            entries.len()
        ));
    }
    Ok(())
}

/// Check the keys of the version-1 B-tree leaf nodes that index `entries`
/// (HDF5 file format, "Version 1 B-trees", node type 1: raw data chunks),
/// found in `buf`, the file's bytes from offset `base`. HDF5 1.10 neither
/// checks nor exposes part of these keys, so a damaged byte there is read
/// as if nothing were wrong (later HDF5 refuses the file: "bad coordinate
/// offset").
///
/// A node is `TREE`, type 1, level, entries used (u16), left and right
/// sibling addresses, then keys and child addresses alternating, one key
/// more than children. A key is the chunk's stored size (u32), its filter
/// mask (u32), and one 8-byte offset per axis plus one for the element size
/// (written as 0). A leaf node belongs to this dataset when one of its
/// children is the address of one of `entries`; in such a node every key's
/// offsets (the last key's too, which no chunk follows) must be multiples
/// of `dims` (the chunk extents, then the element size) — the rule current
/// HDF5 applies when it decodes a key ("bad coordinate offset") — and the
/// key before each of our chunks must hold that chunk's size and
/// coordinates. 8-byte addresses and lengths (what
/// HDF5 writes by default) are assumed; nodes that do not parse as such
/// are not ours and are skipped. Internal nodes are not checked.
pub fn check_btree_keys(
    what: &str,
    buf: &[u8],
    base: u64,
    dims: &[u64],
    entries: &[ChunkEntry],
) -> Result<(), String> {
    let Some(rank) = entries.first().map(|e| e.offset.len()) else {
        return Ok(());
    };
    let by_addr: std::collections::HashMap<u64, &ChunkEntry> =
        entries.iter().map(|e| (e.addr, e)).collect();
    let key_len = 8 + 8 * (rank + 1);
    let u64_at = |at: usize| u64::from_le_bytes(buf[at..at + 8].try_into().unwrap());
    let mut at = 0;
    while let Some(pos) = find(&buf[at..], b"TREE").map(|p| p + at) {
        at = pos + 4;
        if buf.len() < pos + 24 || buf[pos + 4] != 1 || buf[pos + 5] != 0 {
            continue;
        }
        let used = u16::from_le_bytes([buf[pos + 6], buf[pos + 7]]) as usize;
        let end = pos + 24 + used * (key_len + 8) + key_len;
        if used == 0 || end > buf.len() {
            continue;
        }
        let key = |j: usize| pos + 24 + j * (key_len + 8);
        let child = |j: usize| u64_at(key(j) + key_len);
        if !(0..used).any(|j| by_addr.contains_key(&child(j))) {
            continue;
        }
        let node = base + pos as u64;
        for j in 0..=used {
            let k = key(j);
            let extra = u64_at(k + 8 + 8 * rank);
            let elem = dims.get(rank).copied().unwrap_or(1).max(1);
            if extra % elem != 0 {
                return Err(format!(
                    "{what} is damaged: key {j} of its chunk index node at byte {node} has element-size coordinate {extra}, not a multiple of the element size {elem}"
                ));
            }
            for (a, &c) in dims.iter().take(rank).enumerate() {
                let o = u64_at(k + 8 + 8 * a);
                if o % c.max(1) != 0 {
                    return Err(format!(
                        "{what} is damaged: key {j} of its chunk index node at byte {node} has coordinate {o} along axis {a}, not on the chunk grid (chunks of {c})"
                    ));
                }
            }
            if j == used {
                break;
            }
            let Some(e) = by_addr.get(&child(j)) else {
                continue;
            };
            let size = u32::from_le_bytes(buf[k..k + 4].try_into().unwrap()) as u64;
            let coords: Vec<u64> = (0..rank).map(|a| u64_at(k + 8 + 8 * a)).collect();
            if size != e.size || coords != e.offset {
                return Err(format!(
                    "{what} is damaged: key {j} of its chunk index node at byte {node} says size {size} at {coords:?} for the chunk at byte {}, which the index lists with size {} at {:?}",
                    e.addr, e.size, e.offset
                ));
            }
        }
    }
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(offset: &[u64], addr: u64, size: u64) -> ChunkEntry {
        ChunkEntry {
            offset: offset.to_vec(),
            addr,
            size,
            by_coord: Some((addr, size)),
        }
    }

    #[test]
    fn extents() {
        let m = [Some(60), Some(50)];
        assert!(check_extents("v", &[60, 50], &m, Some(&[10, 10])).is_ok());
        assert!(check_extents("v", &[61, 50], &m, None).is_err());
        assert!(check_extents("v", &[60, 50], &[None, Some(50)], Some(&[100, 10])).is_ok());
        let err = check_extents("v", &[60, 50], &m, Some(&[10, 16711690])).unwrap_err();
        assert!(err.contains("axis 1"), "{err}");
        assert!(check_extents("v", &[60, 50], &m, Some(&[0, 10])).is_err());
    }

    #[test]
    fn entries() {
        let (s, c) = ([20, 10], [10, 10]);
        let good = vec![e(&[0, 0], 100, 50), e(&[10, 0], 150, 40)];
        assert!(check_entries("v", &s, &c, 1000, 2, &good, None).is_ok());
        let off = vec![e(&[0, 0], 100, 50), e(&[10, 3], 150, 40)];
        assert!(
            check_entries("v", &s, &c, 1000, 2, &off, None)
                .unwrap_err()
                .contains("[10, 3]")
        );
        let twice = vec![e(&[0, 0], 100, 50), e(&[0, 0], 150, 40)];
        assert!(
            check_entries("v", &s, &c, 1000, 2, &twice, None)
                .unwrap_err()
                .contains("twice")
        );
        let overlap = vec![e(&[0, 0], 100, 60), e(&[10, 0], 150, 40)];
        assert!(
            check_entries("v", &s, &c, 1000, 2, &overlap, None)
                .unwrap_err()
                .contains("share")
        );
        assert!(
            check_entries("v", &s, &c, 180, 2, &good, None)
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            check_entries("v", &[30, 10], &c, 1000, 3, &good, None)
                .unwrap_err()
                .contains("counts 3")
        );
        assert!(
            check_entries("v", &s, &c, 1000, 2, &good, Some(400))
                .unwrap_err()
                .contains("unfiltered")
        );
        assert!(
            check_entries("v", &s, &c, 1000, 9, &good, None)
                .unwrap_err()
                .contains("more than")
        );
    }
    #[test]
    fn btree_keys_element_size_coordinate_must_be_a_multiple_of_the_element_size() {
        // One leaf node over two 2-D chunks (8-byte addresses): header, then
        // key0, child0, key1, child1, key2.
        let e = |off: Vec<u64>, addr, size| ChunkEntry {
            offset: off,
            addr,
            size,
            by_coord: None,
        };
        let entries = [e(vec![0, 0], 1000, 50), e(vec![0, 10], 1050, 60)];
        let mut b = b"TREE".to_vec();
        b.extend([1, 0, 2, 0]);
        b.extend([0xFF; 16]);
        let key = |b: &mut Vec<u8>, size: u32, c: [u64; 3]| {
            b.extend(size.to_le_bytes());
            b.extend(0u32.to_le_bytes());
            for x in c {
                b.extend(x.to_le_bytes());
            }
        };
        key(&mut b, 50, [0, 0, 0]);
        b.extend(1000u64.to_le_bytes());
        key(&mut b, 60, [0, 10, 0]);
        b.extend(1050u64.to_le_bytes());
        key(&mut b, 0, [10, 0, 0]);
        let mut buf = vec![7u8; 100];
        buf.extend(&b);
        assert!(check_btree_keys("v", &buf, 0, &[10, 10, 4], &entries).is_ok());
        // The element-size coordinate of key 1 (also of the last key): its
        // low byte flipped is not a multiple of 4; its fourth byte is
        // (HDF5 reads that key, and so do we).
        for at in [100 + 24 + 40 + 24, 100 + 24 + 80 + 24] {
            let mut bad = buf.clone();
            bad[at] ^= 0xFF;
            let m = check_btree_keys("v", &bad, 0, &[10, 10, 4], &entries).unwrap_err();
            assert!(m.contains("element-size coordinate 255"), "{m}");
            let mut odd = buf.clone();
            odd[at + 3] ^= 0xFF;
            assert!(check_btree_keys("v", &odd, 0, &[10, 10, 4], &entries).is_ok());
        }
        // A coordinate of key 0 that disagrees with the index.
        let mut bad = buf.clone();
        bad[100 + 24 + 16] ^= 10;
        let m = check_btree_keys("v", &bad, 0, &[10, 10, 4], &entries).unwrap_err();
        assert!(m.contains("says size 50 at [0, 10]"), "{m}");
        // A coordinate off the chunk grid, in the last key too (which no
        // chunk follows; HDF5 2.0: "bad coordinate offset").
        for at in [100 + 24 + 16, 100 + 24 + 80 + 8] {
            let mut bad = buf.clone();
            bad[at] ^= 0xFF;
            let m = check_btree_keys("v", &bad, 0, &[10, 10, 4], &entries).unwrap_err();
            assert!(m.contains("not on the chunk grid"), "{m}");
        }
        // Another dataset's node (no child of ours) is not checked.
        let other = [e(vec![0, 0], 5000, 50)];
        let mut bad = buf.clone();
        bad[100 + 24 + 40 + 24] ^= 0xFF;
        assert!(check_btree_keys("v", &bad, 0, &[10, 10, 4], &other).is_ok());
    }
}
