//! chunkwise: statistics over HDF5 / NetCDF-4 arrays that are too big for one
//! process, computed by MPI ranks that each read chunk-aligned blocks with
//! parallel HDF5 and reduce them with a thread pool.
//!
//! Pure logic (parsing, decomposition, accumulators, kernels, value
//! generation, reports) has no MPI or HDF5 calls and is unit tested; `comm`
//! and `h5io` are thin layers over MPI and HDF5; `cmd` holds the commands.

pub mod accum;
pub mod axis_kernel;
pub mod blocksize;
pub mod cf;
pub mod cli;
pub mod cluster;
pub mod cmd;
pub mod comm;
pub mod decomp;
pub mod element;
pub mod encoding;
pub mod error;
pub mod generate_values;
pub mod h5io;
pub mod h5meta;
pub mod interrupt;
pub mod jobscript;
pub mod kernels;
pub mod nc_out;
pub mod parse;
pub mod planner;
pub mod plot;
pub mod procinfo;
pub mod report;
pub mod scaling;
pub mod selection;
pub mod source;
pub mod testhooks;
pub mod tree;
