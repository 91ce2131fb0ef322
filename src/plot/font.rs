//! The figures' font and its rasteriser. DejaVu Sans is embedded in the binary (licence in
//! assets/DejaVuSans-LICENSE.txt) so no system font lookup can fail or differ between machines. Glyphs are
//! laid out here with ab_glyph directly rather than through plotters' text path, which drops each glyph's
//! left side bearing and so prints "1 00%" and "San dal". Tested through tests/plots.rs (text ink, label
//! widths) and by looking at the figures.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};

static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    // The bytes are compiled in, so this can only fail in a broken build (which every figure test catches).
    FONT.get_or_init(|| {
        FontRef::try_from_slice(DEJAVU_SANS).expect("the embedded DejaVu Sans parses")
    })
}

/// A line of text rasterised upright: ink coverage in [0, 1], `(height, width)` row-major.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub width: u32,
    pub height: u32,
    pub coverage: Vec<f32>,
}

impl Rendered {
    /// Coverage at `(u, v)`, 0 outside.
    pub fn at(&self, u: i32, v: i32) -> f32 {
        if u < 0 || v < 0 || u >= self.width as i32 || v >= self.height as i32 {
            return 0.0;
        }
        self.coverage[(v as u32 * self.width + u as u32) as usize]
    }
}

/// Advance width and line height (ascent + descent) of `text` at `size` pixels.
pub fn measure(text: &str, size: f64) -> (u32, u32) {
    let scaled = font().as_scaled(PxScale::from(size as f32));
    let (width, _) = layout(text, size);
    (
        width.ceil() as u32,
        (scaled.ascent() - scaled.descent()).ceil() as u32,
    )
}

/// Glyph ids and pen positions along the baseline, and the total advance.
fn layout(text: &str, size: f64) -> (f32, Vec<(ab_glyph::GlyphId, f32)>) {
    let scaled = font().as_scaled(PxScale::from(size as f32));
    let mut x = 0.0f32;
    let mut prev = None;
    let mut glyphs = Vec::new();
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            x += scaled.kern(p, id);
        }
        glyphs.push((id, x));
        x += scaled.h_advance(id);
        prev = Some(id);
    }
    (x, glyphs)
}

/// Rasterises `text` at `size` pixels; the box spans the advance width and ascent to descent.
pub fn rasterise(text: &str, size: f64) -> Rendered {
    let scale = PxScale::from(size as f32);
    let scaled = font().as_scaled(scale);
    let (w, h) = measure(text, size);
    let (w, h) = (w.max(1) + 2, h.max(1));
    let mut coverage = vec![0.0f32; (w * h) as usize];
    let ascent = scaled.ascent();
    for (id, x) in layout(text, size).1 {
        let glyph = id.with_scale_and_position(scale, point(x + 1.0, ascent));
        let Some(outline) = font().outline_glyph(glyph) else {
            continue; // a space
        };
        let b = outline.px_bounds();
        outline.draw(|gx, gy, c| {
            let (px, py) = (b.min.x as i32 + gx as i32, b.min.y as i32 + gy as i32);
            if px >= 0 && py >= 0 && (px as u32) < w && (py as u32) < h {
                let cell = &mut coverage[(py as u32 * w + px as u32) as usize];
                *cell = (*cell + c).min(1.0);
            }
        });
    }
    Rendered {
        width: w,
        height: h,
        coverage,
    }
}
