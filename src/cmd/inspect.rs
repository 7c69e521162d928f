//! `chunkwise inspect`: what is in a file and how it is stored — groups,
//! datasets with shape, type, layout, chunking, filters, storage vs logical
//! size, fill value, attributes and NetCDF-4 dimension names.
//!
//! Every input `reduce` accepts is described with the same JSON shape: HDF5
//! / NetCDF-4 files are walked here; `.npy`, raw (`--raw-dtype`,
//! `--raw-shape`) and Zarr v3 arrays go through the io crate's
//! [`crate::source::describe`] (the same description `reduce` uses), and a
//! Zarr v3 group lists each array in it.

use crate::cli::InspectArgs;
use crate::error::CwError;
use crate::h5io;
use crate::parse::human_bytes;
use crate::request::InputSpec;
use crate::source::{self, FlatKind, Format, Source, zarr};
use serde::Serialize;
use std::path::Path;

/// One attribute, rendered as text.
#[derive(Debug, Serialize)]
pub struct AttrInfo {
    /// Attribute name.
    pub name: String,
    /// Value as text (numbers comma-separated, strings as-is).
    pub value: String,
}

/// One dataset's description.
#[derive(Debug, Serialize)]
pub struct DatasetInfo {
    /// Full path in the file.
    pub path: String,
    /// Extents.
    pub shape: Vec<usize>,
    /// HDF5 type, as text.
    pub dtype: String,
    /// `contiguous`, `chunked` or `compact`.
    pub layout: String,
    /// Chunk shape, when chunked.
    pub chunks: Option<Vec<usize>>,
    /// Filters in pipeline order (e.g. `shuffle`, `deflate(4)`).
    pub filters: Vec<String>,
    /// Bytes allocated in the file.
    pub storage_bytes: u64,
    /// Bytes of the data in memory (elements × element size).
    pub logical_bytes: u64,
    /// Fill value, as text.
    pub fill_value: Option<String>,
    /// NetCDF-4 / HDF5 dimension-scale names, one per axis, when attached.
    pub dims: Option<Vec<String>>,
    /// Attributes (excluding the dimension-scale bookkeeping).
    pub attributes: Vec<AttrInfo>,
    /// NetCDF-4 dimension id, when this dataset is a netCDF dimension.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netcdf_dimid: Option<i64>,
}

/// One group's description.
#[derive(Debug, Serialize)]
pub struct GroupInfo {
    /// Full path in the file.
    pub path: String,
    /// Attributes of the group (global attributes for `/`).
    pub attributes: Vec<AttrInfo>,
}

/// The whole file's description.
#[derive(Debug, Serialize)]
pub struct FileInfo {
    /// File as given.
    pub file: String,
    /// Input format: `hdf5`, `zarr`, `npy` or `raw`.
    pub format: String,
    /// File size on disk.
    pub file_bytes: u64,
    /// Groups, depth first.
    pub groups: Vec<GroupInfo>,
    /// Datasets, depth first.
    pub datasets: Vec<DatasetInfo>,
}

/// Run `inspect` (no MPI needed; under a launcher only rank 0 prints).
pub fn run(args: &InspectArgs, print: bool) -> anyhow::Result<()> {
    let spec = args.raw.input(&args.file, None)?;
    let info = describe_input(&spec)?;
    if print {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&info)?);
        } else {
            print!("{}", to_text(&info));
        }
    }
    Ok(())
}

/// Describe any input `reduce` accepts: every group and dataset of an
/// HDF5 / NetCDF-4 file or Zarr v3 group, or the one array of a Zarr
/// array, `.npy` or raw file.
pub fn describe_input(spec: &InputSpec) -> Result<FileInfo, CwError> {
    let path = &spec.path;
    let format = source::detect_format(path)?;
    if format == Format::Hdf5 && spec.raw.is_none() {
        return describe(path);
    }
    let mut info = FileInfo {
        file: path.display().to_string(),
        format: format.name().into(),
        file_bytes: tree_bytes(path, false),
        groups: Vec::new(),
        datasets: Vec::new(),
    };
    if format == Format::Zarr
        && let Some(g) = zarr::group_arrays(path)?
    {
        walk_zarr(&g, path, &mut info)?;
        return Ok(info);
    }
    info.groups.push(GroupInfo {
        path: "/".into(),
        attributes: Vec::new(),
    });
    info.datasets
        .push(describe_array(spec, &format!("/{}", stem(path)))?);
    Ok(info)
}

/// A Zarr group and its arrays, depth first; paths relative to `root`.
fn walk_zarr(g: &zarr::ZarrGroup, root: &Path, info: &mut FileInfo) -> Result<(), CwError> {
    let rel = |p: &Path| {
        let r = p
            .strip_prefix(root)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned();
        format!("/{r}")
    };
    info.groups.push(GroupInfo {
        path: rel(&g.path),
        attributes: text_attrs(&g.attrs),
    });
    for a in &g.arrays {
        let spec = InputSpec {
            path: a.clone(),
            var: None,
            raw: None,
            ..InputSpec::default()
        };
        info.datasets.push(describe_array(&spec, &rel(a))?);
    }
    for sub in &g.groups {
        walk_zarr(sub, root, info)?;
    }
    Ok(())
}

