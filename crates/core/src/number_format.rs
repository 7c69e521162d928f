//! How numbers are printed in reports and attribute text: full round-trip
//! precision, with NaN and infinities spelled out.

/// Format a float with full round-trip precision (shortest representation).
pub fn fmt_float(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{v:?}")
    }
}
