//! Building blocks shared by several figures: a 28x28 image drawn as crisp square pixels, and centred
//! caption lines under it. Tested through the figures in tests/plots.rs.

use anyhow::Result;
use plotters::prelude::*;

use super::figure::{Area, drawing};
use super::font;
use super::style::{AXIS_GREY, PixelMap};
use super::text;
use crate::data::IMAGE_SIDE;

/// Where an image landed: top-left corner and side, in the area's pixel coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed {
    pub x: i32,
    pub y: i32,
    pub side: i32,
}

/// Draws `pixels (28*28)` as the largest centred square of whole-pixel blocks that fits `area`, with a thin
/// frame (like matplotlib's axes spines) so a white background still reads as an image.
pub fn image(area: &Area<'_>, pixels: &[u8], map: PixelMap) -> Result<Placed> {
    let (w, h) = area.dim_in_pixel();
    // Whole multiples of 28 keep every source pixel the same size; tiny areas fall back to 1 px blocks.
    let block = ((w.min(h) as usize) / IMAGE_SIDE).max(1) as i32;
    let side = block * IMAGE_SIDE as i32;
    let (x0, y0) = ((w as i32 - side) / 2, (h as i32 - side) / 2);
    for (i, &v) in pixels.iter().enumerate().take(IMAGE_SIDE * IMAGE_SIDE) {
        let (r, c) = ((i / IMAGE_SIDE) as i32, (i % IMAGE_SIDE) as i32);
        let (x, y) = (x0 + c * block, y0 + r * block);
        drawing(area.draw(&Rectangle::new(
            [(x, y), (x + block, y + block)],
            map.colour(v).filled(),
        )))?;
    }
    drawing(area.draw(&Rectangle::new(
        [(x0 - 1, y0 - 1), (x0 + side, y0 + side)],
        AXIS_GREY.stroke_width(1),
    )))?;
    Ok(Placed { x: x0, y: y0, side })
}

/// Centred lines of text starting at `top`, each in its own colour.
pub fn caption(area: &Area<'_>, top: i32, lines: &[(&str, RGBColor)], size: f64) -> Result<()> {
    let (w, _) = area.dim_in_pixel();
    let mut y = top;
    for (line, colour) in lines {
        text::draw(
            area,
            line,
            (w as i32 / 2, y),
            text::TOP_CENTRE,
            size,
            *colour,
            0.0,
        )?;
        y += (size * 1.3).round() as i32;
    }
    Ok(())
}

/// Shortens `name` with an ellipsis so it fits `max_width` pixels at `size`.
pub fn fit_text(name: &str, size: f64, max_width: u32) -> String {
    if font::measure(name, size).0 <= max_width {
        return name.to_string();
    }
    let chars: Vec<char> = name.chars().collect();
    (1..chars.len())
        .rev()
        .map(|keep| chars[..keep].iter().collect::<String>() + "…")
        .find(|s| font::measure(s, size).0 <= max_width)
        .unwrap_or_else(|| "…".to_string())
}
