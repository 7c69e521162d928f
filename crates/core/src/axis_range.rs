//! One axis of a selection ([`AxisRange`]): which indices are read, and on
//! a periodic longitude how the range continues past the axis end
//! ([`Wrap`]). Shared by the selection parser, the periodic-longitude
//! resolution (the `periodic` module) and every reader.

/// Degrees in one turn: the period of a longitude.
pub const PERIOD: f64 = 360.0;

/// The selected indices along one axis: `start, start+step, …` (`count` of
/// them), taken modulo the axis length when the range wraps (see
/// the `periodic` module).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxisRange {
    /// First index.
    pub start: usize,
    /// Number of indices.
    pub count: usize,
    /// Stride.
    pub step: usize,
    /// Set for a value range on a periodic longitude that crosses its seam
    /// or lies a turn away from the stored values (`lon=-10..10` on 0..358).
    pub wrap: Option<Wrap>,
}

/// How a range on a periodic longitude continues past the axis end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wrap {
    /// Axis length: selected index `i` is file index `(start + i·step) mod len`.
    pub len: usize,
    /// Whole turns (360°) added to the stored coordinate of the points before
    /// the seam (`[0]`) and after it (`[1]`), so the written coordinate is
    /// continuous and inside the requested range.
    pub turns: [i64; 2],
}

impl AxisRange {
    /// The whole axis of length `len`.
    pub fn all(len: usize) -> Self {
        AxisRange {
            start: 0,
            count: len,
            step: 1,
            wrap: None,
        }
    }

    /// The `i`-th selected index.
    pub fn index(&self, i: usize) -> usize {
        let j = self.start + i * self.step;
        match self.wrap {
            Some(w) => j % w.len,
            None => j,
        }
    }

    /// What to add to the stored coordinate of the `i`-th selected index
    /// (a multiple of 360 on a wrapped longitude, else 0).
    pub fn coord_shift(&self, i: usize) -> f64 {
        match self.wrap {
            Some(w) => {
                let after = usize::from(self.start + i * self.step >= w.len);
                w.turns[after] as f64 * PERIOD
            }
            None => 0.0,
        }
    }

    /// The number of selected indices before the seam, when the range
    /// continues from the last index of the axis to the first.
    pub fn seam(&self) -> Option<usize> {
        let w = self.wrap?;
        let before = (w.len - self.start).div_ceil(self.step);
        (before < self.count).then_some(before)
    }
}
