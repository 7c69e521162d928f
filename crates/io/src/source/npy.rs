//! The NumPy `.npy` format (version 1.0, 2.0 and 3.0), as published in
//! `numpy/lib/format.py` and NEP 1: the magic `\x93NUMPY`, a major and minor
//! version byte, the header length (u16 little-endian in 1.0, u32 in 2.0 and
//! 3.0), then a Python dict literal such as
//! `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }` padded with
//! spaces and a final newline so the data start at a multiple of 64 bytes.
//! The data follow as one contiguous array in C (or Fortran) order.
//!
//! Pure: parses and renders headers from and to bytes.

use crate::IoError;
use crate::element::Dtype;

/// The six bytes every `.npy` file starts with.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// A parsed `.npy` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyHeader {
    /// Element type.
    pub dtype: Dtype,
    /// True when the stored bytes are big-endian.
    pub big_endian: bool,
    /// True for Fortran (column-major) order.
    pub fortran_order: bool,
    /// Array shape (empty for a 0-d array).
    pub shape: Vec<usize>,
    /// Offset of the first data byte.
    pub data_offset: u64,
}

/// Parse a NumPy type string (see [`Dtype::parse_numpy_descr`]).
pub fn parse_descr(descr: &str) -> Result<(Dtype, bool), IoError> {
    Dtype::parse_numpy_descr(descr).map_err(|e| {
        IoError::Input(format!(
            "unsupported .npy {}",
            e.trim_start_matches("unsupported ")
        ))
    })
}

/// The NumPy type string of `dtype` in little-endian order (`<f8`, `|u1`, ...).
pub fn descr_of(dtype: Dtype) -> String {
    let kind = match dtype {
        Dtype::F32 | Dtype::F64 => 'f',
        Dtype::I8 | Dtype::I16 | Dtype::I32 | Dtype::I64 => 'i',
        _ => 'u',
    };
    let order = if dtype.size() == 1 { '|' } else { '<' };
    format!("{order}{kind}{}", dtype.size())
}

/// How many bytes [`parse_header`] needs to see: the fixed preamble, after
/// which [`header_len`] tells the rest.
pub const PREAMBLE: usize = 12;

/// Total header length (preamble + dict) from the first [`PREAMBLE`] bytes.
pub fn header_len(pre: &[u8]) -> Result<usize, IoError> {
    if pre.len() < 10 || &pre[..6] != MAGIC {
        return Err(IoError::Input(
            "not an .npy file (no \\x93NUMPY magic)".into(),
        ));
    }
    match pre[6] {
        1 => Ok(10 + u16::from_le_bytes([pre[8], pre[9]]) as usize),
        2 | 3 if pre.len() >= 12 => {
            Ok(12 + u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]) as usize)
        }
        v => Err(IoError::Input(format!(
            "unsupported .npy format version {v}.{} (1.0, 2.0 and 3.0 are supported)",
            pre[7]
        ))),
    }
}

/// Parse a whole header (at least [`header_len`] bytes).
pub fn parse_header(bytes: &[u8]) -> Result<NpyHeader, IoError> {
    let total = header_len(bytes)?;
    if bytes.len() < total {
        return Err(IoError::Input(format!(
            ".npy header is truncated ({} of {total} bytes)",
            bytes.len()
        )));
    }
    let start = if bytes[6] == 1 { 10 } else { 12 };
    let text = std::str::from_utf8(&bytes[start..total])
        .map_err(|_| IoError::Input(".npy header is not valid text".into()))?;
    let bad = |why: &str| IoError::Input(format!("malformed .npy header ({why}): {}", text.trim()));
    let body = text.trim();
    let body = body
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .ok_or_else(|| bad("not a dict"))?;
    let descr = dict_value(body, "descr").ok_or_else(|| bad("no 'descr'"))?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.strip_suffix('\''))
        .or_else(|| descr.strip_prefix('"').and_then(|d| d.strip_suffix('"')))
        .ok_or_else(|| {
            IoError::Input(format!(
                "unsupported .npy dtype {descr}: structured dtypes are not supported"
            ))
        })?;
    let (dtype, big_endian) = parse_descr(descr)?;
    let fortran_order =
        match dict_value(body, "fortran_order").ok_or_else(|| bad("no 'fortran_order'"))? {
            "True" => true,
            "False" => false,
            _ => return Err(bad("'fortran_order' is neither True nor False")),
        };
    let shape_text = dict_value(body, "shape").ok_or_else(|| bad("no 'shape'"))?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| bad("'shape' is not a tuple"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.trim_end_matches('L').parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad("'shape' has a non-integer extent"))?;
    Ok(NpyHeader {
        dtype,
        big_endian,
        fortran_order,
        shape,
        data_offset: total as u64,
    })
}

