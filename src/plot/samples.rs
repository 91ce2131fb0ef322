//! The tutorial's first two figures: one image with a viridis colour map and a 0-255 colour bar, and a
//! square grid of images (binary colour map) with the class name under each. The layout is fixed
//! arithmetic (`SINGLE_IMAGE`, `grid_image`) so tests/plots.rs can check that each block of the figure
//! holds the colour of the right source pixel.

use anyhow::{Result, ensure};
use plotters::prelude::*;

use super::Figure;
use super::figure::{Area, drawing};
use super::panels::{self, Placed};
use super::style::{AXIS_GREY, PixelMap};
use super::text::{self, LEFT_MIDDLE, RIGHT_MIDDLE, TOP_CENTRE};
use crate::data::{ClassNames, IMAGE_SIDE, Split};

/// Where `single` draws the image: 13 figure pixels per source pixel.
pub const SINGLE_IMAGE: Placed = Placed {
    x: 44,
    y: 16,
    side: 13 * IMAGE_SIDE as i32,
};
pub const SINGLE_SIZE: (u32, u32) = (520, 412);
const BAR_X: i32 = 432;
const BAR_WIDTH: i32 = 20;

/// One image, viridis-coloured, with pixel-index ticks and a colour bar for the 0-255 values.
pub fn single(pixels: &[u8]) -> Result<Figure> {
    Figure::render(SINGLE_SIZE.0, SINGLE_SIZE.1, |root| {
        let p = SINGLE_IMAGE;
        let area = root.clone().shrink((p.x, p.y), (p.side, p.side));
        panels::image(&area, pixels, PixelMap::Viridis)?;
        let block = p.side / IMAGE_SIDE as i32;
        for t in (0..IMAGE_SIDE as i32).step_by(5) {
            let at = t * block + block / 2;
            let (bx, ly) = (p.x + at, p.y + at);
            // Bottom ticks (columns) and left ticks (rows), at the centre of the pixel they name.
            tick(root, (bx, p.y + p.side), (bx, p.y + p.side + 4))?;
            text::draw(
                root,
                &t.to_string(),
                (bx, p.y + p.side + 6),
                TOP_CENTRE,
                12.0,
                BLACK,
                0.0,
            )?;
            tick(root, (p.x - 5, ly), (p.x - 1, ly))?;
            text::draw(
                root,
                &t.to_string(),
                (p.x - 7, ly),
                RIGHT_MIDDLE,
                12.0,
                BLACK,
                0.0,
            )?;
        }
        colour_bar(root, p.y, p.side)
    })
}

/// The 0-255 scale beside the image, 0 at the bottom like matplotlib's colorbar.
fn colour_bar(root: &Area<'_>, top: i32, height: i32) -> Result<()> {
    for y in 0..height {
        let v = (255.0 * (height - 1 - y) as f64 / (height - 1) as f64).round() as u8;
        drawing(root.draw(&Rectangle::new(
            [(BAR_X, top + y), (BAR_X + BAR_WIDTH, top + y + 1)],
            PixelMap::Viridis.colour(v).filled(),
        )))?;
    }
    drawing(root.draw(&Rectangle::new(
        [(BAR_X - 1, top - 1), (BAR_X + BAR_WIDTH, top + height)],
        AXIS_GREY.stroke_width(1),
    )))?;
    for v in (0..=250).step_by(50) {
        let y = top + height - 1 - ((height - 1) as f64 * v as f64 / 255.0).round() as i32;
        tick(root, (BAR_X + BAR_WIDTH, y), (BAR_X + BAR_WIDTH + 4, y))?;
        text::draw(
            root,
            &v.to_string(),
            (BAR_X + BAR_WIDTH + 7, y),
            LEFT_MIDDLE,
            12.0,
            BLACK,
            0.0,
        )?;
    }
    Ok(())
}

fn tick(root: &Area<'_>, from: (i32, i32), to: (i32, i32)) -> Result<()> {
    drawing(root.draw(&PathElement::new(vec![from, to], AXIS_GREY)))
}

const GRID_MARGIN: i32 = 10;
const CELL_W: i32 = 124;
const CELL_H: i32 = 142;
const GRID_IMAGE: i32 = 4 * IMAGE_SIDE as i32;

/// Where image `i` of a `side x side` grid lands.
pub fn grid_image(i: usize, side: usize) -> Placed {
    let (r, c) = ((i / side) as i32, (i % side) as i32);
    Placed {
        x: GRID_MARGIN + c * CELL_W + (CELL_W - GRID_IMAGE) / 2,
        y: GRID_MARGIN + r * CELL_H,
        side: GRID_IMAGE,
    }
}

/// Size of a `side x side` grid figure.
pub fn grid_size(side: usize) -> (u32, u32) {
    (
        (2 * GRID_MARGIN + side as i32 * CELL_W) as u32,
        (2 * GRID_MARGIN + side as i32 * CELL_H) as u32,
    )
}

/// The first `side * side` images of `split` in a square grid, each with its class name.
pub fn grid(split: &Split, side: usize, names: &ClassNames) -> Result<Figure> {
    ensure!(side >= 1, "a grid needs at least one image");
    ensure!(
        side * side <= split.len(),
        "a {side}x{side} grid needs {} images but the split has {}",
        side * side,
        split.len()
    );
    let (w, h) = grid_size(side);
    Figure::render(w, h, |root| {
        for i in 0..side * side {
            let p = grid_image(i, side);
            let area = root.clone().shrink((p.x, p.y), (p.side, p.side));
            panels::image(&area, split.image(i), PixelMap::Binary)?;
            let cell = root
                .clone()
                .shrink((p.x - (CELL_W - GRID_IMAGE) / 2, p.y), (CELL_W, CELL_H));
            let name =
                panels::fit_text(names.get(split.labels[i] as usize), 13.0, CELL_W as u32 - 4);
            panels::caption(&cell, GRID_IMAGE + 5, &[(&name, BLACK)], 13.0)?;
        }
        Ok(())
    })
}
