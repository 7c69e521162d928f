//! Error type for user-facing failures. Every variant's message names the
//! file, variable or flag at fault, because it is printed once for the whole job.

use thiserror::Error;

/// A failure that ends the job with one clear message.
#[derive(Debug, Error)]
pub enum CwError {
    /// A command-line value could not be parsed.
    #[error("{0}")]
    Parse(String),
    /// The input file or variable is unusable.
    #[error("{0}")]
    Input(String),
    /// The output cannot be written as asked.
    #[error("{0}")]
    Output(String),
    /// An internal invariant did not hold (a bug, reported rather than panicking).
    #[error("internal error: {0}")]
    Internal(String),
    /// A failure from another layer (reading or writing files), kept with
    /// its source chain.
    #[error(transparent)]
    External(Box<dyn std::error::Error + Send + Sync + 'static>),
}
