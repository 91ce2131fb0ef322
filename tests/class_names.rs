//! Issue 11: any folder of the four IDX files with 28x28 images and 10 classes trains, its classes named
//! by `--class-names` or a `class_names.txt` beside the files; the names travel in the checkpoint and
//! label what `info`, `train`, `predict` and the figures print. The data here is a small generated
//! "digits" set: image i of class c is a bright square at a place that depends on c.

mod common;

use std::path::Path;

use common::{fmnist, stderr, stdout};
use fmnist::checkpoint;
use fmnist::data::{CLASS_NAMES_FILE, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};

const DIGITS: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];

/// `n` images whose class is `i % 10`, written uncompressed under the official names (without .gz).
fn write_split(dir: &Path, images: &str, labels: &str, n: usize) {
    let mut pixels = vec![0u8; n * 784];
    let mut classes = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % 10;
        classes.push(c as u8);
        let (r0, c0) = (2 + (c / 5) * 12, 2 + (c % 5) * 5);
        for r in r0..r0 + 10 {
            for col in c0..c0 + 4 {
                pixels[i * 784 + r * 28 + col] = 200 + (i % 50) as u8;
            }
        }
    }
    let strip = |name: &str| name.trim_end_matches(".gz").to_string();
    std::fs::write(
        dir.join(strip(images)),
        fmnist::data::encode_idx(3, &[n as u32, 28, 28], &pixels),
    )
    .unwrap();
    std::fs::write(
        dir.join(strip(labels)),
        fmnist::data::encode_idx(1, &[n as u32], &classes),
    )
    .unwrap();
}

fn digits_folder(dir: &Path) {
    write_split(dir, TRAIN_IMAGES, TRAIN_LABELS, 600);
    write_split(dir, TEST_IMAGES, TEST_LABELS, 100);
}

#[test]
fn a_class_names_file_names_the_classes_everywhere() {
    let data = tempfile::tempdir().unwrap();
    digits_folder(data.path());
    std::fs::write(data.path().join(CLASS_NAMES_FILE), DIGITS.join("\n")).unwrap();
    let d = data.path().to_str().unwrap();
    let o = fmnist(&["info", "--data-dir", d]);
    assert!(
        stdout(&o).contains("  7 seven"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );

    let run = tempfile::tempdir().unwrap();
    let out = run.path().join("run");
    let o = fmnist(&[
        "train",
        "--data-dir",
        d,
        "--device",
        "cpu",
        "--epochs",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = stdout(&o);
    assert!(o.status.success(), "{text}{}", stderr(&o));
    assert!(
        text.contains("  seven "),
        "per-class table names the digits:\n{text}"
    );
    let model = out.join("model.safetensors");
    let ck = checkpoint::load(&model).unwrap();
    assert_eq!(ck.meta.class_names.as_strs(), DIGITS);
    // The names travel with the model: predict on Fashion-MNIST's own folder still says "seven".
    let o = fmnist(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--data-dir",
        d,
        "--index",
        "7",
    ]);
    let text = stdout(&o);
    assert!(
        text.contains("Test image 7 (true: seven)"),
        "{text}{}",
        stderr(&o)
    );
    assert!(
        text.contains("Predicted: seven"),
        "a square per class is easy:\n{text}"
    );
}

#[test]
fn class_names_on_the_command_line_win_and_bad_lists_are_named() {
    let data = tempfile::tempdir().unwrap();
    digits_folder(data.path());
    let d = data.path().to_str().unwrap();
    let run = tempfile::tempdir().unwrap();
    let out = run.path().join("run");
    let names = "a,b,c,d,e,f,g,h,i,j";
    let o = fmnist(&[
        "train",
        "--data-dir",
        d,
        "--device",
        "cpu",
        "--steps",
        "20",
        "--class-names",
        names,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ck = checkpoint::load(&out.join("model.safetensors")).unwrap();
    assert_eq!(
        ck.meta.class_names.iter().collect::<Vec<_>>().join(","),
        names
    );

    let o = fmnist(&[
        "train",
        "--data-dir",
        d,
        "--device",
        "cpu",
        "--class-names",
        "a,b",
    ]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("--class-names") && err.contains("2 class names given"),
        "{err}"
    );
    std::fs::write(data.path().join(CLASS_NAMES_FILE), "only\ntwo\n").unwrap();
    let o = fmnist(&["show", "--data-dir", d, "--index", "3"]);
    let err = stderr(&o);
    assert!(
        err.contains(CLASS_NAMES_FILE) && err.contains("2 class names"),
        "{err}"
    );
}
