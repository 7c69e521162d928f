//! `--weights`: where weights come from and how they are laid over the
//! variable. Pure: the io layer reads weight variables and bounds; this
//! module turns them into one weight per selected index of the weight's
//! dimensions, broadcast over the others ([`Weights`]).
//!
//! * `coslat`: `cos(lat)` of the latitude coordinate (found by CF
//!   `standard_name = latitude` or `units = degrees_north`), in f64, as
//!   xarray users write `np.cos(np.deg2rad(ds.lat))`.
//! * `area`: exact spherical areas of the lat-lon cells,
//!   `R²·Δλ·(sin φ₂ − sin φ₁)` with `R = 6 371 000 m` (CDO's radius), from
//!   the cell bounds (`lat_bnds`, `lon_bnds`, or the coordinates' `bounds`
//!   attribute) or, without bounds, from edges half-way between the
//!   coordinates (outer edges half a spacing out, latitudes clamped to ±90),
//!   as CDO's `gridarea` makes them. Without a longitude coordinate, the
//!   latitude bands alone (`sin φ₂ − sin φ₁`).
//! * `VAR` or `FILE:VAR`: a variable (e.g. `areacella`) over some of the
//!   variable's dimensions (matched by name, same lengths), broadcast over
//!   the rest; its CF missing values carry no weight (0).
//!
//! Weights must be finite and non-negative.

use crate::error::CwError;
use crate::selection::{AxisRange, Dims};
use crate::variable::VariableMeta;

/// Earth radius of CDO's `gridarea`, metres.
pub const EARTH_RADIUS_M: f64 = 6_371_000.0;

/// What `--weights` asked for.
#[derive(Clone, Debug, PartialEq)]
pub enum WeightSpec {
    /// `coslat`.
    CosLat,
    /// `area`.
    Area,
    /// `VAR` (in the input file) or `FILE:VAR`.
    Var {
        /// Another file, or `None` for the input file.
        file: Option<std::path::PathBuf>,
        /// The variable.
        var: String,
    },
}

impl WeightSpec {
    /// Parse `--weights`: `coslat`, `area`, `VAR` or `FILE:VAR`.
    pub fn parse(s: &str) -> Result<WeightSpec, CwError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(CwError::Parse(
                "--weights is empty: use coslat, area, VAR or FILE:VAR".into(),
            ));
        }
        Ok(match t {
            "coslat" => WeightSpec::CosLat,
            "area" => WeightSpec::Area,
            _ => match t.rsplit_once(':') {
                Some((f, v)) if !f.is_empty() && !v.is_empty() => WeightSpec::Var {
                    file: Some(f.into()),
                    var: v.to_string(),
                },
                Some(_) => {
                    return Err(CwError::Parse(format!(
                        "--weights '{s}': expected FILE:VAR with both parts"
                    )));
                }
                None => WeightSpec::Var {
                    file: None,
                    var: t.to_string(),
                },
            },
        })
    }

    /// The `--weights` text that parses back to this.
    pub fn text(&self) -> String {
        match self {
            WeightSpec::CosLat => "coslat".into(),
            WeightSpec::Area => "area".into(),
            WeightSpec::Var { file: None, var } => var.clone(),
            WeightSpec::Var { file: Some(f), var } => format!("{}:{var}", f.display()),
        }
    }
}

/// Weights over the selected index space of a variable: `values` over the
/// weight's axes (selected extents, C order in the variable's axis order),
/// `stride[a]` the step in `values` along variable axis `a` (0 where the
/// weights are broadcast).
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    /// The weights.
    pub values: Vec<f64>,
    /// Stride per variable axis (0: broadcast).
    pub stride: Vec<usize>,
}

