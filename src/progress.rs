//! Progress of long jobs (`reduce`, `convert`, `generate`, `formats`) on
//! rank 0's standard error — never on standard output, so tables and JSON
//! stay clean.
//!
//! * On a terminal (`--progress auto` or `bar`): a live `indicatif` bar with
//!   bytes done of the total, throughput, elapsed time and ETA.
//! * Elsewhere (a Slurm output file; `auto` or `lines`): one plain line at
//!   most every `--progress-interval` with the same figures and a UTC
//!   timestamp.
//! * `--progress none`: nothing, and no MPI traffic at all.
//!
//! # How the global figure is gathered (no collective, no stall)
//! The figure is the bytes done on *all* ranks. Each run makes its own
//! duplicate of the world communicator (one `MPI_Comm_dup` when the phase
//! starts, which every rank reaches anyway), so progress messages can never
//! match any other traffic. During block work each rank reports from the
//! thread that already makes its MPI calls — `reduce`'s reader thread (the
//! one making MPI-IO calls inside HDF5), or the main thread for the writes of
//! `generate` and `convert` — and only at block boundaries, so the
//! `MPI_THREAD_SERIALIZED` level main.rs asks for is respected:
//! * a rank other than 0 keeps at most one `MPI_Isend` of its running byte
//!   count to rank 0 in flight (`MPI_Test` between blocks; a new send at most
//!   every 100 ms) and never waits for it;
//! * rank 0 drains whatever has arrived with `MPI_Iprobe` + `MPI_Recv`
//!   between its own blocks, into one atomic counter per rank;
//! * a display thread on rank 0 makes no MPI call: it reads those atomics
//!   and draws the bar or prints the lines.
//!
//! At the end of the phase every other rank completes its last send and
//! sends a final count (flagged); rank 0 keeps draining — so the figure
//! still moves while it waits — until it has every final count, then the
//! display stops. Every rank was about to meet rank 0 in the gather of
//! results anyway, so this adds no waiting; nothing the computation uses
//! passes through it, so results cannot depend on it or on timing.
//! Cost: per block one `MPI_Test` or `MPI_Iprobe` (about a microsecond,
//! against about a millisecond to read and reduce a 4 MiB block), plus one
//! `MPI_Comm_dup`/`MPI_Comm_free` and one final 8-byte message per rank.
//! `benches/progress_cost.sh` (reduce of 2 GiB, `none` vs `lines` every
//! 0.5 s, interleaved, medians) measured 0.195 s vs 0.189 s at P=2 (15
//! runs) and 0.375 s vs 0.385 s at P=1 (9 runs) on a shared 2-core machine:
//! no difference beyond the run-to-run noise (about ±3 % there).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How progress is shown (`--progress`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// A bar on a terminal, lines elsewhere.
    Auto,
    /// A live bar.
    Bar,
    /// Plain timestamped lines.
    Lines,
    /// Nothing.
    None,
}

/// The settings of this run (from the command line, set once in main).
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// How to show progress.
    pub mode: Mode,
    /// Time between two plain lines.
    pub interval: Duration,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Record this run's settings (first call wins).
pub fn configure(s: Settings) {
    let _ = SETTINGS.set(s);
}

fn settings() -> Settings {
    SETTINGS.get().copied().unwrap_or(Settings {
        mode: Mode::None,
        interval: Duration::from_secs(30),
    })
}

/// Parse `--progress-interval`: seconds (`30`, `0.5`, `30s`), `250ms`, or
/// a duration such as `2m`.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let secs = if let Some(ms) = t.strip_suffix("ms") {
        ms.trim().parse::<f64>().ok().map(|x| x / 1000.0)
    } else {
        t.strip_suffix('s')
            .unwrap_or(t)
            .trim()
            .parse::<f64>()
            .ok()
            .or_else(|| crate::parse::parse_duration(t).ok().map(|x| x as f64))
    };
    match secs {
        Some(x) if x.is_finite() && x > 0.0 => Ok(Duration::from_secs_f64(x)),
        _ => Err(format!(
            "invalid --progress-interval '{s}': expected e.g. 30, 30s, 500ms or 2m"
        )),
    }
}

/// Message tag of the progress counts (on the run's own communicator).
const TAG: i32 = 0x70;
/// Flag bit of a rank's final count.
const FINAL: u64 = 1 << 63;
/// Least time between two sends of one rank.
const SEND_EVERY: Duration = Duration::from_millis(100);

/// A raw MPI request (a pointer under Open MPI): only ever used by the one
/// thread that makes this rank's MPI calls at that time.
struct Pending {
    req: mpi::ffi::MPI_Request,
    buf: Box<u64>,
    sent_at: Instant,
}
// SAFETY: the request is touched only under the mutex, by the thread that
// makes this rank's MPI calls (MPI_THREAD_SERIALIZED).
unsafe impl Send for Pending {}

/// State shared with rank 0's display thread.
struct Shared {
    per_rank: Vec<AtomicU64>,
    stop: AtomicBool,
}

