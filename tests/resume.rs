//! Issue 9, item 1: runs survive Ctrl-C, SIGTERM and kills. A checkpoint and history.csv are written
//! after every epoch; SIGINT finishes the step, saves and exits 130 with the `--resume` command;
//! SIGKILL loses at most the epoch in progress; a resumed run ends byte-identical to the same run
//! uninterrupted on the CPU path; a finished run says so; flags that would change a run are refused.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{dataset, fmnist, read_until, send_signal, spawn_fmnist, stderr, stdout};
use fmnist::backend::{Backend, CpuBackend};
use fmnist::config::{OptimizerConfig, RmspropConfig, SgdConfig, TrainConfig};
use fmnist::model::{MlpSpec, glorot_init};
use fmnist::progress::Silent;
use fmnist::resume::{self, RunCheckpoint};
use fmnist::run::{RunRecord, RunStatus, read_history};
use fmnist::train::{FitData, FitEnd, FitHooks, FitPosition, NoHooks, fit_from};

/// 3 epochs of 20000 samples on the CPU path: long enough (625 steps an epoch) that a signal sent when
/// `Epoch 2/3` is printed lands in epoch 2, short enough for a test.
const RUN: [&str; 8] = [
    "train",
    "--device",
    "cpu",
    "--limit-train",
    "20000",
    "--epochs",
    "3",
    "--out",
];

fn train(dir: &Path) -> std::process::Output {
    let mut args = RUN.to_vec();
    args.push(dir.to_str().unwrap());
    fmnist(&args)
}

/// The same run uninterrupted.
fn reference(root: &Path) -> PathBuf {
    let dir = root.join("reference");
    let o = train(&dir);
    assert!(o.status.success(), "{}", stderr(&o));
    dir
}

/// Starts the run in `dir` and sends `signal` as soon as epoch 2 starts; returns its exit status and
/// everything it printed.
fn signal_during_epoch_2(dir: &Path, signal: i32) -> (std::process::ExitStatus, String) {
    let mut args = RUN.to_vec();
    args.push(dir.to_str().unwrap());
    let mut child = spawn_fmnist(&args);
    let (mut lines, mut rest) = read_until(&mut child, "Epoch 2/3");
    send_signal(&child, signal);
    let mut tail = String::new();
    std::io::Read::read_to_string(&mut rest, &mut tail).unwrap();
    lines.push(tail);
    let status = child.wait().unwrap();
    (status, lines.concat())
}

fn resume_and_compare(dir: &Path, reference: &Path) -> String {
    let o = fmnist(&["train", "--resume", dir.to_str().unwrap()]);
    let text = stdout(&o);
    assert!(o.status.success(), "{text}\n{}", stderr(&o));
    let record = RunRecord::read(dir).unwrap();
    assert_eq!(record.status, RunStatus::Finished);
    let model = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
    assert!(
        model(dir) == model(reference),
        "the resumed model differs from the uninterrupted one"
    );
    let (a, b) = (
        read_history(&dir.join("history.csv")).unwrap(),
        read_history(&reference.join("history.csv")).unwrap(),
    );
    assert_eq!(a.len(), 3);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (x.epoch, x.accuracy, x.val, x.test),
            (y.epoch, y.accuracy, y.val, y.test)
        );
        assert!((x.loss - y.loss).abs() <= 2e-6, "{x:?} vs {y:?}");
    }
    text
}

#[test]
fn sigint_in_epoch_2_saves_and_the_resumed_run_ends_byte_identical() {
    let root = tempfile::tempdir().unwrap();
    let reference = reference(root.path());
    let dir = root.path().join("interrupted");
    let (status, text) = signal_during_epoch_2(&dir, libc::SIGINT);
    assert_eq!(status.code(), Some(130), "{text}");
    let resume_line = format!("train --resume {}", dir.display());
    assert!(
        text.contains("Interrupted: stopped by SIGINT in epoch 2/3") && text.contains(&resume_line),
        "{text}"
    );
    let record = RunRecord::read(&dir).unwrap();
    assert_eq!(record.status, RunStatus::Interrupted);
    let ck = resume::load(&dir.join("checkpoint.safetensors")).unwrap();
    assert_eq!(ck.position.epoch, 1, "stopped inside epoch 2");
    assert!(ck.position.sample > 0 && ck.position.sample < 20000);
    assert_eq!(read_history(&dir.join("history.csv")).unwrap().len(), 1);
    assert!(dir.join("model.safetensors").is_file());
    resume_and_compare(&dir, &reference);
}

