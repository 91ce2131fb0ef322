//! Early stopping and the best epoch (`train --early-stopping`, `--min-delta`, `--save-best`) on the
//! real data: the fit stops where Keras' rule says, ends with the best epoch's weights on the CPU and
//! on the GPU, continues its count and its best weights across an interrupted and resumed run, and
//! leaves model.safetensors and best.safetensors holding that epoch in the run folder.

mod common;

use std::sync::Arc;

use common::{dataset, fmnist, number_after, stderr, stdout};
use fmnist::backend::{Backend, CpuBackend};
use fmnist::checkpoint;
use fmnist::config::{EarlyStopping, TrainConfig};
use fmnist::data::Split;
use fmnist::gpu::GpuBackend;
use fmnist::gpu::plan::Operands;
use fmnist::model::{MlpSpec, glorot_init};
use fmnist::progress::Silent;
use fmnist::resume::{self, RunCheckpoint};
use fmnist::run::{RunRecord, RunStatus};
use fmnist::train::{EpochRecord, FitData, FitEnd, FitHooks, FitOutcome, FitPosition, fit_from};

/// The first 3000 training images, the last fifth of them held out for validation.
fn splits() -> (Arc<Split>, Arc<Split>) {
    let (train, val) = dataset()
        .train
        .truncated(3000)
        .split_validation(0.2)
        .unwrap();
    assert_eq!((train.len(), val.len()), (2400, 600));
    (Arc::new(train), Arc::new(val))
}

fn config(epochs: usize, patience: usize, min_delta: f64) -> TrainConfig {
    TrainConfig {
        epochs,
        limit_train: Some(3000),
        validation_split: Some(0.2),
        early_stopping: Some(EarlyStopping {
            patience,
            min_delta,
        }),
        ..TrainConfig::default()
    }
}

/// Keeps every finished epoch's weights, and stops (as Ctrl-C would) after `stop_after` questions.
#[derive(Default)]
struct Recorder {
    weights: Vec<Vec<f32>>,
    asked: std::cell::Cell<usize>,
    stop_after: Option<usize>,
}

impl FitHooks for Recorder {
    fn should_stop(&self) -> bool {
        self.asked.set(self.asked.get() + 1);
        self.stop_after.is_some_and(|n| self.asked.get() > n)
    }
    fn epoch_done(&mut self, backend: &mut dyn Backend, _: &FitPosition) -> anyhow::Result<()> {
        self.weights.push(backend.params()?);
        Ok(())
    }
}

fn run(
    backend: &mut dyn Backend,
    cfg: &TrainConfig,
    start: FitPosition,
    hooks: &mut Recorder,
) -> FitOutcome {
    let (train, val) = splits();
    let data = FitData {
        train: &train,
        validation: Some(&val),
        test: &dataset().test,
    };
    fit_from(backend, data, cfg, &mut Silent, start, hooks).unwrap()
}

/// Keras' rule, written again from its definition: the best epoch (first of the lowest `val_loss`
/// improving by more than `min_delta`) and the epoch after which `patience` epochs passed without
/// improvement (`None`: never).
fn keras_rule(history: &[EpochRecord], patience: usize, min_delta: f64) -> (usize, Option<usize>) {
    let (mut best, mut best_epoch, mut wait) = (f64::INFINITY, 0, 0);
    for r in history {
        let value = r.val.expect("validation every epoch").loss;
        wait += 1;
        if value + min_delta < best || best_epoch == 0 {
            (best, best_epoch, wait) = (value, r.epoch, 0);
            continue;
        }
        if wait >= patience {
            return (best_epoch, Some(r.epoch));
        }
    }
    (best_epoch, None)
}

