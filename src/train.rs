//! The fit loop over any `Backend`: epochs of streamed minibatches, Keras-style progress, a full
//! test-set evaluation after each epoch, divergence detection, and the history that is saved with the
//! run. Tested end to end by tests/train_cpu.rs (real data) and tests/gpu_train.rs.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, StepStats};
use crate::batches::{BatchPlan, BatchProducer, steps_per_epoch};
use crate::config::TrainConfig;
use crate::data::Split;
use crate::error::Hinted;
use crate::evaluate::{Evaluation, evaluate};
use crate::progress::Progress;

/// Batches the producer keeps ready ahead of the device.
const QUEUE_DEPTH: usize = 8;
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

/// Trains `backend` on `train` as `cfg` says, evaluating on `test` after every epoch.
pub fn fit(
    backend: &mut dyn Backend,
    train: &Split,
    test: &Split,
    cfg: &TrainConfig,
    progress: &mut dyn Progress,
) -> Result<FitResult> {
    if train.is_empty() {
        bail!("the training split is empty");
    }
    let steps_per_epoch = steps_per_epoch(train.len(), cfg.batch_size);
    let plan = BatchPlan {
        batch_size: cfg.batch_size,
        epochs: cfg.epochs,
        seed: cfg.seed,
        shuffle: cfg.shuffle,
        max_steps: cfg.max_steps,
    };
    let mut history = Vec::new();
    let mut final_eval = None;
    std::thread::scope(|scope| -> Result<()> {
        let producer = BatchProducer::spawn(scope, train, plan, QUEUE_DEPTH);
        let mut batch = producer.next_batch();
        while let Some(first) = batch.take() {
            let epoch = first.epoch;
            progress.epoch_start(epoch, cfg.epochs, steps_per_epoch);
            let started = Instant::now();
            let mut last_tick = started;
            let mut running = StepStats::default();
            let mut next = Some(first);
            let mut steps_this_epoch = 0;
            while let Some(b) = next.take() {
                if b.epoch != epoch {
                    next = Some(b);
                    break;
                }
                backend.train_step(&b.x, &b.labels, b.rows)?;
                producer.recycle(b);
                steps_this_epoch += 1;
                if progress.live() && last_tick.elapsed() >= TICK {
                    running.add(backend.take_stats()?);
                    check_finite(&running, epoch, steps_this_epoch)?;
                    progress.tick(steps_this_epoch, &running);
                    last_tick = Instant::now();
                }
                next = producer.next_batch();
            }
            batch = next;
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
        Ok(())
    })?;
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