impl Weights {
    /// Lay `values` — over the variable axes `axes` (in the weight's own
    /// order, full extents `dims.shape[axes[i]]`) — over the selection
    /// `sel`. Checks that every weight is finite and non-negative (NaN,
    /// a missing weight, becomes 0).
    pub fn lay_out(
        values: &[f64],
        axes: &[usize],
        dims: &Dims,
        sel: &[AxisRange],
        what: &str,
    ) -> Result<Weights, CwError> {
        let n = dims.shape.len();
        let wshape: Vec<usize> = axes.iter().map(|&a| dims.shape[a]).collect();
        if values.len() != wshape.iter().product::<usize>() {
            return Err(CwError::Input(format!(
                "{what}: {} values for shape {wshape:?}",
                values.len()
            )));
        }
        // Source strides of the weight array (its own C order).
        let mut src_stride = vec![0usize; axes.len()];
        let mut acc = 1;
        for i in (0..axes.len()).rev() {
            src_stride[i] = acc;
            acc *= wshape[i];
        }
        // Destination: the weight axes in variable order, selected extents.
        let mut order: Vec<usize> = (0..axes.len()).collect();
        order.sort_by_key(|&i| axes[i]);
        let mut stride = vec![0usize; n];
        let mut acc = 1;
        for &i in order.iter().rev() {
            stride[axes[i]] = acc;
            acc *= sel[axes[i]].count;
        }
        let total = acc;
        let mut out = Vec::with_capacity(total);
        let mut idx = vec![0usize; order.len()];
        for _ in 0..total {
            let src: usize = order
                .iter()
                .zip(&idx)
                .map(|(&i, &k)| sel[axes[i]].index(k) * src_stride[i])
                .sum();
            let w = values[src];
            if w.is_nan() {
                out.push(0.0);
            } else if !w.is_finite() || w < 0.0 {
                let at: Vec<String> = order
                    .iter()
                    .zip(&idx)
                    .map(|(&i, &k)| format!("{}={}", dims.names[axes[i]], sel[axes[i]].index(k)))
                    .collect();
                return Err(CwError::Input(format!(
                    "{what}: weight {w} at {} — weights must be finite and not negative",
                    at.join(", ")
                )));
            } else {
                out.push(w);
            }
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < sel[axes[order[d]]].count {
                    break;
                }
                idx[d] = 0;
            }
        }
        Ok(Weights {
            values: out,
            stride,
        })
    }

    /// Weight of the selected index `idx` (one per variable axis).
    pub fn at(&self, idx: &[usize]) -> f64 {
        let i: usize = idx.iter().zip(&self.stride).map(|(a, b)| a * b).sum();
        self.values[i]
    }
}

/// Match a weight variable's dimensions to the variable's: every weight
/// dimension must be one of the variable's, with the same length. Returns
/// the variable axis of each weight dimension.
pub fn match_dims(
    wnames: &[String],
    wshape: &[usize],
    dims: &Dims,
    what: &str,
) -> Result<Vec<usize>, CwError> {
    if wnames.len() != wshape.len() {
        return Err(CwError::Input(format!("{what}: dimensions unknown")));
    }
    let mut axes = Vec::new();
    for (name, &len) in wnames.iter().zip(wshape) {
        let a = dims.names.iter().position(|n| n == name).ok_or_else(|| {
            CwError::Input(format!(
                "{what} has dimension '{name}', which the variable does not have (dimensions: {}); weights must be over some of the variable's dimensions",
                dims.names.join(", ")
            ))
        })?;
        if dims.shape[a] != len {
            return Err(CwError::Input(format!(
                "{what}: dimension '{name}' has length {len}, the variable's has {}; weights must have the variable's shape along their dimensions",
                dims.shape[a]
            )));
        }
        if axes.contains(&a) {
            return Err(CwError::Input(format!(
                "{what}: dimension '{name}' appears twice"
            )));
        }
        axes.push(a);
    }
    Ok(axes)
}

const LAT_UNITS: [&str; 6] = [
    "degrees_north",
    "degree_north",
    "degree_N",
    "degrees_N",
    "degreeN",
    "degreesN",
];
const LON_UNITS: [&str; 6] = [
    "degrees_east",
    "degree_east",
    "degree_E",
    "degrees_E",
    "degreeE",
    "degreesE",
];

