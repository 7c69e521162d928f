//! How an output array is stored: contiguous or chunked (given shape, the
//! input's, or an automatic choice), and the filters (gzip level, byte
//! shuffle). Pure: parses `--chunks` / `--compression` and resolves them
//! against the array's shape.

use crate::decomp::Decomposition;
use crate::error::CwError;

/// Target size of an automatically chosen chunk (see [`auto_chunks`]).
pub const AUTO_CHUNK_BYTES: u64 = 4 << 20;

/// What `--chunks` asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkSpec {
    /// Not given: keep the input's chunking (automatic if the input is
    /// contiguous but compression is asked for).
    Keep,
    /// `none` / `contiguous`: no chunking.
    Contiguous,
    /// `auto`: see [`auto_chunks`].
    Auto,
    /// An explicit chunk shape.
    Shape(Vec<usize>),
}

/// Parse `--chunks`.
pub fn parse_chunks(s: Option<&str>) -> Result<ChunkSpec, CwError> {
    Ok(match s.map(str::trim) {
        None => ChunkSpec::Keep,
        Some("auto") => ChunkSpec::Auto,
        Some("none" | "contiguous") => ChunkSpec::Contiguous,
        Some(t) => ChunkSpec::Shape(
            crate::parse::parse_shape(t, "--chunks")
                .map_err(|e| CwError::Parse(format!("{e} (or use 'auto' or 'contiguous')")))?,
        ),
    })
}

/// Parse `--compression`: `none`, `gzip` (level 4) or `gzip:LEVEL` (0–9).
/// Returns the gzip level, if any.
pub fn parse_compression(s: &str) -> Result<Option<u8>, CwError> {
    let t = s.trim().to_ascii_lowercase();
    if t == "none" {
        return Ok(None);
    }
    if t == "gzip" || t == "deflate" {
        return Ok(Some(4));
    }
    if let Some(l) = t
        .strip_prefix("gzip:")
        .or_else(|| t.strip_prefix("deflate:"))
    {
        return match l.parse::<u8>() {
            Ok(v) if v <= 9 => Ok(Some(v)),
            _ => Err(CwError::Parse(format!(
                "bad gzip level '{l}' in --compression '{s}': use 0 (fastest, no compression) to 9 (smallest)"
            ))),
        };
    }
    Err(CwError::Parse(format!(
        "unknown --compression '{s}': use none, gzip or gzip:LEVEL (LEVEL 0-9)"
    )))
}

/// The resolved storage of an output dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoding {
    /// Chunk shape, or `None` for contiguous storage.
    pub chunks: Option<Vec<usize>>,
    /// gzip (deflate) level, if compressed.
    pub gzip: Option<u8>,
    /// Byte shuffle before compression.
    pub shuffle: bool,
}

impl Encoding {
    /// Short description, e.g. `chunks 100x200, shuffle+gzip:4` or `contiguous`.
    pub fn describe(&self) -> String {
        let mut s = match &self.chunks {
            None => "contiguous".to_string(),
            Some(c) => format!(
                "chunks {}",
                c.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join("x")
            ),
        };
        match (self.shuffle, self.gzip) {
            (true, Some(l)) => s += &format!(", shuffle+gzip:{l}"),
            (false, Some(l)) => s += &format!(", gzip:{l}"),
            (true, None) => s += ", shuffle",
            (false, None) => {}
        }
        s
    }
}

