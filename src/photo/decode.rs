//! Decoding a picture within fixed bounds: only regular files up to `MAX_IMAGE_FILE_BYTES` are read,
//! the size in the header is checked against `MAX_IMAGE_PIXELS` before any pixel is decoded, and the
//! decoder may allocate at most `MAX_DECODE_BYTES` (a 20000x20000 1-bit PNG of 48 KB is refused after
//! its header). A JPEG whose data stops before its end marker, which the decoder fills in silently,
//! is flagged as truncated. Tested by tests/photos.rs, tests/bombs.rs and tests/fuzz_parsers.rs.

use std::io::Cursor;
use std::path::Path;

use anyhow::{Result, bail};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use crate::error::Hinted;
use crate::limits::{MAX_DECODE_BYTES, MAX_IMAGE_FILE_BYTES, MAX_IMAGE_PIXELS, human_bytes};

/// A decoded picture and what was odd about its file.
pub struct Decoded {
    pub image: DynamicImage,
    /// The data ended early and the decoder filled in the rest.
    pub truncated: bool,
}

/// The bytes of the picture file at `path`: a regular file within `MAX_IMAGE_FILE_BYTES`.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    crate::files::read_regular(path, MAX_IMAGE_FILE_BYTES, "a picture")
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Decodes any format the `image` crate was built with, recognised by content rather than by file name.
pub fn decode(bytes: &[u8]) -> Result<Decoded> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| anyhow::anyhow!("cannot read: {e}"))?;
    let Some(format) = reader.format() else {
        bail!(
            "not an image fmnist can read (PNG, JPEG, GIF, BMP, WebP, TIFF, PNM, TGA, ICO or QOI expected)"
        );
    };
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(corrupt)?;
    let (w, h) = decoder.dimensions();
    let pixels = w as u64 * h as u64;
    if pixels > MAX_IMAGE_PIXELS {
        return Err(anyhow::Error::new(Hinted::new(
            anyhow::anyhow!(
                "{w}x{h} is {:.0} megapixels; fmnist reads pictures up to {} megapixels",
                pixels as f64 / 1e6,
                MAX_IMAGE_PIXELS / 1_000_000
            ),
            "shrink the picture first (28x28 is all the model sees), e.g. `convert big.png -resize 2000x2000 small.png`",
        )));
    }
    if decoder.total_bytes() > MAX_DECODE_BYTES {
        bail!(
            "{w}x{h} decodes to {}; fmnist decodes pictures up to {}",
            human_bytes(decoder.total_bytes()),
            human_bytes(MAX_DECODE_BYTES)
        );
    }
    let image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    let truncated = format == ImageFormat::Jpeg && jpeg_truncated(bytes);
    Ok(Decoded { image, truncated })
}

/// The `image` crate's messages may end in a newline: keep the error on one line.
fn corrupt(e: image::ImageError) -> anyhow::Error {
    let text = e.to_string();
    let text: Vec<&str> = text.split_whitespace().collect();
    match e {
        image::ImageError::Limits(_) => anyhow::anyhow!("too large to decode: {}", text.join(" ")),
        _ => anyhow::anyhow!("corrupt or unsupported image: {}", text.join(" ")),
    }
}

/// Whether a JPEG's entropy-coded data stops before the end-of-image marker (FF D9) that follows its
/// last start-of-scan (FF DA): the file was cut short.
fn jpeg_truncated(bytes: &[u8]) -> bool {
    let Some(sos) = bytes.windows(2).rposition(|w| w == [0xff, 0xda]) else {
        return true;
    };
    !bytes[sos..].windows(2).any(|w| w == [0xff, 0xd9])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jpeg_without_its_end_marker_is_truncated() {
        let whole = [0xff, 0xd8, 0xff, 0xda, 1, 2, 3, 0xff, 0xd9];
        assert!(!jpeg_truncated(&whole));
        assert!(jpeg_truncated(&whole[..7]));
        // A thumbnail's end marker before the last scan does not count.
        let thumb = [0xff, 0xd8, 0xff, 0xd9, 0xff, 0xda, 1, 2];
        assert!(jpeg_truncated(&thumb));
    }
}
