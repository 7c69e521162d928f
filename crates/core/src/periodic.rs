//! Longitude ranges across the seam of a global grid (`--select lon=-10..10`
//! on a 0..358 longitude). Pure: works on coordinate values and the
//! coordinate's CF attributes.
//!
//! A coordinate is a *periodic longitude* when its CF metadata say it is a
//! longitude — `units` `degrees_east` or one of its CF spellings
//! (`degree_east`, `degrees_E`, `degree_E`, `degreesE`, `degreeE`), or
//! `standard_name = longitude` — and its values are evenly spaced and span
//! the globe (span + one step = 360 degrees). Its name does not matter.
//!
//! On a periodic longitude a value range `LO..HI` takes, as CDO's
//! `sellonlatbox` does, every point whose value `c + 360·k` (for some
//! integer `k`) lies in `[LO, HI]`; `LO > HI` (`350..10`) means `LO..HI+360`.
//! Each point is taken once, and the selected points are ordered by the
//! smallest such value not below `LO`: the selection is one run of indices
//! that may continue from the last index to the first (then it is read as
//! two hyperslabs). The coordinate written for them is continuous, with
//! CDO's convention: the points after the seam keep their stored values and
//! those before it are moved one turn towards them, so on a 0..358 grid
//! `-10..10`, `350..10` and `350..370` all give `-10, -8, …, 10`; a range
//! that does not cross the seam keeps the stored values (`-180..-90` gives
//! `180..270`).

pub use crate::axis_range::PERIOD;
use crate::axis_range::{AxisRange, Wrap};
use crate::error::CwError;

/// CF spellings of longitude units (CF conventions §4.1).
const LON_UNITS: [&str; 6] = [
    "degrees_east",
    "degree_east",
    "degrees_E",
    "degree_E",
    "degreesE",
    "degreeE",
];

/// True when `attrs` (a coordinate's attributes as text) mark a longitude:
/// CF longitude `units` or `standard_name = longitude`.
pub fn is_longitude(attrs: &[(String, String)]) -> bool {
    attrs.iter().any(|(k, v)| {
        let v = v.trim();
        (k == "units" && LON_UNITS.contains(&v)) || (k == "standard_name" && v == "longitude")
    })
}

/// The spacing of `coords` when they are evenly spaced (relative tolerance
/// 1e-6) and span one turn (span + step = 360, within half a step): the
/// grid is then periodic. `None` otherwise.
pub fn global_step(coords: &[f64]) -> Option<f64> {
    let n = coords.len();
    if n < 2 {
        return None;
    }
    let span = (coords[n - 1] - coords[0]).abs();
    let step = span / (n - 1) as f64;
    let even = coords
        .windows(2)
        .all(|w| ((w[1] - w[0]).abs() - step).abs() <= 1e-6 * step.max(1.0));
    let monotonic =
        coords.windows(2).all(|w| w[1] > w[0]) || coords.windows(2).all(|w| w[1] < w[0]);
    (even && monotonic && step > 0.0 && ((span + step) - PERIOD).abs() <= 0.5 * step)
        .then_some(step)
}

/// The smallest `c + 360·k` (integer `k`) that is not below `lo`.
fn lift(c: f64, lo: f64) -> f64 {
    let v = c + ((lo - c) / PERIOD).ceil() * PERIOD;
    // Guard against rounding at the boundary.
    if v < lo { v + PERIOD } else { v }
}

