//! Fixed-cost baseline for `benches/speed.sh`: the least an MPI + parallel
//! HDF5 program does — start MPI, create one HDF5 file with the MPI-IO
//! driver, close it, finalize. `chunkwise reduce` of a tiny file is compared
//! with `mpirun -n 2` of this to show the start-up work chunkwise adds.
//!
//! Usage: `mpirun -n 2 target/release/examples/minimal_mpio OUT.h5`

use mpi::traits::*;

fn main() {
    let universe = mpi::initialize().expect("MPI could not be initialised");
    let world = universe.world();
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "minimal_mpio.h5".into());
    let file = hdf5::FileBuilder::new()
        .with_fapl(|p| p.mpio(world.as_raw(), None))
        .create(&path)
        .expect("create the file with the MPI-IO driver");
    file.close().expect("close");
}