#[test]
fn sigkill_in_epoch_2_loses_only_that_epoch_and_the_resumed_run_ends_byte_identical() {
    let root = tempfile::tempdir().unwrap();
    let reference = reference(root.path());
    let dir = root.path().join("killed");
    let (status, text) = signal_during_epoch_2(&dir, libc::SIGKILL);
    assert_eq!(status.code(), None, "killed by the signal: {text}");
    // The folder still says the run was under way, and holds epoch 1.
    assert_eq!(RunRecord::read(&dir).unwrap().status, RunStatus::Running);
    assert_eq!(read_history(&dir.join("history.csv")).unwrap().len(), 1);
    let ck = resume::load(&dir.join("checkpoint.safetensors")).unwrap();
    assert_eq!((ck.position.epoch, ck.position.sample), (1, 0));
    let text = resume_and_compare(&dir, &reference);
    assert!(
        text.contains("checkpoint.safetensors after epoch 1 (625 steps)"),
        "{text}"
    );
}

#[test]
fn sigterm_stops_like_the_first_sigint_with_exit_code_143() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("terminated");
    let (status, text) = signal_during_epoch_2(&dir, libc::SIGTERM);
    assert_eq!(status.code(), Some(143), "{text}");
    assert!(text.contains("stopped by SIGTERM"), "{text}");
    assert_eq!(
        RunRecord::read(&dir).unwrap().status,
        RunStatus::Interrupted
    );
}

