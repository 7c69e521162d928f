//! `chunkwise generate`: write a synthetic dataset with collective parallel
//! HDF5. Every rank fills and writes its own blocks; each value depends only
//! on (seed, global index), so the file is the same for any rank count.

use super::output;
use crate::comm::Comm;
use crate::decomp::{Decomposition, for_each_row};
use crate::element::{Dtype, Element};
use crate::error::CwError;
use crate::generate_values::value_at;
use crate::parse::{Dist, parse_dist};
use crate::request::GenerateRequest;
use crate::{h5io, with_dtype};
use rayon::prelude::*;
use std::path::PathBuf;
use std::time::Instant;

/// Validated `generate` settings.
#[derive(Clone, Debug)]
pub struct GeneratePlan {
    /// Final output path.
    pub out: PathBuf,
    /// Dataset path.
    pub var: String,
    /// Array shape.
    pub shape: Vec<usize>,
    /// Storage chunk shape, if chunked.
    pub chunks: Option<Vec<usize>>,
    /// Element type.
    pub dtype: Dtype,
    /// Value distribution.
    pub dist: Dist,
    /// Seed.
    pub seed: u64,
    /// Probability of NaN per element.
    pub nan_fraction: f64,
    /// Block budget in bytes.
    pub block_bytes: u64,
}

fn validate(a: &GenerateRequest) -> anyhow::Result<GeneratePlan> {
    let shape = a.shape.clone();
    let chunks = a.chunks.clone();
    if let Some(c) = &chunks {
        if c.len() != shape.len() {
            return Err(CwError::Parse(format!(
                "--chunks has {} dimensions but --shape has {}",
                c.len(),
                shape.len()
            ))
            .into());
        }
        if c.iter().zip(&shape).any(|(c, d)| c > d) {
            return Err(
                CwError::Parse(format!("--chunks {c:?} is larger than --shape {shape:?}")).into(),
            );
        }
        let bytes: u64 = c.iter().map(|&v| v as u64).product();
        if bytes >= 1 << 32 {
            return Err(
                CwError::Parse("--chunks: HDF5 chunks must be smaller than 4 GiB".into()).into(),
            );
        }
    }
    let dtype = a.dtype;
    let dist = parse_dist(&a.dist)?;
    if !(0.0..=1.0).contains(&a.nan_fraction) {
        return Err(CwError::Parse(format!(
            "--nan-fraction {} must be between 0 and 1",
            a.nan_fraction
        ))
        .into());
    }
    if a.nan_fraction > 0.0 && !dtype.is_float() {
        return Err(
            CwError::Parse(format!("--nan-fraction needs a float --dtype, not {dtype}")).into(),
        );
    }
    let block_bytes = a.block_bytes();
    if a.var.trim_matches('/').is_empty() {
        return Err(CwError::Parse("--var must name a dataset".into()).into());
    }
    output::check_output(&a.out, a.force, &[])?;
    Ok(GeneratePlan {
        out: a.out.clone(),
        var: a.var.trim_matches('/').to_string(),
        shape,
        chunks,
        dtype,
        dist,
        seed: a.seed,
        nan_fraction: a.nan_fraction,
        block_bytes,
    })
}

/// Run `generate` on every rank; rank 0 prints a summary.
pub fn run(comm: &Comm, args: &GenerateRequest) -> anyhow::Result<()> {
    // Checks on every rank, then agreement (comm::agree) before any collective.
    let plan = comm.agree(validate(args))?;
    let t0 = Instant::now();
    let tmp = output::TempOutput::create_collective(
        comm,
        &plan.out,
        args.force,
        output::Kind::File,
        &[],
        true,
    )?;
    // Every rank returns from write_file together: write failures abort the
    // job, create/open/close failures are agreed inside it.
    with_dtype!(plan.dtype, T => write_file::<T>(comm, &plan, tmp.path()))?;
    tmp.finishing();
    let committed = if comm.is_root() {
        tmp.commit()
    } else {
        drop(tmp);
        Ok(())
    };
    comm.agree(committed.map_err(Into::into))?;
    if comm.is_root() {
        let bytes = plan.shape.iter().product::<usize>() as u64 * plan.dtype.size() as u64;
        crate::outln!(
            "wrote {} ({} {:?}, {}) in {:.3} s with {} rank(s)",
            plan.out.display(),
            plan.dtype,
            plan.shape,
            crate::parse::human_bytes(bytes),
            t0.elapsed().as_secs_f64(),
            comm.size()
        )?;
    }
    Ok(())
}

fn dist_text(d: Dist) -> String {
    match d {
        Dist::Normal { mean, std } => format!("normal:{mean},{std}"),
        Dist::Uniform { lo, hi } => format!("uniform:{lo},{hi}"),
    }
}

/// Create the file and dataset (collective) and write every block.
fn write_file<T: Element>(
    comm: &Comm,
    plan: &GeneratePlan,
    tmp: &std::path::Path,
) -> anyhow::Result<()> {
    let file = comm.agree(h5io::create_mpio(tmp, comm.raw()).map_err(Into::into))?;
    let enc = crate::encoding::Encoding {
        chunks: plan.chunks.clone(),
        gzip: None,
        shuffle: false,
    };
    let created = (|| -> Result<hdf5::Dataset, hdf5::Error> {
        let ds = h5io::create_dataset(&file, &plan.var, T::DTYPE, &plan.shape, &enc)?;
        ds.new_attr::<u64>()
            .create("chunkwise_seed")?
            .write_scalar(&plan.seed)?;
        let dist: hdf5::types::VarLenUnicode = dist_text(plan.dist).parse().expect("ascii");
        ds.new_attr::<hdf5::types::VarLenUnicode>()
            .create("chunkwise_dist")?
            .write_scalar(&dist)?;
        ds.new_attr::<f64>()
            .create("chunkwise_nan_fraction")?
            .write_scalar(&plan.nan_fraction)?;
        Ok(ds)
    })();
    let ds = super::parallel_write::create(comm, &plan.out, &plan.var, || created);
    let d = Decomposition::new(
        &plan.shape,
        plan.chunks.as_deref(),
        plan.dtype.size(),
        plan.block_bytes,
    );
    let last = plan.shape.len() - 1;
    super::parallel_write::write_blocks::<T>(comm, "generate", &ds, &plan.out, &d, |b, buf| {
        let row_len = b.count[last];
        let mut offsets = Vec::with_capacity(b.len() / row_len);
        for_each_row(&plan.shape, &b.start, &b.count, |_, off| offsets.push(off));
        buf.par_chunks_mut(row_len)
            .zip(offsets.par_iter())
            .for_each(|(row, &off)| {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = T::from_f64(value_at(
                        plan.seed,
                        off + j as u64,
                        plan.dist,
                        plan.nan_fraction,
                    ));
                }
            });
        Ok(())
    });
    drop(ds);
    super::parallel_write::close(comm, file, &plan.out)
}
