//! A person's own picture turned into what the model expects: 28x28, grey, a light garment on a black
//! background, values in [0, 1]. Fashion-MNIST itself was made by trimming each product photo to the
//! garment, fitting the longest side to 28 pixels and centring it; this follows the same path so a photo
//! of a garment on a white table looks like the training data. tests/photos.rs checks that an upscaled,
//! inverted test image with margins predicts like the original, and that bad files fail one by one.

use std::io::Cursor;
use std::path::Path;

use anyhow::{Context, Result, bail};
use image::imageops::{self, FilterType};
use image::{DynamicImage, GrayImage, ImageReader, Luma, Rgb, RgbImage};

use crate::data::{IMAGE_SIDE, PIXELS};

/// Pixels at least this bright (after inversion and background removal) count as garment when trimming;
/// low enough to keep faint fabric, high enough to ignore JPEG noise on the background.
const INK_THRESHOLD: u8 = 32;

/// The model's view of a photo.
#[derive(Clone, Debug, PartialEq)]
pub struct Photo {
    /// `(28, 28)` bytes, light garment on black, like a Fashion-MNIST image.
    pub pixels: Vec<u8>,
    /// Width and height of the file's image.
    pub source_size: (u32, u32),
    /// Whether the background was light and the picture was inverted.
    pub inverted: bool,
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
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let image = decode(&bytes).with_context(|| format!("{}", path.display()))?;
    preprocess(&image).with_context(|| format!("{}", path.display()))
}

/// Decodes any format the `image` crate was built with, recognised by content rather than by file name.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .context("cannot read")?;
    if reader.format().is_none() {
        bail!(
            "not an image fmnist can read (PNG, JPEG, GIF, BMP, WebP, TIFF, PNM, TGA, ICO or QOI expected)"
        );
    }
    reader
        .decode()
        .map_err(|e| anyhow::anyhow!("corrupt or unsupported image: {e}"))
}

/// Grey -> invert when the border is light -> remove the background level -> trim to the garment ->
/// fit the longest side to 28 -> centre on black.
pub fn preprocess(image: &DynamicImage) -> Result<Photo> {
    let (w, h) = (image.width(), image.height());
    if w == 0 || h == 0 {
        bail!("the image is empty ({w}x{h})");
    }
    let mut grey = to_grey_on_white(image);
    let mut background = border_median(&grey, w, h);
    // Fashion-MNIST garments are light on black; a photo on a light table must be flipped to match.
    let inverted = background > 127.0;
    if inverted {
        for v in grey.iter_mut() {
            *v = 255.0 - *v;
        }
        background = 255.0 - background;
    }
    // A grey table becomes black, as the dataset's background is exactly 0.
    let gain = 255.0 / (255.0 - background).max(1.0);
    let level = GrayImage::from_fn(w, h, |x, y| {
        let v = (grey[(y * w + x) as usize] - background) * gain;
        Luma([v.clamp(0.0, 255.0).round() as u8])
    });
    let (x0, y0, cw, ch) = garment_box(&level).unwrap_or((0, 0, w, h));
    let cropped = imageops::crop_imm(&level, x0, y0, cw, ch).to_image();
    let scale = IMAGE_SIDE as f64 / cw.max(ch) as f64;
    let nw = ((cw as f64 * scale).round() as u32).clamp(1, IMAGE_SIDE as u32);
    let nh = ((ch as f64 * scale).round() as u32).clamp(1, IMAGE_SIDE as u32);
    // Catmull-Rom keeps edges a little sharper than a triangle filter; the dataset was sharpened too.
    let small = imageops::resize(&cropped, nw, nh, FilterType::CatmullRom);
    let mut canvas = GrayImage::new(IMAGE_SIDE as u32, IMAGE_SIDE as u32);
    // An odd amount of slack goes to the left and top, as in the dataset (e.g. 4 and 3 columns around a
    // 21-pixel-wide shirt), so a photo of a test image lines up with the original pixel for pixel.
    imageops::overlay(
        &mut canvas,
        &small,
        (IMAGE_SIDE as u32 - nw).div_ceil(2) as i64,
        (IMAGE_SIDE as u32 - nh).div_ceil(2) as i64,
    );
    let pixels = canvas.into_raw();
    debug_assert_eq!(pixels.len(), PIXELS);
    Ok(Photo {
        pixels,
        source_size: (w, h),
        inverted,
    })
}

/// Luma (Rec. 601) in 0-255, with transparent parts composited onto white as a viewer shows them.
fn to_grey_on_white(image: &DynamicImage) -> Vec<f32> {
    image
        .to_rgba8()
        .pixels()
        .map(|p| {
            let [r, g, b, a] = p.0.map(|c| c as f32);
            let luma = 0.299 * r + 0.587 * g + 0.114 * b;
            let alpha = a / 255.0;
            luma * alpha + 255.0 * (1.0 - alpha)
        })
        .collect()
}

/// The median of a border ring a few percent wide: robust to a garment touching one edge.
fn border_median(grey: &[f32], w: u32, h: u32) -> f32 {
    let ring = (w.min(h) / 25).max(1);
    let mut values: Vec<f32> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .filter(|&(x, y)| x < ring || y < ring || x >= w - ring || y >= h - ring)
        .map(|(x, y)| grey[(y * w + x) as usize])
        .collect();
    values.sort_by(f32::total_cmp);
    values[values.len() / 2]
}

/// The smallest rectangle `(x, y, w, h)` holding every pixel above `INK_THRESHOLD`; None when blank.
fn garment_box(img: &GrayImage) -> Option<(u32, u32, u32, u32)> {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for (x, y, p) in img.enumerate_pixels() {
        if p.0[0] > INK_THRESHOLD {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
    }
    (x0 != u32::MAX).then(|| (x0, y0, x1 - x0 + 1, y1 - y0 + 1))
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
