//! chunkwise binary: parse the command line, start MPI for the parallel
//! commands, run, and turn errors into one message and a non-zero exit.

use chunkwise::cli::{Cli, Command};
use chunkwise::cmd;
use chunkwise::comm::{Comm, ReportedElsewhere};
use clap::Parser;
use mpi::Threading;

/// Rank of this process as told by the launcher, before MPI is started
/// (0 when not launched by mpirun/srun).
fn launcher_rank() -> usize {
    [
        "OMPI_COMM_WORLD_RANK",
        "PMI_RANK",
        "PMIX_RANK",
        "SLURM_PROCID",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok()?.parse().ok())
    .unwrap_or(0)
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Inspect(a) => cmd::inspect::run(a, launcher_rank() == 0),
        Command::Plan(a) => cmd::plan::run(a),
        Command::Jobscript(a) => cmd::jobscript::run(a),
        // Not an MPI program: it launches mpirun/srun itself.
        Command::Scaling(a) => cmd::scaling::run(a),
        Command::Generate(_) | Command::Reduce(_) | Command::Convert(_) | Command::Formats(_) => {
            // Serialized: the reader thread makes MPI-IO calls (inside HDF5)
            // while the main thread makes none.
            let Some((universe, _)) = mpi::initialize_with_threading(Threading::Serialized) else {
                chunkwise::error::say("chunkwise: error: MPI could not be initialised");
                std::process::exit(2);
            };
            let comm = Comm::new(universe.world());
            let what = match cli.command {
                Command::Generate(_) => "generate",
                Command::Convert(_) => "convert",
                Command::Formats(_) => "formats",
                _ => "reduce",
            };
            chunkwise::interrupt::install(comm.rank(), what);
            let r = match &cli.command {
                Command::Generate(a) => cmd::generate::run(&comm, a),
                Command::Reduce(a) => cmd::reduce::run(&comm, a),
                Command::Convert(a) => cmd::convert::run(&comm, a),
                Command::Formats(a) => cmd::formats::run(&comm, a),
                _ => unreachable!("only the parallel commands start MPI"),
            };
            drop(comm);
            drop(universe); // MPI_Finalize, after every HDF5 object is closed
            r
        }
    };
    if let Err(e) = result {
        if e.downcast_ref::<ReportedElsewhere>().is_none() {
            chunkwise::error::say(&format!("chunkwise: error: {e:#}"));
        }
        std::process::exit(1);
    }
}
