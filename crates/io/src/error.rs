//! Errors of the input/output layer. Each keeps its source (an HDF5 error,
//! an OS error, a core validation error) so `{:#}` prints the whole chain.

use chunkwise_core::CwError;
use thiserror::Error;

/// A failure to read or write a file.
#[derive(Debug, Error)]
pub enum IoError {
    /// A value given by the user could not be parsed.
    #[error("{0}")]
    Parse(String),
    /// The input file or variable is unusable.
    #[error("{0}")]
    Input(String),
    /// The output cannot be written as asked.
    #[error("{0}")]
    Output(String),
    /// A raw HDF5 C call failed (the message names the call and the object).
    #[error("HDF5: {0}")]
    Hdf5Call(String),
    /// The HDF5 library reported an error.
    #[error("HDF5: {0}")]
    Hdf5(#[from] hdf5::Error),
    /// A validation error from the core.
    #[error(transparent)]
    Core(#[from] CwError),
}

impl From<IoError> for CwError {
    /// Core errors come back as they were; others are kept whole as the source.
    fn from(e: IoError) -> CwError {
        match e {
            IoError::Core(c) => c,
            other => CwError::External(Box::new(other)),
        }
    }
}
