//! chunkwise-io: reading and writing arrays. HDF5 / NetCDF-4 (parallel HDF5
//! over MPI-IO), `.npy`, raw binary and Zarr v3 inputs sit behind one
//! [`source::Source`] / [`source::Reader`] interface with a [`source::Format`]
//! tag; NetCDF-4 results are written by [`nc_out`], metadata carried over by
//! [`h5meta`]. No communicator lives here: parallel opens take the raw
//! `MPI_Comm` handle of the caller's communicator, and agreeing on errors
//! across ranks is the caller's job.

pub mod aux_var;
pub mod chunk_direct;
pub mod error;
pub mod h5check;
pub mod h5io;
pub mod h5meta;
pub mod input_file;
pub mod nc_out;
pub mod source;
pub mod zarr_out;

pub use error::IoError;

// Core modules under their own names, for brevity inside this crate.
use chunkwise_core::{cf, decomp, element, encoding, hyperslab, selection, with_dtype};
