//! `chunkwise formats` (placeholder, filled in below).
use crate::cli::FormatsArgs;
use crate::comm::Comm;
/// Run `formats`.
pub fn run(_comm: &Comm, _a: &FormatsArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
