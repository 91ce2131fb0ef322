//! Issue 10, item 4: no silent nonsense with exit code 0. Overflowing weights, an overflowing
//! `--grid`, half a JPEG, a picture with no garment and a learning rate that explodes the loss are each
//! an error or a warning that names the cause.

mod common;

use std::io::Cursor;

use common::{fmnist, fmnist_in, small_model, stderr, stdout, tiny_data};
use fmnist::model::MlpSpec;
use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};

fn png(img: DynamicImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn finite_weights_that_overflow_are_an_error_naming_them_not_nan_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    tiny_data(dir.path(), None);
    let spec = MlpSpec::fashion(&[8]).unwrap();
    let params = vec![3e38f32; spec.layout().total];
    let model = dir.path().join("huge.safetensors");
    fmnist::checkpoint::save(&model, &spec, &params, &Default::default()).unwrap();
    let (model, data) = (model.to_str().unwrap(), dir.path().to_str().unwrap());
    for args in [
        &[
            "evaluate",
            "--device",
            "cpu",
            "--model",
            model,
            "--data-dir",
            data,
        ][..],
        &[
            "predict",
            "--device",
            "cpu",
            "--model",
            model,
            "--data-dir",
            data,
            "--index",
            "0",
        ],
    ] {
        let o = fmnist(args);
        let (out, err) = (stdout(&o), stderr(&o));
        assert_eq!(o.status.code(), Some(1), "{args:?}\n{out}\n{err}");
        assert!(!out.contains("NaN"), "{out}");
        assert!(
            err.contains("not finite") && err.contains("3.0e38"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_grid_whose_product_overflows_is_refused() {
    for grid in ["4294967296x4294967296", "9223372036854775809x2"] {
        let o = fmnist(&["predict", "--model", "m.safetensors", "--grid", grid]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{grid}: {err}");
        assert!(err.contains("between 1 and 100 images"), "{grid}: {err}");
    }
}

#[test]
fn half_a_jpeg_and_pictures_with_no_garment_are_predicted_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path());
    let jpeg = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/samples/test-13-dress.jpg"
    ))
    .unwrap();
    std::fs::write(dir.path().join("half.jpg"), &jpeg[..jpeg.len() / 2]).unwrap();
    std::fs::write(dir.path().join("whole.jpg"), &jpeg).unwrap();
    let blank = RgbaImage::from_pixel(60, 80, Rgba([255, 255, 255, 255]));
    let grey = RgbaImage::from_pixel(60, 80, Rgba([128, 128, 128, 255]));
    let clear = RgbaImage::from_pixel(60, 80, Rgba([0, 0, 0, 0]));
    for (name, img) in [
        ("blank.png", blank),
        ("grey.png", grey),
        ("clear.png", clear),
    ] {
        std::fs::write(dir.path().join(name), png(img.into())).unwrap();
    }
    let files = [
        "half.jpg",
        "blank.png",
        "grey.png",
        "clear.png",
        "whole.jpg",
    ];
    let model = model.to_str().unwrap();
    let mut args = vec!["predict", "--device", "cpu", "--model", model];
    args.extend(files);
    let o = fmnist_in(dir.path(), &args);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 4, "{err}");
    assert!(warnings[0].contains("half.jpg") && warnings[0].contains("truncated"));
    for (w, f) in warnings[1..].iter().zip(&files[1..4]) {
        assert!(w.contains(f) && w.contains("no garment found"), "{w}");
    }
    args.push("--json");
    let o = fmnist_in(dir.path(), &args);
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert!(lines[0]["warning"].as_str().unwrap().contains("truncated"));
    for v in &lines[1..4] {
        assert!(
            v["warning"].as_str().unwrap().contains("no garment found"),
            "{v}"
        );
    }
    assert!(lines[4].get("warning").is_none(), "{}", lines[4]);
}

#[test]
fn a_learning_rate_that_explodes_the_loss_stops_as_diverged_and_saves_no_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = fmnist(&[
        "train",
        "--device",
        "cpu",
        "--lr",
        "1e6",
        "--epochs",
        "2",
        "--limit-train",
        "3000",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{}\n{err}", stdout(&o));
    assert!(
        err.contains("training diverged") && err.contains("above 100"),
        "{err}"
    );
    assert!(!out.join("model.safetensors").exists());
    let config = std::fs::read_to_string(out.join("config.json")).unwrap();
    assert!(config.contains("\"diverged\""), "{config}");
}
