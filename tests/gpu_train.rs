//! The GPU engine against the CPU path, on both operand paths (storage buffers and texture mirrors): one
//! optimizer step on every parameter, deeper and hidden-less models with partial batches, logits, 200
//! steps on real data (test loss within 1e-3), one full real epoch (test accuracy >= 0.83); and the
//! structural gates of the buffer path's step (dispatches, copies, passes, bytes uploaded). Skips
//! without an adapter unless FMNIST_REQUIRE_GPU=1.

mod common;

use std::sync::Arc;

use fmnist::backend::{Backend, CpuBackend, Role};
use fmnist::batches::epoch_order;
use fmnist::check::{TOL_REDUCTION, compare};
use fmnist::config::{AdamConfig, OptimizerConfig, TrainConfig};
use fmnist::data::PIXELS;
use fmnist::evaluate::evaluate;
use fmnist::gpu::GpuBackend;
use fmnist::gpu::plan::Operands;
use fmnist::gpu::selftest;
use fmnist::model::{MlpSpec, glorot_init};
use fmnist::progress::Silent;
use fmnist::train::fit;

const BOTH: [Operands; 2] = [Operands::Buffers, Operands::Textures];

#[test]
fn one_step_matches_cpu_on_every_parameter_atol1e5_rtol1e4() {
    pollster::block_on(async {
        for operands in BOTH {
            let Some(ctx) = common::gpu_or_skip("one step") else {
                return;
            };
            let spec = MlpSpec::fashion(&[128]).unwrap();
            let cases = selftest::one_step_cases(ctx, operands, &spec, 32, 7)
                .await
                .unwrap();
            common::assert_all_pass("one training step", &cases);
        }
    })
}

#[test]
fn deeper_model_with_partial_batches_matches_cpu_atol1e5_rtol1e4() {
    // Odd widths (padding in every layer), two hidden layers, and batches smaller than the capacity.
    for operands in BOTH {
        deeper_model_matches_cpu(operands, &[9, 6]);
    }
}

#[test]
fn model_without_hidden_layers_matches_cpu_atol1e5_rtol1e4() {
    for operands in BOTH {
        deeper_model_matches_cpu(operands, &[]);
    }
}

fn deeper_model_matches_cpu(operands: Operands, hidden: &[usize]) {
    let Some(ctx) = common::gpu_or_skip("deeper model") else {
        return;
    };
    eprintln!("operands: {}, hidden {hidden:?}", operands.name());
    let spec = MlpSpec::new(13, hidden, 5).unwrap();
    let params = glorot_init(&spec, 3);
    let adam = AdamConfig::default();
    let cap = 8;
    let mut gpu =
        GpuBackend::with_operands(ctx, operands, spec.clone(), params.clone(), adam, cap).unwrap();
    let mut cpu = CpuBackend::new(spec.clone(), params, adam, cap);
    let split = Arc::new(selftest::random_split(25, spec.inputs, spec.outputs, 4));
    let order = epoch_order(split.len(), 4, 0, true);
    for b in [&mut gpu as &mut dyn Backend, &mut cpu] {
        b.attach(Role::Train, &split).unwrap();
        b.set_order(&order).unwrap();
        let mut start = 0;
        for rows in [8, 3, 8, 1, 5] {
            b.train_step(start, rows).unwrap();
            start += rows;
        }
    }
    let (gs, cs) = (gpu.take_stats().unwrap(), cpu.take_stats().unwrap());
    assert_eq!(
        (gs.samples, gs.steps, gs.correct),
        (cs.samples, cs.steps, cs.correct)
    );
    assert!((gs.loss_sum - cs.loss_sum).abs() < 1e-4, "{gs:?} vs {cs:?}");
    let c = compare(
        &gpu.params().unwrap(),
        &cpu.params().unwrap(),
        TOL_REDUCTION,
    );
    assert!(c.pass(), "params after 5 steps: {}", c.describe());
    let (x, _) = selftest::random_batch(11, spec.inputs, spec.outputs, 99);
    let (mut gl, mut cl) = (vec![f32::NAN; 11 * 5], vec![0.0; 11 * 5]);
    gpu.logits(&x, 11, &mut gl).unwrap();
    cpu.logits(&x, 11, &mut cl).unwrap();
    let c = compare(&gl, &cl, TOL_REDUCTION);
    assert!(c.pass(), "logits: {}", c.describe());
    // The same for samples the device reads from an attached split.
    let (mut gl, mut cl) = (vec![f32::NAN; 7 * 5], vec![0.0; 7 * 5]);
    for b in [&mut gpu as &mut dyn Backend, &mut cpu] {
        b.attach(Role::Eval, &split).unwrap();
    }
    gpu.eval_logits(13, 7, &mut gl).unwrap();
    cpu.eval_logits(13, 7, &mut cl).unwrap();
    let c = compare(&gl, &cl, TOL_REDUCTION);
    assert!(c.pass(), "eval logits: {}", c.describe());
}

