//! Issue 10: seeded mutations of valid files for every parser that reads outside input (IDX, gzip or
//! plain; safetensors header and body; pictures). Each mutation (bit flips, truncations, length and
//! size fields set to 0, 1, 2^31, 2^32-1, 2^63 or past the end) must end in a clean error or a valid
//! result, never a panic; allocation stays bounded by the limits (the process's peak memory is
//! checked at the end). A fixed seed and count keep each test to a few seconds.

mod common;

use std::io::{Cursor, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use fmnist::data::{IdxKind, encode_idx, parse_idx_stream};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const PEAK_MB: u64 = 1024;

/// Values a length or size field is set to.
const SIZES: [u64; 7] = [0, 1, 2, 1 << 31, u32::MAX as u64, 1 << 63, u64::MAX];

/// One mutation of `valid`: bit flips, a truncation, or a field at `fields` set to an extreme size
/// (`width` bytes, big- or little-endian as `big` says).
fn mutate(valid: &[u8], rng: &mut ChaCha8Rng, fields: &[(usize, usize, bool)]) -> Vec<u8> {
    let mut b = valid.to_vec();
    match rng.random_range(0..4) {
        0 => {
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(0..b.len());
                b[i] ^= 1 << rng.random_range(0..8);
            }
        }
        1 => b.truncate(rng.random_range(0..b.len())),
        2 if !fields.is_empty() => {
            let (at, width, big) = fields[rng.random_range(0..fields.len())];
            let mut v = SIZES[rng.random_range(0..SIZES.len())];
            if rng.random_bool(0.3) {
                v = (valid.len() as u64).wrapping_add(rng.random_range(1..100));
            }
            let bytes = if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            let bytes = if big {
                &bytes[8 - width..]
            } else {
                &bytes[..width]
            };
            b[at..at + width].copy_from_slice(bytes);
        }
        _ => {
            let i = rng.random_range(0..b.len());
            b[i] = rng.random();
        }
    }
    b
}

fn peak_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// Runs `parse` on `n` mutations of each valid input; panics name the seed step and input.
fn fuzz(
    name: &str,
    valid: &[Vec<u8>],
    fields: &[(usize, usize, bool)],
    n: usize,
    parse: impl Fn(&[u8]) -> bool,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let (mut ok, mut refused) = (0, 0);
    for (k, v) in valid.iter().enumerate() {
        for step in 0..n {
            let input = mutate(v, &mut rng, fields);
            match catch_unwind(AssertUnwindSafe(|| parse(&input))) {
                Ok(true) => ok += 1,
                Ok(false) => refused += 1,
                Err(_) => panic!(
                    "{name}: input {k}, mutation {step} panicked ({} bytes)",
                    input.len()
                ),
            }
        }
    }
    eprintln!(
        "{name}: {ok} valid, {refused} refused, peak {} MB",
        peak_mb()
    );
    assert!(refused > 0, "{name}: the mutations must reach the checks");
    assert!(peak_mb() < PEAK_MB, "{name}: peak {} MB", peak_mb());
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn idx_parser_survives_seeded_mutations() {
    let images = encode_idx(
        3,
        &[5, 28, 28],
        &(0..5 * 784).map(|i| i as u8).collect::<Vec<_>>(),
    );
    let labels = encode_idx(1, &[6], &[0, 1, 2, 3, 9, 5]);
    let path = Path::new("fuzz");
    // Header fields: magic, count, and for images rows and cols (big-endian u32).
    let image_fields = [(0, 4, true), (4, 4, true), (8, 4, true), (12, 4, true)];
    for (kind, valid) in [(IdxKind::Images, &images), (IdxKind::Labels, &labels)] {
        let fields = if kind == IdxKind::Images {
            &image_fields[..]
        } else {
            &image_fields[..2]
        };
        fuzz(
            "idx plain",
            std::slice::from_ref(valid),
            fields,
            2000,
            |b| parse_idx_stream(path, Cursor::new(b), Some(b.len() as u64), kind).is_ok(),
        );
        // Gzip: mutate the compressed bytes (and the gzip trailer's size field).
        let gz = gzip(valid);
        let trailer = [(gz.len() - 4, 4, false), (gz.len() - 8, 4, false)];
        fuzz("idx gzip", &[gz], &trailer, 2000, |b| {
            parse_idx_stream(path, Cursor::new(b), None, kind).is_ok()
        });
        // Gzip of a mutated header: the declared sizes reach the reader through the stream.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..500 {
            let inner = mutate(valid, &mut rng, fields);
            let gz = gzip(&inner);
            let r = catch_unwind(AssertUnwindSafe(|| {
                parse_idx_stream(path, Cursor::new(&gz[..]), None, kind).is_ok()
            }));
            assert!(r.is_ok(), "a gzip of a mutated header panicked");
        }
    }
}

