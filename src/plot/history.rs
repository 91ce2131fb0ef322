//! `history.png`: training, validation and test loss (left) and accuracy (right) per epoch, each where
//! the history holds it, so over-fitting shows as the curves parting (train loss still falling while
//! validation loss rises). The legend sits in the title strip above both panels, so below `PANEL_TOP`
//! the line colours come only from the curves; tests/plots.rs uses that to check that a falling loss is
//! drawn falling.

use anyhow::{Result, ensure};
use plotters::prelude::*;

use super::Figure;
use super::axes;
use super::figure::{Area, drawing};
use super::style::{AXIS_GREY, TEST_LINE, TRAIN_LINE, VAL_LINE};
use super::text::{self, LEFT_MIDDLE, TOP_CENTRE};
use crate::train::{EpochRecord, Scores};

pub const SIZE: (u32, u32) = (1000, 420);
/// Height of the title and legend strip.
pub const PANEL_TOP: u32 = 40;

/// One curve of the figure: the epochs that have it.
struct Series {
    name: &'static str,
    colour: RGBColor,
    /// (epoch, loss, accuracy).
    points: Vec<(f64, f64, f64)>,
}

/// The train curve, then the validation and test curves where any epoch evaluated them.
fn series(history: &[EpochRecord]) -> Vec<Series> {
    let train = Series {
        name: "train",
        colour: TRAIN_LINE,
        points: history
            .iter()
            .map(|r| (r.epoch as f64, r.loss, r.accuracy))
            .collect(),
    };
    let scored = |name, colour, pick: fn(&EpochRecord) -> Option<Scores>| Series {
        name,
        colour,
        points: history
            .iter()
            .filter_map(|r| pick(r).map(|s| (r.epoch as f64, s.loss, s.accuracy)))
            .collect(),
    };
    let val = scored("validation", VAL_LINE, |r| r.val);
    let test = scored("test", TEST_LINE, |r| r.test);
    [train, val, test]
        .into_iter()
        .filter(|s| !s.points.is_empty())
        .collect()
}

pub fn figure(history: &[EpochRecord]) -> Result<Figure> {
    ensure!(!history.is_empty(), "the history has no epochs to plot");
    let series = series(history);
    Figure::render(SIZE.0, SIZE.1, |root| {
        legend(root, &series)?;
        let (left, right) = root
            .margin(PANEL_TOP, 0, 0, 0)
            .split_horizontally(SIZE.0 / 2);
        panel(&left, history, &series, "Loss (cross-entropy)", false)?;
        panel(&right, history, &series, "Accuracy", true)
    })
}

fn legend(root: &Area<'_>, series: &[Series]) -> Result<()> {
    let y = 20;
    let width = 140;
    let mut x = SIZE.0 as i32 / 2 - (series.len() as i32 * width) / 2;
    for s in series {
        drawing(root.draw(&PathElement::new(
            vec![(x, y), (x + 30, y)],
            s.colour.stroke_width(2),
        )))?;
        drawing(root.draw(&Circle::new((x + 15, y), 3, s.colour.filled())))?;
        text::draw(root, s.name, (x + 38, y), LEFT_MIDDLE, 15.0, BLACK, 0.0)?;
        x += width;
    }
    Ok(())
}

/// One panel: the loss (or accuracy) of every series against the epoch number.
fn panel(
    area: &Area<'_>,
    history: &[EpochRecord],
    series: &[Series],
    title: &str,
    is_accuracy: bool,
) -> Result<()> {
    let pick = |p: &(f64, f64, f64)| if is_accuracy { p.2 } else { p.1 };
    let values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(pick))
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
    for s in series {
        let colour = s.colour;
        let points: Vec<(i32, i32)> = s
            .points
            .iter()
            .map(|p| {
                let (px, py) = chart.backend_coord(&(p.0, pick(p)));
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
