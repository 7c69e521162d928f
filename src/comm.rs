//! Thin layer over MPI: rank/size, error agreement, and the few collectives
//! `chunkwise` uses.
//!
//! # How failures end the job (never hang)
//! Two mechanisms, chosen by where the failure can happen:
//! * **Before any data moves** (parsing, opening the file, finding the
//!   variable, checking the output path) every rank runs the same checks and
//!   then calls [`Comm::agree`]: an `MPI_Allreduce` of "lowest failing rank".
//!   If any rank failed, the lowest failing rank prints its message, every
//!   rank returns an error and exits non-zero. No rank is left waiting.
//! * **While blocks are read, reduced or written** a failure is local to one
//!   rank while the others may already wait in a collective. The failing rank
//!   prints which rank failed and why, then calls [`Comm::abort`]
//!   (`MPI_Abort`), which ends every rank of the job at once.
//! * **Signals** (SIGTERM from Slurm's time limit or `scancel`, SIGINT):
//!   `crate::interrupt` ends each rank within ~20 ms even inside a
//!   collective, rank 0 says how far the run got, and the temporary output
//!   is removed. A rank killed outright (`kill -9`, OOM) is noticed by the
//!   launcher, which ends the others.
//!
//! Every place a command enters a collective carries a comment naming which
//! of these applies there.

use crate::error::CwError;
use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

/// Marker error: another rank already printed the message for this failure.
#[derive(Debug)]
pub struct ReportedElsewhere;

impl std::fmt::Display for ReportedElsewhere {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failure reported by another rank")
    }
}

impl std::error::Error for ReportedElsewhere {}

/// The MPI world as `chunkwise` uses it.
pub struct Comm {
    world: SimpleCommunicator,
}

impl Comm {
    /// Wrap the world communicator.
    pub fn new(world: SimpleCommunicator) -> Self {
        Comm { world }
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    /// Number of ranks.
    pub fn size(&self) -> usize {
        self.world.size() as usize
    }

    /// True on rank 0, the only rank that prints results.
    pub fn is_root(&self) -> bool {
        self.rank() == 0
    }

    /// Raw communicator for the HDF5 MPI-IO driver.
    pub fn raw(&self) -> mpi::ffi::MPI_Comm {
        self.world.as_raw()
    }

    /// Collective: succeed only if every rank succeeded. On failure the lowest
    /// failing rank prints its error, and every rank returns [`ReportedElsewhere`].
    pub fn agree<T>(&self, local: anyhow::Result<T>) -> anyhow::Result<T> {
        let mine: i32 = if local.is_err() {
            self.rank() as i32
        } else {
            i32::MAX
        };
        let mut lowest = i32::MAX;
        self.world
            .all_reduce_into(&mine, &mut lowest, SystemOperation::min());
        if lowest == i32::MAX {
            return Ok(local.expect("no rank failed"));
        }
        if let Err(e) = &local
            && lowest == self.rank() as i32
        {
            crate::interrupt::before_error();
            crate::error::say(&format!("chunkwise: error: {e:#}"));
        }
        // Nobody exits before the message is written: the launcher kills the
        // job as soon as one rank exits non-zero.
        self.world.barrier();
        Err(ReportedElsewhere.into())
    }

    /// Print that this rank failed and why, remove this run's temporary
    /// outputs (the other ranks get no chance to), then end every rank
    /// (`MPI_Abort`).
    pub fn abort(&self, err: &anyhow::Error) -> ! {
        crate::interrupt::before_error();
        // Several ranks often fail at once (a full disk fails every
        // writer): a lower rank's abort ends the others while they wait
        // here, so the job usually prints one message, the lowest rank's.
        let wait = 250 * self.rank().min(4) as u64;
        std::thread::sleep(std::time::Duration::from_millis(wait));
        crate::error::say(&format!(
            "chunkwise: error on rank {} of {}: {err:#}",
            self.rank(),
            self.size()
        ));
        crate::interrupt::remove_temps();
        self.world.abort(2)
    }

    /// Rank 0's `words`, delivered on every rank (the others pass theirs
    /// only for the length, which must be the same everywhere).
    pub fn broadcast_words(&self, words: &[u64]) -> Vec<u64> {
        let mut buf = words.to_vec();
        self.world.process_at_rank(0).broadcast_into(&mut buf[..]);
        buf
    }

    /// Unwrap a rank-local result inside a collective phase, aborting the job on error.
    pub fn or_abort<T>(&self, r: Result<T, CwError>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => self.abort(&e.into()),
        }
    }

    /// Gather variable-length `u64` payloads to rank 0, where `counts[r]` is the
    /// length rank `r` sends (every rank must pass the same `counts`).
    /// Returns the concatenation in rank order on rank 0, `None` elsewhere.
    pub fn gather_words(&self, send: &[u64], counts: &[usize]) -> Option<Vec<u64>> {
        let root = self.world.process_at_rank(0);
        if self.is_root() {
            let total: usize = counts.iter().sum();
            let mut recv = vec![0u64; total];
            let c: Vec<i32> = counts.iter().map(|&c| c as i32).collect();
            let d: Vec<i32> = counts
                .iter()
                .scan(0i32, |acc, &c| {
                    let d = *acc;
                    *acc += c as i32;
                    Some(d)
                })
                .collect();
            let mut part = PartitionMut::new(&mut recv[..], c, d);
            root.gather_varcount_into_root(send, &mut part);
            Some(recv)
        } else {
            root.gather_varcount_into(send);
            None
        }
    }