/// Fits `cfg` on `backend` and checks the outcome against Keras' rule and the recorded weights.
/// Returns the best epoch and the epoch the fit stopped early after.
fn check_stops_and_restores(
    backend: &mut dyn Backend,
    cfg: &TrainConfig,
    device: &str,
) -> (usize, Option<usize>) {
    let mut rec = Recorder::default();
    let out = run(backend, cfg, FitPosition::default(), &mut rec);
    let rule = cfg.early_stopping.unwrap();
    let (best, stopped) = keras_rule(&out.position.history, rule.patience, rule.min_delta);
    let history: Vec<f64> = out
        .position
        .history
        .iter()
        .map(|r| r.val.unwrap().loss)
        .collect();
    eprintln!("{device}: val_loss {history:?}, best epoch {best}, stopped after {stopped:?}");
    // Patience spent at the last epoch ends the fit as it would have ended anyway.
    let stopped = stopped.filter(|&e| e < cfg.epochs);
    match stopped {
        Some(epoch) => {
            assert!(matches!(out.end, FitEnd::StoppedEarly), "{device}");
            assert_eq!(
                out.position.epoch, epoch,
                "{device}: stopped where Keras stops"
            );
        }
        None => assert!(matches!(out.end, FitEnd::Finished), "{device}"),
    }
    assert_eq!(out.restored_epoch, Some(best), "{device}");
    assert!(
        backend.params().unwrap() == rec.weights[best - 1],
        "{device}: the final weights are epoch {best}'s, bit for bit"
    );
    (best, stopped)
}

#[test]
fn cpu_stops_where_keras_rule_says_and_ends_with_the_best_epochs_weights() {
    for (epochs, patience, min_delta) in [(8, 1, 0.0), (8, 2, 0.0), (5, 1, 10.0)] {
        let cfg = config(epochs, patience, min_delta);
        let spec = MlpSpec::fashion(&cfg.hidden).unwrap();
        let mut cpu = CpuBackend::new(
            spec.clone(),
            glorot_init(&spec, cfg.seed),
            cfg.optimizer,
            32,
        );
        let (best, stopped) = check_stops_and_restores(&mut cpu, &cfg, "cpu");
        // The CPU path is deterministic: each of these runs stops early, restoring an earlier epoch.
        assert!(stopped.is_some_and(|s| s > best), "{stopped:?}");
        if min_delta == 10.0 {
            // No drop of 10 exists: epoch 1 stays the best and patience 1 stops after epoch 2.
            assert_eq!(best, 1);
        }
    }
}

#[test]
fn gpu_stops_where_keras_rule_says_and_ends_with_the_best_epochs_weights() {
    for operands in [Operands::Buffers, Operands::Textures] {
        let Some(ctx) = common::gpu_or_skip("early stopping") else {
            return;
        };
        let cfg = config(5, 1, 10.0);
        let spec = MlpSpec::fashion(&cfg.hidden).unwrap();
        let params = glorot_init(&spec, cfg.seed);
        let mut gpu =
            GpuBackend::with_operands(ctx, operands, spec, params, cfg.optimizer, 32).unwrap();
        let (best, stopped) = check_stops_and_restores(&mut gpu, &cfg, operands.name());
        assert_eq!((best, stopped), (1, Some(2)));
        // The restored weights are what the GPU computes with: its evaluation matches the CPU's on
        // the same weights.
        let params = gpu.params().unwrap();
        let mut cpu = CpuBackend::new(gpu.spec().clone(), params, cfg.optimizer, 32);
        let test = &dataset().test;
        let (g, c) = (
            fmnist::evaluate::evaluate(&mut gpu, test).unwrap(),
            fmnist::evaluate::evaluate(&mut cpu, test).unwrap(),
        );
        assert!(
            (g.loss - c.loss).abs() < 1e-5,
            "gpu {} vs cpu {}",
            g.loss,
            c.loss
        );
        assert_eq!(g.accuracy, c.accuracy);
    }
}

