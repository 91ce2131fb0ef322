//! Issue 12: dropout (`train --dropout RATE`) on the real data. The same seed draws the same masks on
//! the CPU and the GPU (both operand paths), so three steps at rate 0.5 give the same weights within
//! the kernel tolerances; evaluation never drops; one epoch at 0.2 reaches test accuracy 0.80 on both
//! devices; a run interrupted and resumed draws the masks it would have drawn.

mod common;

use std::sync::Arc;

use common::{dataset, fmnist, number_after, stderr, stdout};
use fmnist::backend::{Backend, CpuBackend, Role};
use fmnist::batches::epoch_order;
use fmnist::check::{TOL_REDUCTION, compare};
use fmnist::config::{OptimizerConfig, TrainConfig};
use fmnist::cpu::Dropout;
use fmnist::evaluate::evaluate;
use fmnist::gpu::GpuBackend;
use fmnist::gpu::plan::Operands;
use fmnist::model::{MlpSpec, glorot_init};
use fmnist::progress::Silent;
use fmnist::train::{FitData, FitHooks, FitPosition, NoHooks, fit_from};

/// Three steps of 32 real images (a shuffled order) with `dropout`, from the same weights.
fn three_steps(backend: &mut dyn Backend, dropout: &Dropout) -> Vec<f32> {
    let train = Arc::new(dataset().train.truncated(96));
    backend.set_dropout(dropout).unwrap();
    backend.attach(Role::Train, &train).unwrap();
    backend.set_order(&epoch_order(96, 3, 0, true)).unwrap();
    for s in 0..3 {
        backend.train_step(s * 32, 32).unwrap();
    }
    backend.take_stats().unwrap();
    backend.params().unwrap()
}

#[test]
fn the_same_seed_gives_the_same_weights_on_the_cpu_and_the_gpu_at_rate_05_atol1e5_rtol1e4() {
    for hidden in [vec![128], vec![64, 32]] {
        let spec = MlpSpec::fashion(&hidden).unwrap();
        let params = glorot_init(&spec, 11);
        let dropout = Dropout::new(&vec![0.5; hidden.len()], 42);
        let opt = OptimizerConfig::default();
        let mut cpu = CpuBackend::new(spec.clone(), params.clone(), opt, 32);
        let want = three_steps(&mut cpu, &dropout);
        // Dropout changes the step: without it the weights differ.
        let mut plain = CpuBackend::new(spec.clone(), params.clone(), opt, 32);
        let without = three_steps(&mut plain, &Dropout::default());
        assert!(!compare(&without, &want, TOL_REDUCTION).pass());
        for operands in [Operands::Buffers, Operands::Textures] {
            let Some(ctx) = common::gpu_or_skip("dropout cpu vs gpu") else {
                return;
            };
            let mut gpu =
                GpuBackend::with_operands(ctx, operands, spec.clone(), params.clone(), opt, 32)
                    .unwrap();
            let got = three_steps(&mut gpu, &dropout);
            let c = compare(&got, &want, TOL_REDUCTION);
            eprintln!("{hidden:?} {}: {}", operands.name(), c.describe());
            assert!(c.pass(), "{hidden:?} {}: {}", operands.name(), c.describe());
            // Evaluation never drops: the GPU's test scores equal the CPU's on the same weights.
            let test = &dataset().test;
            let mut cpu_eval = CpuBackend::new(spec.clone(), got.clone(), opt, 32);
            let (g, c) = (
                evaluate(&mut gpu, test).unwrap(),
                evaluate(&mut cpu_eval, test).unwrap(),
            );
            assert!((g.loss - c.loss).abs() < 1e-5, "{} vs {}", g.loss, c.loss);
        }
    }
}

#[test]
fn one_epoch_with_dropout_02_reaches_080_on_both_devices() {
    let mut devices = vec!["cpu"];
    if common::gpu_or_skip("one epoch with dropout").is_some() {
        devices.push("gpu");
    }
    for device in devices {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("run");
        let o = fmnist(&[
            "train",
            "--device",
            device,
            "--epochs",
            "1",
            "--dropout",
            "0.2",
            "--out",
            dir.to_str().unwrap(),
        ]);
        let text = stdout(&o);
        assert!(o.status.success(), "{device}: {text}\n{}", stderr(&o));
        assert!(text.contains("- seed 42 - dropout 0.2"), "{text}");
        let accuracy = number_after(&text, "Test accuracy:");
        eprintln!("{device}: one epoch with dropout 0.2: test accuracy {accuracy}");
        assert!(accuracy >= 0.80, "{device}: {accuracy} < 0.80");
        let record = fmnist::run::RunRecord::read(&dir).unwrap();
        assert_eq!(record.config.dropout, vec![0.2]);
    }
}

/// Stops (as Ctrl-C would) at the `after + 1`-th question.
struct StopAfter(std::cell::Cell<usize>, usize);
impl FitHooks for StopAfter {
    fn should_stop(&self) -> bool {
        self.0.set(self.0.get() + 1);
        self.0.get() > self.1
    }
}

#[test]
fn a_run_with_dropout_resumed_mid_epoch_draws_the_masks_it_would_have_drawn() {
    let train = Arc::new(dataset().train.truncated(1000));
    let cfg = TrainConfig {
        epochs: 2,
        dropout: vec![0.3],
        ..TrainConfig::default()
    };
    let spec = MlpSpec::fashion(&cfg.hidden).unwrap();
    let dropout = Dropout::new(&cfg.dropout_rates().unwrap(), cfg.seed);
    let backend = |p: Vec<f32>| {
        let mut b = CpuBackend::new(spec.clone(), p, cfg.optimizer, 32);
        b.set_dropout(&dropout).unwrap();
        b
    };
    let data = FitData {
        train: &train,
        validation: None,
        test: &dataset().test,
    };
    let params = glorot_init(&spec, cfg.seed);
    let mut whole = backend(params.clone());
    fit_from(
        &mut whole,
        data,
        &cfg,
        &mut Silent,
        FitPosition::default(),
        &mut NoHooks,
    )
    .unwrap();
    let mut first = backend(params);
    // 1 question before epoch 1, 31 inside it, 1 before epoch 2, then 9 steps into it.
    let mut stop = StopAfter(Default::default(), 1 + 31 + 1 + 9);
    let stopped = fit_from(
        &mut first,
        data,
        &cfg,
        &mut Silent,
        FitPosition::default(),
        &mut stop,
    )
    .unwrap();
    assert_eq!(stopped.position.epoch, 1);
    let mut resumed = backend(first.params().unwrap());
    resumed
        .set_optimizer_state(&first.optimizer_state().unwrap())
        .unwrap();
    fit_from(
        &mut resumed,
        data,
        &cfg,
        &mut Silent,
        stopped.position,
        &mut NoHooks,
    )
    .unwrap();
    assert!(
        resumed.params().unwrap() == whole.params().unwrap(),
        "the resumed run's weights differ from the uninterrupted one's"
    );
}

#[test]
fn dropout_flags_are_checked() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--dropout", "1"],
            "--dropout 1: a rate must lie in [0, 1)",
        ),
        (
            &["--dropout", "-0.1"],
            "--dropout -0.1: a rate must lie in [0, 1)",
        ),
        (
            &["--dropout", "0.2,0.3"],
            "--dropout: 2 rates for 1 hidden layers",
        ),
        (&["--dropout", "half"], "--dropout"),
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
        assert!(!out.exists(), "{flags:?}: a refused run leaves no folder");
    }
}
