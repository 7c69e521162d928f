//! CF conventions for stored values: `_FillValue` and `missing_value` mark
//! missing elements, `scale_factor` / `add_offset` unpack packed integers.
//! Like xarray's decoding: a raw value equal to a fill or missing value is
//! missing (treated as NaN: skipped, or propagated with `--keep-nan`);
//! otherwise the value is `raw × scale_factor + add_offset`, in f64.

use serde::Serialize;

/// How raw stored values become data values.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Decode {
    /// Raw values that mean "missing" (`_FillValue`, then `missing_value`).
    pub missing: Vec<f64>,
    /// `scale_factor` (1 when absent).
    pub scale: Option<f64>,
    /// `add_offset` (0 when absent).
    pub offset: Option<f64>,
}

impl Decode {
    /// True when values are used as stored (no attribute applies).
    pub fn is_identity(&self) -> bool {
        self.missing.is_empty() && self.scale.is_none() && self.offset.is_none()
    }

    /// Decode one raw value (already widened to f64); missing becomes NaN.
    #[inline]
    pub fn apply(&self, raw: f64) -> f64 {
        // NaN fill values match NaN raw values too (NaN is already "missing").
        if self.missing.contains(&raw) {
            return f64::NAN;
        }
        raw * self.scale.unwrap_or(1.0) + self.offset.unwrap_or(0.0)
    }

    /// Decode `raw` into `out` (same length).
    pub fn apply_slice<T: crate::element::Element>(&self, raw: &[T], out: &mut Vec<f64>) {
        out.clear();
        out.extend(raw.iter().map(|&x| self.apply(x.to_f64())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_then_unpack() {
        let d = Decode {
            missing: vec![-32767.0, 32767.0],
            scale: Some(0.5),
            offset: Some(100.0),
        };
        assert!(d.apply(-32767.0).is_nan());
        assert!(d.apply(32767.0).is_nan());
        assert_eq!(d.apply(4.0), 102.0);
        assert!(Decode::default().is_identity());
        assert_eq!(Decode::default().apply(3.5), 3.5);
        let mut out = Vec::new();
        d.apply_slice(&[0i16, 2, -32767], &mut out);
        assert_eq!(out[..2], [100.0, 101.0]);
        assert!(out[2].is_nan());
    }
}
