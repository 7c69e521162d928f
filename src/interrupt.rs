//! SIGTERM and SIGINT (Slurm's time limit, `scancel`, Ctrl-C) end a run
//! promptly and tidily, and what is printed matches what is on disk.
//!
//! A signal handler only records the signal and wakes a watcher thread
//! through a pipe (both async-signal-safe); the watcher acts within a
//! millisecond — even while the main thread waits in a collective; `mpirun`
//! sends SIGKILL one second after it passes a SIGTERM on — and then:
//! * **while working** (the output is not complete): rank 0 reports how far
//!   the run got and that no output was written, every rank removes the
//!   temporary outputs and working directories registered here (their names
//!   are unique to this run, so whatever is at them was made by this run —
//!   removed by every rank because a rank still inside a collective open may
//!   re-create a file another rank has just removed; writes that create
//!   files or directories there — Zarr chunks re-create their missing
//!   parents — are stopped first and waited for, see [`writing`]), and the process leaves
//!   with `_exit(128 + sig)` without running exit handlers (HDF5's would try
//!   collective closes); ranks other than 0 wait [`FOLLOWER_DELAY`] first,
//!   so rank 0's message is out before the launcher, seeing a rank exit
//!   non-zero, ends the job (it may drop later output). A rank whose work
//!   fails meanwhile (the other ranks removed the temporaries it writes, or
//!   left a collective) reports the signal, not that failure
//!   ([`before_error`]): one message.
//! * **while finishing** (every rank has written its data; only rank 0's
//!   metadata, the final rename and the summary remain — see
//!   [`set_finishing`]): the signal is deferred for at most
//!   [`DEFER_LIMIT`], so a run that was about to end ends normally. Rank 0
//!   then says the signal arrived after the output was complete, and the
//!   exit status is 0 because the output is in place. A run still not done
//!   after the limit leaves as above — and the output is then not in place,
//!   since the rename happens under the same lock the watcher takes, so
//!   the message and exit status always describe what is on disk.
//! * **after the command has ended** ([`ended`]; only `MPI_Finalize`
//!   remains): the process leaves at once, rank 0 saying that the run had
//!   ended and what it left, with the command's exit status. Open MPI's
//!   `mpirun` (4.1) answers a SIGTERM or SIGINT by sending its ranks
//!   SIGCONT, then SIGTERM one second later, then SIGKILL one second after
//!   that (`odls_base_sigkill_timeout`); a run that ends in the first
//!   second waits in `MPI_Finalize` (`mpirun` no longer answers) until the
//!   SIGTERM, and without this it was killed there without a word.
//!
//! The handlers are installed before `MPI_Init` (the rank is then the
//! launcher's, from the environment), so a signal during start-up is
//! reported too.
//!
//! Final output names are only ever created by the rename of a complete
//! file, so an interrupted run never leaves a half-written output under the
//! final name.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// How long a signal that arrives while finishing waits for the run to end:
/// well inside the one second `mpirun` leaves between its SIGTERM and its
/// SIGKILL, so the message and the removal of the temporary still happen.
pub const DEFER_LIMIT: Duration = Duration::from_millis(500);

static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Signals received so far, and how many of them [`ended`] had seen.
static SIGNALS: AtomicUsize = AtomicUsize::new(0);
static SEEN_AT_END: AtomicUsize = AtomicUsize::new(0);
static DONE: AtomicUsize = AtomicUsize::new(0);
static TOTAL: AtomicUsize = AtomicUsize::new(0);
static RANK: AtomicUsize = AtomicUsize::new(0);
static FINISHING: AtomicBool = AtomicBool::new(false);
/// 0 while the command runs; 1 when it ended successfully, 2 when it failed
/// (its error already printed).
static ENDED: AtomicI32 = AtomicI32::new(0);
/// Rank 0 has printed what a deferred signal found.
static REPORTED: AtomicBool = AtomicBool::new(false);

/// Temporary outputs and working directories to remove on a signal, and
/// the output this rank has renamed into place. Renames into place happen
/// while this lock is held ([`commit_with`]).
static STATE: Mutex<State> = Mutex::new(State {
    temps: Vec::new(),
    committed: None,
});