fn text_attrs(a: &[(String, String)]) -> Vec<AttrInfo> {
    let mut v: Vec<AttrInfo> = a
        .iter()
        .map(|(name, value)| AttrInfo {
            name: name.clone(),
            value: value.clone(),
        })
        .collect();
    v.sort_by(|x, y| x.name.cmp(&y.name));
    v
}

/// The file (or directory) name without its extension.
fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into())
}

/// Bytes of a file, or of the files under a directory (`chunks_only`: not
/// counting the `zarr.json` metadata files).
fn tree_bytes(p: &Path, chunks_only: bool) -> u64 {
    let Ok(m) = std::fs::metadata(p) else {
        return 0;
    };
    if !m.is_dir() {
        let meta = chunks_only && p.file_name().is_some_and(|n| n == "zarr.json");
        return if meta { 0 } else { m.len() };
    }
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| tree_bytes(&e.path(), chunks_only))
                .sum()
        })
        .unwrap_or(0)
}

/// One array of a non-HDF5 input, from the description `reduce` uses.
fn describe_array(spec: &InputSpec, name: &str) -> Result<DatasetInfo, CwError> {
    let (src, meta) = source::describe(spec)?;
    let elem = meta.dtype.size() as u64;
    let logical_bytes = meta.shape.iter().product::<usize>() as u64 * elem;
    let dtype = meta.dtype.numpy_name().to_string();
    Ok(match &src {
        Source::Zarr(z) => DatasetInfo {
            path: name.into(),
            shape: meta.shape.clone(),
            dtype,
            layout: "chunked".into(),
            chunks: z.chunk.clone(),
            filters: z.codecs.clone(),
            storage_bytes: tree_bytes(&z.path, true),
            logical_bytes,
            fill_value: z.fill_value.clone(),
            dims: Some(z.dims.clone()),
            attributes: text_attrs(&z.attrs),
            netcdf_dimid: None,
        },
        Source::Flat { kind, layout } => DatasetInfo {
            path: name.into(),
            shape: meta.shape.clone(),
            dtype,
            layout: "contiguous".into(),
            chunks: None,
            filters: Vec::new(),
            storage_bytes: layout.data_bytes(),
            logical_bytes,
            fill_value: None,
            dims: None,
            attributes: match (kind, layout.big_endian) {
                (FlatKind::Npy, _) | (_, false) => Vec::new(),
                (FlatKind::Raw, true) => vec![AttrInfo {
                    name: "byte_order".into(),
                    value: "big-endian".into(),
                }],
            },
            netcdf_dimid: None,
        },
        Source::Hdf5 { .. } | Source::Multi { .. } => {
            unreachable!("HDF5 files are walked by describe")
        }
    })
}

/// Describe every group and dataset in the HDF5 file `path`.
pub fn describe(path: &std::path::Path) -> Result<FileInfo, CwError> {
    h5io::precheck_input(path)?;
    let file = h5io::open_serial(path)?;
    let mut info = FileInfo {
        file: path.display().to_string(),
        format: "hdf5".into(),
        file_bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        groups: Vec::new(),
        datasets: Vec::new(),
    };
    walk(&file, &mut info)?;
    Ok(info)
}

fn walk(g: &hdf5::Group, info: &mut FileInfo) -> Result<(), CwError> {
    info.groups.push(GroupInfo {
        path: g.name(),
        attributes: attributes(g),
    });
    let mut dsets = g.datasets().map_err(chunkwise_io::IoError::from)?;
    dsets.sort_by_key(|d| d.name());
    for ds in dsets {
        info.datasets.push(describe_dataset(&ds));
    }
    let mut groups = g.groups().map_err(chunkwise_io::IoError::from)?;
    groups.sort_by_key(|x| x.name());
    for sub in groups {
        walk(&sub, info)?;
    }
    Ok(())
}

