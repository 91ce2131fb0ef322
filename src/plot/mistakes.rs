//! `mistakes.png`: the test images the model got wrong with the most confidence, each captioned with the
//! wrong guess (red), the true class (blue) and its test index (to look at it with `fmnist predict`).
//! Tested in tests/plots.rs: the selection is checked against the evaluation, the figure for size and ink.

use anyhow::Result;
use plotters::prelude::*;

use super::Figure;
use super::panels;
use super::style::{AXIS_GREY, PixelMap, RIGHT, WRONG};
use crate::data::{ClassNames, IMAGE_SIDE, Split};
use crate::evaluate::Evaluation;

/// One wrong prediction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mistake {
    pub index: usize,
    pub predicted: usize,
    pub truth: usize,
    /// Probability of the predicted class.
    pub confidence: f32,
}

/// The `n` wrong predictions with the highest confidence, most confident first (ties by index).
pub fn most_confident(eval: &Evaluation, n: usize) -> Vec<Mistake> {
    let mut wrong: Vec<Mistake> = (0..eval.len())
        .filter_map(|i| {
            let predicted = eval.predicted(i);
            let truth = eval.labels[i] as usize;
            (predicted != truth).then(|| Mistake {
                index: i,
                predicted,
                truth,
                confidence: eval.probs_of(i)[predicted],
            })
        })
        .collect();
    wrong.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then(a.index.cmp(&b.index))
    });
    wrong.truncate(n);
    wrong
}

pub const COLS: usize = 6;
const CELL_W: i32 = 150;
const CELL_H: i32 = 182;
const TOP: i32 = 40;
const MARGIN: i32 = 10;

pub fn size(count: usize) -> (u32, u32) {
    let rows = count.div_ceil(COLS).max(1) as i32;
    (
        (2 * MARGIN + COLS as i32 * CELL_W) as u32,
        (TOP + MARGIN + rows * CELL_H) as u32,
    )
}

/// A grid of `mistakes` (images from `test`), `COLS` per row.
pub fn figure(mistakes: &[Mistake], test: &Split, names: &ClassNames) -> Result<Figure> {
    let (w, h) = size(mistakes.len());
    Figure::render(w, h, |root| {
        let title = if mistakes.is_empty() {
            "No wrong predictions".to_string()
        } else {
            format!("The {} most confident wrong predictions", mistakes.len())
        };
        panels::caption(root, 10, &[(&title, BLACK)], 17.0)?;
        let side = 4 * IMAGE_SIDE as i32;
        for (k, m) in mistakes.iter().enumerate() {
            let (r, c) = ((k / COLS) as i32, (k % COLS) as i32);
            let (x, y) = (MARGIN + c * CELL_W, TOP + r * CELL_H);
            let image_area = root
                .clone()
                .shrink((x + (CELL_W - side) / 2, y + 2), (side, side));
            panels::image(&image_area, test.image(m.index), PixelMap::Binary)?;
            let cell = root.clone().shrink((x, y), (CELL_W, CELL_H));
            let guess = format!("{} {:.0}%", names.get(m.predicted), 100.0 * m.confidence);
            let truth = format!("true: {}", names.get(m.truth));
            let index = format!("test #{}", m.index);
            panels::caption(
                &cell,
                side + 8,
                &[(&guess, WRONG), (&truth, RIGHT), (&index, AXIS_GREY)],
                13.0,
            )?;
        }
        Ok(())
    })
}