#[test]
fn params_cross_the_boundary_unchanged_and_bad_batches_are_errors() {
    let Some(ctx) = common::gpu_or_skip("params round trip") else {
        return;
    };
    let err = gpu_err(|| {
        GpuBackend::with_context(
            common::gpu_or_skip("params round trip").unwrap(),
            MlpSpec::fashion(&[128]).unwrap(),
            vec![0.0; 3],
            AdamConfig::default(),
            32,
        )
    });
    assert!(err.contains("parameter vector"), "{err}");
    let spec = MlpSpec::fashion(&[128]).unwrap();
    let params = glorot_init(&spec, 1);
    let mut gpu =
        GpuBackend::with_context(ctx, spec.clone(), params.clone(), AdamConfig::default(), 32)
            .unwrap();
    assert_eq!(gpu.params().unwrap(), params);
    let mut split = selftest::random_split(40, PIXELS, 10, 1);
    let err = gpu.set_order(&[0, 1]).unwrap_err();
    assert!(err.to_string().contains("before a training split"), "{err}");
    gpu.attach(Role::Train, &Arc::new(split.clone())).unwrap();
    let err = gpu.set_order(&[0, 40]).unwrap_err();
    assert!(err.to_string().contains("past the training split"), "{err}");
    gpu.set_order(&(0..40).collect::<Vec<_>>()).unwrap();
    let err = gpu.train_step(0, 33).unwrap_err();
    assert!(err.to_string().contains("does not fit"), "{err}");
    let err = gpu.train_step(20, 32).unwrap_err();
    assert!(err.to_string().contains("past the 40"), "{err}");
    split.labels[3] = 10;
    let err = gpu.attach(Role::Train, &Arc::new(split)).unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    assert_eq!(gpu.steps_done(), 0);
}