fn describe_dataset(ds: &hdf5::Dataset) -> DatasetInfo {
    let shape = ds.shape();
    let (dtype, elem) = match ds.dtype() {
        Ok(t) => (
            t.to_descriptor()
                .map(|d| d.to_string())
                .unwrap_or_else(|e| format!("unsupported ({e})")),
            t.size(),
        ),
        Err(e) => (format!("unknown ({e})"), 0),
    };
    let layout = format!("{:?}", ds.layout()).to_lowercase();
    let filters = ds
        .filters()
        .iter()
        .map(|f| match f {
            hdf5::filters::Filter::Deflate(l) => format!("deflate({l})"),
            hdf5::filters::Filter::Shuffle => "shuffle".into(),
            hdf5::filters::Filter::Fletcher32 => "fletcher32".into(),
            hdf5::filters::Filter::User(id, _) => {
                format!("filter id {id}{}", if *id == 32000 { " (lzf)" } else { "" })
            }
            other => format!("{other:?}").to_lowercase(),
        })
        .collect();
    let fill_value = ds.fill_value().ok().flatten().map(|v| format!("{v}"));
    DatasetInfo {
        path: ds.name(),
        logical_bytes: shape.iter().product::<usize>() as u64 * elem as u64,
        shape,
        dtype,
        layout,
        chunks: ds.chunk(),
        filters,
        storage_bytes: ds.storage_size(),
        fill_value,
        dims: h5io::dimension_names(ds).or_else(|| own_scale_name(ds)),
        netcdf_dimid: h5io::attr_f64s(ds, "_Netcdf4Dimid")
            .and_then(|v| v.first().copied())
            .map(|v| v as i64),
        attributes: attributes(ds),
    }
}

/// Attributes of an object, skipping dimension-scale bookkeeping.
fn attributes(loc: &hdf5::Location) -> Vec<AttrInfo> {
    let mut names = loc.attr_names().unwrap_or_default();
    names.sort();
    names
        .into_iter()
        .filter(|n| {
            !matches!(
                n.as_str(),
                "DIMENSION_LIST" | "REFERENCE_LIST" | "_Netcdf4Dimid" | "_Netcdf4Coordinates"
            )
        })
        .map(|name| {
            let value = loc
                .attr(&name)
                .map(|a| h5io::attr_text(&a))
                .unwrap_or_else(|e| format!("<{e}>"));
            AttrInfo { name, value }
        })
        .collect()
}

/// A 1-D dimension-scale dataset (a coordinate variable) is indexed by itself.
fn own_scale_name(ds: &hdf5::Dataset) -> Option<Vec<String>> {
    let class = ds.attr("CLASS").ok().map(|a| h5io::attr_text(&a))?;
    (class == "DIMENSION_SCALE" && ds.ndim() == 1).then(|| {
        let name = ds.name();
        vec![name.rsplit('/').next().unwrap_or(&name).to_string()]
    })
}

/// Text rendering, one block per dataset.
pub fn to_text(info: &FileInfo) -> String {
    let mut s = format!("file {} ({})\n", info.file, human_bytes(info.file_bytes));
    for g in &info.groups {
        if !g.attributes.is_empty() {
            s += &format!("group {}\n", g.path);
            for a in &g.attributes {
                s += &format!("    :{} = {}\n", a.name, a.value);
            }
        }
    }
    // The dimensions, as `ncdump -h` lists them: every named dimension scale
    // with its length, in order of first use.
    // netCDF dimensions in dimension-id order first.
    let mut dims: Vec<(String, usize)> = Vec::new();
    let mut by_id: Vec<&DatasetInfo> = info
        .datasets
        .iter()
        .filter(|d| d.netcdf_dimid.is_some() && d.shape.len() == 1)
        .collect();
    by_id.sort_by_key(|d| d.netcdf_dimid);
    for d in by_id {
        let name = d.path.rsplit('/').next().unwrap_or(&d.path).to_string();
        dims.push((name, d.shape[0]));
    }
    for d in &info.datasets {
        for (n, &e) in d.dims.iter().flatten().zip(&d.shape) {
            if !dims.iter().any(|(m, _)| m == n) {
                dims.push((n.clone(), e));
            }
        }
    }
    if !dims.is_empty() {
        s += "dimensions:\n";
        for (n, e) in &dims {
            s += &format!("    {n} = {e} ;\n");
        }
    }
    for d in &info.datasets {
        let dims = match &d.dims {
            Some(n) => format!(
                "({})",
                n.iter()
                    .zip(&d.shape)
                    .map(|(n, e)| format!("{n}={e}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => format!("{:?}", d.shape),
        };
        s += &format!("dataset {} {} {}\n", d.path, d.dtype, dims);
        let chunks = d
            .chunks
            .as_ref()
            .map(|c| format!(" chunks {c:?}"))
            .unwrap_or_default();
        s += &format!("    layout {}{}", d.layout, chunks);
        if !d.filters.is_empty() {
            s += &format!(" filters [{}]", d.filters.join(", "));
        }
        let ratio = if d.storage_bytes > 0 {
            d.logical_bytes as f64 / d.storage_bytes as f64
        } else {
            0.0
        };
        s += &format!(
            "\n    storage {} for {} of data (ratio {:.2})",
            human_bytes(d.storage_bytes),
            human_bytes(d.logical_bytes),
            ratio
        );
        if let Some(f) = &d.fill_value {
            s += &format!(" fill {f}");
        }
        s += "\n";
        for a in &d.attributes {
            s += &format!("    :{} = {}\n", a.name, a.value);
        }
    }
    s
}
