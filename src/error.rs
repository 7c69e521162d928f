//! How failures reach the user: the core's error type, and one-write
//! messages on stderr.

pub use chunkwise_core::error::CwError;

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
