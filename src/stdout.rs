//! Results on standard output, safe against a reader that goes away.
//!
//! `print!` panics when stdout is a closed pipe (`chunkwise plan --json |
//! head -c1`). Every command writes its results through [`print`] instead:
//! a closed pipe (`EPIPE`) means the reader wants no more, so the rest of
//! the output is dropped quietly and the command ends normally; any other
//! write error (disk full behind a redirection) is returned.

use crate::error::CwError;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout's reader has gone away: later output is dropped.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Write `text` to stdout in full and flush. A closed pipe is not an error.
pub fn print(text: &str) -> Result<(), CwError> {
    if CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        r => r.map_err(|e| CwError::Output(format!("cannot write to standard output: {e}"))),
    }
}

/// [`print`] followed by a newline.
pub fn println(text: &str) -> Result<(), CwError> {
    print(&format!("{text}\n"))
}

/// `print!` through [`print`]: formats, writes, and gives the result.
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => {
        $crate::stdout::print(&format!($($t)*))
    };
}

/// `println!` through [`println`]: formats, writes, and gives the result.
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => {
        $crate::stdout::println(&format!($($t)*))
    };
}