/// Resolve `LO..HI` on the periodic coordinate `coords` (see the module
/// doc): one run of indices, wrapping from the last index to the first
/// when the range crosses the seam.
pub fn resolve_periodic(dim: &str, coords: &[f64], lo: f64, hi: f64) -> Result<AxisRange, CwError> {
    let n = coords.len();
    let step = global_step(coords).ok_or_else(|| {
        CwError::Input(format!(
            "--select {dim}={lo}..{hi}: coordinate '{dim}' is not an evenly spaced global longitude"
        ))
    })?;
    let hi = if lo > hi { hi + PERIOD } else { hi };
    if hi - lo >= PERIOD + 0.5 * step {
        return Err(CwError::Input(format!(
            "--select {dim}={lo}..{hi}: the range is wider than 360 degrees; the longitude '{dim}' is periodic, so it would take points twice"
        )));
    }
    let lifted: Vec<f64> = coords.iter().map(|&c| lift(c, lo)).collect();
    let taken: Vec<bool> = lifted.iter().map(|&v| v <= hi).collect();
    let count = taken.iter().filter(|&&t| t).count();
    if count == 0 {
        return Err(CwError::Input(format!(
            "--select {dim}={lo}..{hi} selects nothing: no point of the periodic longitude '{dim}' ({}..{} every {step}) lies in it",
            coords[0],
            coords[n - 1]
        )));
    }
    // The run starts at the taken index whose cyclic predecessor is not
    // taken, or does not continue it (the lifted values jump there).
    let starts: Vec<usize> = (0..n)
        .filter(|&i| taken[i])
        .filter(|&i| {
            let p = (i + n - 1) % n;
            !taken[p] || (lifted[i] - lifted[p]).abs() > 1.5 * step
        })
        .collect();
    let [start] = starts[..] else {
        return Err(CwError::Input(format!(
            "--select {dim}={lo}..{hi}: the selected points of the periodic longitude '{dim}' are not one contiguous run; select by index"
        )));
    };
    // Crossing the seam: the points before it move one turn towards those
    // after it (down on an ascending grid, up on a descending one).
    let wrap = (start + count > n).then(|| Wrap {
        len: n,
        turns: [((coords[0] - coords[n - 1]) / PERIOD).round() as i64, 0],
    });
    Ok(AxisRange {
        start,
        count,
        step: 1,
        wrap,
    })
}