#[test]
fn every_epoch_rewrites_the_checkpoint_and_history_and_a_finished_run_is_left_alone() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    let o = fmnist(&[
        "train",
        "--device",
        "cpu",
        "--limit-train",
        "2000",
        "--epochs",
        "2",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ck = resume::load(&dir.join("checkpoint.safetensors")).unwrap();
    assert_eq!((ck.position.epoch, ck.optimizer.steps), (2, 126));
    assert_eq!(ck.position.history.len(), 2);
    let before = std::fs::read(dir.join("model.safetensors")).unwrap();
    let o = fmnist(&["train", "--resume", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("the run is finished (2 of 2 epochs, 126 steps); nothing to do"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        std::fs::read(dir.join("model.safetensors")).unwrap(),
        before
    );
    for flag in [
        &["--epochs", "3"][..],
        &["--lr", "0.01"],
        &["--seed", "1"],
        &["--batch-size", "64"],
        &["--init", "x.safetensors"],
    ] {
        let mut args = vec!["train", "--resume", dir.to_str().unwrap()];
        args.extend_from_slice(flag);
        let o = fmnist(&args);
        assert!(
            !o.status.success() && stderr(&o).contains("cannot be used with"),
            "{flag:?}: {}",
            stderr(&o)
        );
    }
}

/// Says stop from the call after the `after`-th on.
struct StopAfter {
    calls: std::cell::Cell<usize>,
    after: usize,
}

impl FitHooks for StopAfter {
    fn should_stop(&self) -> bool {
        self.calls.set(self.calls.get() + 1);
        self.calls.get() > self.after
    }
}

#[test]
fn a_fit_stopped_mid_epoch_and_continued_from_its_saved_checkpoint_is_bit_identical() {
    // Every optimizer's state (Adam's moments, SGD's momentum, RMSprop's mean square and momentum)
    // goes through the checkpoint.
    for optimizer in [
        OptimizerConfig::default(),
        OptimizerConfig::Sgd(SgdConfig {
            momentum: 0.9,
            nesterov: true,
            ..SgdConfig::default()
        }),
        OptimizerConfig::Rmsprop(RmspropConfig {
            momentum: 0.5,
            ..RmspropConfig::default()
        }),
    ] {
        stopped_and_resumed_is_bit_identical(optimizer);
    }
}

fn stopped_and_resumed_is_bit_identical(optimizer: OptimizerConfig) {
    let data = dataset();
    let train = Arc::new(data.train.truncated(2000));
    let cfg = TrainConfig {
        epochs: 2,
        limit_train: Some(2000),
        optimizer,
        ..TrainConfig::default()
    };
    let spec = MlpSpec::fashion(&cfg.hidden).unwrap();
    let params = glorot_init(&spec, cfg.seed);
    let new_backend = |p: Vec<f32>| CpuBackend::new(spec.clone(), p, cfg.optimizer, cfg.batch_size);
    let fit = |b: &mut CpuBackend, start: FitPosition, hooks: &mut dyn FitHooks| {
        let splits = FitData {
            train: &train,
            validation: None,
            test: &data.test,
        };
        fit_from(b, splits, &cfg, &mut Silent, start, hooks).unwrap()
    };

    let mut whole = new_backend(params.clone());
    let done = fit(&mut whole, FitPosition::default(), &mut NoHooks);
    assert!(matches!(done.end, FitEnd::Finished));

    // `should_stop` is asked before each epoch and between two steps of one: once before epoch 1,
    // 62 times inside its 63 steps, once before epoch 2, then after each step: the 74th call comes
    // after step 10 of epoch 2.
    let mut first = new_backend(params);
    let mut stop = StopAfter {
        calls: Default::default(),
        after: 73,
    };
    let stopped = fit(&mut first, FitPosition::default(), &mut stop);
    assert!(matches!(stopped.end, FitEnd::Interrupted));
    assert_eq!((stopped.position.epoch, stopped.position.sample), (1, 320));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    let saved = RunCheckpoint {
        spec: spec.clone(),
        params: first.params().unwrap(),
        optimizer: first.optimizer_state().unwrap(),
        position: stopped.position.clone(),
        seed: cfg.seed,
        shuffle: cfg.shuffle,
        train_samples: train.len(),
        class_names: fmnist::data::ClassNames::from_list("0,1,2,3,4,5,6,7,8,9").unwrap(),
    };
    assert_eq!(saved.optimizer.kind, optimizer.kind());
    resume::save(&path, &saved).unwrap();
    let loaded = resume::load(&path).unwrap();
    let mut expected = saved.clone();
    expected.position.history[0].seconds = 0.0;
    assert_eq!(loaded.optimizer.kind, expected.optimizer.kind);
    assert!(
        loaded.optimizer.m == expected.optimizer.m,
        "m of {optimizer:?}"
    );
    assert!(
        loaded.optimizer.v == expected.optimizer.v,
        "v of {optimizer:?}"
    );
    assert_eq!(loaded.position, expected.position, "{optimizer:?}");
    assert!(
        loaded == expected,
        "the checkpoint reads back bit for bit, timings aside"
    );
    loaded.check_fits(&cfg, train.len()).unwrap();
    // Another optimizer cannot continue this state.
    let other = TrainConfig {
        optimizer: match optimizer {
            OptimizerConfig::Adam(_) => OptimizerConfig::Sgd(SgdConfig::default()),
            _ => OptimizerConfig::default(),
        },
        ..cfg.clone()
    };
    let err = loaded
        .check_fits(&other, train.len())
        .unwrap_err()
        .to_string();
    assert!(err.contains("the checkpoint holds"), "{err}");

    let mut resumed = new_backend(loaded.params);
    resumed.set_optimizer_state(&loaded.optimizer).unwrap();
    let end = fit(&mut resumed, loaded.position, &mut NoHooks);
    assert!(matches!(end.end, FitEnd::Finished));
    assert_eq!(resumed.steps_done(), whole.steps_done());
    assert!(
        resumed.params().unwrap() == whole.params().unwrap(),
        "the resumed weights differ from the uninterrupted ones"
    );
    assert_eq!(
        resumed.optimizer_state().unwrap(),
        whole.optimizer_state().unwrap()
    );
    assert_eq!(end.position.history.len(), 2);
    assert_eq!(
        end.position.history[1].accuracy,
        done.position.history[1].accuracy
    );
}
