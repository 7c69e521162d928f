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
use chunkwise_core::cftime::TimeSpan;
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
    /// First and last dates, when the dataset has CF time `units`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<TimeSpan>,
}

/// One group's description.
#[derive(Debug, Serialize)]
pub struct GroupInfo {
    /// Full path in the file.
    pub path: String,
    /// Attributes of the group (global attributes for `/`).
    pub attributes: Vec<AttrInfo>,
}

/// A link that is not a plain tree edge: a broken soft or external link, or
/// a second hard link to an object already described (e.g. a cycle back to
/// `/`). Each object is described once, under the first path that reaches it.
#[derive(Debug, Serialize)]
pub struct LinkNote {
    /// Full path of the link.
    pub path: String,
    /// `hard`, `soft` or `external`.
    pub kind: String,
    /// What is wrong or special about it (`broken: ...`, `same object as /`).
    pub note: String,
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
    /// Broken links and repeated links to objects described elsewhere.
    pub links: Vec<LinkNote>,
    /// Several files described as one dataset (absent for one file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concat: Option<ConcatInfo>,
}

/// What several files form: the record dimension, its total length, the
/// files in record order and the dates they span.
#[derive(Debug, Serialize)]
pub struct ConcatInfo {
    /// The record dimension the files are concatenated along.
    pub record_dim: String,
    /// Its length over all files.
    pub record_len: usize,
    /// Number of files.
    pub file_count: usize,
    /// The files, in record order.
    pub files: Vec<String>,
    /// The variables concatenated (data variables with the record
    /// dimension first).
    pub variables: Vec<String>,
    /// First and last dates over all files, when the record coordinate has
    /// CF time units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<TimeSpan>,
}

