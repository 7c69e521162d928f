//! `chunkwise inspect`: what is in a file and how it is stored — groups,
//! datasets with shape, type, layout, chunking, filters, storage vs logical
//! size, fill value, attributes and NetCDF-4 dimension names.

use crate::cli::InspectArgs;
use crate::error::CwError;
use crate::h5io;
use crate::parse::human_bytes;
use hdf5::types::TypeDescriptor;
use serde::Serialize;

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
    /// File size on disk.
    pub file_bytes: u64,
    /// Groups, depth first.
    pub groups: Vec<GroupInfo>,
    /// Datasets, depth first.
    pub datasets: Vec<DatasetInfo>,
}

/// Run `inspect` (no MPI needed; under a launcher only rank 0 prints).
pub fn run(args: &InspectArgs, print: bool) -> anyhow::Result<()> {
    let info = describe(&args.file)?;
    if print {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&info)?);
        } else {
            print!("{}", to_text(&info));
        }
    }
    Ok(())
}

/// Describe every group and dataset in `path`.
pub fn describe(path: &std::path::Path) -> Result<FileInfo, CwError> {
    h5io::precheck_input(path)?;
    let file = h5io::open_serial(path)?;
    let mut info = FileInfo {
        file: path.display().to_string(),
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
    let mut dsets = g.datasets()?;
    dsets.sort_by_key(|d| d.name());
    for ds in dsets {
        info.datasets.push(describe_dataset(&ds));
    }
    let mut groups = g.groups()?;
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
        dims: dimension_names(ds),
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
                .map(|a| attr_text(&a))
                .unwrap_or_else(|e| format!("<{e}>"));
            AttrInfo { name, value }
        })
        .collect()
}

fn attr_text(a: &hdf5::Attribute) -> String {
    let Ok(desc) = a.dtype().and_then(|t| t.to_descriptor()) else {
        return "<unsupported type>".into();
    };
    match desc {
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) => match a.read_raw::<i64>() {
            Ok(v) => v
                .iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => format!("<{e}>"),
        },
        TypeDescriptor::Float(_) => match a.read_raw::<f64>() {
            Ok(v) => v
                .iter()
                .map(|x| crate::report::fmt_float(*x))
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => format!("<{e}>"),
        },
        TypeDescriptor::VarLenUnicode => match a.read_raw::<hdf5::types::VarLenUnicode>() {
            Ok(v) => v
                .iter()
                .map(|s| s.as_str().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => format!("<{e}>"),
        },
        TypeDescriptor::VarLenAscii => match a.read_raw::<hdf5::types::VarLenAscii>() {
            Ok(v) => v
                .iter()
                .map(|s| s.as_str().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            Err(e) => format!("<{e}>"),
        },
        TypeDescriptor::FixedAscii(_) | TypeDescriptor::FixedUnicode(_) => {
            fixed_string(a).unwrap_or_else(|| "<string>".into())
        }
        other => format!("<{other}>"),
    }
}

/// Read a fixed-length string attribute with its own file type.
fn fixed_string(a: &hdf5::Attribute) -> Option<String> {
    use hdf5_sys::h5a::{H5Aget_type, H5Aread};
    use hdf5_sys::h5t::{H5Tclose, H5Tget_size};
    let n = a.space().ok()?.size().max(1);
    unsafe {
        let t = H5Aget_type(a.id());
        if t < 0 {
            return None;
        }
        let size = H5Tget_size(t);
        let mut buf = vec![0u8; size * n];
        let ok = H5Aread(a.id(), t, buf.as_mut_ptr().cast()) >= 0;
        H5Tclose(t);
        ok.then(|| {
            buf.chunks(size.max(1))
                .map(|c| {
                    String::from_utf8_lossy(c)
                        .trim_end_matches(['\0', ' '])
                        .to_string()
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

/// Names of the dimension scales attached to each axis of `ds` (the
/// `DIMENSION_LIST` attribute NetCDF-4 and `h5py.dims` write): the base name
/// of each scale dataset, as `ncdump` shows it.
pub fn dimension_names(ds: &hdf5::Dataset) -> Option<Vec<String>> {
    use hdf5_sys::h5a::{H5Aget_space, H5Aread};
    use hdf5_sys::h5d::H5Dvlen_reclaim;
    use hdf5_sys::h5i::H5Iget_name;
    use hdf5_sys::h5o::H5Oclose;
    use hdf5_sys::h5p::H5P_DEFAULT;
    use hdf5_sys::h5r::{H5R_type_t, H5Rdereference2};
    use hdf5_sys::h5s::H5Sclose;
    use hdf5_sys::h5t::{H5Tclose, H5Tvlen_create, hvl_t};
    let attr = ds.attr("DIMENSION_LIST").ok()?;
    let ndim = ds.ndim();
    let mut names = Vec::with_capacity(ndim);
    unsafe {
        let vt = H5Tvlen_create(*hdf5::globals::H5T_STD_REF_OBJ);
        if vt < 0 {
            return None;
        }
        let mut buf: Vec<hvl_t> = vec![
            hvl_t {
                len: 0,
                p: std::ptr::null_mut()
            };
            ndim
        ];
        if H5Aread(attr.id(), vt, buf.as_mut_ptr().cast()) < 0 {
            H5Tclose(vt);
            return None;
        }
        for h in &buf {
            let mut name = String::from("?");
            if h.len > 0 && !h.p.is_null() {
                let obj = H5Rdereference2(
                    ds.id(),
                    H5P_DEFAULT,
                    H5R_type_t::H5R_OBJECT,
                    h.p.cast_const(),
                );
                if obj >= 0 {
                    let mut cbuf = vec![0u8; 1024];
                    let n = H5Iget_name(obj, cbuf.as_mut_ptr().cast(), cbuf.len());
                    if n > 0 {
                        let full = String::from_utf8_lossy(&cbuf[..n as usize]).to_string();
                        name = full.rsplit('/').next().unwrap_or(&full).to_string();
                    }
                    H5Oclose(obj);
                }
            }
            names.push(name);
        }
        let space = H5Aget_space(attr.id());
        H5Dvlen_reclaim(vt, space, H5P_DEFAULT, buf.as_mut_ptr().cast());
        H5Sclose(space);
        H5Tclose(vt);
    }
    Some(names)
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
