//! Error type for user-facing failures. Every variant's message names the
//! file, variable or flag at fault, because it is printed once for the whole job.

use thiserror::Error;

/// A failure that ends the job with one clear message.
#[derive(Debug, Error)]
pub enum CwError {
    /// A command-line value could not be parsed.
    #[error("{0}")]
    Parse(String),
    /// The input file or variable is unusable.
    #[error("{0}")]
    Input(String),
    /// The output cannot be written as asked.
    #[error("{0}")]
    Output(String),
    /// An HDF5 call failed.
    #[error("HDF5: {0}")]
    Hdf5(String),
}

impl From<hdf5::Error> for CwError {
    fn from(e: hdf5::Error) -> Self {
        CwError::Hdf5(e.to_string())
    }
}

/// Write one line to stderr with a single `write` call, so that a launcher
/// forwarding several ranks' stderr cannot interleave other text into it
/// (`eprintln!` may write a formatted line in pieces).
pub fn say(line: &str) {
    use std::io::Write;
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    let _ = std::io::stderr().lock().write_all(buf.as_bytes());
}