/// The text of the value of `key` in a Python dict literal body: up to the
/// next top-level comma (commas inside a tuple do not count).
fn dict_value<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    let at = [format!("'{key}'"), format!("\"{key}\"")]
        .iter()
        .find_map(|k| body.find(k.as_str()).map(|i| i + k.len()))?;
    let rest = body[at..].trim_start().strip_prefix(':')?.trim_start();
    let mut depth = 0i32;
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' if depth == 0 => return Some(rest[..i].trim()),
            _ => {}
        }
    }
    Some(rest.trim())
}

/// Render a little-endian, C-order header for `dtype` and `shape`: version
/// 1.0 when the dict fits in 65535 bytes (always, in practice), else 2.0;
/// padded so the data start at a multiple of 64 bytes.
pub fn render_header(dtype: Dtype, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {tuple}, }}",
        descr_of(dtype)
    );
    let v1 = dict.len() + 1 + 10 <= u16::MAX as usize;
    let pre = if v1 { 10 } else { 12 };
    let total = (pre + dict.len() + 1).div_ceil(64) * 64;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    let len = total - pre;
    if v1 {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(version: u8, dict: &str) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&[version, 0]);
        let body = format!("{dict}\n");
        if version == 1 {
            v.extend_from_slice(&(body.len() as u16).to_le_bytes());
        } else {
            v.extend_from_slice(&(body.len() as u32).to_le_bytes());
        }
        v.extend_from_slice(body.as_bytes());
        v
    }

    #[test]
    fn parses_v1_v2_v3() {
        let d = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }";
        for v in 1..=3u8 {
            let h = parse_header(&header(v, d)).unwrap();
            assert_eq!(h.dtype, Dtype::F64);
            assert!(!h.big_endian && !h.fortran_order);
            assert_eq!(h.shape, vec![3, 4]);
            let pre = if v == 1 { 10 } else { 12 };
            assert_eq!(h.data_offset as usize, pre + d.len() + 1);
        }
    }

    #[test]
    fn descr_byte_orders_and_kinds() {
        assert_eq!(parse_descr(">i4").unwrap(), (Dtype::I32, true));
        assert_eq!(parse_descr("<i4").unwrap(), (Dtype::I32, false));
        assert_eq!(parse_descr("|u1").unwrap(), (Dtype::U8, false));
        assert_eq!(parse_descr(">u1").unwrap(), (Dtype::U8, false));
        assert_eq!(parse_descr("=f4").unwrap(), (Dtype::F32, false));
        assert!(parse_descr("<c16").is_err());
        assert!(parse_descr("<f2").is_err());
        assert!(parse_descr("O").is_err());
        assert!(parse_descr("<U8").is_err());
    }

    #[test]
    fn shapes_order_and_rejections() {
        let h = parse_header(&header(
            1,
            "{'descr': '>f8', 'fortran_order': True, 'shape': (7,), }",
        ))
        .unwrap();
        assert!(h.big_endian && h.fortran_order);
        assert_eq!(h.shape, vec![7]);
        let h = parse_header(&header(
            1,
            "{'shape': (), 'fortran_order': False, 'descr': '<i8'}",
        ))
        .unwrap();
        assert!(h.shape.is_empty());
        assert_eq!(h.dtype, Dtype::I64);
        let e = parse_header(&header(
            1,
            "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (2,), }",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("structured"), "{e}");
        assert!(parse_header(b"\x93NUMPY\x04\x00\x00\x00").is_err());
        assert!(parse_header(b"PK\x03\x04 zip file").is_err());
        let mut short = header(
            1,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
        );
        short.truncate(30);
        assert!(
            parse_header(&short)
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
    }

    #[test]
    fn render_round_trips_and_aligns() {
        for shape in [vec![5], vec![3, 4], vec![2, 3, 4, 5], vec![123456789, 2]] {
            for dt in [Dtype::F64, Dtype::U8, Dtype::I32] {
                let h = render_header(dt, &shape);
                assert_eq!(h.len() % 64, 0);
                assert_eq!(*h.last().unwrap(), b'\n');
                let p = parse_header(&h).unwrap();
                assert_eq!(
                    (p.dtype, p.shape.clone(), p.big_endian),
                    (dt, shape.clone(), false)
                );
                assert_eq!(p.data_offset as usize, h.len());
            }
        }
        assert_eq!(descr_of(Dtype::U8), "|u1");
        assert_eq!(descr_of(Dtype::F32), "<f4");
    }
}