fn gpu_err<T>(f: impl FnOnce() -> anyhow::Result<T>) -> String {
    match f() {
        Ok(_) => panic!("expected an error"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn two_hundred_steps_on_real_data_match_cpu_test_loss_within_1e3() {
    for operands in BOTH {
        two_hundred_steps(operands);
    }
}

fn two_hundred_steps(operands: Operands) {
    let data = match fmnist::data::locate_and_load(None) {
        Ok(d) => d,
        Err(e) => {
            assert!(
                !common::require_gpu(),
                "FMNIST_REQUIRE_GPU=1 but no data: {e:#}"
            );
            println!("skipped: no data ({e:#})");
            return;
        }
    };
    let Some(ctx) = common::gpu_or_skip("200 steps") else {
        return;
    };
    eprintln!("operands: {}", operands.name());
    let spec = MlpSpec::fashion(&[128]).unwrap();
    let params = glorot_init(&spec, 5);
    let adam = AdamConfig::default();
    let mut gpu =
        GpuBackend::with_operands(ctx, operands, spec.clone(), params.clone(), adam, 32).unwrap();
    let mut cpu = CpuBackend::new(spec, params, adam, 32);
    let order: Vec<u32> = (0..data.train.len() as u32).collect();
    for b in [&mut gpu as &mut dyn Backend, &mut cpu] {
        b.attach(Role::Train, &data.train).unwrap();
        b.set_order(&order).unwrap();
        for s in 0..200 {
            b.train_step(s * 32, 32).unwrap();
        }
    }
    let (gs, cs) = (gpu.take_stats().unwrap(), cpu.take_stats().unwrap());
    assert!(
        (gs.mean_loss() - cs.mean_loss()).abs() < 1e-3,
        "train loss {gs:?} vs {cs:?}"
    );
    let ge = evaluate(&mut gpu, &data.test).unwrap();
    let ce = evaluate(&mut cpu, &data.test).unwrap();
    eprintln!(
        "test loss gpu {} cpu {}, accuracy gpu {} cpu {}",
        ge.loss, ce.loss, ge.accuracy, ce.accuracy
    );
    assert!(
        (ge.loss - ce.loss).abs() <= 1e-3,
        "test loss gpu {} vs cpu {}",
        ge.loss,
        ce.loss
    );
}

#[test]
fn one_real_epoch_on_the_gpu_reaches_test_accuracy_083() {
    for operands in BOTH {
        one_real_epoch(operands);
    }
}

fn one_real_epoch(operands: Operands) {
    let data = match fmnist::data::locate_and_load(None) {
        Ok(d) => d,
        Err(e) => {
            assert!(
                !common::require_gpu(),
                "FMNIST_REQUIRE_GPU=1 but no data: {e:#}"
            );
            println!("skipped: no data ({e:#})");
            return;
        }
    };
    let Some(ctx) = common::gpu_or_skip("one epoch") else {
        return;
    };
    let cfg = TrainConfig {
        epochs: 1,
        ..TrainConfig::default()
    };
    let spec = MlpSpec::fashion(&cfg.hidden).unwrap();
    let params = glorot_init(&spec, cfg.seed);
    let mut gpu =
        GpuBackend::with_operands(ctx, operands, spec, params, cfg.optimizer, cfg.batch_size)
            .unwrap();
    let result = fit(&mut gpu, &data.train, &data.test, &cfg, &mut Silent).unwrap();
    let r = &result.history[0];
    eprintln!("one epoch on the GPU ({}): {r:?}", operands.name());
    assert_eq!(result.steps, 1875);
    let accuracy = result.final_eval.accuracy;
    assert!(accuracy >= 0.83, "test accuracy {accuracy} < 0.83");
}

/// The tutorial's model on `operands`, and the real data; `None` (skipped) without an adapter.
fn tutorial_model_on(operands: Operands) -> Option<(GpuBackend, &'static fmnist::data::Dataset)> {
    let data = common::dataset();
    let ctx = common::gpu_or_skip("structure")?;
    let spec = MlpSpec::fashion(&[128]).unwrap();
    let params = glorot_init(&spec, 1);
    let gpu =
        GpuBackend::with_operands(ctx, operands, spec, params, AdamConfig::default(), 32).unwrap();
    Some((gpu, data))
}

#[test]
fn buffer_path_step_is_at_most_4_dispatches_0_copies_1_pass_and_1024_bytes_up() {
    let Some((mut gpu, data)) = tutorial_model_on(Operands::Buffers) else {
        return;
    };
    fmnist::gpu::bench::warm_up(&mut gpu, &data.train, 32, 32).unwrap();
    let (report, _) = fmnist::gpu::bench::profile_steps(&mut gpu, &data.train, 32, 96).unwrap();
    let report = report.expect("the GPU has a profile");
    let s = report.structure;
    eprintln!("{}", report.table());
    assert_eq!(s.steps, 96, "{s:?}");
    let (d, c, p, u, _) = s.per_step();
    assert!(d <= 4.0, "{} dispatches per step > 4", d);
    assert_eq!(c, 0.0, "copies on the buffer path: {s:?}");
    assert!(p <= 1.0, "{p} passes per step > 1");
    assert!(u <= 1024.0, "{u} bytes uploaded per step > 1024");
    assert!(report.table().contains("Per step: "), "{}", report.table());
    // The first layer's forward keeps a real GPU busy.
    let sites = gpu.step_sites();
    let (name, inv) = &sites[0];
    assert!(name.contains("forward_gather"), "{sites:?}");
    assert!(*inv >= 2048, "{name}: {inv} invocations < 2048");
    assert!(
        !gpu.writes_flush_points(),
        "flush points are the texture path's"
    );
}

#[test]
fn texture_path_counts_its_copies_and_passes() {
    let Some((mut gpu, data)) = tutorial_model_on(Operands::Textures) else {
        return;
    };
    let (report, _) = fmnist::gpu::bench::profile_steps(&mut gpu, &data.train, 32, 32).unwrap();
    let s = report.expect("the GPU has a profile").structure;
    // forward_gather_tex (L1 forward from the images texture), dense_tail_tex (with Adam on W2, b2),
    // grad_update_gather_tex (with Adam on W1, b1); mirror copies of act1 (read by the tail), dZ1, and
    // after the step the parameter atlas, m, v and W2|b2 (the tail's). No gather, no x, no x copy.
    assert_eq!(s.dispatches, 3 * 32, "{s:?}");
    assert_eq!(s.copies, 6 * 32, "{s:?}");
    assert_eq!(s.passes, 3 * 32, "{s:?}");
    let sites = gpu.step_sites();
    let names: Vec<&str> = sites.iter().map(|(n, _)| n.as_str()).collect();
    for kernel in [
        "forward_gather_tex",
        "dense_tail_tex",
        "grad_update_gather_tex",
    ] {
        assert!(names.iter().any(|n| n.contains(kernel)), "{names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("gather")), "{names:?}");
    // The texture path's flush points, wherever timestamps can be written inside a pass.
    assert_eq!(
        gpu.writes_flush_points(),
        gpu.context().timestamps_inside_passes
    );
}

/// Issue 9: a GPU run stopped mid-epoch, saved as a run checkpoint and continued on a fresh backend
/// ends where the same run uninterrupted does (Adam's m, v and step count restored).
#[test]
fn a_run_resumed_from_its_checkpoint_on_a_fresh_gpu_backend_matches_atol1e5_rtol1e4() {
    for operands in BOTH {
        resumed_run_matches(operands);
    }
}

fn resumed_run_matches(operands: Operands) {
    use fmnist::resume::{self, RunCheckpoint};
    use fmnist::train::{FitData, FitHooks, FitPosition, NoHooks, fit_from};
    let data = common::dataset();
    let Some(ctx) = common::gpu_or_skip("resume") else {
        return;
    };
    let train = Arc::new(data.train.truncated(1000));
    let test = Arc::new(data.test.truncated(1000));
    let cfg = TrainConfig {
        epochs: 2,
        limit_train: Some(1000),
        ..TrainConfig::default()
    };
    let spec = MlpSpec::fashion(&cfg.hidden).unwrap();
    let params = glorot_init(&spec, cfg.seed);
    /// Stops at the `after + 1`-th question (1 before epoch 1, 31 inside it, 1 before epoch 2, ...).
    struct StopAt(std::cell::Cell<usize>, usize);
    impl FitHooks for StopAt {
        fn should_stop(&self) -> bool {
            self.0.set(self.0.get() + 1);
            self.0.get() > self.1
        }
    }
    let mut first =
        GpuBackend::with_operands(ctx, operands, spec.clone(), params, cfg.optimizer, 32).unwrap();
    let mut stop = StopAt(Default::default(), 1 + 31 + 1 + 6);
    let fit = |b: &mut GpuBackend, start: FitPosition, hooks: &mut dyn FitHooks| {
        let splits = FitData {
            train: &train,
            validation: None,
            test: &test,
        };
        fit_from(b, splits, &cfg, &mut Silent, start, hooks).unwrap()
    };
    let stopped = fit(&mut first, FitPosition::default(), &mut stop);
    assert_eq!((stopped.position.epoch, stopped.position.sample), (1, 224));
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
        class_names: Default::default(),
    };
    assert_eq!(saved.optimizer.steps, 32 + 7);
    assert!(saved.optimizer.v.iter().any(|&v| v > 0.0));
    resume::save(&path, &saved).unwrap();
    // The first backend goes on: the uninterrupted run.
    fit(&mut first, stopped.position, &mut NoHooks);

    let ck = resume::load(&path).unwrap();
    let Some(ctx) = common::gpu_or_skip("resume (second backend)") else {
        return;
    };
    let mut resumed =
        GpuBackend::with_operands(ctx, operands, spec, ck.params, cfg.optimizer, 32).unwrap();
    resumed.set_optimizer_state(&ck.optimizer).unwrap();
    assert_eq!(
        resumed.optimizer_state().unwrap(),
        saved.optimizer,
        "the optimizer state reads back as it was set"
    );
    fit(&mut resumed, ck.position, &mut NoHooks);
    assert_eq!(resumed.steps_done(), first.steps_done());
    let c = compare(
        &resumed.params().unwrap(),
        &first.params().unwrap(),
        TOL_REDUCTION,
    );
    eprintln!("resumed vs uninterrupted: {}", c.describe());
    assert!(c.pass(), "{}", c.describe());
}

#[test]
fn a_buffer_the_device_cannot_hold_is_one_error_naming_it_not_a_panic() {
    let data = common::dataset();
    let Some(ctx) = common::gpu_or_skip("too large") else {
        return;
    };
    let spec = MlpSpec::fashion(&[128]).unwrap();
    let params = glorot_init(&spec, 1);
    // 40 million rows: every per-batch buffer is tens of GB, past any adapter's buffer limit.
    let mut gpu = GpuBackend::with_operands(
        ctx,
        Operands::Buffers,
        spec,
        params,
        AdamConfig::default(),
        40_000_000,
    )
    .unwrap();
    let err = gpu_err(|| gpu.attach(Role::Train, &data.train));
    eprintln!("{err}");
    assert!(err.starts_with("uploading the training split: "), "{err}");
    assert!(!err.contains('\n'), "one line: {err}");
    assert!(err.contains("(cap, "), "names the buffer: {err}");
}

#[test]
fn a_diverging_loss_stops_gpu_training_on_both_paths() {
    let data = common::dataset();
    for operands in BOTH {
        let Some(ctx) = common::gpu_or_skip("divergence") else {
            return;
        };
        let cfg = TrainConfig {
            epochs: 1,
            max_steps: Some(50),
            optimizer: OptimizerConfig::Adam(AdamConfig {
                learning_rate: 1e30,
                ..AdamConfig::default()
            }),
            ..TrainConfig::default()
        };
        let spec = MlpSpec::fashion(&[16]).unwrap();
        let params = glorot_init(&spec, 5);
        let mut gpu =
            GpuBackend::with_operands(ctx, operands, spec, params, cfg.optimizer, 32).unwrap();
        let err = gpu_err(|| fit(&mut gpu, &data.train, &data.test, &cfg, &mut Silent));
        assert!(err.contains("diverged"), "{}: {err}", operands.name());
    }
}

#[test]
fn the_device_opens_and_a_buffer_reads_back_through_the_futures_a_browser_awaits() {
    // What the browser build awaits instead of blocking (GpuContext::open_async,
    // buffers::download_f32_async), driven here by a native executor.
    use fmnist::gpu::buffers;
    use fmnist::gpu::context::{GpuContext, Needs};
    if common::gpu_or_skip("async readback").is_none() {
        return;
    }
    let name = common::adapter_name();
    let opened = GpuContext::open_async(name.as_deref(), Needs::default(), "");
    let ctx = pollster::block_on(opened).unwrap();
    let data: Vec<f32> = (0..1000).map(|i| i as f32 * 0.5 - 7.0).collect();
    let src = buffers::storage_init(&ctx.device, "async src", bytemuck::cast_slice(&data));
    let staging = buffers::readback(&ctx.device, "async staging", 4 * 996);
    let mut out = vec![f32::NAN; 996];
    let read = buffers::download_f32_async(&ctx.device, &ctx.queue, &src, 16, &staging, &mut out);
    pollster::block_on(read).unwrap();
    assert!(
        out == data[4..],
        "the readback returns the buffer's floats from the offset on"
    );
}

#[test]
fn the_readbacks_a_browser_awaits_give_what_the_blocking_methods_give() {
    // take_stats_async, params_async, optimizer_state_async, eval_logits_async and logits_async are
    // what the trait's methods block on natively, and evaluate_gpu_async what a browser evaluates
    // with: driven by an executor here, they must agree with a second engine read through the trait.
    use fmnist::backend::Role;
    use std::sync::Arc;
    let data = common::dataset();
    let train = Arc::new(data.train.truncated(320));
    let test = Arc::new(data.test.truncated(100));
    let spec = MlpSpec::fashion(&[32]).unwrap();
    let params = glorot_init(&spec, 4);
    let mut engines = Vec::new();
    for _ in 0..2 {
        let Some(ctx) = common::gpu_or_skip("async readbacks") else {
            return;
        };
        let mut gpu =
            GpuBackend::with_context(ctx, spec.clone(), params.clone(), AdamConfig::default(), 32)
                .unwrap();
        gpu.attach(Role::Train, &train).unwrap();
        gpu.set_order(&(0..320).collect::<Vec<u32>>()).unwrap();
        for s in 0..10 {
            gpu.train_step(s * 32, 32).unwrap();
        }
        gpu.attach(Role::Eval, &test).unwrap();
        engines.push(gpu);
    }
    let (mut a, mut b) = (engines.remove(0), engines.remove(0));
    let mut logits = (vec![0.0f32; 1000], vec![0.0f32; 1000]);
    let x = vec![0.5f32; 2 * 784];
    let mut host = (vec![0.0f32; 20], vec![0.0f32; 20]);
    let awaited = pollster::block_on(async {
        let stats = a.take_stats_async().await.unwrap();
        a.eval_logits_async(0, 100, &mut logits.0).await.unwrap();
        a.logits_async(&x, 2, &mut host.0).await.unwrap();
        let p = a.params_async().await.unwrap();
        let o = a.optimizer_state_async().await.unwrap();
        let e = fmnist::evaluate::evaluate_gpu_async(&mut a, &test)
            .await
            .unwrap();
        (stats, p, o, e)
    });
    let stats = b.take_stats().unwrap();
    b.eval_logits(0, 100, &mut logits.1).unwrap();
    b.logits(&x, 2, &mut host.1).unwrap();
    assert_eq!(awaited.0, stats);
    assert_eq!(stats.samples, 320);
    assert!(awaited.1 == b.params().unwrap());
    assert_eq!(awaited.2, b.optimizer_state().unwrap());
    assert!(logits.0 == logits.1 && host.0 == host.1);
    let e = fmnist::evaluate::evaluate(&mut b, &test).unwrap();
    assert_eq!((awaited.3.loss, awaited.3.accuracy), (e.loss, e.accuracy));
    assert!(awaited.3.probs == e.probs);
}

#[test]
fn the_fit_loop_a_browser_awaits_trains_as_the_blocking_one() {
    // fit_engine on a GPU engine (its readbacks awaited) and fit_from (blocking on them) run one loop: with a
    // validation split and early stopping they end on the same epoch with the same weights.
    use fmnist::config::EarlyStopping;
    use fmnist::train::{FitData, FitEnd, FitPosition, NoHooks, fit_engine, fit_from};
    use std::sync::Arc;
    let data = common::dataset();
    let (train, val) = data.train.truncated(1200).split_validation(0.25).unwrap();
    let (train, val) = (Arc::new(train), Arc::new(val));
    let cfg = TrainConfig {
        epochs: 4,
        validation_split: Some(0.25),
        early_stopping: Some(EarlyStopping {
            patience: 1,
            min_delta: 10.0,
        }),
        ..TrainConfig::default()
    };
    let spec = MlpSpec::fashion(&[32]).unwrap();
    let params = glorot_init(&spec, 8);
    let splits = FitData {
        train: &train,
        validation: Some(&val),
        test: &data.test,
    };
    let mut outcomes = Vec::new();
    for awaited in [true, false] {
        let Some(ctx) = common::gpu_or_skip("async fit") else {
            return;
        };
        let mut gpu =
            GpuBackend::with_context(ctx, spec.clone(), params.clone(), cfg.optimizer, 32).unwrap();
        let start = FitPosition::default();
        let out = if awaited {
            let (progress, hooks) = (&mut Silent, &mut NoHooks);
            pollster::block_on(fit_engine(&mut gpu, splits, &cfg, progress, start, hooks)).unwrap()
        } else {
            fit_from(&mut gpu, splits, &cfg, &mut Silent, start, &mut NoHooks).unwrap()
        };
        assert!(matches!(out.end, FitEnd::StoppedEarly));
        outcomes.push((
            out.position.history.clone(),
            out.restored_epoch,
            gpu.params().unwrap(),
        ));
    }
    let mut h = outcomes[0].0.clone();
    for r in &mut h {
        r.seconds = 0.0;
    }
    let mut g = outcomes[1].0.clone();
    for r in &mut g {
        r.seconds = 0.0;
    }
    assert_eq!(h, g);
    assert_eq!(outcomes[0].1, Some(1));
    assert_eq!(outcomes[0].1, outcomes[1].1);
    assert!(outcomes[0].2 == outcomes[1].2);
}