/// Resolve the storage of an output of `shape` (elements of `elem_size`
/// bytes) from the flags and the input's own chunking.
pub fn resolve(
    spec: &ChunkSpec,
    gzip: Option<u8>,
    shuffle: bool,
    shape: &[usize],
    elem_size: usize,
    input_chunks: Option<&[usize]>,
) -> Result<Encoding, CwError> {
    let filtered = gzip.is_some() || shuffle;
    let chunks = match spec {
        ChunkSpec::Keep => match input_chunks {
            Some(c) => Some(c.to_vec()),
            None if filtered => Some(auto_chunks(shape, elem_size, AUTO_CHUNK_BYTES)),
            None => None,
        },
        ChunkSpec::Contiguous if filtered => {
            return Err(CwError::Parse(
                "--compression and --shuffle need chunked storage; drop --chunks contiguous or give a chunk shape"
                    .into(),
            ));
        }
        ChunkSpec::Contiguous => None,
        ChunkSpec::Auto => Some(auto_chunks(shape, elem_size, AUTO_CHUNK_BYTES)),
        ChunkSpec::Shape(c) => {
            if c.len() != shape.len() {
                return Err(CwError::Parse(format!(
                    "--chunks has {} dimensions but the variable has {} (shape {shape:?})",
                    c.len(),
                    shape.len()
                )));
            }
            if let Some(a) = (0..c.len()).find(|&a| c[a] > shape[a]) {
                return Err(CwError::Parse(format!(
                    "--chunks {c:?} is larger than the variable's shape {shape:?} along axis {a}"
                )));
            }
            Some(c.clone())
        }
    };
    if let Some(c) = &chunks {
        let bytes: u64 = c.iter().map(|&v| v as u64).product::<u64>() * elem_size as u64;
        if bytes >= 1 << 32 {
            return Err(CwError::Parse(format!(
                "chunk shape {c:?} is {bytes} bytes; HDF5 chunks must be smaller than 4 GiB"
            )));
        }
    }
    Ok(Encoding {
        chunks,
        gzip,
        shuffle,
    })
}

/// An automatic chunk shape: C-order row slabs of at most `target` bytes —
/// whole trailing axes, as many leading indices as fit (the fastest axis is
/// cut only when one run along it is larger than the target). Such chunks
/// are contiguous runs of the array, so whole-array reductions and reads of
/// one index of the leading axis ("a map per time step") touch few chunks;
/// a time series at one point touches every chunk along the leading axis.
///
/// The cut axis is then balanced: as many chunks as needed, of equal size,
/// so that the last one is not a mostly empty chunk (HDF5 stores edge
/// chunks at full size).
pub fn auto_chunks(shape: &[usize], elem_size: usize, target: u64) -> Vec<usize> {
    balance(
        shape,
        Decomposition::new(shape, None, elem_size, target).block_shape,
    )
}

/// Shrink each chunk extent to the smallest that still needs the same
/// number of chunks along its axis.
fn balance(shape: &[usize], mut c: Vec<usize>) -> Vec<usize> {
    for (c, &d) in c.iter_mut().zip(shape) {
        let n = d.div_ceil((*c).max(1));
        *c = d.div_ceil(n.max(1));
    }
    c
}