struct State {
    temps: Vec<(PathBuf, bool)>,
    committed: Option<PathBuf>,
}

/// Held shared by every write that may create files or directories inside
/// a registered temporary ([`writing`]) and exclusively by [`leave`]
/// before it removes the temporaries: no write of this process starts or
/// is still running when they are removed.
static WRITES: RwLock<()> = RwLock::new(());
/// Set by [`leave`]: writes no longer start.
static STOPPING: AtomicBool = AtomicBool::new(false);
/// How long [`leave`] waits for writes in progress to end.
const WRITE_WAIT: Duration = Duration::from_millis(500);

/// Write end of the pipe that wakes the watcher (-1 before `install`).
static WAKE: AtomicI32 = AtomicI32::new(-1);
/// The command's name, for the messages of [`before_error`].
static WHAT: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// How long a rank that fails while it has temporaries registered waits
/// for a signal before it reports its error ([`before_error`]).
pub const ERROR_GRACE: Duration = Duration::from_millis(300);

/// How long a rank other than 0 waits, when a signal ends it, before it
/// exits (see [`leave`]).
const FOLLOWER_DELAY: Duration = Duration::from_millis(200);

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNAL.store(sig, Ordering::SeqCst);
    SIGNALS.fetch_add(1, Ordering::SeqCst);
    // Wake the watcher at once (write(2) is async-signal-safe): `mpirun`
    // sends SIGKILL one second after its SIGTERM, so the watcher must not
    // sleep through that window.
    let fd = WAKE.load(Ordering::SeqCst);
    if fd >= 0 {
        let b = 1u8;
        unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    }
}

fn signal_name(sig: i32) -> &'static str {
    if sig == libc::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    }
}

/// Install the handlers and start the watcher for a run of `what` (e.g.
/// "reduce") on `rank` (before `MPI_Init`: the launcher's rank; see
/// [`set_rank`]).
pub fn install(rank: usize, what: &'static str) {
    RANK.store(rank, Ordering::SeqCst);
    let _ = WHAT.set(what);
    let mut fds = [-1 as libc::c_int; 2];
    let piped = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } == 0;
    if piped {
        WAKE.store(fds[1], Ordering::SeqCst);
    }
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
    std::thread::Builder::new()
        .name("chunkwise-signal-watch".into())
        .spawn(move || {
            let mut deferred_since: Option<Instant> = None;
            loop {
                let sig = SIGNAL.load(Ordering::SeqCst);
                if sig != 0 {
                    let rank = RANK.load(Ordering::SeqCst);
                    if ENDED.load(Ordering::SeqCst) != 0 {
                        // A signal [`ended`] already answered lets
                        // MPI_Finalize run; a new one leaves.
                        if SIGNALS.load(Ordering::SeqCst) > SEEN_AT_END.load(Ordering::SeqCst) {
                            leave_ended(rank, what, sig);
                        }
                    } else if !FINISHING.load(Ordering::SeqCst) {
                        leave(rank, what, sig);
                    } else {
                        let since = *deferred_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= DEFER_LIMIT {
                            leave(rank, what, sig);
                        }
                    }
                }
                // Sleep until a signal wakes us (or 20 ms, for the deferral).
                if piped {
                    let mut p = libc::pollfd {
                        fd: fds[0],
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    unsafe {
                        if libc::poll(&mut p, 1, 20) > 0 {
                            let mut buf = [0u8; 16];
                            libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len());
                        }
                    }
                } else {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        })
        .expect("spawn the signal watcher");
}

fn leave(rank: usize, what: &str, sig: i32) -> ! {
    let name = signal_name(sig);
    // Held until `_exit`: no rename into place can start after this point.
    let state = STATE.lock().unwrap_or_else(|p| p.into_inner());
    if rank == 0 {
        let (done, total) = (DONE.load(Ordering::SeqCst), TOTAL.load(Ordering::SeqCst));
        let pct = if total > 0 {
            100.0 * done as f64 / total as f64
        } else {
            0.0
        };
        let outcome = match &state.committed {
            // The output is complete and in place; the process ends before
            // its summary only. Status 0: the output is what was asked for.
            Some(out) => format!(
                "the output '{}' is complete and in place (it was renamed before the signal)",
                out.display()
            ),
            None => "no output was written".into(),
        };
        crate::error::say(&format!(
            "chunkwise: stopped by {name} (Slurm time limit, scancel, or the job ending after an error on another rank): {what} had done {done} of {total} blocks on rank 0 ({pct:.0}%); {outcome}"
        ));
    }
    // Nor a write, from here: a Zarr chunk written after the removal would
    // re-create the temporary store and every missing directory above it
    // (the working directory of `formats`). Held until `_exit`.
    let _writes = stop_writes();
    let temps = state.temps.clone();
    log::info!("rank {rank}: {name}; removing the temporaries {temps:?}");
    if rank != 0 {
        // The launcher ends the job as soon as one rank exits non-zero, and
        // may drop what rank 0 says after that: rank 0 speaks first. This
        // rank's main thread may still finish a collective HDF5 open (which
        // creates its file) meanwhile, so the removal comes last.
        std::thread::sleep(FOLLOWER_DELAY);
        remove_all(&temps);
    } else {
        remove_all(&temps);
        if !temps.is_empty() {
            // The other ranks (and this one's main thread) may still be
            // finishing an open or a chunk, and so re-create a file or
            // directory, until they exit: remove again until after the
            // others' removal ([`FOLLOWER_DELAY`]).
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(100));
                remove_all(&temps);
            }
        }
    }
    let code = if state.committed.is_some() {
        0
    } else {
        128 + sig
    };
    unsafe { libc::_exit(code) }
}

