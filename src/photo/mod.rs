//! A person's own picture turned into what the model expects: 28x28, grey, a light garment on a black
//! background, values in [0, 1]. Fashion-MNIST itself was made by trimming each product photo to the
//! garment, fitting the longest side to 28 pixels and centring it; this follows the same path so a photo
//! of a garment on a white table looks like the training data. Decoding within bounds is in `decode`,
//! finding the garment despite dust, noise and uneven light in `garment`. tests/photos.rs checks that
//! an upscaled, inverted test image with margins predicts like the original, with or without dust,
//! noise, an off-white background and a lighting gradient, and that bad files fail one by one.

mod decode;
mod garment;

use std::path::Path;

use anyhow::{Context, Result, bail};
use image::imageops::{self, FilterType};
use image::{DynamicImage, GrayImage, ImageBuffer, Luma, Rgb, RgbImage};

use crate::data::{IMAGE_SIDE, PIXELS};
pub use decode::{Decoded, decode};
use garment::{Background, Grey, ring, threshold, working_grey};

/// The model's view of a photo.
#[derive(Clone, Debug, PartialEq)]
pub struct Photo {
    /// `(28, 28)` bytes, light garment on black, like a Fashion-MNIST image.
    pub pixels: Vec<u8>,
    /// Width and height of the file's image.
    pub source_size: (u32, u32),
    /// Whether the background was light and the picture was inverted.
    pub inverted: bool,
    /// What makes the prediction doubtful: a truncated file, no garment found.
    pub warnings: Vec<String>,
}

impl Photo {
    /// The model input `(784)`, scaled to [0, 1] like the training data.
    pub fn input(&self) -> Vec<f32> {
        self.pixels
            .iter()
            .map(|&v| crate::batches::normalise(v))
            .collect()
    }
}

/// Reads, decodes and preprocesses the image file at `path`; errors name the file.
pub fn load(path: &Path) -> Result<Photo> {
    let name = path.display();
    let bytes = decode::read(path).with_context(|| format!("{name}"))?;
    from_bytes(&bytes).with_context(|| format!("{name}"))
}

/// Decodes and preprocesses a picture file's bytes (a browser's dropped file); `load` without the file.
pub fn from_bytes(bytes: &[u8]) -> Result<Photo> {
    if bytes.len() as u64 > crate::limits::MAX_IMAGE_FILE_BYTES {
        bail!(
            "the picture is {} and fmnist reads pictures up to {}",
            crate::limits::human_bytes(bytes.len() as u64),
            crate::limits::human_bytes(crate::limits::MAX_IMAGE_FILE_BYTES)
        );
    }
    let decoded = decode(bytes)?;
    let mut photo = preprocess(&decoded.image)?;
    if decoded.truncated {
        photo.warnings.insert(
            0,
            "the image data is truncated (the file ends before the picture does); the decoder filled in the rest".to_string(),
        );
    }
    Ok(photo)
}

/// Grey (averaged down to the working size) -> invert when the border is light -> remove the
/// background plane -> find the garment -> fit the longest side to 28 -> centre on black.
pub fn preprocess(image: &DynamicImage) -> Result<Photo> {
    let (w0, h0) = (image.width(), image.height());
    if w0 == 0 || h0 == 0 {
        bail!("the image is empty ({w0}x{h0})");
    }
    let mut grey = working_grey(image);
    let ring = ring(grey.w, grey.h);
    let mut border: Vec<f32> = ring
        .iter()
        .map(|&(x, y)| grey.v[(y * grey.w + x) as usize])
        .collect();
    // Fashion-MNIST garments are light on black; a photo on a light table must be flipped to match.
    let inverted = garment::median(&mut border) > 127.0;
    if inverted {
        for v in grey.v.iter_mut() {
            *v = 255.0 - *v;
        }
    }
    let bg = Background::fit(&grey, &ring);
    // A grey or unevenly lit table becomes black, as the dataset's background is exactly 0; the
    // levels stay signed so that averaging cancels the noise around 0 instead of keeping its upper half.
    let mut gain_sum = 0.0;
    let level = Grey {
        w: grey.w,
        h: grey.h,
        v: (0..grey.h)
            .flat_map(|y| (0..grey.w).map(move |x| (x, y)))
            .map(|(x, y)| {
                let b = bg.at(x, y).clamp(0.0, 254.0);
                let gain = 255.0 / (255.0 - b);
                gain_sum += gain;
                (grey.v[(y * grey.w + x) as usize] - b) * gain
            })
            .collect(),
    };
    let gain = gain_sum / level.v.len() as f32;
    let mut level = level;
    let mut warnings = Vec::new();
    let (x0, y0, cw, ch) = match garment::find(&level, threshold(bg.noise * gain)) {
        Some(g) => {
            for (v, &near) in level.v.iter_mut().zip(&g.near) {
                if !near {
                    *v = 0.0;
                }
            }
            g.bbox
        }
        None => {
            warnings.push(
                "no garment found: the picture is blank or uniform, so the prediction means nothing"
                    .to_string(),
            );
            (0, 0, level.w, level.h)
        }
    };
    Ok(Photo {
        pixels: fit_and_centre(&level, x0, y0, cw, ch),
        source_size: (w0, h0),
        inverted,
        warnings,
    })
}