#[test]
fn safetensors_header_and_body_survive_seeded_mutations() {
    let spec = fmnist::model::MlpSpec::fashion(&[4]).unwrap();
    let params = fmnist::model::glorot_init(&spec, 3);
    let bytes = fmnist::tensorfile::serialize(
        &fmnist::checkpoint::model_tensors(&spec, &params),
        &fmnist::checkpoint::model_metadata("fmnist-mlp", &spec, &Default::default()),
    );
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    // The length field, and every number in the header (shapes and data offsets).
    let mut fields = vec![(0, 8, false)];
    let header = &bytes[8..8 + header_len];
    let mut i = 0;
    while i < header.len() {
        if header[i].is_ascii_digit() {
            let start = i;
            while i < header.len() && header[i].is_ascii_digit() {
                i += 1;
            }
            fields.push((8 + start, i - start, true));
        }
        i += 1;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let (mut ok, mut refused) = (0, 0);
    for step in 0..4000 {
        let input = if step % 3 == 2 {
            // A number in the header replaced by an extreme one, as text.
            let (at, width, _) = fields[1 + rng.random_range(0..fields.len() - 1)];
            let v = SIZES[rng.random_range(0..SIZES.len())].to_string();
            let mut b = bytes[..at].to_vec();
            b.extend_from_slice(v.as_bytes());
            b.extend_from_slice(&bytes[at + width..]);
            let delta = v.len() as i64 - width as i64;
            let len = (header_len as i64 + delta) as u64;
            b[..8].copy_from_slice(&len.to_le_bytes());
            b
        } else {
            mutate(&bytes, &mut rng, &fields[..1])
        };
        match catch_unwind(AssertUnwindSafe(|| {
            fmnist::checkpoint::parse(&input).is_ok()
        })) {
            Ok(true) => ok += 1,
            Ok(false) => refused += 1,
            Err(_) => panic!("safetensors mutation {step} panicked"),
        }
    }
    eprintln!(
        "safetensors: {ok} valid, {refused} refused, peak {} MB",
        peak_mb()
    );
    assert!(refused > 0 && ok > 0);
    assert!(peak_mb() < PEAK_MB, "peak {} MB", peak_mb());
}

#[test]
fn picture_decoding_and_preprocessing_survive_seeded_mutations() {
    let img = fmnist::photo::as_photo(&[200; 784], 48, 40, 4);
    let mut inputs = Vec::new();
    for format in [
        image::ImageFormat::Png,
        image::ImageFormat::Jpeg,
        image::ImageFormat::Bmp,
        image::ImageFormat::Gif,
    ] {
        let mut out = Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img.clone())
            .write_to(&mut out, format)
            .unwrap();
        inputs.push(out.into_inner());
    }
    // PNG's IHDR width and height, BMP's width and height: where a bomb says how large it is.
    let png_fields = [(16, 4, true), (20, 4, true)];
    let bmp_fields = [(18, 4, false), (22, 4, false)];
    let decode = |b: &[u8]| match fmnist::photo::decode(b) {
        Ok(d) => fmnist::photo::preprocess(&d.image).is_ok(),
        Err(_) => false,
    };
    fuzz("png", &inputs[..1], &png_fields, 800, decode);
    fuzz("jpeg", &inputs[1..2], &[], 800, decode);
    fuzz("bmp", &inputs[2..3], &bmp_fields, 800, decode);
    fuzz("gif", &inputs[3..4], &[], 800, decode);
}