fn find_axis(meta: &VariableMeta, standard_name: &str, units: &[&str]) -> Option<usize> {
    (0..meta.dims.shape.len()).find(|&a| {
        meta.dims.coords[a].is_some()
            && meta.coord_attrs.get(a).is_some_and(|attrs| {
                attrs.iter().any(|(k, v)| {
                    (k == "standard_name" && v.trim() == standard_name)
                        || (k == "units" && units.contains(&v.trim()))
                })
            })
    })
}

/// The latitude axis: the dimension whose coordinate has CF
/// `standard_name = latitude` or latitude units (`degrees_north`, …).
pub fn latitude_axis(meta: &VariableMeta, flag: &str) -> Result<usize, CwError> {
    find_axis(meta, "latitude", &LAT_UNITS).ok_or_else(|| {
        CwError::Input(format!(
            "--weights {flag}: no latitude coordinate (a dimension whose coordinate variable has standard_name = \"latitude\" or units = \"degrees_north\"; dimensions: {}); give the weights as --weights VAR or FILE:VAR",
            meta.dims.names.join(", ")
        ))
    })
}

/// The longitude axis, found like the latitude (`standard_name = longitude`
/// or `degrees_east`).
pub fn longitude_axis(meta: &VariableMeta) -> Option<usize> {
    find_axis(meta, "longitude", &LON_UNITS)
}

/// `cos(lat)` in f64 (`np.cos(np.deg2rad(lat))`).
pub fn coslat(lat: &[f64]) -> Vec<f64> {
    lat.iter().map(|&l| l.to_radians().cos()).collect()
}

/// Cell edges from coordinates: half-way between neighbours, the outer
/// edges half a spacing beyond the first and last value (CDO's generated
/// bounds); `clamp` limits them (±90 for latitudes).
pub fn midpoint_bounds(c: &[f64], clamp: Option<f64>) -> Vec<(f64, f64)> {
    let n = c.len();
    let edge = |i: usize| -> f64 {
        // Edge i lies between c[i-1] and c[i].
        let e = if n == 1 {
            if i == 0 { c[0] - 0.5 } else { c[0] + 0.5 }
        } else if i == 0 {
            c[0] - (c[1] - c[0]) / 2.0
        } else if i == n {
            c[n - 1] + (c[n - 1] - c[n - 2]) / 2.0
        } else {
            (c[i - 1] + c[i]) / 2.0
        };
        match clamp {
            Some(m) => e.clamp(-m, m),
            None => e,
        }
    };
    (0..n).map(|i| (edge(i), edge(i + 1))).collect()
}

/// Areas of the cells of a lat-lon grid (C order lat × lon) from their
/// bounds in degrees: `R²·|Δλ|·|sin φ₂ − sin φ₁|`. With no longitude
/// bounds, the latitude bands: `|sin φ₂ − sin φ₁|`.
pub fn cell_areas(lat: &[(f64, f64)], lon: Option<&[(f64, f64)]>) -> Vec<f64> {
    let band: Vec<f64> = lat
        .iter()
        .map(|&(a, b)| (b.to_radians().sin() - a.to_radians().sin()).abs())
        .collect();
    match lon {
        None => band,
        Some(lon) => {
            let mut out = Vec::with_capacity(band.len() * lon.len());
            for &s in &band {
                for &(a, b) in lon {
                    out.push(EARTH_RADIUS_M * EARTH_RADIUS_M * (b - a).to_radians().abs() * s);
                }
            }
            out
        }
    }
}

