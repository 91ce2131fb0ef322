//! Tick marks, tick labels and light grid lines for the plotters charts (bars, training curves). plotters
//! draws the axis lines; labels are drawn here with the figures' own text (see `font`), at "nice" values
//! (1, 2 or 5 times a power of ten). `nice_ticks` is unit-tested in tests/plots.rs.

use anyhow::Result;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::figure::{Area, drawing};
use super::style::AXIS_GREY;
use super::text::{self, RIGHT_MIDDLE, TOP_CENTRE};

/// A chart over `f64 x f64`, as every chart here is.
pub type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

const GRID: RGBColor = RGBColor(228, 228, 228);

/// At most `max` (and at least two, when the range allows) round values inside `lo..=hi`.
pub fn nice_ticks(lo: f64, hi: f64, max: usize) -> Vec<f64> {
    if hi.is_nan() || lo.is_nan() || hi <= lo || max < 2 {
        return vec![lo];
    }
    let raw = (hi - lo) / (max - 1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let m = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|m| m * mag >= raw)
        .unwrap_or(10.0);
    let step = m * mag;
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    // Divide by a whole power of ten rather than multiply by a fraction: 6 / 10 is exactly 0.6, while
    // 6 * 0.1 is 0.6000000000000001, which would print as such in a test or a label.
    let scale = |k: i64| {
        if mag < 1.0 {
            k as f64 * m / (1.0 / mag).round()
        } else {
            k as f64 * m * mag
        }
    };
    (first..=last).map(scale).collect()
}

/// Labelled ticks for one chart.
pub struct Ticks {
    pub x: Vec<(f64, String)>,
    pub y: Vec<(f64, String)>,
    /// Light lines across the plot at every tick (drawn first, so series cover them).
    pub grid: bool,
    pub size: f64,
}

/// Draws `ticks` for `chart`, which was built on `area` over `x` by `y`.
pub fn draw(
    area: &Area<'_>,
    chart: &Chart<'_, '_>,
    x: (f64, f64),
    y: (f64, f64),
    ticks: &Ticks,
) -> Result<()> {
    let base = area.get_base_pixel();
    let at = |p: (f64, f64)| {
        let (px, py) = chart.backend_coord(&p);
        (px - base.0, py - base.1)
    };
    for (v, label) in &ticks.x {
        let (bottom, top) = (at((*v, y.0)), at((*v, y.1)));
        if ticks.grid && *v > x.0 {
            drawing(area.draw(&PathElement::new(vec![bottom, top], GRID)))?;
        }
        drawing(area.draw(&PathElement::new(
            vec![bottom, (bottom.0, bottom.1 + 4)],
            AXIS_GREY,
        )))?;
        text::draw(
            area,
            label,
            (bottom.0, bottom.1 + 6),
            TOP_CENTRE,
            ticks.size,
            BLACK,
            0.0,
        )?;
    }
    for (v, label) in &ticks.y {
        let (left, right) = (at((x.0, *v)), at((x.1, *v)));
        if ticks.grid && *v > y.0 {
            drawing(area.draw(&PathElement::new(vec![left, right], GRID)))?;
        }
        drawing(area.draw(&PathElement::new(
            vec![(left.0 - 4, left.1), left],
            AXIS_GREY,
        )))?;
        text::draw(
            area,
            label,
            (left.0 - 6, left.1),
            RIGHT_MIDDLE,
            ticks.size,
            BLACK,
            0.0,
        )?;
    }
    Ok(())
}