/// Let no write start ([`writing`] fails from now on) and wait, at most
/// [`WRITE_WAIT`], for those in progress; the guard keeps new ones out.
fn stop_writes() -> Option<std::sync::RwLockWriteGuard<'static, ()>> {
    STOPPING.store(true, Ordering::SeqCst);
    let t0 = Instant::now();
    loop {
        match WRITES.try_write() {
            Ok(g) => return Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) if t0.elapsed() < WRITE_WAIT => {
                std::thread::sleep(Duration::from_millis(1));
            }
            // A write that does not end (a hung file system): remove anyway.
            Err(std::sync::TryLockError::WouldBlock) => return None,
        }
    }
}

/// Run `write`, a write into a registered temporary that may create files
/// or directories there (a Zarr store's chunks and metadata re-create their
/// missing parents), unless a signal is being handled: then it fails
/// without writing. [`leave`] waits for writes in progress before it
/// removes the temporaries, so nothing of this process re-creates them.
pub fn writing<R>(
    write: impl FnOnce() -> Result<R, crate::error::CwError>,
) -> Result<R, crate::error::CwError> {
    let _shared = WRITES.read().unwrap_or_else(|p| p.into_inner());
    if STOPPING.load(Ordering::SeqCst) {
        return Err(crate::error::CwError::Output(
            "stopped by a signal before this write".into(),
        ));
    }
    write()
}

