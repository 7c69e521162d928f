//! Many HDF5 / NetCDF-4 files as one dataset (see `chunkwise_core::concat`).
//!
//! * [`expand`]: the inputs as given — file names and shell-style glob
//!   patterns, expanded here (quoted on the command line, so 10 000 files
//!   never meet the shell's or `srun`'s argument limits).
//! * [`describe_many`]: each file's metadata read once, on the calling rank
//!   (the binary calls it on rank 0 and broadcasts the plan), and checked to
//!   agree.
//! * [`MultiReader`]: reads a block whose records may lie in several files;
//!   each rank opens files on its own (serial HDF5, no collective open of
//!   every file on every rank) and keeps at most [`MAX_OPEN`] open at once.

use super::{Format, InputSpec, detect_format};
use crate::IoError;
use crate::chunk_direct::Staged;
use crate::decomp::Block;
use crate::element::Element;
use crate::h5io;
use crate::selection::AxisRange;
use chunkwise_core::concat::{Concat, record_dim};
use chunkwise_core::variable::VariableMeta;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Files open at once per rank (file-descriptor limits, metadata-server
/// load on Lustre): enough for a block that straddles a file boundary.
pub const MAX_OPEN: usize = 4;

/// The files named by the inputs: each pattern expanded and sorted by
/// name (the dataset is ordered by coordinate later), duplicates dropped.
/// A pattern that matches nothing is an error naming it.
pub fn expand(spec: &InputSpec) -> Result<Vec<PathBuf>, IoError> {
    let mut out: Vec<PathBuf> = Vec::new();
    for p in spec.all_paths() {
        if !chunkwise_core::request::is_pattern(p) || p.exists() {
            out.push(p.clone());
            continue;
        }
        let text = p.to_string_lossy();
        let mut matched: Vec<PathBuf> = glob::glob(&text)
            .map_err(|e| IoError::Parse(format!("input pattern '{text}': {e}")))?
            .filter_map(Result::ok)
            .filter(|m| m.is_file())
            .collect();
        if matched.is_empty() {
            return Err(IoError::Input(format!(
                "input pattern '{text}' matches no file"
            )));
        }
        matched.sort();
        out.extend(matched);
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    Ok(out)
}

/// Describe every file of a multi-file input and plan their concatenation.
pub fn describe_many(spec: &InputSpec) -> Result<Concat, IoError> {
    let var = spec.var.as_deref().ok_or_else(|| {
        IoError::Parse("several input files: name the variable with --var".into())
    })?;
    let files = expand_hdf5(spec)?;
    let mut many = plan_variables(&files, &[var.to_string()], &[], spec.concat.as_deref())?;
    Ok(many.plans.remove(0))
}

/// The files of a multi-file input ([`expand`]), refusing raw-input options.
pub fn expand_hdf5(spec: &InputSpec) -> Result<Vec<PathBuf>, IoError> {
    if spec.raw.is_some() {
        return Err(IoError::Parse(
            "--raw-dtype/--raw-shape apply to one raw file, not to several inputs".into(),
        ));
    }
    expand(spec)
}

/// Several variables of a multi-file dataset, planned at once.
#[derive(Clone, Debug)]
pub struct ManyVars {
    /// One plan per variable asked for, in that order.
    pub plans: Vec<Concat>,
    /// Bytes stored over all the files: one entry per variable, then one
    /// per `extra` dataset (0 where a file lacks it).
    pub storage: Vec<u64>,
}

/// Plan the concatenation of each of `vars` over `files` along its record
/// dimension (`concat`, else the unlimited one, else `time`; it must be
/// the variable's first), each file opened once: its metadata read with
/// [`h5io::variable_meta_in`], checked to agree ([`Concat::plan`]); the
/// storage size of `extra` datasets (coordinates, bounds) summed too.
pub fn plan_variables(
    files: &[PathBuf],
    vars: &[String],
    extra: &[String],
    concat: Option<&str>,
) -> Result<ManyVars, IoError> {
    let first = files
        .first()
        .ok_or_else(|| IoError::Input("no input files".into()))?;
    let mut described: Vec<Vec<(String, VariableMeta)>> =
        vec![Vec::with_capacity(files.len()); vars.len()];
    let mut storage = vec![0u64; vars.len() + extra.len()];
    for f in files {
        // One open and two small reads before HDF5's own open; the format
        // is told apart only for the message.
        if let Err(e) = h5io::precheck_input(f) {
            return Err(match detect_format(f)? {
                Format::Hdf5 => e,
                _ => IoError::Input(format!(
                    "'{}': several inputs must all be HDF5 / NetCDF-4 files",
                    f.display()
                )),
            });
        }
        let file = h5io::open_serial(f)?;
        for (k, var) in vars.iter().enumerate() {
            let meta = h5io::variable_meta_in(&file, f, var)?;
            storage[k] += file.dataset(var).map_or(0, |d| d.storage_size());
            described[k].push((f.to_string_lossy().into_owned(), meta));
        }
        for (k, name) in extra.iter().enumerate() {
            storage[vars.len() + k] += file.dataset(name).map_or(0, |d| d.storage_size());
        }
    }
    let mut plans = Vec::with_capacity(vars.len());
    for (var, described) in vars.iter().zip(described) {
        let record = record_dim(
            &described[0].1.dims.names,
            concat,
            h5io::unlimited_dim(first, var).as_deref(),
        )?;
        let plan = Concat::plan(described, &record)?;
        if plan.axis != 0 {
            return Err(IoError::Input(format!(
                "files are concatenated along '{record}', which must be the first dimension of '{var}'"
            )));
        }
        plans.push(plan);
    }
    Ok(ManyVars { plans, storage })
}

/// `--var all`: the data variables of the (first) input file that have
/// every dimension in `reduced` and, over several files, a record dimension
/// to concatenate along (see [`h5io::data_variables`]).
pub fn all_variables(spec: &InputSpec, reduced: &[String]) -> Result<Vec<String>, IoError> {
    let first = expand(spec)?
        .into_iter()
        .next()
        .ok_or_else(|| IoError::Input("no input file".into()))?;
    let file = h5io::open_serial(&first)?;
    let mut out = Vec::new();
    for name in h5io::data_variables(&first)? {
        let Ok(ds) = file.dataset(&name) else {
            continue;
        };
        let dims = h5io::read_dims(&file, &ds).names;
        let has_reduced = reduced.iter().all(|d| dims.contains(d));
        let has_record = !spec.is_multi()
            || record_dim(
                &dims,
                spec.concat.as_deref(),
                h5io::unlimited_dim(&first, &name).as_deref(),
            )
            .is_ok_and(|r| dims.first() == Some(&r));
        if has_reduced && has_record {
            out.push(name);
        }
    }
    Ok(out)
}

/// Reads blocks of a multi-file dataset, opening files as needed.
pub struct MultiReader {
    plan: Concat,
    var: String,
    /// Open files, most recently used last.
    open: Mutex<Vec<OpenPart>>,
}

/// One open file of a multi-file dataset.
struct OpenPart {
    /// Index of the file in the plan.
    idx: usize,
    /// Kept open while its dataset is in use.
    _file: hdf5::File,
    ds: hdf5::Dataset,
    /// Deflate/shuffle/fletcher32 chunks decoded outside libhdf5, in the
    /// caller's pool (as for one file, see [`crate::chunk_direct`]).
    direct: Option<crate::chunk_direct::ChunkDirect>,
}

impl MultiReader {
    /// A reader of `plan`'s files (nothing is opened yet).
    pub fn new(plan: Concat, var: String) -> MultiReader {
        MultiReader {
            plan,
            var,
            open: Mutex::new(Vec::new()),
        }
    }

    /// Read `block` (in the index space of the selection `sel`, records on
    /// axis 0) into the first `block.len()` elements of `buf`; chunks read
    /// chunk-direct are left in `staged` (see [`super::Reader::stage_block`]).
    pub fn stage_block<T: Element>(
        &self,
        block: &Block,
        sel: &[AxisRange],
        buf: &mut [T],
        staged: &mut Staged,
    ) -> Result<(), IoError> {
        let s0 = sel[0];
        let inner: usize = block.count[1..].iter().product();
        // Selection indices i (block.start[0] ≤ i < block end) map to records
        // s0.start + i·step; split them at file boundaries.
        let mut i = block.start[0];
        let end = block.start[0] + block.count[0];
        while i < end {
            let rec = s0.index(i);
            let seg = self.plan.segments(rec, 1)[0];
            let part = &self.plan.parts[seg.file];
            let part_end = part.offset + part.len;
            // How many selected records from i stay inside this file.
            let k = ((part_end - rec - 1) / s0.step + 1).min(end - i);
            let mut local_sel = sel.to_vec();
            local_sel[0] = AxisRange {
                start: rec - part.offset,
                count: k,
                step: s0.step,
                wrap: None,
            };
            let mut local = block.clone();
            local.start[0] = 0;
            local.count[0] = k;
            let at = (i - block.start[0]) * inner;
            let out = &mut buf[at..at + k * inner];
            self.with_dataset(seg.file, |p| match &p.direct {
                Some(d) if d.handles(&local_sel) => d.stage(&p.ds, &local, &local_sel, at, staged),
                _ => h5io::read_block(&p.ds, &local, &local_sel, out),
            })?;
            i += k;
        }
        Ok(())
    }

    /// Run `f` on file `idx`'s dataset, opening it (and closing the least
    /// recently used one beyond [`MAX_OPEN`]) when needed.
    fn with_dataset<R>(
        &self,
        idx: usize,
        f: impl FnOnce(&OpenPart) -> Result<R, IoError>,
    ) -> Result<R, IoError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let pos = match open.iter().position(|p| p.idx == idx) {
            Some(p) => p,
            None => {
                let path = Path::new(&self.plan.parts[idx].path);
                let file = h5io::open_serial(path)?;
                // The plain open first; the checks that name what is wrong
                // only when it fails.
                let ds = match file.dataset(&self.var) {
                    Ok(ds) => ds,
                    Err(_) => h5io::open_dataset(&file, &self.var, &path.display().to_string())?,
                };
                let off = std::env::var("CHUNKWISE_NO_CHUNK_DIRECT").is_ok_and(|v| v == "1");
                let direct = if off {
                    None
                } else {
                    h5io::dataset_dtype(&ds, &self.var)
                        .ok()
                        .and_then(|t| crate::chunk_direct::ChunkDirect::plan(&ds, t))
                };
                if open.len() >= MAX_OPEN {
                    open.remove(0);
                }
                open.push(OpenPart {
                    idx,
                    _file: file,
                    ds,
                    direct,
                });
                open.len() - 1
            }
        };
        let entry = open.remove(pos);
        open.push(entry);
        f(open.last().expect("just pushed"))
    }
}
