//! Colours and colour maps shared by the figures. The tutorial's matplotlib choices are kept where a person
//! compares against it: `red` for a wrong prediction, `blue` for the true class, `#777777` for other bars,
//! viridis for the first image, `binary` (white background, dark garment) for the grids.
//! tests/plots.rs counts these exact colours to check that bars are coloured for the right reason.

use plotters::style::RGBColor;
use plotters::style::colors::colormaps::{ColorMap, ViridisRGB};

/// The predicted bar and the caption of a wrong prediction (matplotlib `red`).
pub const WRONG: RGBColor = RGBColor(255, 0, 0);
/// The true class's bar and the caption of a right prediction (matplotlib `blue`).
pub const RIGHT: RGBColor = RGBColor(0, 0, 255);
/// Bars of the other classes (the tutorial's `#777777`).
pub const OTHER_BAR: RGBColor = RGBColor(0x77, 0x77, 0x77);
/// Training curves (matplotlib's first three cycle colours).
pub const TRAIN_LINE: RGBColor = RGBColor(31, 119, 180);
pub const TEST_LINE: RGBColor = RGBColor(255, 127, 14);
pub const VAL_LINE: RGBColor = RGBColor(44, 160, 44);
/// Captions without a right or wrong (a person's own photo).
pub const NEUTRAL: RGBColor = RGBColor(0, 0, 0);
pub const AXIS_GREY: RGBColor = RGBColor(90, 90, 90);

/// How a pixel value 0-255 becomes a colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelMap {
    /// matplotlib's default, used for the tutorial's first figure.
    Viridis,
    /// matplotlib's `binary`: 0 white, 255 black (the tutorial's grids).
    Binary,
    /// Plain grey, 0 black: exactly what the model is fed.
    Grey,
}

impl PixelMap {
    pub fn colour(self, v: u8) -> RGBColor {
        match self {
            PixelMap::Viridis => ViridisRGB.get_color_normalized(v as f32, 0.0, 255.0),
            PixelMap::Binary => RGBColor(255 - v, 255 - v, 255 - v),
            PixelMap::Grey => RGBColor(v, v, v),
        }
    }
}

/// The colour of a prediction's caption: blue when right, red when wrong, black when the truth is unknown.
pub fn verdict_colour(predicted: usize, truth: Option<usize>) -> RGBColor {
    match truth {
        Some(t) if t == predicted => RIGHT,
        Some(_) => WRONG,
        None => NEUTRAL,
    }
}

/// A white-to-dark-blue ramp (like matplotlib's `Blues`) for the confusion matrix; `t` in [0, 1].
pub fn blues(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let (lo, hi) = ((247.0, 251.0, 255.0), (8.0, 48.0, 107.0));
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(mix(lo.0, hi.0), mix(lo.1, hi.1), mix(lo.2, hi.2))
}