/// Run `inspect` (no MPI needed; under a launcher only rank 0 prints).
pub fn run(args: &InspectArgs, print: bool) -> anyhow::Result<()> {
    let spec = InputSpec {
        more: args.files[1..].to_vec(),
        concat: args.concat.clone(),
        ..args.raw.input(&args.files[0], None)?
    };
    let info = if spec.is_multi() {
        describe_many(&spec)?
    } else {
        describe_input(&spec)?
    };
    if print {
        if args.json {
            crate::outln!("{}", serde_json::to_string_pretty(&info)?)?;
        } else {
            crate::out!("{}", to_text(&info))?;
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
        links: Vec::new(),
        concat: None,
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

/// Describe several HDF5 / NetCDF-4 files (names or quoted globs) as the
/// one dataset they form, with the mechanism `reduce` uses
/// ([`source::multi::plan_variables`]: the same agreement, overlap and
/// no-match errors): the first file in record order described whole, then
/// every data variable with the record dimension first given the shape of
/// the concatenation and the bytes stored in all files, datasets along the
/// record dimension (its coordinate, bounds) the total length, and the
/// record coordinate the dates over all files.
pub fn describe_many(spec: &InputSpec) -> Result<FileInfo, CwError> {
    let files = source::multi::expand_hdf5(spec)?;
    let vars = source::multi::all_variables(spec, &[])?;
    if vars.is_empty() {
        return Err(CwError::Input(format!(
            "several input files, but '{}' has no variable with a record dimension to concatenate along \
             (no unlimited dimension, no 'time'; name one with --concat DIM)",
            files[0].display()
        )));
    }
    // The record datasets that are not data variables (coordinate, bounds)
    // are found in the first file given; their storage is summed too.
    let head = describe(&files[0])?;
    let record = head
        .datasets
        .iter()
        .find(|d| d.path.trim_start_matches('/') == vars[0])
        .and_then(|d| d.dims.as_ref()?.first().cloned())
        .unwrap_or_default();
    let extra: Vec<String> = head
        .datasets
        .iter()
        .filter(|d| {
            d.dims.as_ref().and_then(|n| n.first()) == Some(&record)
                && !vars.iter().any(|v| d.path.trim_start_matches('/') == v)
        })
        .map(|d| d.path.clone())
        .collect();
    let many = source::multi::plan_variables(&files, &vars, &extra, spec.concat.as_deref())?;
    let plan0 = &many.plans[0];
    let total = plan0.meta.shape[0];
    let ordered: Vec<String> = plan0.parts.iter().map(|p| p.path.clone()).collect();
    let mut info = describe(Path::new(&ordered[0]))?;
    let coords = plan0.meta.dims.coords[0].as_deref().unwrap_or(&[]);
    let attr = |k: &str| {
        plan0.meta.coord_attrs[0]
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let time = attr("units").and_then(|u| {
        TimeSpan::describe(
            &u,
            attr("calendar").as_deref(),
            coords.first().zip(coords.last()).map(|(a, b)| (*a, *b)),
        )
    });
    for d in &mut info.datasets {
        let name = d.path.trim_start_matches('/');
        let stored = match vars.iter().position(|v| v == name) {
            Some(k) => Some((many.plans[k].meta.shape.clone(), many.storage[k])),
            None => extra.iter().position(|e| *e == d.path).map(|k| {
                let mut shape = d.shape.clone();
                shape[0] = total;
                (shape, many.storage[vars.len() + k])
            }),
        };
        let Some((shape, storage)) = stored else {
            continue;
        };
        let elems = d.shape.iter().product::<usize>().max(1) as u64;
        let elem = d.logical_bytes / elems;
        d.logical_bytes = shape.iter().product::<usize>() as u64 * elem;
        d.shape = shape;
        d.storage_bytes = storage;
        if name == record && d.time.is_some() {
            d.time = time.clone();
        }
    }
    info.file = spec
        .all_paths()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    info.file_bytes = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    info.concat = Some(ConcatInfo {
        record_dim: record,
        record_len: total,
        file_count: files.len(),
        files: ordered,
        variables: vars,
        time,
    });
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
            time: None,
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
            time: None,
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
        links: Vec::new(),
        concat: None,
    };
    let root = file.loc_info().map_err(chunkwise_io::IoError::from)?;
    let mut seen = vec![(root.fileno, format!("{:?}", root.token))];
    walk(&file, "/", &mut seen, &mut info)?;
    Ok(info)
}

/// Visit `g` (reached as `path`) and everything below it, depth first in
/// name order. Each object is described once: `seen` holds the objects
/// already visited (file number and address), so hard-link cycles end, and a
/// link that resolves to nothing (dangling soft link, missing external file)
/// is listed as broken instead of failing the walk.
fn walk(
    g: &hdf5::Group,
    path: &str,
    seen: &mut Vec<(u64, String)>,
    info: &mut FileInfo,
) -> Result<(), CwError> {
    info.groups.push(GroupInfo {
        path: path.to_string(),
        attributes: attributes(g),
    });
    let mut links: Vec<(String, hdf5::LinkType)> = Vec::new();
    g.iter_visit_default(|name, l| {
        links.push((name.to_string(), l.link_type));
        Ok(())
    })
    .map_err(chunkwise_io::IoError::from)?;
    links.sort_by(|a, b| a.0.cmp(&b.0));
    let join = |name: &str| {
        if path == "/" {
            format!("/{name}")
        } else {
            format!("{path}/{name}")
        }
    };
    let mut subgroups = Vec::new();
    for (name, kind) in links {
        let full = join(&name);
        let kind_text = format!("{kind:?}").to_lowercase();
        let obj = match g.loc_info_by_name(&name) {
            Ok(o) => o,
            Err(e) => {
                info.links.push(LinkNote {
                    path: full,
                    kind: kind_text,
                    note: format!(
                        "broken: {}",
                        h5io::link_target(g, &name).unwrap_or_else(|| e.to_string())
                    ),
                });
                continue;
            }
        };
        let key = (obj.fileno, format!("{:?}", obj.token));
        if seen.contains(&key) {
            info.links.push(LinkNote {
                path: full,
                kind: kind_text,
                note: "an object already listed (not visited again)".into(),
            });
            continue;
        }
        seen.push(key);
        match obj.loc_type {
            hdf5::LocationType::Dataset => match g.dataset(&name) {
                Ok(ds) => info.datasets.push(describe_dataset(&ds, &full)),
                Err(e) => info.links.push(LinkNote {
                    path: full,
                    kind: kind_text,
                    note: format!("broken: cannot open the dataset ({e})"),
                }),
            },
            hdf5::LocationType::Group => match g.group(&name) {
                Ok(sub) => subgroups.push((sub, full)),
                Err(e) => info.links.push(LinkNote {
                    path: full,
                    kind: kind_text,
                    note: format!("broken: cannot open the group ({e})"),
                }),
            },
            _ => {}
        }
    }
    for (sub, full) in subgroups {
        walk(&sub, &full, seen, info)?;
    }
    Ok(())
}

fn describe_dataset(ds: &hdf5::Dataset, path: &str) -> DatasetInfo {
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
    let fill_value = h5io::fill_value_text(ds);
    DatasetInfo {
        path: path.to_string(),
        logical_bytes: shape.iter().product::<usize>() as u64 * elem as u64,
        shape,
        dtype,
        layout,
        chunks: ds.chunk(),
        filters,
        storage_bytes: ds.storage_size(),
        fill_value,
        dims: h5io::dimension_names(ds),
        netcdf_dimid: h5io::attr_f64s(ds, "_Netcdf4Dimid")
            .and_then(|v| v.first().copied())
            .map(|v| v as i64),
        time: h5io::time_span(ds),
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

/// Text rendering, one block per dataset.
pub fn to_text(info: &FileInfo) -> String {
    let mut s = format!("file {} ({})\n", info.file, human_bytes(info.file_bytes));
    if let Some(c) = &info.concat {
        s += &format!(
            "dataset of {} files along {} = {} (first {}, last {})\n",
            c.file_count,
            c.record_dim,
            c.record_len,
            c.files.first().map_or("", String::as_str),
            c.files.last().map_or("", String::as_str)
        );
        if let Some(t) = &c.time {
            s += &format!("    time {}\n", t.text());
        }
        s += &format!("    variables {}\n", c.variables.join(", "));
    }
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
        if let Some(t) = &d.time {
            s += &format!("    time {}\n", t.text());
        }
        for a in &d.attributes {
            s += &format!("    :{} = {}\n", a.name, a.value);
        }
    }
    for l in &info.links {
        s += &format!("link {} ({}): {}\n", l.path, l.kind, l.note);
    }
    s
}