/// Bounds given as an `(n, 2)` array (`lat_bnds`), as pairs; `None` when
/// the shape is not `(n, 2)`.
pub fn bound_pairs(values: &[f64], shape: &[usize], n: usize) -> Option<Vec<(f64, f64)>> {
    (shape == [n, 2]).then(|| values.chunks(2).map(|p| (p[0], p[1])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims() -> Dims {
        Dims {
            names: vec!["time".into(), "lat".into(), "lon".into()],
            shape: vec![2, 3, 4],
            coords: vec![None, Some(vec![-60.0, 0.0, 60.0]), None],
        }
    }

    #[test]
    fn specs() {
        assert_eq!(WeightSpec::parse("coslat").unwrap(), WeightSpec::CosLat);
        assert_eq!(WeightSpec::parse(" area").unwrap(), WeightSpec::Area);
        assert_eq!(
            WeightSpec::parse("areacella").unwrap(),
            WeightSpec::Var {
                file: None,
                var: "areacella".into()
            }
        );
        let s = WeightSpec::parse("/data/fx.nc:areacella").unwrap();
        assert_eq!(WeightSpec::parse(&s.text()).unwrap(), s);
        for bad in ["", ":a", "f.nc:"] {
            assert!(WeightSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn layout_transposes_selects_and_broadcasts() {
        let d = dims();
        // Weights over (lon, lat) — transposed against the variable.
        let w: Vec<f64> = (0..12).map(|i| i as f64).collect(); // w[lon][lat] = 3*lon + lat
        let sel = vec![
            AxisRange::all(2),
            AxisRange {
                start: 1,
                count: 2,
                step: 1,
                wrap: None,
            },
            AxisRange {
                start: 0,
                count: 2,
                step: 2,
                wrap: None,
            },
        ];
        let lw = Weights::lay_out(&w, &[2, 1], &d, &sel, "w").unwrap();
        assert_eq!(lw.stride, vec![0, 2, 1]);
        for t in 0..2 {
            for i in 0..2 {
                for j in 0..2 {
                    let (lat, lon) = (1 + i, 2 * j);
                    assert_eq!(lw.at(&[t, i, j]), (3 * lon + lat) as f64);
                }
            }
        }
        let bad = vec![1.0, -0.5, 1.0];
        let e = Weights::lay_out(
            &bad,
            &[1],
            &d,
            &[AxisRange::all(2), AxisRange::all(3), AxisRange::all(4)],
            "w",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("-0.5") && e.contains("lat=1"), "{e}");
        let nan = vec![1.0, f64::NAN, 1.0];
        let ok = Weights::lay_out(
            &nan,
            &[1],
            &d,
            &[AxisRange::all(2), AxisRange::all(3), AxisRange::all(4)],
            "w",
        )
        .unwrap();
        assert_eq!(ok.values, vec![1.0, 0.0, 1.0]);
    }

    #[test]
    fn dims_must_match() {
        let d = dims();
        assert_eq!(
            match_dims(&["lon".into(), "lat".into()], &[4, 3], &d, "w").unwrap(),
            vec![2, 1]
        );
        assert!(
            match_dims(&["depth".into()], &[4], &d, "w")
                .unwrap_err()
                .to_string()
                .contains("depth")
        );
        assert!(
            match_dims(&["lat".into()], &[5], &d, "w")
                .unwrap_err()
                .to_string()
                .contains("length 5")
        );
    }

    #[test]
    fn areas_of_a_whole_sphere() {
        // 2° cells covering the sphere sum to 4πR².
        let lat: Vec<f64> = (0..90).map(|i| -89.0 + 2.0 * i as f64).collect();
        let lon: Vec<f64> = (0..180).map(|i| 1.0 + 2.0 * i as f64).collect();
        let a = cell_areas(
            &midpoint_bounds(&lat, Some(90.0)),
            Some(&midpoint_bounds(&lon, None)),
        );
        let total: f64 = a.iter().sum();
        let sphere = 4.0 * std::f64::consts::PI * EARTH_RADIUS_M * EARTH_RADIUS_M;
        assert!(
            (total - sphere).abs() < 1e-9 * sphere,
            "{total} vs {sphere}"
        );
        // Clamped at the poles.
        let b = midpoint_bounds(&[-90.0, 0.0, 90.0], Some(90.0));
        assert_eq!(b, vec![(-90.0, -45.0), (-45.0, 45.0), (45.0, 90.0)]);
        assert_eq!(coslat(&[0.0, 60.0])[0], 1.0);
    }
}
