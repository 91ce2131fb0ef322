//! Timing runs shared by `fmnist profile`, `fmnist bench` and benches/epoch.rs: a profiled run of N
//! training steps on any backend, and timed epochs (the real fit loop, streamed batches included) on any
//! backend, so the CPU and GPU paths are measured by the same code. Tested by tests/cli_gpu.rs.

use web_time::Instant;

use anyhow::Result;

use std::sync::Arc;

use crate::backend::{Backend, Role};
use crate::batches::epoch_order;
use crate::config::TrainConfig;
use crate::data::Split;
use crate::metrics::ProfileReport;
use crate::progress::Silent;
use crate::train::fit;

/// Runs `steps` full training steps from step `from` of a fixed shuffle of `split` (cycling). The order
/// handed over is as long as the steps need (at most an epoch's), so a short profile moves the same
/// order bytes per step as training does.
fn run_steps(
    backend: &mut dyn Backend,
    split: &Arc<Split>,
    batch: usize,
    from: usize,
    steps: usize,
) -> Result<()> {
    backend.attach(Role::Train, split)?;
    let per_epoch = (split.len() / batch).clamp(1, (from + steps).max(1));
    let order = epoch_order(split.len(), 1, 0, true);
    backend.set_order(&order[..(per_epoch * batch).min(order.len())])?;
    for s in from..from + steps {
        backend.train_step((s % per_epoch) * batch, batch)?;
    }
    backend.take_stats()?;
    Ok(())
}

/// Untimed steps that compile the pipelines (a new pipeline's first dispatch costs up to ~0.25 s on
/// lavapipe).
pub fn warm_up(
    backend: &mut dyn Backend,
    split: &Arc<Split>,
    batch: usize,
    steps: usize,
) -> Result<()> {
    run_steps(backend, split, batch, 0, steps)
}

/// `steps` profiled training steps; returns the profile (None for a device without one) and the wall
/// seconds per step (profiling included).
pub fn profile_steps(
    backend: &mut dyn Backend,
    split: &Arc<Split>,
    batch: usize,
    steps: usize,
) -> Result<(Option<ProfileReport>, f64)> {
    let profiled = backend.start_profile()?;
    let t = Instant::now();
    run_steps(backend, split, batch, 0, steps)?;
    let secs = t.elapsed().as_secs_f64() / steps.max(1) as f64;
    let report = if profiled {
        backend.profile_report()?
    } else {
        None
    };
    Ok((report, secs))
}

/// What one timed training run measured.
#[derive(Clone, Debug)]
pub struct EpochTiming {
    pub device: String,
    pub seconds_per_epoch: f64,
    pub samples_per_second: f64,
    pub test_accuracy: f64,
}

/// Trains `cfg.epochs` epochs with the real fit loop (evaluation excluded from the timing, which the
/// history keeps per epoch) and reports the mean seconds per epoch.
pub fn time_epochs(
    backend: &mut dyn Backend,
    train: &Arc<Split>,
    test: &Arc<Split>,
    cfg: &TrainConfig,
) -> Result<EpochTiming> {
    let result = fit(backend, train, test, cfg, &mut Silent)?;
    let epochs = result.history.len().max(1) as f64;
    let seconds = result.history.iter().map(|r| r.seconds).sum::<f64>() / epochs;
    let samples = cfg.max_steps.map_or(train.len(), |s| {
        (s * cfg.batch_size).min(train.len() * cfg.epochs)
    }) as f64
        / epochs;
    Ok(EpochTiming {
        device: backend.device_name(),
        seconds_per_epoch: seconds,
        samples_per_second: samples / seconds.max(1e-9),
        test_accuracy: result.final_eval.accuracy,
    })
}