/// Progress of one phase on every rank (see the module doc). Create with
/// [`Progress::start`] on every rank, report with [`Progress::add`], end with
/// [`Progress::finish`] on every rank.
pub struct Progress {
    /// `None` when progress is off (`--progress none`): no MPI traffic.
    comm: Option<mpi::ffi::MPI_Comm>,
    rank: usize,
    size: usize,
    done: AtomicU64,
    pending: Mutex<Option<Pending>>,
    last_send: Mutex<Option<Instant>>,
    shared: Arc<Shared>,
    finals: AtomicU64,
    display: Option<std::thread::JoinHandle<()>>,
}

// SAFETY: the raw communicator handle is only used by the thread making
// this rank's MPI calls at the time (serialized); the rest is atomics and
// mutexes.
unsafe impl Sync for Progress {}
unsafe impl Send for Progress {}

impl Progress {
    /// Start showing the progress of `what` over `total` bytes (all ranks
    /// together). Collective when progress is on (one `MPI_Comm_dup`); call
    /// it on every rank at the same point.
    pub fn start(comm: &crate::comm::Comm, what: &'static str, total: u64) -> Progress {
        let s = settings();
        let shared = Arc::new(Shared {
            per_rank: (0..comm.size()).map(|_| AtomicU64::new(0)).collect(),
            stop: AtomicBool::new(false),
        });
        let mut p = Progress {
            comm: None,
            rank: comm.rank(),
            size: comm.size(),
            done: AtomicU64::new(0),
            pending: Mutex::new(None),
            last_send: Mutex::new(None),
            shared: shared.clone(),
            finals: AtomicU64::new(0),
            display: None,
        };
        if s.mode == Mode::None {
            return p;
        }
        let mut dup: mpi::ffi::MPI_Comm = unsafe { std::mem::zeroed() };
        // SAFETY: collective duplicate of a valid communicator, every rank.
        unsafe {
            mpi::ffi::MPI_Comm_dup(comm.raw(), &mut dup);
        }
        p.comm = Some(dup);
        if comm.is_root() {
            let bar = match s.mode {
                Mode::Bar => true,
                Mode::Lines => false,
                _ => std::io::stderr().is_terminal(),
            };
            let interval = s.interval;
            p.display = std::thread::Builder::new()
                .name("chunkwise-progress".into())
                .spawn(move || display(&shared, what, total, bar, interval))
                .ok();
        }
        p
    }

