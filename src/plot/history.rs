//! `history.png`: training and test loss (left) and accuracy (right) per epoch, so over-fitting shows as
//! the curves parting (train loss still falling while test loss rises). The legend sits in the title strip
//! above both panels, so below `PANEL_TOP` the line colours come only from the curves; tests/plots.rs uses
//! that to check that a falling loss is drawn falling.

use anyhow::{Result, ensure};
use plotters::prelude::*;

use super::Figure;
use super::axes;
use super::figure::{Area, drawing};
use super::style::{AXIS_GREY, TEST_LINE, TRAIN_LINE};
use super::text::{self, LEFT_MIDDLE, TOP_CENTRE};
use crate::train::EpochRecord;

pub const SIZE: (u32, u32) = (1000, 420);
/// Height of the title and legend strip.
pub const PANEL_TOP: u32 = 40;

pub fn figure(history: &[EpochRecord]) -> Result<Figure> {
    ensure!(!history.is_empty(), "the history has no epochs to plot");
    Figure::render(SIZE.0, SIZE.1, |root| {
        legend(root)?;
        let (left, right) = root
            .margin(PANEL_TOP, 0, 0, 0)
            .split_horizontally(SIZE.0 / 2);
        let loss = |r: &EpochRecord| (r.loss, r.test_loss);
        let acc = |r: &EpochRecord| (r.accuracy, r.test_accuracy);
        panel(&left, history, "Loss (cross-entropy)", loss, false)?;
        panel(&right, history, "Accuracy", acc, true)
    })
}

fn legend(root: &Area<'_>) -> Result<()> {
    let y = 20;
    let mut x = SIZE.0 as i32 / 2 - 110;
    for (name, colour) in [("train", TRAIN_LINE), ("test", TEST_LINE)] {
        drawing(root.draw(&PathElement::new(
            vec![(x, y), (x + 30, y)],
            colour.stroke_width(2),
        )))?;
        drawing(root.draw(&Circle::new((x + 15, y), 3, colour.filled())))?;
        text::draw(root, name, (x + 38, y), LEFT_MIDDLE, 15.0, BLACK, 0.0)?;
        x += 120;
    }
    Ok(())
}

/// One panel: both series of `pick` against the epoch number.
fn panel(
    area: &Area<'_>,
    history: &[EpochRecord],
    title: &str,
    pick: impl Fn(&EpochRecord) -> (f64, f64),
    is_accuracy: bool,
) -> Result<()> {
    let values: Vec<f64> = history
        .iter()
        .flat_map(|r| <[f64; 2]>::from(pick(r)))
        .collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    // Pad the range so the curves do not ride on the frame; a flat series still gets some height.
    let pad = ((hi - lo) * 0.1).max(0.01);
    let (mut lo, mut hi) = (lo - pad, hi + pad);
    if is_accuracy {
        (lo, hi) = (lo.max(0.0), hi.min(1.0));
    } else {
        lo = lo.max(0.0);
    }
    let last = history.last().map_or(1, |r| r.epoch) as f64;
    let first = history.first().map_or(1, |r| r.epoch) as f64;
    let (w, _) = area.dim_in_pixel();
    text::draw(area, title, (w as i32 / 2, 8), TOP_CENTRE, 16.0, BLACK, 0.0)?;
    let (x, y) = ((first - 0.5, last + 0.5), (lo, hi));
    let mut chart = drawing(
        ChartBuilder::on(area)
            .margin(12)
            .margin_top(36)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(x.0..x.1, y.0..y.1),
    )?;
    drawing(
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(0)
            .y_labels(0)
            .axis_style(AXIS_GREY)
            .draw(),
    )?;
    // Epochs are whole numbers: tick at integers only, thinned to at most a dozen.
    let x_ticks = axes::nice_ticks(first, last, 12)
        .into_iter()
        .filter(|v| (v - v.round()).abs() < 1e-9)
        .map(|v| (v, format!("{v:.0}")))
        .collect();
    let y_ticks = axes::nice_ticks(lo, hi, 8)
        .into_iter()
        .map(|v| {
            let label = if is_accuracy {
                format!("{:.0}%", 100.0 * v)
            } else {
                format!("{v:.2}")
            };
            (v, label)
        })
        .collect();
    let ticks = axes::Ticks {
        x: x_ticks,
        y: y_ticks,
        grid: true,
        size: 12.0,
    };
    axes::draw(area, &chart, x, y, &ticks)?;
    let (_, h) = area.dim_in_pixel();
    text::draw(
        area,
        "epoch",
        (w as i32 / 2 + 22, h as i32 - 18),
        TOP_CENTRE,
        13.0,
        BLACK,
        0.0,
    )?;
    let base = area.get_base_pixel();
    for (k, colour) in [(0, TRAIN_LINE), (1, TEST_LINE)] {
        let points: Vec<(i32, i32)> = history
            .iter()
            .map(|r| {
                let (px, py) = chart.backend_coord(&(r.epoch as f64, <[f64; 2]>::from(pick(r))[k]));
                (px - base.0, py - base.1)
            })
            .collect();
        // A 2-pixel line as three 1-pixel lines: plotters fills wide lines as thin polygons, which leave
        // gaps along steep segments.
        for (dx, dy) in [(0, 0), (1, 0), (0, 1)] {
            let shifted: Vec<(i32, i32)> = points.iter().map(|&(x, y)| (x + dx, y + dy)).collect();
            drawing(area.draw(&PathElement::new(shifted, colour)))?;
        }
        for &p in &points {
            drawing(area.draw(&Circle::new(p, 3, colour.filled())))?;
        }
    }
    Ok(())
}
