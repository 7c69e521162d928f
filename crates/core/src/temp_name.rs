//! Names of temporary outputs: what `OUT` is written under before the final
//! rename.
//!
//! A temporary name is short whatever the output's name (at most
//! [`MAX_LEN`] bytes, so it always fits the 255-byte file-name limit), unique
//! per run, and says which output and which run it belongs to:
//!
//! ```text
//! .{short}~{h12}.{host8}-{pid}-{nonce8}.chunkwise-partial
//! ```
//!
//! * `short`: the first (at most 24) bytes of the output's file name, with
//!   anything but `[A-Za-z0-9._-]` replaced by `_` — for people;
//! * `h12`: 12 hex digits of the FNV-1a hash of the whole output file name —
//!   so the next run on the same output finds its stale temporaries;
//! * `host8`: 8 hex digits of the FNV-1a hash of the writing host's name,
//!   `pid`: the writing process (rank 0), `nonce8`: random per run — so two
//!   runs never share a name, and a temporary left by a killed run on this
//!   host is recognised as stale (its process no longer exists).
//!
//! Only the prefix `.{short}~{h12}.` and the suffix [`SUFFIX`] are promised;
//! tests and users must not rely on more of the form.

/// Suffix of every temporary output name.
pub const SUFFIX: &str = ".chunkwise-partial";

/// Longest temporary name this module makes, in bytes.
pub const MAX_LEN: usize = 1 + SHORT + 1 + 12 + 1 + 8 + 1 + 10 + 1 + 8 + SUFFIX.len();

/// Longest file name (one path component) Linux file systems accept.
pub const NAME_MAX: usize = 255;

/// Longest path the kernel accepts, with its terminating NUL.
pub const PATH_MAX: usize = 4096;

const SHORT: usize = 24;

/// The run that writes a temporary output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TempOwner {
    /// [`fnv1a64`] of the host name, truncated to 32 bits.
    pub host: u32,
    /// Process id of the writing process.
    pub pid: u32,
    /// Random per run.
    pub nonce: u32,
}

/// 64-bit FNV-1a hash (stable across platforms and versions).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The part of every temporary name of output file name `out`
/// that does not depend on the run: `.{short}~{h12}.`.
pub fn prefix(out: &[u8]) -> String {
    let short: String = out
        .iter()
        .take(SHORT)
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                b as char
            } else {
                '_'
            }
        })
        .collect();
    format!(".{short}~{:012x}.", fnv1a64(out) & 0xffff_ffff_ffff)
}

/// The temporary name of output file name `out` written by `owner`.
pub fn temp_name(out: &[u8], owner: &TempOwner) -> String {
    format!(
        "{}{:08x}-{}-{:08x}{SUFFIX}",
        prefix(out),
        owner.host,
        owner.pid,
        owner.nonce
    )
}

/// If `name` is a temporary name of output file name `out`, its owner.
pub fn parse(name: &[u8], out: &[u8]) -> Option<TempOwner> {
    let p = prefix(out);
    let rest = name.strip_prefix(p.as_bytes())?;
    let rest = std::str::from_utf8(rest.strip_suffix(SUFFIX.as_bytes())?).ok()?;
    let mut it = rest.split('-');
    let (host, pid, nonce) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || host.len() != 8 || nonce.len() != 8 {
        return None;
    }
    Some(TempOwner {
        host: u32::from_str_radix(host, 16).ok()?,
        pid: pid.parse().ok()?,
        nonce: u32::from_str_radix(nonce, 16).ok()?,
    })
}

/// Check, before anything is created, that output file name `name` (one
/// path component, `name_len` bytes) and its whole path (`path_len` bytes)
/// fit the file-system limits. The temporary name always fits.
pub fn check_lengths(shown: &str, name_len: usize, path_len: usize) -> Result<(), crate::CwError> {
    if name_len > NAME_MAX {
        return Err(crate::CwError::Output(format!(
            "output file name '{shown}' is {name_len} bytes; file systems allow at most {NAME_MAX}"
        )));
    }
    if path_len >= PATH_MAX {
        return Err(crate::CwError::Output(format!(
            "output path '{shown}' is {path_len} bytes; paths must be shorter than {PATH_MAX}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: TempOwner = TempOwner {
        host: 0xdead_beef,
        pid: 4_294_967_295,
        nonce: 0x0123_4567,
    };

    #[test]
    fn fnv_matches_published_vectors() {
        // Test vectors of the FNV reference (Fowler, Noll, Vo).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn names_are_short_and_parse_back() {
        for out in [
            &b"x.nc"[..],
            &[b'n'; 255][..],
            "m\u{e9}t\u{e9}o ~ 2024.nc".as_bytes(),
            b".victim.nc.chunkwise-partial",
        ] {
            let n = temp_name(out, &OWNER);
            assert!(n.len() <= MAX_LEN && MAX_LEN < 100, "{n}");
            assert!(n.is_ascii() && !n.contains('/'), "{n}");
            assert!(n.starts_with('.') && n.ends_with(SUFFIX), "{n}");
            assert_eq!(parse(n.as_bytes(), out), Some(OWNER));
        }
    }

    #[test]
    fn another_output_or_a_foreign_file_does_not_parse() {
        let n = temp_name(b"a.nc", &OWNER);
        assert_eq!(parse(n.as_bytes(), b"b.nc"), None);
        // Outputs that share the readable prefix still differ by the hash.
        let long_a = [b"x".repeat(30), b"a".to_vec()].concat();
        let long_b = [b"x".repeat(30), b"b".to_vec()].concat();
        let n = temp_name(&long_a, &OWNER);
        assert_eq!(parse(n.as_bytes(), &long_b), None);
        let p = prefix(b"a.nc");
        for foreign in [
            format!("{p}{SUFFIX}"),
            format!("{p}deadbeef-12-0123456{SUFFIX}"),
            format!("{p}deadbeef-12-01234567-9{SUFFIX}"),
            format!("{p}deadbeef-x-01234567{SUFFIX}"),
            format!("{p}deadbeef-12-01234567.tmp"),
            ".a.nc.chunkwise-partial".to_string(),
        ] {
            assert_eq!(parse(foreign.as_bytes(), b"a.nc"), None, "{foreign}");
        }
    }

    #[test]
    fn length_limits() {
        assert!(check_lengths("x", 255, 300).is_ok());
        let e = check_lengths("x", 256, 300).unwrap_err().to_string();
        assert!(e.contains("256 bytes") && e.contains("255"), "{e}");
        let e = check_lengths("x", 10, 4096).unwrap_err().to_string();
        assert!(e.contains("4096"), "{e}");
    }
}
