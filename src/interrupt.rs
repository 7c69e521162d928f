//! SIGTERM and SIGINT (Slurm's time limit, `scancel`, Ctrl-C) end a run
//! promptly and tidily.
//!
//! A signal handler only records the signal (async-signal-safe). A watcher
//! thread sees it within 20 ms — even while the main thread waits in a
//! collective — and then: rank 0 reports how far the run got, the temporary
//! output (if any) is removed, and the process leaves with `_exit(128 + sig)`
//! without running exit handlers (HDF5's would try collective closes). The
//! launcher sees ranks exit non-zero and ends the job. Final output names are
//! only ever created by the rename of a complete file, so an interrupted run
//! never leaves a half-written output under the final name.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::time::Duration;

static SIGNAL: AtomicI32 = AtomicI32::new(0);
static DONE: AtomicUsize = AtomicUsize::new(0);
static TOTAL: AtomicUsize = AtomicUsize::new(0);
static TEMP: Mutex<Option<PathBuf>> = Mutex::new(None);
static RANK: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNAL.store(sig, Ordering::SeqCst);
}

/// Install the handlers and start the watcher for a run of `what` (e.g.
/// "reduce") on `rank`.
pub fn install(rank: usize, what: &'static str) {
    RANK.store(rank, Ordering::SeqCst);
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
    std::thread::Builder::new()
        .name("chunkwise-signal-watch".into())
        .spawn(move || {
            loop {
                let sig = SIGNAL.load(Ordering::SeqCst);
                if sig != 0 {
                    leave(rank, what, sig);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .expect("spawn the signal watcher");
}

fn leave(rank: usize, what: &str, sig: i32) -> ! {
    let name = if sig == libc::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    let temp = TEMP.lock().ok().and_then(|mut t| t.take());
    if rank == 0 {
        let (done, total) = (DONE.load(Ordering::SeqCst), TOTAL.load(Ordering::SeqCst));
        let pct = if total > 0 {
            100.0 * done as f64 / total as f64
        } else {
            0.0
        };
        crate::error::say(&format!(
            "chunkwise: stopped by {name} (Slurm time limit, scancel, or the job ending after an error on another rank): {what} had done {done} of {total} blocks on rank 0 ({pct:.0}%); no output was written"
        ));
        if let Some(t) = &temp {
            let _ = std::fs::remove_file(t);
        }
    }
    if let Some(d) = TEMP_DIR.lock().ok().and_then(|mut t| t.take()) {
        // A directory output (a Zarr store) gets files from every rank, and
        // another rank may still be finishing a chunk (and so recreating its
        // directories) while this one removes it: every rank removes it as
        // it leaves, and rank 0 again once the others have had time to stop.
        let _ = std::fs::remove_dir_all(&d);
        if rank == 0 {
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(100));
                let _ = std::fs::remove_dir_all(&d);
            }
        }
    }
    unsafe { libc::_exit(128 + sig) }
}

/// Record how many blocks this rank will process.
pub fn set_total(n: usize) {
    log::info!(
        "rank {}: {n} blocks to process (SIGTERM/SIGINT handled from here)",
        RANK.load(Ordering::SeqCst)
    );
    TOTAL.store(n, Ordering::SeqCst);
    DONE.store(0, Ordering::SeqCst);
}

/// Record one more block done.
pub fn tick() {
    DONE.fetch_add(1, Ordering::SeqCst);
}

/// The temporary output being written (removed on interruption), or `None`
/// once it has been renamed into place.
pub fn set_temp(path: Option<PathBuf>) {
    if let Ok(mut t) = TEMP.lock() {
        *t = path;
    }
}

/// A temporary working directory (e.g. `formats`' candidates), removed
/// with everything in it on interruption; `None` once it is gone or kept.
static TEMP_DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Record (or clear) the temporary working directory.
pub fn set_temp_dir(path: Option<PathBuf>) {
    if let Ok(mut t) = TEMP_DIR.lock() {
        *t = path;
    }
}
