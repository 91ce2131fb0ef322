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
