//! Plots of a scaling study (plotters): speedup against the ideal,
//! parallel efficiency, and a stacked read/compute/comm breakdown of the
//! median time per rank count, each written as SVG and PNG. Files are drawn
//! under a temporary name in the target directory and renamed when complete.
//! Text uses the system's sans-serif font through fontconfig (Debian:
//! `fonts-dejavu-core`, installed by `modules/local.sh`).

use crate::error::CwError;
use crate::scaling::{Mode, Table};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Pixel size of every plot.
pub const SIZE: (u32, u32) = (800, 500);

/// The three figures of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figure {
    /// Speedup and the ideal line S = P.
    Speedup,
    /// Parallel efficiency and the ideal 100 %.
    Efficiency,
    /// Median time per rank count split into read, compute and comm shares.
    Breakdown,
}

impl Figure {
    /// All figures, in the order they are written.
    pub const ALL: [Figure; 3] = [Figure::Speedup, Figure::Efficiency, Figure::Breakdown];

    /// File-name part (`speedup`, `efficiency`, `breakdown`).
    pub fn name(self) -> &'static str {
        match self {
            Figure::Speedup => "speedup",
            Figure::Efficiency => "efficiency",
            Figure::Breakdown => "breakdown",
        }
    }
}

fn err(e: impl std::fmt::Display) -> String {
    let s = e.to_string();
    if s.to_ascii_lowercase().contains("font") {
        format!("{s} (install a sans-serif font, e.g. Debian's fonts-dejavu-core)")
    } else {
        s
    }
}

/// A row's share of one phase, in %.
type Share = fn(&crate::scaling::Row) -> f64;

const READ: RGBColor = RGBColor(66, 133, 244);
const COMPUTE: RGBColor = RGBColor(52, 168, 83);
const COMM: RGBColor = RGBColor(234, 67, 53);

fn title(t: &Table, what: &str) -> String {
    let rows = &t.rows;
    let threads = rows.first().map_or(1, |r| r.threads);
    format!(
        "{} scaling: {what} ({threads} thread(s) per rank)",
        t.mode.name()
    )
}

/// Draw `fig` of `t` on `area`.
pub fn draw<DB: DrawingBackend>(
    fig: Figure,
    t: &Table,
    area: &DrawingArea<DB, Shift>,
) -> Result<(), String> {
    area.fill(&WHITE).map_err(err)?;
    let pmax = t.rows.iter().map(|r| r.ranks).max().unwrap_or(1) as f64;
    let p0 = t.rows.first().map_or(1, |r| r.ranks) as f64;
    let xr = 0f64..pmax * 1.08 + 0.5;
    match fig {
        Figure::Speedup => {
            let smax = t.rows.iter().map(|r| r.speedup).fold(pmax, f64::max);
            let what = match t.mode {
                Mode::Strong => "speedup",
                Mode::Weak => "scaled speedup",
            };
            let mut c = ChartBuilder::on(area)
                .caption(title(t, what), ("sans-serif", 22))
                .margin(15)
                .x_label_area_size(45)
                .y_label_area_size(55)
                .build_cartesian_2d(xr, 0f64..smax * 1.1)
                .map_err(err)?;
            c.configure_mesh()
                .x_desc("MPI ranks")
                .x_label_formatter(&whole)
                .y_desc(what)
                .draw()
                .map_err(err)?;
            c.draw_series(LineSeries::new(
                [(p0, p0), (pmax, pmax)],
                BLACK.stroke_width(1),
            ))
            .map_err(err)?
            .label("ideal (S = P)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK));
            let pts: Vec<(f64, f64)> = t.rows.iter().map(|r| (r.ranks as f64, r.speedup)).collect();
            measured(&mut c, pts)?;
            c.configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }
        Figure::Efficiency => {
            let emax = t
                .rows
                .iter()
                .map(|r| 100.0 * r.efficiency)
                .fold(100.0, f64::max);
            let mut c = ChartBuilder::on(area)
                .caption(title(t, "parallel efficiency"), ("sans-serif", 22))
                .margin(15)
                .x_label_area_size(45)
                .y_label_area_size(55)
                .build_cartesian_2d(xr, 0f64..emax * 1.1)
                .map_err(err)?;
            c.configure_mesh()
                .x_desc("MPI ranks")
                .x_label_formatter(&whole)
                .y_desc("efficiency %")
                .draw()
                .map_err(err)?;
            c.draw_series(LineSeries::new(
                [(p0, 100.0), (pmax, 100.0)],
                BLACK.stroke_width(1),
            ))
            .map_err(err)?
            .label("ideal (100 %)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK));
            let pts: Vec<(f64, f64)> = t
                .rows
                .iter()
                .map(|r| (r.ranks as f64, 100.0 * r.efficiency))
                .collect();
            measured(&mut c, pts)?;
            c.configure_series_labels()
                .position(SeriesLabelPosition::LowerLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }
        Figure::Breakdown => {
            // Integer ranges are inclusive in plotters: 0..n-1 gives n bar slots.
            let n = t.rows.len();
            let tmax = t.rows.iter().map(|r| r.median_s).fold(0.0, f64::max);
            let ranks: Vec<usize> = t.rows.iter().map(|r| r.ranks).collect();
            let mut c = ChartBuilder::on(area)
                .caption(title(t, "median time by phase"), ("sans-serif", 22))
                .margin(15)
                .x_label_area_size(45)
                .y_label_area_size(60)
                .build_cartesian_2d(
                    (0..n.max(2) - 1).into_segmented(),
                    0f64..(tmax * 1.4).max(1e-9),
                )
                .map_err(err)?;
            let fmt = |v: &SegmentValue<usize>| match v {
                SegmentValue::CenterOf(i) if *i < ranks.len() => ranks[*i].to_string(),
                _ => String::new(),
            };
            c.configure_mesh()
                .disable_x_mesh()
                .x_desc("MPI ranks")
                .y_desc("seconds (median reduce time)")
                .x_label_formatter(&fmt)
                .draw()
                .map_err(err)?;
            let phases: [(&str, RGBColor, Share); 3] = [
                ("read", READ, |r| r.read_pct),
                ("compute", COMPUTE, |r| r.compute_pct),
                ("comm", COMM, |r| r.comm_pct),
            ];
            let mut base = vec![0.0; n];
            for (name, color, share) in phases {
                let bars: Vec<Rectangle<(SegmentValue<usize>, f64)>> = t
                    .rows
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let h = r.median_s * share(r) / 100.0;
                        let y0 = base[i];
                        base[i] += h;
                        let mut b = Rectangle::new(
                            [
                                (SegmentValue::Exact(i), y0),
                                (SegmentValue::Exact(i + 1), y0 + h),
                            ],
                            color.filled(),
                        );
                        b.set_margin(0, 0, 12, 12);
                        b
                    })
                    .collect();
                c.draw_series(bars)
                    .map_err(err)?
                    .label(name)
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                    });
            }
            c.configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }
    }
    area.present().map_err(err)
}