    /// Record `bytes` more done on this rank. Call it between blocks from
    /// the thread that makes this rank's MPI calls; it never waits.
    pub fn add(&self, bytes: u64) {
        let done = self.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let Some(comm) = self.comm else { return };
        if self.rank == 0 {
            self.shared.per_rank[0].store(done, Ordering::Relaxed);
            self.drain(comm);
            return;
        }
        let mut pending = self.pending.lock().expect("progress lock");
        if let Some(p) = pending.as_mut() {
            let mut flag = 0;
            // SAFETY: a live request of ours; test completes or leaves it.
            unsafe {
                mpi::ffi::MPI_Test(&mut p.req, &mut flag, mpi::ffi::RSMPI_STATUS_IGNORE);
            }
            if flag == 0 {
                return;
            }
            if p.sent_at.elapsed() < SEND_EVERY {
                return;
            }
            *pending = None;
        }
        let mut last = self.last_send.lock().expect("progress lock");
        if last.is_some_and(|t| t.elapsed() < SEND_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        let buf = Box::new(done);
        let mut req = unsafe { mpi::ffi::RSMPI_REQUEST_NULL };
        // SAFETY: the boxed buffer lives in `pending` until the send completes.
        unsafe {
            mpi::ffi::MPI_Isend(
                (&*buf as *const u64).cast(),
                1,
                mpi::ffi::RSMPI_UINT64_T,
                0,
                TAG,
                comm,
                &mut req,
            );
        }
        *pending = Some(Pending {
            req,
            buf,
            sent_at: Instant::now(),
        });
    }

    /// Rank 0: take in every count that has arrived.
    fn drain(&self, comm: mpi::ffi::MPI_Comm) {
        loop {
            let mut flag = 0;
            let mut status: mpi::ffi::MPI_Status = unsafe { std::mem::zeroed() };
            // SAFETY: probe and receive one u64 on our own communicator.
            unsafe {
                mpi::ffi::MPI_Iprobe(
                    mpi::ffi::RSMPI_ANY_SOURCE,
                    TAG,
                    comm,
                    &mut flag,
                    &mut status,
                );
            }
            if flag == 0 {
                return;
            }
            let src = status.MPI_SOURCE;
            let mut v = 0u64;
            unsafe {
                mpi::ffi::MPI_Recv(
                    (&mut v as *mut u64).cast(),
                    1,
                    mpi::ffi::RSMPI_UINT64_T,
                    src,
                    TAG,
                    comm,
                    mpi::ffi::RSMPI_STATUS_IGNORE,
                );
            }
            if v & FINAL != 0 {
                self.finals.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(c) = self.shared.per_rank.get(src as usize) {
                c.fetch_max(v & !FINAL, Ordering::Relaxed);
            }
        }
    }

    /// End the phase on every rank: the others send their final count,
    /// rank 0 waits for all of them (updating the display meanwhile), then
    /// the display stops and the communicator is freed. Call it from the
    /// thread that makes MPI calls, on every rank.
    pub fn finish(mut self) {
        let Some(mut comm) = self.comm.take() else {
            return;
        };
        let done = self.done.load(Ordering::Relaxed);
        if self.rank == 0 {
            self.shared.per_rank[0].store(done, Ordering::Relaxed);
            while (self.finals.load(Ordering::Relaxed) as usize) < self.size - 1 {
                self.drain(comm);
                std::thread::sleep(Duration::from_micros(200));
            }
            self.shared.stop.store(true, Ordering::Relaxed);
            if let Some(h) = self.display.take() {
                // Wake it from its wait, so stopping costs no waiting here.
                h.thread().unpark();
                let _ = h.join();
            }
        } else {
            if let Some(mut p) = self.pending.lock().expect("progress lock").take() {
                // SAFETY: our request; rank 0 receives every count it is sent.
                unsafe {
                    mpi::ffi::MPI_Wait(&mut p.req, mpi::ffi::RSMPI_STATUS_IGNORE);
                }
                drop(p.buf);
            }
            let v = done | FINAL;
            unsafe {
                mpi::ffi::MPI_Send(
                    (&v as *const u64).cast(),
                    1,
                    mpi::ffi::RSMPI_UINT64_T,
                    0,
                    TAG,
                    comm,
                );
            }
        }
        // SAFETY: our own duplicate; every message on it has been received.
        unsafe {
            mpi::ffi::MPI_Comm_free(&mut comm);
        }
    }
}

/// Rank 0's display loop (no MPI calls).
fn display(shared: &Shared, what: &str, total: u64, bar: bool, interval: Duration) {
    let t0 = Instant::now();
    let done = || {
        shared
            .per_rank
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    if bar {
        let pb = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr_with_hz(10),
        );
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} elapsed {elapsed} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        pb.set_prefix(what.to_string());
        while !shared.stop.load(Ordering::Relaxed) {
            pb.set_position(done().min(total));
            std::thread::park_timeout(Duration::from_millis(50));
        }
        pb.set_position(done().min(total));
        pb.finish_and_clear();
        return;
    }
    let mut next = t0 + interval;
    loop {
        let now = Instant::now();
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        if now >= next {
            let line = line(what, done(), total, now - t0);
            let _ = std::io::stderr().write_all(line.as_bytes());
            next = now + interval;
        }
        // Woken early by `finish` (unpark), so the end of a run is not delayed.
        std::thread::park_timeout(next - Instant::now().min(next));
    }
}

/// One plain progress line (with its newline).
pub fn line(what: &str, done: u64, total: u64, elapsed: Duration) -> String {
    use crate::parse::human_bytes;
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let pct = if total > 0 {
        100.0 * done as f64 / total as f64
    } else {
        100.0
    };
    let eta = if rate > 0.0 && done < total {
        format!("{:.0} s", (total - done) as f64 / rate)
    } else {
        "-".into()
    };
    format!(
        "{} chunkwise {what}: {} of {} ({pct:.1}%), {}/s, elapsed {secs:.1} s, ETA {eta}\n",
        timestamp(),
        human_bytes(done),
        human_bytes(total),
        human_bytes(rate as u64),
    )
}

/// `scaling run`'s line after each launched run (unless `--progress none`):
/// runs done of the total, the run just finished, elapsed time and ETA.
pub fn run_line(done: usize, total: usize, run: &str, elapsed: Duration) {
    if settings().mode == Mode::None {
        return;
    }
    let secs = elapsed.as_secs_f64();
    let eta = if done > 0 && done < total {
        format!("{:.0} s", secs / done as f64 * (total - done) as f64)
    } else {
        "-".into()
    };
    crate::error::say(&format!(
        "{} chunkwise scaling: {done} of {total} runs done ({run}), elapsed {secs:.1} s, ETA {eta}",
        timestamp()
    ));
}

/// UTC time with milliseconds, e.g. `2026-12-02T19:04:05.123Z`.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    chunkwise_core::utc::iso_utc(now.as_secs() as i64, Some(now.subsec_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse() {
        assert_eq!(parse_interval("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_interval("0.5s").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_interval("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_interval("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_interval("0").is_err());
        assert!(parse_interval("soon").is_err());
    }

    #[test]
    fn line_has_the_figures() {
        let l = line("reduce", 1 << 30, 2 << 30, Duration::from_secs(2));
        assert!(l.contains("reduce: 1.00 GiB of 2.00 GiB (50.0%)"), "{l}");
        assert!(l.contains("512.00 MiB/s") && l.contains("ETA 2 s"), "{l}");
        assert!(l.ends_with('\n') && l.as_bytes()[4] == b'-');
    }
}
