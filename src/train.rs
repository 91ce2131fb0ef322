//! The fit loop over any `Backend`: epochs of shuffled minibatches, Keras-style progress, a full
//! test-set evaluation after each epoch, divergence detection, and the history that is saved with the
//! run. Tested end to end by tests/train_cpu.rs (real data) and tests/gpu_train.rs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, Role};
use crate::batches::{epoch_order, steps_per_epoch};
use crate::config::TrainConfig;
use crate::data::Split;
use crate::error::Hinted;
use crate::evaluate::{Evaluation, evaluate};
use crate::metrics::StepStats;
use crate::progress::Progress;

/// How often a live progress bar asks the device for its running metrics.
const TICK: Duration = Duration::from_millis(200);

/// One row of history.csv.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub loss: f64,
    pub accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub seconds: f64,
}

/// What `fit` returns: the per-epoch records and the last test evaluation.
pub struct FitResult {
    pub history: Vec<EpochRecord>,
    pub final_eval: Evaluation,
    pub steps: u64,
}

/// Trains `backend` on `train` as `cfg` says, evaluating on `test` after every epoch. The backend
/// reads the samples itself (a GPU from its resident copy), in the order `epoch_order` gives: the host
/// hands it one order per epoch and then only `(start, rows)` per step.
pub fn fit(
    backend: &mut dyn Backend,
    train: &Arc<Split>,
    test: &Arc<Split>,
    cfg: &TrainConfig,
    progress: &mut dyn Progress,
) -> Result<FitResult> {
    if train.is_empty() {
        bail!("the training split is empty");
    }
    backend.attach(Role::Train, train)?;
    let steps_per_epoch = steps_per_epoch(train.len(), cfg.batch_size);
    let mut history = Vec::new();
    let mut final_eval = None;
    let mut steps_done = 0usize;
    for epoch in 0..cfg.epochs {
        if cfg.max_steps.is_some_and(|max| steps_done >= max) {
            break;
        }
        backend.set_order(&epoch_order(train.len(), cfg.seed, epoch, cfg.shuffle))?;
        progress.epoch_start(epoch, cfg.epochs, steps_per_epoch);
        let started = Instant::now();
        let mut last_tick = started;
        let mut running = StepStats::default();
        let mut steps_this_epoch = 0;
        for start in (0..train.len()).step_by(cfg.batch_size) {
            if cfg.max_steps.is_some_and(|max| steps_done >= max) {
                break;
            }
            backend.train_step(start, cfg.batch_size.min(train.len() - start))?;
            steps_this_epoch += 1;
            steps_done += 1;
            if progress.live() && last_tick.elapsed() >= TICK {
                running.add(backend.take_stats()?);
                check_finite(&running, epoch, steps_this_epoch)?;
                progress.tick(steps_this_epoch, &running);
                last_tick = Instant::now();
            }
        }
        running.add(backend.take_stats()?);
        check_finite(&running, epoch, steps_this_epoch)?;
        let seconds = started.elapsed().as_secs_f64();
        let eval = evaluate(backend, test)?;
        let record = EpochRecord {
            epoch: epoch + 1,
            loss: running.mean_loss(),
            accuracy: running.accuracy(),
            test_loss: eval.loss,
            test_accuracy: eval.accuracy,
            seconds,
        };
        progress.epoch_end(&record, steps_this_epoch, steps_per_epoch);
        history.push(record);
        final_eval = Some(eval);
    }
    let Some(final_eval) = final_eval else {
        bail!("no training step was run (--steps 0?)")
    };
    Ok(FitResult {
        history,
        final_eval,
        steps: backend.steps_done(),
    })
}

fn check_finite(stats: &StepStats, epoch: usize, step: usize) -> Result<()> {
    if stats.mean_loss().is_finite() {
        return Ok(());
    }
    Err(anyhow::Error::new(Hinted::new(
        anyhow::anyhow!(
            "training diverged: the loss became {} in epoch {} by step {step}",
            stats.mean_loss(),
            epoch + 1
        ),
        "lower the learning rate (--lr) or check the input data",
    )))
}
