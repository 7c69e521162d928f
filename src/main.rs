//! chunkwise binary: parse the command line, start MPI for the parallel
//! commands, run, and turn errors into one message and a non-zero exit.
//!
//! The binary holds what needs MPI, the command-line parser or the operating
//! system: [`cli`] (clap definitions and their conversion into the core's
//! typed requests), [`cmd`] (one module per command), [`comm`] (MPI
//! agreement and collectives), [`interrupt`] (signals), [`testhooks`],
//! [`procinfo`] and the plots of `scaling report` (`cmd::plot`). Everything it computes comes from
//! `chunkwise-core`; everything it reads and writes goes through
//! `chunkwise-io`.

mod cli;
mod cmd;
mod comm;
mod error;
mod interrupt;
mod procinfo;
mod progress;
mod scaling_args;
mod stdout;
mod testhooks;

// The library crates' modules under short names (`crate::decomp`, …).
use chunkwise_core::{
    accum, axis_kernel, blocksize, cluster, decomp, element, encoding, generate_values,
    group_pieces, grouping, jobscript, multi_var, parse, pieces, planner, quantile, reduce_layout,
    report, request, scaling, selection, temp_name, variable, weighted_kernel, weights, with_dtype,
};
use chunkwise_io::{aux_var, h5io, h5meta, nc_out, source, zarr_out};

use clap::Parser;
use cli::{Cli, Command};
use comm::{Comm, ReportedElsewhere};
use mpi::Threading;

/// Rank of this process as told by the launcher, before MPI is started
/// (0 when not launched by mpirun/srun).
pub(crate) fn launcher_rank() -> usize {
    first_env_number(&[
        "OMPI_COMM_WORLD_RANK",
        "PMI_RANK",
        "PMIX_RANK",
        "SLURM_PROCID",
    ])
}

/// Rank of this process among those of its node, as told by the launcher
/// (0 when not launched by mpirun/srun).
pub(crate) fn launcher_local_rank() -> usize {
    first_env_number(&[
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "MPI_LOCALRANKID",
        "PMI_LOCAL_RANK",
        "SLURM_LOCALID",
    ])
}

/// The first of the environment variables `names` that holds a number, else 0.
fn first_env_number(names: &[&str]) -> usize {
    names
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
        .unwrap_or(0)
}

/// MPI-IO settings made before `MPI_Init` (which reads them from the
/// environment), unless the user set them:
/// `OMPI_MCA_io=^ompio` — Open MPI uses ROMIO for MPI-IO instead of its
/// OMPIO component. OMPIO opens shared-file-pointer state with every file
/// (a file in the session directory named after the data file, whose name
/// overflowed a fixed buffer for long names, and a POSIX semaphore; or side
/// files next to the output on several nodes), and cannot be told not to:
/// with every `sharedfp` component excluded it opens no file at all.
/// chunkwise never uses a shared file pointer (every access has an explicit
/// offset), and ROMIO creates that state only on first use. Other MPI
/// libraries (MPICH, Intel MPI, Cray MPICH: ROMIO already) ignore it.
fn mpi_io_settings() {
    const KEY: &str = "OMPI_MCA_io";
    if std::env::var_os(KEY).is_none() {
        // Safety: called before any other thread exists (MPI, rayon and the
        // signal watcher start later).
        unsafe { std::env::set_var(KEY, "^ompio") };
    }
}

/// Parse the command line. Under a launcher every rank parses the same
/// arguments, so a usage error (or `--help`) would be printed once per rank,
/// interleaved; only the launcher's rank 0 prints it, in one write, and
/// every rank exits with clap's status.
fn parse_command_line() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if launcher_rank() == 0 {
                let text = e.render().to_string();
                let text = text.trim_end();
                if e.use_stderr() {
                    error::say(text);
                } else {
                    let _ = stdout::println(text);
                }
            } else if e.exit_code() != 0 {
                // mpirun ends the job when the first rank exits non-zero,
                // possibly before rank 0 has printed: let rank 0 go first
                // (its exit ends this rank; the wait is bounded).
                std::thread::sleep(std::time::Duration::from_secs(10));
            }
            std::process::exit(e.exit_code());
        }
    }
}

