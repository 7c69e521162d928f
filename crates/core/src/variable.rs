//! What is known about a variable before reading it, whatever the format.

use crate::cf::Decode;
use crate::element::Dtype;
use crate::selection::Dims;

/// What `reduce` and `plan` need to know about a variable before reading it.
#[derive(Clone, Debug)]
pub struct VariableMeta {
    /// Element type.
    pub dtype: Dtype,
    /// Extents (non-empty, every extent at least 1).
    pub shape: Vec<usize>,
    /// Storage chunk shape, when chunked.
    pub chunk: Option<Vec<usize>>,
    /// True when the storage pipeline has filters (compression, shuffle, …):
    /// then only whole chunks can be read without decoding one twice.
    pub filtered: bool,
    /// Dimension names and coordinate values.
    pub dims: Dims,
    /// CF decoding (`_FillValue`, `missing_value`, `scale_factor`, `add_offset`).
    pub decode: Decode,
    /// Descriptive attributes carried to outputs (`units`, `long_name`, …), as text.
    pub attrs: Vec<(String, String)>,
    /// Global `history` and `Conventions` of the file, when present.
    pub globals: Vec<(String, String)>,
    /// Carried attributes of each axis' coordinate variable (empty if none).
    pub coord_attrs: Vec<Vec<(String, String)>>,
}
