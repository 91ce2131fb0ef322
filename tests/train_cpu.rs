//! The tutorial workflow on the CPU path with the real data: one epoch reaches the tutorial's accuracy,
//! a checkpoint reproduces the model exactly, and `evaluate` reproduces the end-of-training accuracy.

mod common;

use common::{dataset, fmnist, number_after, stderr, stdout};
use fmnist::backend::{Backend, CpuBackend};
use fmnist::checkpoint::{self, CheckpointMeta};
use fmnist::config::TrainConfig;
use fmnist::evaluate::evaluate;
use fmnist::model::{MlpSpec, glorot_init};
use fmnist::progress::Silent;
use fmnist::train::fit;

#[test]
fn train_one_epoch_on_cpu_reaches_0_83_and_evaluate_reproduces_it() {
    let out = tempfile::tempdir().unwrap();
    let run = out.path().join("run");
    let o = fmnist(&[
        "train",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--out",
        run.to_str().unwrap(),
    ]);
    let text = stdout(&o);
    assert!(o.status.success(), "train failed:\n{text}\n{}", stderr(&o));
    for expected in [
        "Device: cpu",
        "Data:",
        "Config: epochs 1 - batch size 32",
        "seed 42",
        "Epoch 1/1",
        "1875/1875 - ",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    let trained = number_after(&text, "Test accuracy:");
    assert!(
        trained >= 0.83,
        "test accuracy after one epoch {trained} < 0.83"
    );
    for f in ["config.json", "history.csv", "model.safetensors"] {
        assert!(run.join(f).exists(), "{f} not written");
    }
    let history = fmnist::run::read_history(&run.join("history.csv")).unwrap();
    assert_eq!(history.len(), 1);
    assert!((history[0].test_accuracy - trained).abs() < 1e-4);
    let model = run.join("model.safetensors");
    let o = fmnist(&[
        "evaluate",
        "--model",
        model.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let evaluated = number_after(&stdout(&o), "Test accuracy:");
    assert_eq!(
        evaluated, trained,
        "evaluate must reproduce the end-of-training accuracy"
    );
    let o = fmnist(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--index",
        "0",
        "--index",
        "12",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("Test image 0 (true: Ankle boot)") && text.contains("Test image 12"),
        "{text}"
    );
}

#[test]
fn a_saved_and_loaded_checkpoint_predicts_identically() {
    let data = dataset();
    let cfg = TrainConfig {
        epochs: 1,
        max_steps: Some(300),
        ..TrainConfig::default()
    };
    let spec = MlpSpec::fashion(&[64, 32]).unwrap();
    let mut backend = CpuBackend::new(
        spec.clone(),
        glorot_init(&spec, 1),
        cfg.adam,
        cfg.batch_size,
    );
    let result = fit(&mut backend, &data.train, &data.test, &cfg, &mut Silent).unwrap();
    assert_eq!(result.steps, 300);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let meta = CheckpointMeta {
        epochs: Some(1),
        seed: Some(1),
        steps: Some(300),
    };
    checkpoint::save(&path, &spec, &backend.params().unwrap(), &meta).unwrap();
    let ck = checkpoint::load(&path).unwrap();
    assert_eq!(ck.spec, spec);
    assert_eq!(ck.meta, meta);
    assert_eq!(ck.params, backend.params().unwrap());
    let mut reloaded = CpuBackend::new(ck.spec, ck.params, cfg.adam, 1);
    let before = evaluate(&mut backend, &data.test).unwrap();
    let after = evaluate(&mut reloaded, &data.test).unwrap();
    assert_eq!(
        before.probs, after.probs,
        "predictions differ after a save/load round trip"
    );
    assert_eq!(before.accuracy, result.final_eval.accuracy);
    assert_eq!(before.confusion().iter().flatten().sum::<u32>(), 10_000);
}

#[test]
fn partial_batches_limit_train_and_steps_work() {
    let data = dataset();
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 100,
        limit_train: Some(1050),
        ..TrainConfig::default()
    };
    let train = data.train.clone().truncated(1050);
    let spec = MlpSpec::fashion(&[32]).unwrap();
    let mut backend = CpuBackend::new(
        spec.clone(),
        glorot_init(&spec, 5),
        cfg.adam,
        cfg.batch_size,
    );
    let result = fit(&mut backend, &train, &data.test, &cfg, &mut Silent).unwrap();
    assert_eq!(result.history.len(), 2);
    assert_eq!(
        result.steps, 22,
        "1050 samples at batch 100 are 11 steps per epoch (the last one of 50)"
    );
    assert!(
        result.history[1].loss < result.history[0].loss,
        "{:?}",
        result.history
    );
}

#[test]
fn a_diverging_loss_stops_training_with_a_clear_error() {
    let data = dataset();
    let cfg = TrainConfig {
        epochs: 1,
        max_steps: Some(50),
        adam: fmnist::config::AdamConfig {
            learning_rate: 1e30,
            ..Default::default()
        },
        ..TrainConfig::default()
    };
    let spec = MlpSpec::fashion(&[16]).unwrap();
    let mut backend = CpuBackend::new(
        spec.clone(),
        glorot_init(&spec, 5),
        cfg.adam,
        cfg.batch_size,
    );
    let err = fit(&mut backend, &data.train, &data.test, &cfg, &mut Silent)
        .err()
        .expect("must diverge");
    assert!(format!("{err:#}").contains("diverged"), "{err:#}");
    assert!(fmnist::error::hint_of(&err).unwrap().contains("--lr"));
}
