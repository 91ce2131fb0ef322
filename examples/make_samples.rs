//! Makes the sample "photos" under assets/samples/ from Fashion-MNIST test images: each garment is
//! inverted (dark on white, as on a table), upscaled smoothly and given margins, at assorted sizes and in
//! PNG and JPEG, so `fmnist predict --model M assets/samples/*` has something to undo. The same
//! transformation (`photo::as_photo`) is what tests/photos.rs checks preprocessing against.
//!
//! Run: `cargo run --release --example make_samples [-- OUT_DIR]` (default assets/samples).

use std::io::Cursor;
use std::path::PathBuf;

use anyhow::{Context, Result};
use fmnist::atomic::write_atomic;
use fmnist::data::{self, CLASS_NAMES};
use fmnist::photo::as_photo;
use image::ImageFormat;

/// (test index, width, height, margin, format): the tutorial's images 0 and 12 and a few others.
const SAMPLES: [(usize, u32, u32, u32, ImageFormat); 5] = [
    (0, 300, 360, 40, ImageFormat::Png),
    (1, 320, 320, 24, ImageFormat::Png),
    (2, 240, 320, 30, ImageFormat::Jpeg),
    (12, 360, 300, 36, ImageFormat::Png),
    (13, 280, 280, 20, ImageFormat::Jpeg),
];

fn main() -> Result<()> {
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("assets/samples"));
    let location = data::locate(None)?;
    let test = data::load_test(&location.dir)?;
    for (index, w, h, margin, format) in SAMPLES {
        let class = CLASS_NAMES[test.labels[index] as usize];
        let slug: String = class
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let ext = if format == ImageFormat::Jpeg {
            "jpg"
        } else {
            "png"
        };
        let path = out.join(format!("test-{index}-{slug}.{ext}"));
        let photo = as_photo(test.image(index), w, h, margin);
        let mut bytes = Cursor::new(Vec::new());
        photo
            .write_to(&mut bytes, format)
            .with_context(|| format!("encoding {}", path.display()))?;
        write_atomic(&path, bytes.get_ref())?;
        println!("{} ({w}x{h}, test image {index}: {class})", path.display());
    }
    Ok(())
}