/// Square-ish tiles of at most `target` bytes over the last two axes (one
/// index along the others): what favours reading small windows and time
/// series at a point over whole rows.
pub fn tile_chunks(shape: &[usize], elem_size: usize, target: u64) -> Vec<usize> {
    let n = shape.len();
    let mut c = vec![1; n];
    let elems = (target / elem_size.max(1) as u64).max(1);
    if n == 1 {
        c[0] = (elems as usize).min(shape[0]);
        return c;
    }
    let side = ((elems as f64).sqrt() as usize).max(1);
    c[n - 1] = side.min(shape[n - 1]);
    c[n - 2] = (elems as usize / c[n - 1]).max(1).min(shape[n - 2]);
    balance(shape, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_and_compression_flags() {
        assert_eq!(parse_chunks(None).unwrap(), ChunkSpec::Keep);
        assert_eq!(parse_chunks(Some("auto")).unwrap(), ChunkSpec::Auto);
        assert_eq!(
            parse_chunks(Some("contiguous")).unwrap(),
            ChunkSpec::Contiguous
        );
        assert_eq!(
            parse_chunks(Some("10,20")).unwrap(),
            ChunkSpec::Shape(vec![10, 20])
        );
        assert!(
            parse_chunks(Some("10,0"))
                .unwrap_err()
                .to_string()
                .contains("at least 1")
        );
        assert_eq!(parse_compression("none").unwrap(), None);
        assert_eq!(parse_compression("gzip").unwrap(), Some(4));
        assert_eq!(parse_compression("gzip:9").unwrap(), Some(9));
        assert!(
            parse_compression("gzip:10")
                .unwrap_err()
                .to_string()
                .contains("bad gzip level")
        );
        assert!(
            parse_compression("zstd")
                .unwrap_err()
                .to_string()
                .contains("unknown --compression")
        );
    }

    #[test]
    fn resolve_rules() {
        let s = [1000, 300];
        // Keep: the input's chunks; contiguous input stays contiguous unless filtered.
        let e = resolve(&ChunkSpec::Keep, None, false, &s, 8, Some(&[10, 30])).unwrap();
        assert_eq!(e.chunks, Some(vec![10, 30]));
        assert_eq!(
            resolve(&ChunkSpec::Keep, None, false, &s, 8, None)
                .unwrap()
                .chunks,
            None
        );
        let e = resolve(&ChunkSpec::Keep, Some(1), false, &s, 8, None).unwrap();
        assert_eq!(e.chunks, Some(auto_chunks(&s, 8, AUTO_CHUNK_BYTES)));
        assert!(resolve(&ChunkSpec::Contiguous, Some(1), false, &s, 8, None).is_err());
        assert!(resolve(&ChunkSpec::Contiguous, None, true, &s, 8, None).is_err());
        let e = resolve(&ChunkSpec::Shape(vec![5]), None, false, &s, 8, None).unwrap_err();
        assert!(e.to_string().contains("has 1 dimensions"), "{e}");
        let e = resolve(&ChunkSpec::Shape(vec![5, 301]), None, false, &s, 8, None).unwrap_err();
        assert!(e.to_string().contains("larger"), "{e}");
        let big = [1 << 20, 1 << 20];
        assert!(
            resolve(
                &ChunkSpec::Shape(vec![1 << 16, 1 << 14]),
                None,
                false,
                &big,
                8,
                None
            )
            .unwrap_err()
            .to_string()
            .contains("4 GiB")
        );
        assert_eq!(
            resolve(&ChunkSpec::Shape(vec![7, 8]), Some(4), true, &s, 8, None)
                .unwrap()
                .describe(),
            "chunks 7x8, shuffle+gzip:4"
        );
    }

    #[test]
    fn auto_chunks_are_row_slabs_within_target() {
        // 20000 x 20000 f64: a row is 160 kB; 26 rows fit in 4 MiB.
        assert_eq!(auto_chunks(&[20000, 20000], 8, 4 << 20), vec![26, 20000]);
        // A row larger than the target: cut along the fastest axis.
        assert_eq!(auto_chunks(&[10, 1 << 20], 8, 4 << 20), vec![1, 1 << 19]);
        // Balanced: 2097 rows need 9 slabs of at most 262 rows; 233 rows each.
        assert_eq!(auto_chunks(&[2097, 2000], 8, 4 << 20), vec![233, 2000]);
        // Small arrays: one chunk.
        assert_eq!(auto_chunks(&[30, 40], 8, 4 << 20), vec![30, 40]);
        // 3-D: whole maps, several time steps.
        assert_eq!(
            auto_chunks(&[365, 180, 360], 4, 4 << 20),
            vec![16, 180, 360]
        );
        for shape in [vec![7usize, 900, 1100], vec![123457], vec![3, 5, 7, 11]] {
            let c = auto_chunks(&shape, 8, 1 << 20);
            let bytes: usize = c.iter().product::<usize>() * 8;
            assert!(bytes <= 1 << 20 || c.iter().all(|&x| x == 1));
            assert!(c.iter().zip(&shape).all(|(c, d)| *c >= 1 && c <= d));
        }
    }

    #[test]
    fn tiles_are_square_ish() {
        // 724 x 724 fits 4 MiB; 28 tiles per axis, balanced to 715.
        assert_eq!(tile_chunks(&[20000, 20000], 8, 4 << 20), vec![715, 715]);
        assert_eq!(tile_chunks(&[100, 500, 60], 8, 1 << 20), vec![1, 500, 60]);
        assert_eq!(tile_chunks(&[1000], 8, 800), vec![100]);
    }
}
