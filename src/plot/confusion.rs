//! `confusion.png`: the 10x10 confusion matrix as a heat map with the count in every cell, rows the true
//! class and columns the predicted one. Shading follows the square root of the count so the few hundred
//! shirts taken for T-shirts stand out next to diagonals of 900. `cell` is public so tests/plots.rs can
//! check that a known matrix is drawn the right way round.

use anyhow::Result;
use plotters::prelude::*;

use super::Figure;
use super::figure::drawing;
use super::style::{AXIS_GREY, blues};
use super::text::{self, CENTRE, RIGHT_MIDDLE, TOP_CENTRE};
use crate::data::{ClassNames, NUM_CLASSES};
use plotters::style::text_anchor::{HPos, VPos};

pub const SIZE: (u32, u32) = (740, 730);
const LEFT: i32 = 130;
const TOP: i32 = 50;
const CELL: i32 = 56;

/// The pixel rectangle `(x0, y0, x1, y1)` (end exclusive) of the cell for `true_class`, `predicted`.
pub fn cell(true_class: usize, predicted: usize) -> (i32, i32, i32, i32) {
    let (x, y) = (
        LEFT + predicted as i32 * CELL,
        TOP + true_class as i32 * CELL,
    );
    (x, y, x + CELL, y + CELL)
}

/// The shade of a cell holding `count` when the largest cell holds `max`.
pub fn shade(count: u32, max: u32) -> RGBColor {
    blues((count as f64 / max.max(1) as f64).sqrt())
}

/// `counts[true][predicted]`, as `Evaluation::confusion` returns it.
pub fn figure(counts: &[[u32; NUM_CLASSES]; NUM_CLASSES], names: &ClassNames) -> Result<Figure> {
    let max = counts.iter().flatten().copied().max().unwrap_or(0);
    let total: u32 = counts.iter().flatten().sum();
    let right: u32 = (0..NUM_CLASSES).map(|i| counts[i][i]).sum();
    Figure::render(SIZE.0, SIZE.1, |root| {
        let title = format!(
            "Confusion matrix: {right} of {total} test images right ({:.1}%)",
            100.0 * right as f64 / total.max(1) as f64
        );
        let centre = LEFT + 5 * CELL;
        text::draw(root, &title, (centre, TOP / 2), CENTRE, 17.0, BLACK, 0.0)?;
        for (t, row) in counts.iter().enumerate() {
            for (p, &n) in row.iter().enumerate() {
                let (x0, y0, x1, y1) = cell(t, p);
                let colour = shade(n, max);
                drawing(root.draw(&Rectangle::new([(x0, y0), (x1, y1)], colour.filled())))?;
                // Dark cells get white digits; the threshold is where the ramp passes mid-grey.
                let ink = if (n as f64 / max.max(1) as f64).sqrt() > 0.5 {
                    WHITE
                } else {
                    BLACK
                };
                text::draw(
                    root,
                    &n.to_string(),
                    ((x0 + x1) / 2, (y0 + y1) / 2),
                    CENTRE,
                    14.0,
                    ink,
                    0.0,
                )?;
            }
        }
        let (gx1, gy1) = (
            LEFT + NUM_CLASSES as i32 * CELL,
            TOP + NUM_CLASSES as i32 * CELL,
        );
        drawing(root.draw(&Rectangle::new(
            [(LEFT - 1, TOP - 1), (gx1, gy1)],
            AXIS_GREY.stroke_width(1),
        )))?;
        for (c, name) in names.iter().enumerate() {
            let (x0, y0, x1, y1) = cell(c, c);
            text::draw(
                root,
                name,
                (LEFT - 8, (y0 + y1) / 2),
                RIGHT_MIDDLE,
                13.0,
                BLACK,
                0.0,
            )?;
            let x = (x0 + x1) / 2;
            drawing(root.draw(&PathElement::new(vec![(x, gy1), (x, gy1 + 4)], AXIS_GREY)))?;
            text::draw(
                root,
                name,
                (x + 2, gy1 + 7),
                text::Anchor(HPos::Right, VPos::Top),
                13.0,
                BLACK,
                45.0,
            )?;
        }
        text::draw(
            root,
            "predicted class",
            (centre, gy1 + 92),
            TOP_CENTRE,
            15.0,
            BLACK,
            0.0,
        )?;
        text::draw(
            root,
            "true class",
            (16, TOP + 5 * CELL),
            CENTRE,
            15.0,
            BLACK,
            90.0,
        )?;
        Ok(())
    })
}