/// Called by a rank about to report an error (or abort) while the command
/// runs. A signal that has arrived takes precedence: the rank leaves as
/// the watcher would ([`leave`]: rank 0 says what the signal found, the
/// others nothing), so an interrupted job prints one message, the signal's.
/// A rank with temporaries registered first waits up to [`ERROR_GRACE`]
/// for its signal: another rank's handling of the same signal removes
/// those temporaries (or leaves a collective), which is what makes this
/// rank fail — before its own signal was handled.
pub fn before_error() {
    if ENDED.load(Ordering::SeqCst) != 0 {
        return;
    }
    let wait = {
        let state = STATE.lock().unwrap_or_else(|p| p.into_inner());
        !state.temps.is_empty()
    };
    let t0 = Instant::now();
    loop {
        let sig = SIGNAL.load(Ordering::SeqCst);
        if sig != 0 {
            let what = WHAT.get().copied().unwrap_or("the command");
            leave(RANK.load(Ordering::SeqCst), what, sig);
        }
        if !wait || t0.elapsed() >= ERROR_GRACE {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A signal after the command ended (during `MPI_Finalize`): say what the
/// run left, once, and leave with the command's status.
fn leave_ended(rank: usize, what: &str, sig: i32) -> ! {
    let state = STATE.lock().unwrap_or_else(|p| p.into_inner());
    let ok = ENDED.load(Ordering::SeqCst) == 1;
    if rank == 0 && ok && !REPORTED.load(Ordering::SeqCst) {
        let left = match &state.committed {
            Some(out) => format!("'{}' is complete and in place", out.display()),
            None => "its results are complete".into(),
        };
        crate::error::say(&format!(
            "chunkwise: {} arrived after {what} had ended; {left}",
            signal_name(sig)
        ));
    }
    unsafe { libc::_exit(if ok { 0 } else { 1 }) }
}

/// Record the rank `MPI_Init` gave (the launcher's, normally).
pub fn set_rank(rank: usize) {
    RANK.store(rank, Ordering::SeqCst);
}

/// The command has ended (`ok`: successfully; else its error has been
/// printed): from here a signal leaves at once ([`leave_ended`]). When a
/// signal was deferred while finishing, rank 0 says now that the output is
/// complete — before `MPI_Finalize`, which may not return under a launcher
/// that is ending the job.
pub fn ended(ok: bool, what: &str) {
    let state = STATE.lock().unwrap_or_else(|p| p.into_inner());
    SEEN_AT_END.store(SIGNALS.load(Ordering::SeqCst), Ordering::SeqCst);
    ENDED.store(if ok { 1 } else { 2 }, Ordering::SeqCst);
    let sig = SIGNAL.load(Ordering::SeqCst);
    if ok && sig != 0 && RANK.load(Ordering::SeqCst) == 0 {
        let msg = match &state.committed {
            Some(out) => format!(
                "chunkwise: {} arrived while '{}' was being finished; it is complete and in place",
                signal_name(sig),
                out.display()
            ),
            None => format!(
                "chunkwise: {} arrived while {what} was being finished; its results are complete",
                signal_name(sig)
            ),
        };
        crate::error::say(&msg);
        REPORTED.store(true, Ordering::SeqCst);
    }
}

fn remove_all(temps: &[(PathBuf, bool)]) {
    for (p, dir) in temps {
        let _ = if *dir {
            std::fs::remove_dir_all(p)
        } else {
            std::fs::remove_file(p)
        };
    }
}

/// Remove every registered temporary now (before `MPI_Abort`, which gives
/// the other ranks no chance to run code of ours).
pub fn remove_temps() {
    let state = STATE.lock().unwrap_or_else(|p| p.into_inner());
    remove_all(&state.temps);
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

/// Register a temporary output file (`dir` false) or directory (`dir`
/// true) to remove on a signal. Its name must be unique to this run.
pub fn add_temp(path: &Path, dir: bool) {
    let mut s = STATE.lock().unwrap_or_else(|p| p.into_inner());
    s.temps.push((path.to_path_buf(), dir));
}

/// Forget a temporary (renamed into place, kept, or removed already).
pub fn forget_temp(path: &Path) {
    let mut s = STATE.lock().unwrap_or_else(|p| p.into_inner());
    s.temps.retain(|(p, _)| p != path);
}

/// Run `rename` (which moves temporary `tmp` to `out`) so that a signal
/// sees either the state before or the state after it: on success `tmp`
/// is forgotten and, for the command's final output (`is_final`; not for
/// `formats`' candidates), `out` is recorded as complete.
pub fn commit_with<E>(
    tmp: &Path,
    out: &Path,
    is_final: bool,
    rename: impl FnOnce() -> Result<(), E>,
) -> Result<(), E> {
    let mut s = STATE.lock().unwrap_or_else(|p| p.into_inner());
    rename()?;
    s.temps.retain(|(p, _)| p != tmp);
    if is_final {
        s.committed = Some(out.to_path_buf());
    }
    Ok(())
}

/// Mark that every rank has written its data and only the final steps
/// remain: from here a signal is deferred (at most [`DEFER_LIMIT`]).
pub fn set_finishing() {
    FINISHING.store(true, Ordering::SeqCst);
}