    /// Gather payloads of any length to rank 0 (lengths are gathered first).
    /// Returns the concatenation in rank order on rank 0, `None` elsewhere.
    pub fn gather_varlen(&self, send: &[u64]) -> Option<Vec<u64>> {
        let root = self.world.process_at_rank(0);
        let len = send.len() as u64;
        if self.is_root() {
            let mut lens = vec![0u64; self.size()];
            root.gather_into_root(&len, &mut lens[..]);
            let counts: Vec<usize> = lens.iter().map(|&l| l as usize).collect();
            self.gather_words(send, &counts)
        } else {
            root.gather_into(&len);
            self.gather_words(send, &[])
        }
    }

    /// Deliver every rank's `msgs` to rank 0 in rank order, one message at
    /// a time: rank 0 passes its own to `consume` first, then receives each
    /// other rank's in turn (an empty message ends a rank's stream), so it
    /// holds one received message at a time, never everything at once. The
    /// others send (blocking until rank 0 takes each message) and return
    /// `Ok`. An error of `consume` returns at once on rank 0: the caller
    /// must abort the job (the others may be waiting in a send).
    pub fn stream_to_root<E>(
        &self,
        msgs: Vec<Vec<u64>>,
        mut consume: impl FnMut(&[u64]) -> Result<(), E>,
    ) -> Result<(), E> {
        const TAG: mpi::Tag = 14;
        if !self.is_root() {
            let root = self.world.process_at_rank(0);
            for m in msgs {
                root.send_with_tag(&m[..], TAG);
            }
            root.send_with_tag(&[0u64; 0][..], TAG);
            return Ok(());
        }
        for m in msgs {
            consume(&m)?;
        }
        for r in 1..self.size() {
            let from = self.world.process_at_rank(r as i32);
            loop {
                let (m, _) = from.receive_vec_with_tag::<u64>(TAG);
                if m.is_empty() {
                    break;
                }
                consume(&m)?;
            }
        }
        Ok(())
    }

    /// Sorted distinct host names of all ranks, on rank 0 (empty elsewhere).
    pub fn hosts(&self) -> Vec<String> {
        const WORDS: usize = 32;
        let name = mpi::environment::processor_name().unwrap_or_else(|_| "?".into());
        let mut bytes = name.into_bytes();
        bytes.resize(WORDS * 8, 0);
        let words: Vec<u64> = bytes
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        let Some(all) = self.gather_words(&words, &vec![WORDS; self.size()]) else {
            return Vec::new();
        };
        let mut hosts: Vec<String> = all
            .chunks(WORDS)
            .map(|w| {
                let b: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
                String::from_utf8_lossy(&b)
                    .trim_end_matches('\0')
                    .to_string()
            })
            .collect();
        hosts.sort();
        hosts.dedup();
        hosts
    }

    /// Element-wise maximum over ranks of `local`, delivered on rank 0.
    pub fn max_to_root(&self, local: &[f64]) -> Vec<f64> {
        let root = self.world.process_at_rank(0);
        let mut out = vec![0.0; local.len()];
        if self.is_root() {
            root.reduce_into_root(local, &mut out[..], SystemOperation::max());
        } else {
            root.reduce_into(local, SystemOperation::max());
        }
        out
    }

    /// Element-wise maximum over ranks of `local`, delivered on every rank.
    pub fn max_all(&self, local: &[u64]) -> Vec<u64> {
        let mut out = vec![0u64; local.len()];
        self.world
            .all_reduce_into(local, &mut out[..], SystemOperation::max());
        out
    }

    /// Element-wise sum over ranks of `local`, delivered on every rank.
    pub fn sum_all(&self, local: &[u64]) -> Vec<u64> {
        let mut out = vec![0u64; local.len()];
        self.world
            .all_reduce_into(local, &mut out[..], SystemOperation::sum());
        out
    }

    /// Collective: rank 0's `text` (or its error) on every rank. Rank 0
    /// computes it alone (e.g. the metadata of thousands of files, read
    /// once instead of once per rank); the other ranks pass `None`. An
    /// error on rank 0 becomes an error on every rank: rank 0 keeps its
    /// own (printed once by the [`Comm::agree`] that follows), the others
    /// get [`ReportedElsewhere`].
    pub fn share_from_root(&self, local: Option<anyhow::Result<String>>) -> anyhow::Result<String> {
        let root = self.world.process_at_rank(0);
        let (mut ok, mut bytes, err) = match local {
            Some(Ok(t)) => (1u8, t.into_bytes(), None),
            Some(Err(e)) => (0u8, Vec::new(), Some(e)),
            None => (0u8, Vec::new(), None),
        };
        let mut len = bytes.len() as u64;
        // The others wait for rank 0 without spinning: a blocking broadcast
        // polls at full speed, taking the CPU rank 0 is describing with when
        // ranks share cores (measured: 1000 files took longer with 2 ranks
        // than with 1). A nonblocking broadcast, tested every millisecond.
        let mut head = [u64::from(ok), len];
        mpi::request::scope(|scope| {
            let mut req = root.immediate_broadcast_into(scope, &mut head[..]);
            loop {
                match req.test() {
                    Ok(_) => break,
                    Err(r) => {
                        req = r;
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                }
            }
        });
        ok = head[0] as u8;
        len = head[1];
        if ok == 0 {
            return Err(err.unwrap_or_else(|| ReportedElsewhere.into()));
        }
        bytes.resize(len as usize, 0);
        root.broadcast_into(&mut bytes[..]);
        Ok(String::from_utf8(bytes)?)
    }
}

impl chunkwise_io::source::Agree for Comm {
    fn agree<T>(&self, r: anyhow::Result<T>) -> anyhow::Result<T> {
        Comm::agree(self, r)
    }
    fn mpi_comm(&self) -> Option<mpi::ffi::MPI_Comm> {
        Some(self.raw())
    }
}