/// The `(cw, ch)` box at `(x0, y0)` of `level`, its longest side fitted to 28, centred on black.
fn fit_and_centre(level: &Grey, x0: u32, y0: u32, cw: u32, ch: u32) -> Vec<u8> {
    // Resampling clamps to [0, 1]: carry levels -255..255 as 0..1 so negative noise is kept.
    let crop: ImageBuffer<Luma<f32>, Vec<f32>> = ImageBuffer::from_fn(cw, ch, |x, y| {
        let v = level.v[((y0 + y) * level.w + x0 + x) as usize];
        Luma([(v.clamp(-255.0, 255.0) + 255.0) / 510.0])
    });
    let scale = IMAGE_SIDE as f64 / cw.max(ch) as f64;
    let nw = ((cw as f64 * scale).round() as u32).clamp(1, IMAGE_SIDE as u32);
    let nh = ((ch as f64 * scale).round() as u32).clamp(1, IMAGE_SIDE as u32);
    // Catmull-Rom keeps edges a little sharper than a triangle filter; the dataset was sharpened too.
    let small = imageops::resize(&crop, nw, nh, FilterType::CatmullRom);
    let mut canvas = GrayImage::new(IMAGE_SIDE as u32, IMAGE_SIDE as u32);
    // An odd amount of slack goes to the left and top, as in the dataset (e.g. 4 and 3 columns around a
    // 21-pixel-wide shirt), so a photo of a test image lines up with the original pixel for pixel.
    let (ox, oy) = (
        (IMAGE_SIDE as u32 - nw).div_ceil(2),
        (IMAGE_SIDE as u32 - nh).div_ceil(2),
    );
    for (x, y, p) in small.enumerate_pixels() {
        let v = p.0[0] * 510.0 - 255.0;
        canvas.put_pixel(ox + x, oy + y, Luma([v.clamp(0.0, 255.0).round() as u8]));
    }
    let pixels = canvas.into_raw();
    debug_assert_eq!(pixels.len(), PIXELS);
    pixels
}

/// Makes a "photo" from a dataset image: inverted (dark garment on white), upscaled smoothly to fit a
/// `width x height` canvas less `margin` on every side, centred. Used for the samples under assets/ and
/// by tests/photos.rs to check that preprocessing undoes it.
pub fn as_photo(pixels: &[u8], width: u32, height: u32, margin: u32) -> RgbImage {
    let side = width.min(height).saturating_sub(2 * margin).max(1);
    let inverted = GrayImage::from_fn(IMAGE_SIDE as u32, IMAGE_SIDE as u32, |x, y| {
        Luma([255 - pixels[y as usize * IMAGE_SIDE + x as usize]])
    });
    let big = imageops::resize(&inverted, side, side, FilterType::Triangle);
    let mut canvas = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let (ox, oy) = ((width - side) / 2, (height - side) / 2);
    for (x, y, p) in big.enumerate_pixels() {
        let v = p.0[0];
        canvas.put_pixel(ox + x, oy + y, Rgb([v, v, v]));
    }
    canvas
}
