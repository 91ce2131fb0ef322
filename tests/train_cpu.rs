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
    // As the tutorial does, the test set is evaluated once, after training, not every epoch.
    assert_eq!(history[0].test, None);
    assert_eq!(history[0].val, None);
    let epoch_line = text
        .lines()
        .find(|l| l.starts_with("1875/1875 - "))
        .unwrap();
    assert!(!epoch_line.contains("test_loss"), "{epoch_line}");
    assert!(
        text.contains("10000/10000 - test_loss: "),
        "the final evaluation's line: {text}"
    );
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
        cfg.optimizer,
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
        ..Default::default()
    };
    checkpoint::save(&path, &spec, &backend.params().unwrap(), &meta).unwrap();
    let ck = checkpoint::load(&path).unwrap();
    assert_eq!(ck.spec, spec);
    assert_eq!(ck.meta, meta);
    assert_eq!(ck.params, backend.params().unwrap());
    let mut reloaded = CpuBackend::new(ck.spec, ck.params, cfg.optimizer, 1);
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
    let train = std::sync::Arc::new(data.train.truncated(1050));
    let spec = MlpSpec::fashion(&[32]).unwrap();
    let mut backend = CpuBackend::new(
        spec.clone(),
        glorot_init(&spec, 5),
        cfg.optimizer,
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
        optimizer: fmnist::config::AdamConfig {
            learning_rate: 1e30,
            ..Default::default()
        }
        .into(),
        ..TrainConfig::default()
    };
    let spec = MlpSpec::fashion(&[16]).unwrap();
    let mut backend = CpuBackend::new(
        spec.clone(),
        glorot_init(&spec, 5),
        cfg.optimizer,
        cfg.batch_size,
    );
    let err = fit(&mut backend, &data.train, &data.test, &cfg, &mut Silent)
        .err()
        .expect("must diverge");
    assert!(format!("{err:#}").contains("diverged"), "{err:#}");
    assert!(fmnist::error::hint_of(&err).unwrap().contains("--lr"));
}

#[test]
fn train_flags_deeper_model_limits_and_init_from_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    let o = fmnist(&[
        "train",
        "--device",
        "cpu",
        "--hidden",
        "64,32",
        "--limit-train",
        "3000",
        "--batch-size",
        "100",
        "--epochs",
        "2",
        "--no-shuffle",
        "--out",
        first.to_str().unwrap(),
    ]);
    let text = stdout(&o);
    assert!(o.status.success(), "{text}\n{}", stderr(&o));
    assert!(
        text.contains("784-64-32-10") && text.contains("no shuffle") && text.contains("30/30 - "),
        "{text}"
    );
    let model = first.join("model.safetensors");
    let ck = checkpoint::load(&model).unwrap();
    assert_eq!(
        (ck.spec.hidden.clone(), ck.meta.epochs, ck.meta.steps),
        (vec![64, 32], Some(2), Some(60))
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(first.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        (config["batch_size"].as_u64(), config["shuffle"].as_bool()),
        (Some(100), Some(false))
    );
    assert!(config["device"].as_str().unwrap().starts_with("cpu"));

    // Continuing from the checkpoint starts where it left off: the first epoch's loss is already low.
    let second = dir.path().join("second");
    let o = fmnist(&[
        "train",
        "--device",
        "cpu",
        "--init",
        model.to_str().unwrap(),
        "--steps",
        "5",
        "--out",
        second.to_str().unwrap(),
    ]);
    let text = stdout(&o);
    assert!(o.status.success(), "{text}\n{}", stderr(&o));
    assert!(
        text.contains("weights from")
            && text.contains("784-64-32-10")
            && text.contains("5/1875 - "),
        "{text}"
    );
    let history = fmnist::run::read_history(&second.join("history.csv")).unwrap();
    assert!(
        history[0].loss < 1.0,
        "a trained start has a low first loss: {:?}",
        history[0]
    );

    let o = fmnist(&[
        "train",
        "--device",
        "cpu",
        "--init",
        model.to_str().unwrap(),
        "--hidden",
        "128",
        "--steps",
        "1",
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("--hidden asks for [128]"),
        "{}",
        stderr(&o)
    );
}

/// Issue 8: the same seed gives byte-identical weights on every run of the CPU path, whose compute
/// threads flush denormals to zero (and split the products across two threads).
#[test]
fn the_same_seed_gives_byte_identical_weights_with_denormals_flushed() {
    let data = dataset();
    let cfg = TrainConfig {
        epochs: 1,
        max_steps: Some(400),
        ..TrainConfig::default()
    };
    let spec = MlpSpec::fashion(&[128]).unwrap();
    let run = || {
        let mut backend = CpuBackend::new(
            spec.clone(),
            glorot_init(&spec, cfg.seed),
            cfg.optimizer,
            cfg.batch_size,
        );
        if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
            assert!(
                backend.flushes_denormals(),
                "compute threads flush denormals"
            );
        }
        fit(&mut backend, &data.train, &data.test, &cfg, &mut Silent).unwrap();
        let params = backend.params().unwrap();
        params.iter().map(|p| p.to_bits()).collect::<Vec<u32>>()
    };
    let first = run();
    assert_eq!(first, run(), "two runs of seed {} differ", cfg.seed);
}

/// Issue 11: a live display gets its first tick after the first step of every epoch (so the bar shows
/// metrics from its first draw), with the running means of the steps so far; the epoch line follows.
#[test]
fn a_live_display_ticks_after_each_epochs_first_step_with_running_metrics() {
    use fmnist::metrics::StepStats;
    use fmnist::progress::{Progress, live_metrics};
    use fmnist::train::EpochRecord;
    #[derive(Default)]
    struct Recorder {
        events: Vec<String>,
    }
    impl Progress for Recorder {
        fn live(&self) -> bool {
            true
        }
        fn epoch_start(&mut self, epoch: usize, _: usize, _: usize) {
            self.events.push(format!("start {epoch}"));
        }
        fn tick(&mut self, step: usize, running: &StepStats) {
            assert_eq!(running.steps as usize, step, "metrics of every step so far");
            self.events
                .push(format!("tick {step} {}", live_metrics(running)));
        }
        fn epoch_end(&mut self, r: &EpochRecord, _: usize, _: usize) {
            self.events.push(format!("end {}", r.epoch));
        }
    }
    let data = dataset();
    let cfg = TrainConfig {
        epochs: 2,
        limit_train: Some(640),
        ..TrainConfig::default()
    };
    let spec = MlpSpec::fashion(&[16]).unwrap();
    let mut backend = CpuBackend::new(spec.clone(), glorot_init(&spec, 1), cfg.optimizer, 32);
    let mut rec = Recorder::default();
    let train = std::sync::Arc::new(data.train.truncated(640));
    fit(&mut backend, &train, &data.test, &cfg, &mut rec).unwrap();
    let e = &rec.events;
    assert_eq!(e[0], "start 0");
    assert!(
        e[1].starts_with("tick 1 loss: ") && e[1].contains(" - accuracy: "),
        "{e:?}"
    );
    let second = e
        .iter()
        .position(|x| x == "start 1")
        .expect("a second epoch");
    assert!(e[second + 1].starts_with("tick 1 loss: "), "{e:?}");
    assert_eq!(e.last().unwrap(), "end 2");
}
