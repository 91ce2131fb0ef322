//! The tutorial's `plot_value_array`: ten probability bars, grey, the predicted class red and the true
//! class blue (blue wins when they agree, so an all-blue chart means "right"). Ticks are the class
//! indices (figures 3-5) or the class names turned 45 degrees (the last figure, and photos).
//! tests/plots.rs counts the red and blue bar pixels for right and wrong predictions.

use anyhow::Result;
use plotters::prelude::*;

use super::axes;
use super::figure::{Area, drawing};
use super::style::{AXIS_GREY, OTHER_BAR, RIGHT, WRONG};
use super::text;
use crate::data::{ClassNames, NUM_CLASSES};
use crate::evaluate::argmax;
use plotters::style::text_anchor::{HPos, VPos};

/// What the x axis says under each bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ticks {
    /// 0-9, as in the tutorial's small charts.
    Digits,
    /// The class names, turned 45 degrees, with a probability scale on the y axis.
    Names,
}

/// The colour of bar `class`: the true class blue, else the predicted class red, else grey.
pub fn bar_colour(class: usize, predicted: usize, truth: Option<usize>) -> RGBColor {
    if truth == Some(class) {
        RIGHT
    } else if class == predicted {
        WRONG
    } else {
        OTHER_BAR
    }
}

/// Height in pixels that `Ticks::Names` needs under the axis for the longest turned name.
pub const NAMES_LABEL_AREA: u32 = 72;
/// Room left of the first bar for the first turned name to hang into.
const NAMES_LEFT_MARGIN: u32 = 30;

/// Draws the bar chart of `probs (10)` filling `area` (ticks named by `names` with `Ticks::Names`).
pub fn draw(
    area: &Area<'_>,
    probs: &[f32],
    truth: Option<usize>,
    ticks: Ticks,
    names: &ClassNames,
) -> Result<()> {
    let predicted = argmax(probs);
    let (label_size, x_area, y_area, left) = match ticks {
        Ticks::Digits => (12.0, 20, 6, 4),
        Ticks::Names => (13.0, NAMES_LABEL_AREA, 40, NAMES_LEFT_MARGIN),
    };
    let (x, y) = ((-0.5, NUM_CLASSES as f64 - 0.5), (0.0, 1.0));
    let mut chart = drawing(
        ChartBuilder::on(area)
            .margin_top(6)
            .margin_right(6)
            .margin_left(left)
            .x_label_area_size(x_area)
            .y_label_area_size(y_area)
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
    let axis_ticks = axes::Ticks {
        x: match ticks {
            Ticks::Digits => (0..NUM_CLASSES)
                .map(|c| (c as f64, c.to_string()))
                .collect(),
            Ticks::Names => Vec::new(),
        },
        // The tutorial hides the y ticks of its small charts: the bars' heights speak for themselves.
        y: match ticks {
            Ticks::Digits => Vec::new(),
            Ticks::Names => axes::nice_ticks(0.0, 1.0, 6)
                .into_iter()
                .map(|v| (v, format!("{v:.1}")))
                .collect(),
        },
        grid: ticks == Ticks::Names,
        size: label_size,
    };
    axes::draw(area, &chart, x, y, &axis_ticks)?;
    drawing(chart.draw_series(probs.iter().enumerate().map(|(c, &p)| {
        Rectangle::new(
            [
                (c as f64 - 0.4, 0.0),
                (c as f64 + 0.4, p.clamp(0.0, 1.0) as f64),
            ],
            bar_colour(c, predicted, truth).filled(),
        )
    })))?;
    if ticks == Ticks::Names {
        let base = area.get_base_pixel();
        for (c, name) in names.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(c as f64, 0.0));
            let (px, py) = (px - base.0, py - base.1);
            drawing(area.draw(&PathElement::new(vec![(px, py), (px, py + 4)], AXIS_GREY)))?;
            // The name ends just below its tick and rises to the left, like matplotlib's rotation=45.
            text::draw(
                area,
                name,
                (px + 2, py + 7),
                text::Anchor(HPos::Right, VPos::Top),
                label_size,
                BLACK,
                45.0,
            )?;
        }
    }
    Ok(())
}
