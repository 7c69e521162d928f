//! chunkwise-core: everything `chunkwise` computes that needs no MPI, HDF5,
//! command-line parser or operating-system call, so it is unit tested and
//! benchmarked on any machine.
//!
//! Data flow of a `reduce`: a typed [`request`] → [`decomp`] into blocks
//! (sized by [`blocksize`]) → per-block [`kernels`] / [`axis_kernel`] giving
//! [`accum::Acc`] partials → [`pieces`] (the wire form ranks send) → the fixed
//! merge [`tree`] → [`report`]. Around it: [`selection`], [`cf`] decoding,
//! [`planner`] and [`cluster`] profiles, [`jobscript`] rendering and the
//! [`scaling`] study logic.

pub mod accum;
pub mod axis_kernel;
pub mod axis_range;
pub mod blocksize;
pub mod cf;
pub mod cftime;
pub mod chunk_index;
pub mod cluster;
pub mod concat;
pub mod date_select;
pub mod decomp;
pub mod element;
pub mod encoding;
pub mod error;
pub mod generate_values;
pub mod group_pieces;
pub mod grouping;
pub mod h5_header;
pub mod hyperslab;
pub mod jobscript;
pub mod kernels;
pub mod multi_var;
pub mod number_format;
pub mod parse;
pub mod periodic;
pub mod pieces;
pub mod planner;
pub mod quantile;
pub mod reduce_layout;
pub mod report;
pub mod request;
pub mod scaling;
pub mod selection;
pub mod temp_name;
pub mod time_groups;
pub mod tree;
pub mod utc;
pub mod variable;
pub mod weighted_kernel;
pub mod weights;

pub use error::CwError;
