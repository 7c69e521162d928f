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

    /// The decoding that can change a value of type `dtype`, which is what
    /// the kernels apply: missing values that are NaN are dropped (a NaN
    /// raw value is skipped as missing anyway, and no integer equals NaN),
    /// and for float data `scale_factor = 1` and `add_offset = 0` are dropped
    /// (`x × 1 + 0` is `x`, up to the sign of a zero). So the `_FillValue =
    /// NaN` that xarray writes on every float variable leaves the data on
    /// the identity (fast) path.
    pub fn effective(&self, dtype: crate::element::Dtype) -> Decode {
        let float = dtype.is_float();
        Decode {
            missing: self
                .missing
                .iter()
                .copied()
                .filter(|m| !m.is_nan())
                .collect(),
            scale: self.scale.filter(|&s| !(float && s == 1.0)),
            offset: self.offset.filter(|&o| !(float && o == 0.0)),
        }
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

    #[test]
    fn nan_fill_and_neutral_packing_decode_nothing() {
        use crate::element::Dtype;
        let xarray = Decode {
            missing: vec![f64::NAN],
            ..Decode::default()
        };
        assert!(!xarray.is_identity());
        assert!(xarray.effective(Dtype::F32).is_identity());
        assert!(xarray.effective(Dtype::I16).is_identity());
        let neutral = Decode {
            missing: vec![f64::NAN, -999.0],
            scale: Some(1.0),
            offset: Some(0.0),
        };
        let f = neutral.effective(Dtype::F64);
        assert_eq!(
            (f.missing.clone(), f.scale, f.offset),
            (vec![-999.0], None, None)
        );
        // Integers become floats when packed, even by 1 and 0: kept.
        let i = neutral.effective(Dtype::I16);
        assert_eq!((i.scale, i.offset), (Some(1.0), Some(0.0)));
        // Every value decodes the same either way.
        for x in [1.5, -999.0, f64::NAN, 0.0, f64::INFINITY] {
            let (a, b) = (neutral.apply(x), f.apply(x));
            assert!(a == b || (a.is_nan() && b.is_nan()), "{x}");
        }
    }
}
