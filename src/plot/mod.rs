//! The tutorial's figures, and a few beyond it, as PNG files. Every figure is drawn by plotters into an
//! in-memory RGB buffer (`figure::Figure`), encoded by `image` and written with `atomic::write_atomic`.
//! Text uses the DejaVu Sans font embedded from `assets/` so figures look the same on every machine.
//! One file per figure family; the shared pieces (image panels, probability bars, rotated labels, colours)
//! sit beside them. tests/plots.rs renders each figure from real data and checks sizes and pixels.

pub mod axes;
pub mod bars;
pub mod confusion;
pub mod figure;
pub mod font;
pub mod history;
pub mod mistakes;
pub mod panels;
pub mod predictions;
pub mod run_figures;
pub mod samples;
pub mod style;
pub mod text;

pub use figure::Figure;
