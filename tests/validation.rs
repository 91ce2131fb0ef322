//! `train --validation-split` and `--test-every-epoch` on the real data: the held-out images are the
//! last fraction of the training images, scored as `val_*` after every epoch in the epoch line and
//! history.csv; the test set is scored once at the end unless asked for every epoch; histories
//! written before validation existed still read and plot.

mod common;

use std::sync::Arc;

use common::{dataset, fmnist, number_after, stderr, stdout};
use fmnist::backend::CpuBackend;
use fmnist::checkpoint;
use fmnist::evaluate::evaluate;
use fmnist::run::read_history;

fn train(dir: &std::path::Path, extra: &[&str]) -> String {
    let mut args = vec![
        "train",
        "--device",
        "cpu",
        "--limit-train",
        "6000",
        "--epochs",
        "2",
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = fmnist(&args);
    let text = stdout(&o);
    assert!(o.status.success(), "{text}\n{}", stderr(&o));
    text
}

#[test]
fn validation_split_holds_out_the_last_images_and_scores_them_every_epoch() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    let text = train(&dir, &["--validation-split", "0.2"]);
    assert!(
        text.contains("train 4800 images, validation 1200 images, test 10000 images"),
        "{text}"
    );
    assert!(
        text.contains("150/150 - "),
        "4800 images are 150 steps: {text}"
    );
    let csv = std::fs::read_to_string(dir.join("history.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert_eq!(
        header,
        "epoch,loss,accuracy,test_loss,test_accuracy,seconds,val_loss,val_accuracy"
    );
    let history = read_history(&dir.join("history.csv")).unwrap();
    assert_eq!(history.len(), 2);
    for r in &history {
        assert_eq!(
            r.test, None,
            "the test set is not scored per epoch by default"
        );
        let val = r.val.expect("val_* every epoch");
        let line = format!(
            "loss: {:.4} - accuracy: {:.4} - val_loss: {:.4} - val_accuracy: {:.4}\n",
            r.loss, r.accuracy, val.loss, val.accuracy
        );
        assert!(text.contains(&line), "missing `{line}` in:\n{text}");
    }
    // The last epoch's val_* are the final model's scores on images 4800..6000 of the training file.
    let held_out = {
        let first = dataset().train.truncated(6000);
        fmnist::data::Split {
            images: first.images[4800 * 784..].to_vec(),
            labels: first.labels[4800..].to_vec(),
            pixels: 784,
        }
    };
    let model = checkpoint::load(&dir.join("model.safetensors")).unwrap();
    let mut cpu = CpuBackend::new(
        model.spec,
        model.params,
        fmnist::config::OptimizerConfig::default(),
        32,
    );
    let eval = evaluate(&mut cpu, &Arc::new(held_out)).unwrap();
    let last = history[1].val.unwrap();
    assert!(
        (last.loss - eval.loss).abs() < 1e-6,
        "{last:?} vs {}",
        eval.loss
    );
    assert!((last.accuracy - eval.accuracy).abs() < 1e-6);
}

#[test]
fn test_every_epoch_scores_the_test_set_after_each_epoch_and_the_last_is_the_final_one() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    let text = train(&dir, &["--test-every-epoch"]);
    let history = read_history(&dir.join("history.csv")).unwrap();
    assert_eq!(history.len(), 2);
    for r in &history {
        assert_eq!(r.val, None);
        let test = r.test.expect("test_* every epoch");
        assert!(
            text.contains(&format!(" - test_accuracy: {:.4}\n", test.accuracy)),
            "{text}"
        );
    }
    let last = history[1].test.unwrap().accuracy;
    let printed = number_after(&text, "Test accuracy:");
    assert!((last - printed).abs() < 1e-6, "{last} vs {printed}");
}

#[test]
fn a_history_written_before_validation_existed_still_reads_and_plots() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    train(&dir, &[]);
    // The six columns of older runs, the test set scored every epoch.
    std::fs::write(
        dir.join("history.csv"),
        "epoch,loss,accuracy,test_loss,test_accuracy,seconds\n\
         1,0.500000,0.820000,0.450000,0.840000,2.100\n\
         2,0.380000,0.860000,0.400000,0.855000,2.000\n",
    )
    .unwrap();
    let history = read_history(&dir.join("history.csv")).unwrap();
    assert_eq!(history[1].test.unwrap().accuracy, 0.855);
    assert_eq!(history[1].val, None);
    assert_eq!(history[1].seconds, 2.0);
    let o = fmnist(&["plot", "--run", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A row with a missing column is refused, naming the file and line.
    std::fs::write(
        dir.join("history.csv"),
        "epoch,loss,accuracy,test_loss,test_accuracy,seconds,val_loss,val_accuracy\n1,0.5,0.8,,,2.0,0.4\n",
    )
    .unwrap();
    let err = read_history(&dir.join("history.csv"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("history.csv: line 2: expected 8"), "{err}");
}

#[test]
fn split_validation_takes_the_last_fraction_as_keras_does() {
    let split = fmnist::data::Split {
        images: (0..10).collect(),
        labels: (0..10).collect(),
        pixels: 1,
    };
    let (train, val) = split.clone().split_validation(0.25).unwrap();
    // Keras: split_at = floor(10 * 0.75) = 7.
    assert_eq!(train.labels, (0..7).collect::<Vec<u8>>());
    assert_eq!(val.labels, vec![7, 8, 9]);
    assert_eq!(val.images, vec![7, 8, 9]);
    // 10 * (1 - 1e-17) rounds to 10: nothing would be held out.
    assert!(
        split.clone().split_validation(1e-17).is_err(),
        "no validation image"
    );
    assert!(split.split_validation(0.95).is_err(), "no training image");
}

#[test]
fn validation_split_flags_are_checked() {
    let cases: [(&[&str], &str); 5] = [
        (&["--validation-split", "0"], "--validation-split 0:"),
        (&["--validation-split", "1"], "--validation-split 1:"),
        (&["--validation-split", "nan"], "--validation-split NaN:"),
        (&["--validation-split", "half"], "--validation-split"),
        (
            &["--validation-split", "0.5", "--limit-train", "1"],
            "--validation-split 0.5: 1 training images cannot be split",
        ),
    ];
    for (flags, expected) in cases {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("run");
        let mut args = vec!["train", "--device", "cpu", "--out", out.to_str().unwrap()];
        args.extend_from_slice(flags);
        let o = fmnist(&args);
        let err = stderr(&o);
        assert!(!o.status.success(), "{flags:?} was accepted");
        assert!(
            err.contains(expected) && err.lines().filter(|l| l.starts_with("error:")).count() == 1,
            "{flags:?}: `{expected}` not in:\n{err}"
        );
    }
}
