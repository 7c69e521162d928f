//! What an input path may be: a regular file (HDF5 / NetCDF-4, `.npy`, raw)
//! or a directory (a Zarr v3 store). Anything else — a FIFO, a socket, a
//! character or block device — is refused before it is opened: opening a
//! FIFO for reading blocks until a writer appears (forever, on every rank),
//! and a device has no fixed size to decompose.

use crate::IoError;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// The metadata of input `path` (symbolic links followed), or an error
/// naming what it is when it is neither a regular file nor a directory.
/// Never opens the path.
pub fn metadata(path: &Path) -> Result<std::fs::Metadata, IoError> {
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| IoError::Input(format!("cannot open input file '{shown}': {e}")))?;
    let t = meta.file_type();
    let what = if t.is_file() || t.is_dir() {
        return Ok(meta);
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    };
    Err(IoError::Input(format!(
        "input '{shown}' is {what}; inputs must be regular files (or a Zarr v3 directory), since they are read in parallel at known offsets — copy the data to a file first"
    )))
}
