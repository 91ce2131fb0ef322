//! A figure: an RGB buffer that plotters draws into (`BitMapBackend::with_buffer`), then PNG-encoded by
//! `image` and written atomically. Keeping the pixels in memory lets tests inspect them without a file and
//! lets every output go through `atomic::write_atomic`. Tested through tests/plots.rs.

use std::io::Cursor;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::atomic::write_atomic;

/// The drawing surface every figure function receives.
pub type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// A rendered figure, `(height, width, 3)` RGB bytes.
#[derive(Clone, Debug)]
pub struct Figure {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

/// Turns plotters' drawing errors (generic over the backend) into one `anyhow` error.
pub fn drawing<T, E: std::fmt::Display>(r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| anyhow!("drawing the figure: {e}"))
}

impl Figure {
    /// A `width x height` white canvas handed to `draw`.
    pub fn render(
        width: u32,
        height: u32,
        draw: impl FnOnce(&Area<'_>) -> Result<()>,
    ) -> Result<Figure> {
        let mut rgb = vec![255u8; width as usize * height as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
            draw(&root)?;
            drawing(root.present())?;
        }
        Ok(Figure { width, height, rgb })
    }

    pub fn width(&self) -> u32 {
        self.width
    }
    pub fn height(&self) -> u32 {
        self.height
    }
    /// The raw pixels, row-major RGB.
    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
    /// How many pixels are exactly `colour` (bars and cells are drawn unblended, so this counts them).
    pub fn count(&self, colour: RGBColor) -> usize {
        let c = [colour.0, colour.1, colour.2];
        self.rgb.chunks_exact(3).filter(|p| *p == c).count()
    }
    /// Variance of all channel values: near 0 for a blank figure.
    pub fn variance(&self) -> f64 {
        let n = self.rgb.len() as f64;
        let mean = self.rgb.iter().map(|&v| v as f64).sum::<f64>() / n;
        self.rgb
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n
    }

    /// The figure as PNG bytes.
    pub fn png(&self) -> Result<Vec<u8>> {
        let img = image::RgbImage::from_raw(self.width, self.height, self.rgb.clone())
            .context("figure buffer does not match its size")?;
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png)
            .context("encoding the figure as PNG")?;
        Ok(out.into_inner())
    }

    /// Writes the PNG to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.png()?)
    }
}
