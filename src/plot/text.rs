//! Text on figures, at any angle: a label is rasterised upright (`font::rasterise`), then resampled
//! (bilinear, so turned edges stay smooth) into the figure with its ink coverage as alpha. The tutorial's
//! last figure tilts the class names by 45 degrees; plotters' own text turns only in right angles.
//! Tested by tests/plots.rs through every figure.

use anyhow::Result;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::figure::{Area, drawing};
use super::font::{self, Rendered};

/// Which point of the upright label is placed at the anchor.
#[derive(Clone, Copy)]
pub struct Anchor(pub HPos, pub VPos);

pub const TOP_CENTRE: Anchor = Anchor(HPos::Center, VPos::Top);
pub const CENTRE: Anchor = Anchor(HPos::Center, VPos::Center);
pub const RIGHT_MIDDLE: Anchor = Anchor(HPos::Right, VPos::Center);
pub const LEFT_MIDDLE: Anchor = Anchor(HPos::Left, VPos::Center);

/// Draws `label` in `colour` at `size` pixels with its `anchor` point at `at` (area coordinates), turned
/// `degrees` counter-clockwise about that point.
pub fn draw(
    area: &Area<'_>,
    label: &str,
    at: (i32, i32),
    anchor: Anchor,
    size: f64,
    colour: RGBColor,
    degrees: f64,
) -> Result<()> {
    if label.is_empty() {
        return Ok(());
    }
    let r = font::rasterise(label, size);
    let au = match anchor.0 {
        HPos::Left => 0.0,
        HPos::Center => (r.width / 2) as f64,
        HPos::Right => r.width as f64,
    };
    let av = match anchor.1 {
        VPos::Top => 0.0,
        VPos::Center => (r.height / 2) as f64,
        VPos::Bottom => r.height as f64,
    };
    let (s, c) = degrees.to_radians().sin_cos();
    // Screen y grows downwards, so a counter-clockwise turn maps the text direction (1, 0) to (c, -s) and
    // the down direction (0, 1) to (s, c); the loop below maps screen pixels back with the inverse.
    let to_screen = |u: f64, v: f64| {
        let (du, dv) = (u - au, v - av);
        (at.0 as f64 + du * c + dv * s, at.1 as f64 - du * s + dv * c)
    };
    let corners = [
        to_screen(0.0, 0.0),
        to_screen(r.width as f64, 0.0),
        to_screen(0.0, r.height as f64),
        to_screen(r.width as f64, r.height as f64),
    ];
    let min_x = corners.iter().map(|p| p.0).fold(f64::MAX, f64::min).floor() as i32 - 1;
    let max_x = corners.iter().map(|p| p.0).fold(f64::MIN, f64::max).ceil() as i32 + 1;
    let min_y = corners.iter().map(|p| p.1).fold(f64::MAX, f64::min).floor() as i32 - 1;
    let max_y = corners.iter().map(|p| p.1).fold(f64::MIN, f64::max).ceil() as i32 + 1;
    for y in min_y..=max_y {
        for x in min_x..=max_x {
            let (dx, dy) = (x as f64 + 0.5 - at.0 as f64, y as f64 + 0.5 - at.1 as f64);
            let u = au + dx * c - dy * s;
            let v = av + dx * s + dy * c;
            let alpha = sample(&r, u - 0.5, v - 0.5);
            if alpha > 0.01 {
                drawing(area.draw_pixel((x, y), &colour.mix(alpha.min(1.0) as f64)))?;
            }
        }
    }
    Ok(())
}

/// Bilinear coverage; exact at whole-pixel offsets, so upright text stays as crisp as it was rasterised.
fn sample(r: &Rendered, u: f64, v: f64) -> f32 {
    let (u0, v0) = (u.floor(), v.floor());
    let (fu, fv) = ((u - u0) as f32, (v - v0) as f32);
    let (u0, v0) = (u0 as i32, v0 as i32);
    r.at(u0, v0) * (1.0 - fu) * (1.0 - fv)
        + r.at(u0 + 1, v0) * fu * (1.0 - fv)
        + r.at(u0, v0 + 1) * (1.0 - fu) * fv
        + r.at(u0 + 1, v0 + 1) * fu * fv
}