/// Rank-axis labels: whole numbers only.
fn whole(x: &f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        String::new()
    }
}

/// The measured series: a line with dots.
fn measured<DB: DrawingBackend>(
    c: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    pts: Vec<(f64, f64)>,
) -> Result<(), String> {
    c.draw_series(LineSeries::new(pts.clone(), READ.stroke_width(2)))
        .map_err(err)?
        .label("measured (median)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], READ.stroke_width(2)));
    c.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, READ.filled())))
        .map_err(err)?;
    Ok(())
}

/// Write every figure of `t` into `dir` as `MODE-FIGURE.svg` and `.png`;
/// returns the paths written.
pub fn write_plots(dir: &Path, t: &Table) -> Result<Vec<PathBuf>, CwError> {
    let mut out = Vec::new();
    for fig in Figure::ALL {
        let stem = format!("{}-{}", t.mode.name(), fig.name());
        let fail = |e: String| CwError::Output(format!("cannot draw {stem}: {e}"));
        let svg = dir.join(format!("{stem}.svg"));
        let mut text = String::new();
        draw(
            fig,
            t,
            &SVGBackend::with_string(&mut text, SIZE).into_drawing_area(),
        )
        .map_err(fail)?;
        let tmp = dir.join(format!(".{stem}.partial.svg"));
        std::fs::write(&tmp, text)
            .map_err(|e| CwError::Output(format!("cannot write '{}': {e}", tmp.display())))?;
        super::output::replace(&tmp, &svg)?;
        out.push(svg);
        // The bitmap encoder picks the format from the extension: keep `.png`.
        let png = dir.join(format!("{stem}.png"));
        let tmp = dir.join(format!(".{stem}.partial.png"));
        draw(fig, t, &BitMapBackend::new(&tmp, SIZE).into_drawing_area()).map_err(fail)?;
        super::output::replace(&tmp, &png)?;
        out.push(png);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scaling::Row;

    fn table() -> Table {
        let row = |p: usize, t: f64, s: f64| Row {
            ranks: p,
            nodes: 1,
            threads: 1,
            runs: 2,
            median_s: t,
            min_s: t,
            max_s: t,
            wall_median_s: t + 0.3,
            bytes: 8_000_000,
            throughput_gbs: 0.008 / t,
            speedup: s,
            efficiency: s / p as f64,
            read_pct: 30.0,
            compute_pct: 60.0,
            comm_pct: 10.0,
        };
        Table {
            mode: Mode::Strong,
            rows: vec![row(1, 1.0, 1.0), row(2, 0.6, 1.67), row(3, 0.5, 2.0)],
        }
    }

    #[test]
    fn writes_svg_and_png_files() {
        let dir = std::env::temp_dir().join(format!("cw-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = write_plots(&dir, &table()).unwrap();
        assert_eq!(files.len(), 6);
        for f in &files {
            let b = std::fs::read(f).unwrap();
            if f.extension().unwrap() == "png" {
                assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n");
            } else {
                let s = String::from_utf8(b).unwrap();
                assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
                assert!(s.contains("MPI ranks"), "axis label drawn");
            }
        }
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains("partial")
            })
            .collect();
        assert!(left.is_empty(), "temporary files left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