#[test]
fn an_interrupted_early_stopping_run_resumes_with_its_best_epoch_and_ends_identically() {
    let cfg = config(8, 2, 0.0);
    let spec = MlpSpec::fashion(&cfg.hidden).unwrap();
    let params = glorot_init(&spec, cfg.seed);
    let new_backend = |p: Vec<f32>| CpuBackend::new(spec.clone(), p, cfg.optimizer, 32);

    let mut whole = new_backend(params.clone());
    let done = run(
        &mut whole,
        &cfg,
        FitPosition::default(),
        &mut Recorder::default(),
    );

    // 75 steps an epoch: one question before each epoch and 74 inside it, so the 3 * 76 + 20-th
    // question comes inside epoch 4.
    let mut first = new_backend(params);
    let mut stop = Recorder {
        stop_after: Some(3 * 76 + 20),
        ..Recorder::default()
    };
    let stopped = run(&mut first, &cfg, FitPosition::default(), &mut stop);
    assert!(matches!(stopped.end, FitEnd::Interrupted));
    assert_eq!(stopped.position.epoch, 3);
    assert!(stopped.position.best.as_ref().unwrap().params.is_some());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    let saved = RunCheckpoint {
        spec: spec.clone(),
        params: first.params().unwrap(),
        optimizer: first.optimizer_state().unwrap(),
        position: stopped.position.clone(),
        seed: cfg.seed,
        shuffle: cfg.shuffle,
        train_samples: 2400,
        class_names: Default::default(),
    };
    resume::save(&path, &saved).unwrap();
    let loaded = resume::load(&path).unwrap();
    assert_eq!(
        loaded.position.best, saved.position.best,
        "the best epoch and its weights read back bit for bit"
    );

    let mut resumed = new_backend(loaded.params);
    resumed.set_optimizer_state(&loaded.optimizer).unwrap();
    let end = run(
        &mut resumed,
        &cfg,
        loaded.position,
        &mut Recorder::default(),
    );
    assert_eq!(end.restored_epoch, done.restored_epoch);
    assert_eq!(end.position.epoch, done.position.epoch);
    assert_eq!(
        std::mem::discriminant(&end.end),
        std::mem::discriminant(&done.end)
    );
    assert!(
        resumed.params().unwrap() == whole.params().unwrap(),
        "the resumed run ends with the same restored weights"
    );
}

