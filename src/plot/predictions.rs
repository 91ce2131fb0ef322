//! Prediction figures: the tutorial's image-plus-bars pair (figures 3-4), its grid of pairs (figure 5),
//! the bar chart alone with class names (last figure), and a person's photo beside its bars. Captions
//! follow the tutorial: `Ankle boot 100% (Ankle boot)`, blue when right, red when wrong.
//! tests/plots.rs checks sizes, blankness, and red/blue bar pixels for right and wrong predictions.

use anyhow::{Result, ensure};

use super::Figure;
use super::bars::{self, Ticks};
use super::panels;
use super::style::{AXIS_GREY, NEUTRAL, PixelMap, verdict_colour};
use crate::data::{ClassNames, IMAGE_SIDE, NUM_CLASSES};
use crate::evaluate::argmax;

/// The tutorial's caption: predicted class, its probability, and the true class when known.
pub fn caption_text(probs: &[f32], truth: Option<usize>, names: &ClassNames) -> String {
    let p = argmax(probs);
    let head = format!("{} {:.0}%", names.get(p), 100.0 * probs[p]);
    match truth {
        Some(t) => format!("{head} ({})", names.get(t)),
        None => head,
    }
}

pub const SINGLE_SIZE: (u32, u32) = (660, 330);

/// One test image with its caption beside its ten bars.
pub fn single(pixels: &[u8], probs: &[f32], truth: usize, names: &ClassNames) -> Result<Figure> {
    Figure::render(SINGLE_SIZE.0, SINGLE_SIZE.1, |root| {
        let (left, right) = root.split_horizontally(330);
        let image_area = left
            .clone()
            .shrink((26, 12), (9 * IMAGE_SIDE as u32, 9 * IMAGE_SIDE as u32));
        panels::image(&image_area, pixels, PixelMap::Binary)?;
        let colour = verdict_colour(argmax(probs), Some(truth));
        panels::caption(
            &left,
            12 + 9 * IMAGE_SIDE as i32 + 10,
            &[(&caption_text(probs, Some(truth), names), colour)],
            16.0,
        )?;
        bars::draw(
            &right.margin(10, 20, 10, 10),
            probs,
            Some(truth),
            Ticks::Digits,
            names,
        )
    })
}

const CELL_IMAGE_W: i32 = 200;
const CELL_BARS_W: i32 = 170;
const CELL_H: i32 = 178;
const GRID_MARGIN: i32 = 10;

pub fn grid_size(rows: usize, cols: usize) -> (u32, u32) {
    (
        (2 * GRID_MARGIN + cols as i32 * (CELL_IMAGE_W + CELL_BARS_W)) as u32,
        (2 * GRID_MARGIN + rows as i32 * CELL_H) as u32,
    )
}

/// `rows x cols` pairs of image and bars, in reading order: `images[i] (784)`, `probs (n, 10)`,
/// `labels (n)`.
pub fn grid(
    images: &[&[u8]],
    probs: &[f32],
    labels: &[u8],
    rows: usize,
    cols: usize,
    names: &ClassNames,
) -> Result<Figure> {
    let n = rows * cols;
    ensure!(n >= 1, "a grid needs at least one image");
    ensure!(
        images.len() >= n && labels.len() >= n && probs.len() >= n * NUM_CLASSES,
        "a {rows}x{cols} grid needs {n} predictions, got {}",
        images.len().min(labels.len())
    );
    let (w, h) = grid_size(rows, cols);
    Figure::render(w, h, |root| {
        for i in 0..n {
            let (r, c) = ((i / cols) as i32, (i % cols) as i32);
            let (x, y) = (
                GRID_MARGIN + c * (CELL_IMAGE_W + CELL_BARS_W),
                GRID_MARGIN + r * CELL_H,
            );
            let p = &probs[i * NUM_CLASSES..(i + 1) * NUM_CLASSES];
            let truth = labels[i] as usize;
            let side = 5 * IMAGE_SIDE as i32;
            let cell = root.clone().shrink((x, y), (CELL_IMAGE_W, CELL_H));
            let image_area = root
                .clone()
                .shrink((x + (CELL_IMAGE_W - side) / 2, y + 4), (side, side));
            panels::image(&image_area, images[i], PixelMap::Binary)?;
            let text = panels::fit_text(
                &caption_text(p, Some(truth), names),
                12.0,
                CELL_IMAGE_W as u32 - 4,
            );
            panels::caption(
                &cell,
                side + 10,
                &[(&text, verdict_colour(argmax(p), Some(truth)))],
                12.0,
            )?;
            let bars_area = root
                .clone()
                .shrink((x + CELL_IMAGE_W, y + 4), (CELL_BARS_W - 8, side + 8));
            bars::draw(&bars_area, p, Some(truth), Ticks::Digits, names)?;
        }
        Ok(())
    })
}

pub const CHART_SIZE: (u32, u32) = (520, 380);

/// The bars alone with class names under them (the tutorial's last figure).
pub fn chart(probs: &[f32], truth: Option<usize>, names: &ClassNames) -> Result<Figure> {
    Figure::render(CHART_SIZE.0, CHART_SIZE.1, |root| {
        let title = caption_text(probs, truth, names);
        panels::caption(
            root,
            8,
            &[(&title, verdict_colour(argmax(probs), truth))],
            15.0,
        )?;
        bars::draw(
            &root.margin(32, 4, 6, 10),
            probs,
            truth,
            Ticks::Names,
            names,
        )
    })
}

pub const PHOTO_SIZE: (u32, u32) = (760, 380);

/// A person's photo after preprocessing (28x28, grey, exactly what the model is fed) beside its bars.
pub fn photo(pixels: &[u8], probs: &[f32], name: &str, names: &ClassNames) -> Result<Figure> {
    Figure::render(PHOTO_SIZE.0, PHOTO_SIZE.1, |root| {
        let (left, right) = root.split_horizontally(300);
        let side = 9 * IMAGE_SIDE as i32;
        let image_area = left.clone().shrink(((300 - side) / 2, 16), (side, side));
        panels::image(&image_area, pixels, PixelMap::Grey)?;
        let name = panels::fit_text(name, 12.0, 280);
        panels::caption(
            &left,
            16 + side + 10,
            &[
                (&caption_text(probs, None, names), NEUTRAL),
                (&name, AXIS_GREY),
                ("the 28x28 input the model saw", AXIS_GREY),
            ],
            14.0,
        )?;
        bars::draw(
            &right.margin(16, 4, 4, 12),
            probs,
            None,
            Ticks::Names,
            names,
        )
    })
}
