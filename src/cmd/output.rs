//! Safe output files: validated up front, written under a temporary name in
//! the same directory, renamed into place only when complete.

use crate::error::CwError;
use std::path::{Path, PathBuf};

/// Check that `out` can be written: its directory exists, it is not one of
/// the `inputs`, and it does not exist unless `force`.
pub fn check_output(out: &Path, force: bool, inputs: &[&Path]) -> Result<(), CwError> {
    let shown = out.display();
    let dir = parent_dir(out);
    if !dir.is_dir() {
        return Err(CwError::Output(format!(
            "output directory '{}' of '{shown}' does not exist",
            dir.display()
        )));
    }
    if out.is_dir() {
        return Err(CwError::Output(format!("output '{shown}' is a directory")));
    }
    for input in inputs {
        if same_file(out, input) {
            return Err(CwError::Output(format!(
                "output '{shown}' is the same file as input '{}'",
                input.display()
            )));
        }
    }
    if out.exists() && !force {
        return Err(CwError::Output(format!(
            "output '{shown}' exists; pass --force to replace it"
        )));
    }
    Ok(())
}

/// Check that the Zarr store (a directory) `out` can be written: its parent
/// exists, no input lies inside it, and it does not exist unless `force` —
/// and then only a Zarr store (with `zarr.json`) is ever replaced.
pub fn check_output_store(out: &Path, force: bool, inputs: &[&Path]) -> Result<(), CwError> {
    let shown = out.display();
    let dir = parent_dir(out);
    if !dir.is_dir() {
        return Err(CwError::Output(format!(
            "output directory '{}' of '{shown}' does not exist",
            dir.display()
        )));
    }
    for input in inputs {
        if let (Ok(o), Ok(i)) = (std::fs::canonicalize(out), std::fs::canonicalize(input))
            && i.starts_with(&o)
        {
            return Err(CwError::Output(format!(
                "output '{shown}' contains the input '{}'",
                input.display()
            )));
        }
    }
    if out.exists() {
        if !force {
            return Err(CwError::Output(format!(
                "output '{shown}' exists; pass --force to replace it"
            )));
        }
        if !out.join("zarr.json").is_file() {
            return Err(CwError::Output(format!(
                "output '{shown}' exists and is not a Zarr store (no zarr.json); not replacing it"
            )));
        }
    }
    Ok(())
}

/// Bytes of a file, or of every file under a directory.
pub fn tree_bytes(p: &Path) -> u64 {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => std::fs::read_dir(p)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| tree_bytes(&e.path()))
                    .sum()
            })
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Same path after resolving links, or the same inode (hard links).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b))
        && (x.dev(), x.ino()) == (y.dev(), y.ino())
    {
        return true;
    }
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// The temporary name `out` is written under before the final rename:
/// a hidden file in the same directory (same file system, so rename is atomic).
pub fn temp_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    parent_dir(out).join(format!(".{name}.chunkwise-partial"))
}

/// Move the finished temporary file (or store directory) into place. An
/// existing store being replaced (`--force`, checked before) is first moved
/// aside, then removed.
pub fn commit(tmp: &Path, out: &Path) -> Result<(), CwError> {
    if out.is_dir() {
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let old = parent_dir(out).join(format!(".{name}.chunkwise-old"));
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(out, &old).map_err(|e| {
            CwError::Output(format!(
                "cannot move the old '{}' aside: {e}",
                out.display()
            ))
        })?;
        let r = std::fs::rename(tmp, out);
        if r.is_ok() {
            let _ = std::fs::remove_dir_all(&old);
        } else {
            let _ = std::fs::rename(&old, out);
        }
        return r.map_err(|e| {
            CwError::Output(format!(
                "cannot rename '{}' to '{}': {e}",
                tmp.display(),
                out.display()
            ))
        });
    }
    std::fs::rename(tmp, out).map_err(|e| {
        CwError::Output(format!(
            "cannot rename '{}' to '{}': {e}",
            tmp.display(),
            out.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_missing_dir_existing_and_same_file() {
        let dir = std::env::temp_dir().join(format!("cw-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("x.h5");
        std::fs::write(&f, b"x").unwrap();
        assert!(
            check_output(&dir.join("nope/y.h5"), false, &[])
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
        assert!(
            check_output(&f, false, &[])
                .unwrap_err()
                .to_string()
                .contains("--force")
        );
        assert!(check_output(&f, true, &[]).is_ok());
        assert!(
            check_output(&f, true, &[&f])
                .unwrap_err()
                .to_string()
                .contains("same file")
        );
        assert_eq!(temp_path(&f), dir.join(".x.h5.chunkwise-partial"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