fn main() {
    keep_freed_memory();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = parse_command_line();
    match &cli.command {
        Command::Generate(a) => progress::configure(a.progress.settings()),
        Command::Reduce(a) => progress::configure(a.progress.settings()),
        Command::Convert(a) => progress::configure(a.progress.settings()),
        Command::Formats(a) => progress::configure(a.progress.settings()),
        Command::Scaling(cli::ScalingArgs {
            command: cli::ScalingCommand::Run(a),
        }) => progress::configure(a.progress.settings()),
        _ => {}
    }
    let result = match &cli.command {
        Command::Inspect(a) => cmd::inspect::run(a, launcher_rank() == 0),
        Command::Plan(a) => cmd::plan::run(a),
        Command::Jobscript(a) => cmd::jobscript::run(a),
        Command::Completions(a) => cmd::completions::completions(a),
        Command::Man(a) => cmd::completions::man(a),
        // Not an MPI program: it launches mpirun/srun itself.
        Command::Scaling(a) => cmd::scaling::run(a),
        Command::Generate(_) | Command::Reduce(_) | Command::Convert(_) | Command::Formats(_) => {
            let what = match cli.command {
                Command::Generate(_) => "generate",
                Command::Convert(_) => "convert",
                Command::Formats(_) => "formats",
                _ => "reduce",
            };
            // Before MPI_Init: a signal during start-up is reported, too.
            interrupt::install(launcher_rank(), what);
            mpi_io_settings();
            // Serialized: the reader thread makes MPI-IO calls (inside HDF5)
            // while the main thread makes none.
            let Some((universe, _)) = mpi::initialize_with_threading(Threading::Serialized) else {
                error::say("chunkwise: error: MPI could not be initialised");
                std::process::exit(2);
            };
            let comm = Comm::new(universe.world());
            interrupt::set_rank(comm.rank());
            let r = match &cli.command {
                // Typed requests, parsed once and agreed (so a bad value is
                // reported once, by rank 0, and every rank exits).
                Command::Generate(a) => comm
                    .agree(request::GenerateRequest::try_from(a).map_err(Into::into))
                    .and_then(|r| cmd::generate::run(&comm, &r)),
                Command::Reduce(a) => comm
                    .agree(request::ReduceRequest::try_from(a).map_err(Into::into))
                    .and_then(|r| cmd::reduce::run(&comm, &r)),
                Command::Convert(a) => comm
                    .agree(request::ConvertRequest::try_from(a).map_err(Into::into))
                    .and_then(|r| cmd::convert::run(&comm, &r)),
                Command::Formats(a) => cmd::formats::run(&comm, a),
                _ => unreachable!("only the parallel commands start MPI"),
            };
            // Everything is said before MPI_Finalize, which may never return
            // when a launcher is ending the job (see `interrupt`).
            if let Err(e) = &r {
                report_error(e);
            }
            interrupt::ended(r.is_ok(), what);
            drop(comm);
            drop(universe); // MPI_Finalize, after every HDF5 object is closed
            // What a launcher's signal arriving after this point finds: a
            // process whose work is done (tests tell the cases apart by it).
            log::info!("rank {}: MPI finalized", launcher_rank());
            if r.is_err() {
                std::process::exit(1);
            }
            r
        }
    };
    if let Err(e) = result {
        // The commands without MPI run alike on every rank under a launcher:
        // only the launcher's rank 0 says what went wrong (one message).
        if launcher_rank() == 0 {
            report_error(&e);
        }
        std::process::exit(1);
    }
}

/// Let glibc's allocator keep and reuse freed memory below 64 MiB instead
/// of returning it to the kernel. Reductions make and drop partial results
/// of a few MiB per leaf (a map of per-cell state per group met); by
/// default each is a fresh `mmap` whose pages fault in one by one and are
/// unmapped again when dropped, which cost a grouped time reduction as
/// much system time as its reading. Peak memory is unchanged: what is kept
/// is reused by the next allocation.
fn keep_freed_memory() {
    // SAFETY: mallopt only sets allocator parameters; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

/// Print `e` as the one `chunkwise: error` line (unless it was reported
/// already, e.g. by the rank that failed).
fn report_error(e: &anyhow::Error) {
    if e.downcast_ref::<ReportedElsewhere>().is_none() {
        interrupt::before_error();
        error::say(&format!("chunkwise: error: {e:#}"));
    }
}
