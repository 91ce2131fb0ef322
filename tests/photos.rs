//! A person's own pictures: preprocessing undoes what a photo adds to a Fashion-MNIST image (a white
//! background, upscaling, margins, another aspect ratio), and `fmnist predict` reports a bad file on its
//! own line while still predicting the others.

mod common;

use std::io::Cursor;
use std::process::Command;

use fmnist::checkpoint::{self, CheckpointMeta};
use fmnist::data::PIXELS;
use fmnist::evaluate::predict;
use fmnist::photo::{self, as_photo};
use image::{DynamicImage, GrayImage, ImageFormat, Luma};

fn png_bytes(img: DynamicImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn upscaled_photo_on_white_with_margins_predicts_like_the_original() {
    let ds = common::dataset();
    let (mut backend, _) = common::quick_model(ds);
    let indices: Vec<usize> = (0..20).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut original = Vec::new();
    let mut photos = Vec::new();
    let mut mads = Vec::new();
    for &i in &indices {
        original.extend(ds.test.image(i).iter().map(|&v| v as f32 / 255.0));
        // 84x84 garment (3x) centred on a 100x120 white canvas: margins of 8 and 18 pixels.
        let path = dir.path().join(format!("test-{i}.png"));
        std::fs::write(
            &path,
            png_bytes(as_photo(ds.test.image(i), 100, 120, 8).into()),
        )
        .unwrap();
        let p = photo::load(&path).unwrap();
        assert!(p.inverted, "a white background is inverted");
        assert_eq!(p.source_size, (100, 120));
        // The model's view is close to the original, pixel by pixel.
        let mad: f64 = p
            .pixels
            .iter()
            .zip(ds.test.image(i))
            .map(|(&a, &b)| (a as f64 - b as f64).abs())
            .sum::<f64>()
            / PIXELS as f64;
        // Sub-pixel trimming and two resamplings blur textures (a logo, a check pattern) by some 5-30
        // levels; an uninverted or misplaced garment would differ by over 100.
        assert!(
            mad < 40.0,
            "test image {i}: mean absolute difference {mad:.1} of 255"
        );
        mads.push(mad);
        photos.extend(p.input());
    }
    let n = indices.len();
    let mean = mads.iter().sum::<f64>() / n as f64;
    assert!(
        mean < 16.0,
        "mean absolute difference over {n} images: {mean:.1}"
    );
    let a = predict(&mut backend, &original, n).unwrap();
    let b = predict(&mut backend, &photos, n).unwrap();
    for (k, &i) in indices.iter().enumerate() {
        let (pa, pb) = (&a[k * 10..(k + 1) * 10], &b[k * 10..(k + 1) * 10]);
        assert_eq!(
            fmnist::evaluate::argmax(pa),
            fmnist::evaluate::argmax(pb),
            "test image {i}: original {pa:?} photo {pb:?}"
        );
    }
}

#[test]
fn dark_background_is_kept_and_grey_table_becomes_black() {
    // A light square on a dark grey (60) background, off-centre in a wide picture.
    let img = GrayImage::from_fn(90, 50, |x, y| {
        Luma([if (10..40).contains(&x) && (10..30).contains(&y) {
            220
        } else {
            60
        }])
    });
    let p = photo::preprocess(&img.into()).unwrap();
    assert!(!p.inverted);
    // Trimmed to the 30x20 square, fitted to 28x19 (aspect kept), centred, background at 0.
    let lit: Vec<usize> = (0..PIXELS).filter(|&k| p.pixels[k] > 128).collect();
    let rows: Vec<usize> = lit.iter().map(|k| k / 28).collect();
    let cols: Vec<usize> = lit.iter().map(|k| k % 28).collect();
    let (r0, r1) = (*rows.iter().min().unwrap(), *rows.iter().max().unwrap());
    let (c0, c1) = (*cols.iter().min().unwrap(), *cols.iter().max().unwrap());
    assert_eq!((c0, c1), (0, 27), "the long side fills the width");
    assert!(
        (17..=20).contains(&(r1 - r0 + 1)),
        "aspect kept: {} rows",
        r1 - r0 + 1
    );
    assert!(
        r0 >= 3 && 27 - r1 >= 3,
        "centred vertically: rows {r0}-{r1}"
    );
    assert_eq!(p.pixels[0], 0, "the grey background becomes black");
}

#[test]
fn transparent_background_counts_as_white() {
    // A dark square on a fully transparent (black, alpha 0) background: shown on white by any viewer.
    let img = image::RgbaImage::from_fn(40, 40, |x, y| {
        if (10..30).contains(&x) && (10..30).contains(&y) {
            image::Rgba([20, 20, 20, 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    });
    let p = photo::preprocess(&img.into()).unwrap();
    assert!(p.inverted);
    assert!(
        p.pixels[14 * 28 + 14] > 200,
        "the dark square becomes a light garment"
    );
}

#[test]
fn bad_files_fail_one_by_one_with_their_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not an image").unwrap();
    let truncated = dir.path().join("broken.png");
    let good = png_bytes(as_photo(&[200; PIXELS], 60, 60, 5).into());
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let missing = dir.path().join("missing.png");
    for path in [&text, &truncated, &missing] {
        let err = format!("{:#}", photo::load(path).unwrap_err());
        assert!(
            err.contains(&path.display().to_string()),
            "error names the file: {err}"
        );
        assert!(!err.contains('\n'), "one line: {err}");
    }
    assert!(format!("{:#}", photo::load(&text).unwrap_err()).contains("not an image"));
    // A browser's dropped file: the bytes alone give the same picture, and the same errors.
    std::fs::write(dir.path().join("good.png"), &good).unwrap();
    assert_eq!(
        photo::from_bytes(&good).unwrap(),
        photo::load(&dir.path().join("good.png")).unwrap()
    );
    let err = format!("{:#}", photo::from_bytes(b"not an image").unwrap_err());
    assert!(err.contains("not an image") && !err.contains('\n'), "{err}");
}

#[test]
fn predict_cli_reports_each_bad_file_and_still_predicts_the_others() {
    let ds = common::dataset();
    let (mut backend, _) = common::quick_model(ds);
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.safetensors");
    use fmnist::backend::Backend;
    let spec = backend.spec().clone();
    let params = backend.params().unwrap();
    checkpoint::save(&model, &spec, &params, &CheckpointMeta::default()).unwrap();
    let boot = dir.path().join("boot.png");
    std::fs::write(
        &boot,
        png_bytes(as_photo(ds.test.image(0), 120, 100, 10).into()),
    )
    .unwrap();
    let corrupt = dir.path().join("corrupt.jpg");
    std::fs::write(&corrupt, b"\xff\xd8\xff\xe0 definitely not a whole JPEG").unwrap();
    let trouser = dir.path().join("trouser.png");
    std::fs::write(
        &trouser,
        png_bytes(as_photo(ds.test.image(2), 90, 140, 12).into()),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_fmnist");

    let out = Command::new(bin)
        .args(["predict", "--model"])
        .arg(&model)
        .args([&boot, &corrupt, &trouser])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a bad file makes the exit code non-zero"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("boot.png") && stdout.contains("trouser.png"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("  1. ").count(),
        2,
        "top-3 lists for both good files: {stdout}"
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("corrupt.jpg"), "{stderr}");

    let out = Command::new(bin)
        .args(["predict", "--json", "--model"])
        .arg(&model)
        .args([&boot, &corrupt, &trouser])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[1]["error"].as_str().unwrap().contains("corrupt.jpg"));
    assert_eq!(lines[1]["input"], corrupt.display().to_string());
    for v in [&lines[0], &lines[2]] {
        let probs = v["probabilities"].as_object().unwrap();
        assert_eq!(probs.len(), 10);
        let sum: f64 = probs.values().map(|p| p.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-4);
        let top = probs[v["predicted"].as_str().unwrap()].as_f64().unwrap();
        assert!((top - v["confidence"].as_f64().unwrap()).abs() < 1e-6);
        assert!(v.get("label").is_none(), "a photo has no label");
    }

    // Test images carry their label; the file name of a plotted photo goes under its figure.
    let out = Command::new(bin)
        .args(["predict", "--json", "--index", "0", "--model"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["label"], "Ankle boot");
    assert_eq!(v["input"], "test:0");
}

/// What real photos add, each on its own and all together, applied to a sample photo (values 0-255).
mod perturb {
    use image::RgbImage;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    pub type Change = fn(&mut RgbImage, &mut ChaCha8Rng);

    pub const ALL: [(&str, Change); 6] = [
        ("one stray dark pixel", stray_pixel),
        ("dust", dust),
        ("sensor noise", noise),
        ("off-white background", off_white),
        ("lighting gradient", gradient),
        ("all of them", all),
    ];

    pub fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(10)
    }

    fn map(img: &mut RgbImage, f: impl Fn(u32, u32, f32) -> f32) {
        for (x, y, p) in img.enumerate_pixels_mut() {
            for c in p.0.iter_mut() {
                *c = f(x, y, *c as f32).clamp(0.0, 255.0).round() as u8;
            }
        }
    }

    fn stray_pixel(img: &mut RgbImage, _: &mut ChaCha8Rng) {
        img.put_pixel(3, 4, image::Rgb([0, 0, 0]));
    }

    /// 40 dark specks of radius 0-2 pixels anywhere on the picture.
    fn dust(img: &mut RgbImage, rng: &mut ChaCha8Rng) {
        let (w, h) = img.dimensions();
        for _ in 0..40 {
            let (cx, cy, r) = (
                rng.random_range(0..w) as i64,
                rng.random_range(0..h) as i64,
                rng.random_range(0..=2i64),
            );
            let v = rng.random_range(0..80u8);
            for y in cy - r..=cy + r {
                for x in cx - r..=cx + r {
                    if (0..w as i64).contains(&x) && (0..h as i64).contains(&y) {
                        img.put_pixel(x as u32, y as u32, image::Rgb([v, v, v]));
                    }
                }
            }
        }
    }

    /// Roughly Gaussian, standard deviation 12 levels, per pixel and channel.
    fn noise(img: &mut RgbImage, rng: &mut ChaCha8Rng) {
        for p in img.pixels_mut() {
            for c in p.0.iter_mut() {
                let n: f32 = (0..4).map(|_| rng.random_range(-10.4f32..10.4)).sum();
                *c = (*c as f32 + n).clamp(0.0, 255.0).round() as u8;
            }
        }
    }

    /// White paper under warm indoor light: 255 becomes (225, 215, 195).
    fn off_white(img: &mut RgbImage, _: &mut ChaCha8Rng) {
        for p in img.pixels_mut() {
            for (c, k) in p.0.iter_mut().zip([225.0, 215.0, 195.0]) {
                *c = (*c as f32 * k / 255.0).round() as u8;
            }
        }
    }

    /// Light falling off from the top left to 70% at the bottom right.
    fn gradient(img: &mut RgbImage, _: &mut ChaCha8Rng) {
        let (w, h) = img.dimensions();
        map(img, |x, y, v| {
            v * (1.0 - 0.3 * (x as f32 / w as f32 + y as f32 / h as f32) / 2.0)
        });
    }

    fn all(img: &mut RgbImage, rng: &mut ChaCha8Rng) {
        off_white(img, rng);
        gradient(img, rng);
        dust(img, rng);
        noise(img, rng);
        stray_pixel(img, rng);
    }
}

#[test]
fn sample_photos_with_dust_noise_off_white_and_uneven_light_predict_like_the_clean_ones() {
    let ds = common::dataset();
    let (mut backend, _) = common::quick_model(ds);
    let dir = tempfile::tempdir().unwrap();
    let mut samples: Vec<_> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/samples"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
    samples.sort();
    assert_eq!(samples.len(), 5);
    let mut failures = Vec::new();
    for path in &samples {
        let clean = photo::load(path).unwrap();
        let expected = predict(&mut backend, &clean.input(), 1).unwrap();
        let expected = fmnist::evaluate::argmax(&expected);
        for (what, change) in perturb::ALL {
            let mut img = image::open(path).unwrap().to_rgb8();
            change(&mut img, &mut perturb::rng());
            let file = dir.path().join("perturbed.png");
            std::fs::write(&file, png_bytes(img.into())).unwrap();
            let p = photo::load(&file).unwrap();
            assert!(p.warnings.is_empty(), "{what}: {:?}", p.warnings);
            let probs = predict(&mut backend, &p.input(), 1).unwrap();
            let got = fmnist::evaluate::argmax(&probs);
            if got != expected {
                failures.push(format!(
                    "{} with {what}: {} ({:.1}%) instead of {}",
                    path.file_name().unwrap().to_string_lossy(),
                    fmnist::data::CLASS_NAMES[got],
                    100.0 * probs[got],
                    fmnist::data::CLASS_NAMES[expected]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
