//! Fault injection for the failure tests, read from the environment (never
//! set in normal use):
//! * `CHUNKWISE_TEST_FAIL=RANK:N[:MODE]` — rank RANK fails at its N-th block
//!   (1-based). MODE `error` (default) returns an I/O error; `kill` sends
//!   SIGKILL to the rank's own process (a crashed or OOM-killed rank).
//! * `CHUNKWISE_TEST_SLOW=MS` — sleep MS milliseconds per block, so tests can
//!   interrupt a run half-way.
//! * `CHUNKWISE_TEST_SLOW_COMMIT=MS` — sleep MS milliseconds between writing
//!   a complete temporary output and renaming it, so tests can interrupt
//!   there.
//! * `CHUNKWISE_TEST_SLOW_AFTER_COMMIT=MS` — sleep MS milliseconds just
//!   after the output was renamed into place (before the summary).

use crate::error::CwError;

/// This process's rank as the launcher tells it (without MPI calls).
fn launcher_rank() -> Option<usize> {
    [
        "OMPI_COMM_WORLD_RANK",
        "PMI_RANK",
        "PMIX_RANK",
        "SLURM_PROCID",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok()?.parse().ok())
}

/// Apply the hooks before block `n` (1-based) of this rank.
pub fn before_block(n: usize) -> Result<(), CwError> {
    if let Some(ms) = std::env::var("CHUNKWISE_TEST_SLOW")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    let Ok(spec) = std::env::var("CHUNKWISE_TEST_FAIL") else {
        return Ok(());
    };
    let mut it = spec.split(':');
    let (Some(r), Some(k)) = (it.next(), it.next()) else {
        return Ok(());
    };
    let mode = it.next().unwrap_or("error");
    let hit = r.parse::<usize>().ok() == launcher_rank() && k.parse::<usize>().ok() == Some(n);
    if !hit {
        return Ok(());
    }
    if mode == "kill" {
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    Err(CwError::Input(format!(
        "injected test failure at block {n} (CHUNKWISE_TEST_FAIL)"
    )))
}

fn sleep_from(var: &str) {
    if let Some(ms) = std::env::var(var).ok().and_then(|v| v.parse::<u64>().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// Apply the hook between a complete temporary output and its rename.
pub fn before_commit() {
    sleep_from("CHUNKWISE_TEST_SLOW_COMMIT");
}

/// Apply the hook just after the rename into place.
pub fn after_commit() {
    sleep_from("CHUNKWISE_TEST_SLOW_AFTER_COMMIT");
}