/// On a longitude that is *not* periodic (regional, uneven, or with both
/// 0 and 360), refuse a range that would also take points if the
/// coordinate wrapped (`c ± 360` in `[LO, HI]` for a point outside it):
/// the answer would silently miss them (a duplicate such as 360 beside a
/// taken 0 is not missed). `LO > HI` is refused, too.
pub fn check_not_wrapping(dim: &str, coords: &[f64], lo: f64, hi: f64) -> Result<(), CwError> {
    if lo > hi {
        return Err(CwError::Input(format!(
            "--select {dim}={lo}..{hi}: the lower bound is above the upper bound, and the longitude '{dim}' is not periodic (it must be evenly spaced and span 360 degrees to wrap)"
        )));
    }
    // A point a turn away from one inside the range (360 beside 0) is the
    // same longitude, already taken.
    let inside = |v: f64| (lo..=hi).contains(&v);
    let stored = |v: f64| {
        coords
            .iter()
            .any(|&c| inside(c) && (c - v).abs() <= 1e-9 * PERIOD)
    };
    let missed = coords
        .iter()
        .filter(|&&c| !inside(c))
        .filter(|&&c| {
            [c + PERIOD, c - PERIOD]
                .into_iter()
                .any(|v| inside(v) && !stored(v))
        })
        .count();
    if missed == 0 {
        return Ok(());
    }
    Err(CwError::Input(format!(
        "--select {dim}={lo}..{hi} reaches beyond the longitude '{dim}' ({}..{}), which is not periodic (not evenly spaced over 360 degrees), so the range cannot wrap: it would miss {missed} point(s) at the other end; select within {}..{}",
        coords[0],
        coords[coords.len() - 1],
        coords[0],
        coords[coords.len() - 1]
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lon(n: usize, first: f64) -> Vec<f64> {
        let step = PERIOD / n as f64;
        (0..n).map(|i| first + i as f64 * step).collect()
    }

    /// The selected coordinate values, in order, as written to an output.
    fn values(c: &[f64], r: &AxisRange) -> Vec<f64> {
        (0..r.count)
            .map(|i| c[r.index(i)] + r.coord_shift(i))
            .collect()
    }

    #[test]
    fn cf_longitude_metadata() {
        let a = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        for u in LON_UNITS {
            assert!(is_longitude(&a("units", u)), "{u}");
        }
        assert!(is_longitude(&a("standard_name", "longitude")));
        assert!(!is_longitude(&a("units", "degrees_north")));
        assert!(!is_longitude(&a("units", "m")));
        assert!(!is_longitude(&a("long_name", "longitude")));
    }

    #[test]
    fn global_grids_only() {
        assert_eq!(global_step(&lon(180, 0.0)), Some(2.0));
        assert_eq!(global_step(&lon(144, -180.0)), Some(2.5));
        let mut desc = lon(180, 0.0);
        desc.reverse();
        assert_eq!(global_step(&desc), Some(2.0));
        // Both 0 and 360: span + step = 362.
        assert_eq!(
            global_step(&(0..=180).map(|i| i as f64 * 2.0).collect::<Vec<_>>()),
            None
        );
        // Regional.
        assert_eq!(
            global_step(&(0..50).map(|i| i as f64).collect::<Vec<_>>()),
            None
        );
        // Uneven.
        let mut u = lon(180, 0.0);
        u[3] += 0.5;
        assert_eq!(global_step(&u), None);
    }

    #[test]
    fn ranges_across_the_seam_wrap_like_cdo() {
        let c = lon(180, 0.0); // 0, 2, …, 358
        let want: Vec<f64> = (-5..=5).map(|i| i as f64 * 2.0).collect();
        // -10..10: 350..358 then 0..10, written as -10..10.
        let r = resolve_periodic("lon", &c, -10.0, 10.0).unwrap();
        assert_eq!((r.start, r.count), (175, 11));
        assert_eq!(
            (0..11).map(|i| r.index(i)).collect::<Vec<_>>(),
            [175, 176, 177, 178, 179, 0, 1, 2, 3, 4, 5]
        );
        assert_eq!(values(&c, &r), want);
        // 350..10 (LO > HI) and 350..370: the same points, written the same
        // way (CDO writes -10..10 for all three).
        let r2 = resolve_periodic("lon", &c, 350.0, 10.0).unwrap();
        assert_eq!(r2, r);
        assert_eq!(resolve_periodic("lon", &c, 350.0, 370.0).unwrap(), r);
        // Inside the coordinate: a plain range, as before.
        let r = resolve_periodic("lon", &c, 0.0, 10.0).unwrap();
        assert_eq!(
            r,
            AxisRange {
                start: 0,
                count: 6,
                step: 1,
                wrap: None
            }
        );
        // A turn away without crossing the seam: -180..-90 takes 180..270,
        // written as stored (as CDO does).
        let r = resolve_periodic("lon", &c, -180.0, -90.0).unwrap();
        assert_eq!((r.start, r.count, r.wrap), (90, 46, None));
        assert_eq!(values(&c, &r)[0], 180.0);
        // The whole globe, from -180: every point once, continuous.
        let r = resolve_periodic("lon", &c, -180.0, 180.0).unwrap();
        assert_eq!(r.count, 180);
        let v = values(&c, &r);
        assert!(v.windows(2).all(|w| w[1] - w[0] == 2.0), "{v:?}");
        assert_eq!(v[0], -180.0);
        // More than a turn, or nothing: errors.
        assert!(resolve_periodic("lon", &c, -10.0, 400.0).is_err());
        let e = resolve_periodic("lon", &c, 0.5, 1.5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("selects nothing"), "{e}");
    }

    #[test]
    fn descending_and_offset_grids() {
        let mut c = lon(180, 0.0);
        c.reverse(); // 358, 356, …, 0
        let r = resolve_periodic("lon", &c, -10.0, 10.0).unwrap();
        let v = values(&c, &r);
        assert_eq!(
            v,
            (175..=185)
                .rev()
                .map(|i| i as f64 * 2.0)
                .collect::<Vec<_>>()
        );
        // -180..178 grid, range across the dateline.
        let c = lon(180, -180.0);
        let r = resolve_periodic("lon", &c, 170.0, 190.0).unwrap();
        assert_eq!(
            values(&c, &r),
            (-95..=-85).map(|i| i as f64 * 2.0).collect::<Vec<_>>()
        );
        let r = resolve_periodic("lon", &c, 170.0, -170.0).unwrap();
        assert_eq!(r.count, 11);
    }

    #[test]
    fn non_periodic_longitudes_never_give_a_silent_subset() {
        // 0..360 inclusive (181 points): not periodic; -10..10 would miss
        // 350..358 (360 is the 0 it takes).
        let c: Vec<f64> = (0..=180).map(|i| i as f64 * 2.0).collect();
        let e = check_not_wrapping("lon", &c, -10.0, 10.0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not periodic") && e.contains("5 point(s)"),
            "{e}"
        );
        assert!(check_not_wrapping("lon", &c, 350.0, 10.0).is_err());
        assert!(check_not_wrapping("lon", &c, 0.0, 10.0).is_ok());
        // A regional grid: nothing at the other end, so clipping is fine.
        let reg: Vec<f64> = (0..50).map(|i| i as f64).collect();
        assert!(check_not_wrapping("lon", &reg, -10.0, 10.0).is_ok());
    }
}