#[test]
fn train_early_stopping_saves_the_best_epoch_as_model_and_best_safetensors() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    let o = fmnist(&[
        "train",
        "--device",
        "cpu",
        "--limit-train",
        "3000",
        "--validation-split",
        "0.2",
        "--epochs",
        "6",
        "--early-stopping",
        "1",
        "--min-delta",
        "10",
        "--save-best",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let text = stdout(&o);
    assert!(o.status.success(), "{text}\n{}", stderr(&o));
    for expected in [
        "Watch:  early stopping on val_loss (patience 1, min_delta 10)",
        "Epoch 1: val_loss improved from inf to ",
        "Epoch 2: val_loss did not improve from ",
        "Epoch 2: early stopping",
        "Restoring model weights from the end of the best epoch: 1.",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
    assert!(!text.contains("Epoch 3/6"), "{text}");
    let model = checkpoint::load(&dir.join("model.safetensors")).unwrap();
    let best = checkpoint::load(&dir.join("best.safetensors")).unwrap();
    assert!(
        model.params == best.params,
        "model.safetensors is the best epoch's"
    );
    assert_eq!((model.meta.epochs, model.meta.steps), (Some(1), Some(75)));
    let record = RunRecord::read(&dir).unwrap();
    assert_eq!(record.status, RunStatus::Finished);
    assert_eq!((record.epochs_done, record.steps_done), (2, 150));
    assert_eq!(
        record.message.as_deref(),
        Some("stopped early after epoch 2 of 6; the model holds epoch 1's weights")
    );
    // The reported test accuracy is the restored model's.
    let trained = number_after(&text, "Test accuracy:");
    let o = fmnist(&[
        "evaluate",
        "--device",
        "cpu",
        "--model",
        dir.join("model.safetensors").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(number_after(&stdout(&o), "Test accuracy:"), trained);
    // A finished early-stopped run has nothing left to resume.
    let o = fmnist(&["train", "--resume", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("the run is finished (2 of 6 epochs"));
}

#[test]
fn without_validation_early_stopping_and_save_best_watch_the_training_loss() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    let o = fmnist(&[
        "train",
        "--device",
        "cpu",
        "--limit-train",
        "1000",
        "--epochs",
        "3",
        "--save-best",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let text = stdout(&o);
    assert!(o.status.success(), "{text}\n{}", stderr(&o));
    assert!(
        text.contains("Watch:  best loss kept as best.safetensors"),
        "{text}"
    );
    // The training loss falls every epoch here, so each one is saved in turn.
    for e in 1..=3 {
        assert!(
            text.contains(&format!("Epoch {e}: loss improved from ")),
            "{text}"
        );
    }
    let model = checkpoint::load(&dir.join("model.safetensors")).unwrap();
    let best = checkpoint::load(&dir.join("best.safetensors")).unwrap();
    assert!(model.params == best.params);
    assert_eq!(best.meta.epochs, Some(3));
}

#[test]
fn early_stopping_flags_are_checked() {
    let cases: [(&[&str], &str); 5] = [
        (&["--min-delta", "0.1"], "--early-stopping"),
        (
            &["--early-stopping", "2", "--min-delta", "-1"],
            "--min-delta -1",
        ),
        (
            &["--early-stopping", "2", "--min-delta", "nan"],
            "--min-delta NaN",
        ),
        (&["--early-stopping", "-1"], "--early-stopping"),
        (
            &["--resume", "x", "--early-stopping", "2"],
            "--early-stopping",
        ),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["train", "--device", "cpu"];
        args.extend_from_slice(flags);
        let o = fmnist(&args);
        let err = stderr(&o);
        assert!(!o.status.success(), "{flags:?} was accepted");
        assert!(
            err.contains(expected) && err.lines().any(|l| l.starts_with("error:")),
            "{flags:?}: `{expected}` not in:\n{err}"
        );
    }
}

/// The new run settings together, on the CPU path: a validation split, early stopping with the best
/// model kept, SGD with Nesterov momentum and dropout.
const EVERYTHING: [&str; 22] = [
    "train",
    "--device",
    "cpu",
    "--limit-train",
    "30000",
    "--validation-split",
    "0.2",
    "--epochs",
    "4",
    "--early-stopping",
    "2",
    "--save-best",
    "--optimizer",
    "sgd",
    "--momentum",
    "0.9",
    "--nesterov",
    "--dropout",
    "0.2",
    "--test-every-epoch",
    "--seed",
    "5",
];

#[test]
fn a_run_with_every_new_setting_interrupted_and_resumed_ends_byte_identical_to_one_left_alone() {
    let root = tempfile::tempdir().unwrap();
    fn run(dir: &std::path::Path) -> Vec<&str> {
        let mut args = EVERYTHING.to_vec();
        args.extend(["--out", dir.to_str().unwrap()]);
        args
    }
    let straight = root.path().join("straight");
    let o = fmnist(&run(&straight));
    assert!(o.status.success(), "{}", stderr(&o));

    let dir = root.path().join("interrupted");
    let mut child = common::spawn_fmnist(&run(&dir));
    let (_, mut rest) = common::read_until(&mut child, "Epoch 2/4");
    common::send_signal(&child, libc::SIGINT);
    let mut tail = String::new();
    std::io::Read::read_to_string(&mut rest, &mut tail).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{tail}");
    assert_eq!(
        RunRecord::read(&dir).unwrap().status,
        RunStatus::Interrupted
    );
    let o = fmnist(&["train", "--resume", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));

    for file in [
        "model.safetensors",
        "best.safetensors",
        "checkpoint.safetensors",
    ] {
        let read = |d: &std::path::Path| std::fs::read(d.join(file)).unwrap();
        assert!(read(&dir) == read(&straight), "{file} differs");
    }
    let (a, b) = (
        fmnist::run::read_history(&dir.join("history.csv")).unwrap(),
        fmnist::run::read_history(&straight.join("history.csv")).unwrap(),
    );
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((x.epoch, x.val, x.test), (y.epoch, y.val, y.test));
        assert!(x.val.is_some() && x.test.is_some());
    }
    let (ra, rb) = (
        RunRecord::read(&dir).unwrap(),
        RunRecord::read(&straight).unwrap(),
    );
    assert_eq!(ra.status, RunStatus::Finished);
    assert_eq!(
        (ra.epochs_done, ra.steps_done, &ra.message, &ra.config),
        (rb.epochs_done, rb.steps_done, &rb.message, &rb.config)
    );
}
