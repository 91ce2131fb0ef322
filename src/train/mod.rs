//! The fit loop over any `Backend`: epochs of shuffled minibatches, Keras-style progress, the
//! validation split (and, when asked, the test set) evaluated after each epoch, divergence detection,
//! early stopping with the best epoch's weights restored, and the history that is saved with the run.
//! A fit can start from a saved position (`train --resume`) and stop between two steps (Ctrl-C).
//! Tested end to end by tests/train_cpu.rs (real data), tests/gpu_train.rs, tests/resume.rs and
//! tests/early_stopping.rs.

mod best;
mod engine;
mod record;

use std::sync::Arc;
use std::time::Duration;

use web_time::Instant;

use anyhow::{Result, bail, ensure};

use crate::backend::{Backend, Role};
use crate::batches::{epoch_order, steps_per_epoch};
use crate::config::TrainConfig;
use crate::data::Split;
use crate::error::Hinted;
use crate::evaluate::{Evaluation, evaluate};
use crate::metrics::StepStats;
use crate::progress::Progress;

pub use best::{BestEpoch, improves, patience_spent};
pub use engine::{Blocking, FitEngine};
pub use record::{EpochRecord, Scores};

/// How often a live progress bar asks the device for its running metrics.
const TICK: Duration = Duration::from_millis(200);

/// The splits a fit reads.
#[derive(Clone, Copy)]
pub struct FitData<'a> {
    pub train: &'a Arc<Split>,
    /// Held out by `--validation-split`: evaluated after every epoch.
    pub validation: Option<&'a Arc<Split>>,
    /// Evaluated after every epoch with `TrainConfig::test_every_epoch`, else left to the caller.
    pub test: &'a Arc<Split>,
}

/// What `fit` returns: the per-epoch records and the test evaluation of the final weights.
pub struct FitResult {
    pub history: Vec<EpochRecord>,
    pub final_eval: Evaluation,
    pub steps: u64,
}

/// Where a fit stands, between two steps: what a run checkpoint saves and `fit_from` continues from.
/// An epoch's sample order depends only on (seed, epoch), so `epoch` and `sample` are all the shuffle
/// needs to continue.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FitPosition {
    /// Epochs finished (the next step belongs to epoch `epoch`, counted from 0).
    pub epoch: usize,
    /// Samples of that epoch already trained: 0 at an epoch boundary.
    pub sample: usize,
    /// The running loss and accuracy of that epoch's steps so far.
    pub running: StepStats,
    /// Seconds spent in that epoch so far.
    pub seconds: f64,
    /// One record per finished epoch.
    pub history: Vec<EpochRecord>,
    /// The best epoch so far, tracked for early stopping and `--save-best`.
    pub best: Option<BestEpoch>,
}

/// What the fit loop asks and tells its caller between steps.
pub trait FitHooks {
    /// Asked after every step and before every epoch: `true` stops the fit there.
    fn should_stop(&self) -> bool {
        false
    }
    /// Called after every finished epoch (evaluated, its record in `position.history`, `position.best`
    /// updated: the backend holds the best weights when `best.epoch == epoch`).
    fn epoch_done(&mut self, _backend: &mut dyn Backend, _position: &FitPosition) -> Result<()> {
        Ok(())
    }
}

/// Hooks that never stop and save nothing.
pub struct NoHooks;
impl FitHooks for NoHooks {}

/// How a fit ended.
#[derive(Debug)]
pub enum FitEnd {
    /// Every epoch (or `max_steps`) done.
    Finished,
    /// Early stopping ended the fit after `position.epoch` epochs, before `cfg.epochs`.
    StoppedEarly,
    /// `should_stop` said so; the position says where.
    Interrupted,
    /// The loss became NaN, infinite or above `DIVERGED_LOSS`; the position is the end of the last
    /// finished epoch.
    Diverged(anyhow::Error),
}

/// What `fit_from` returns.
pub struct FitOutcome {
    pub end: FitEnd,
    pub position: FitPosition,
    /// The test evaluation of the final weights, when the last epoch evaluated the test set and
    /// early stopping restored no other epoch's weights.
    pub final_eval: Option<Evaluation>,
    /// The epoch whose weights early stopping put back at the end (Finished or StoppedEarly).
    pub restored_epoch: Option<usize>,
    /// Optimizer steps of the whole run.
    pub steps: u64,
}

/// Trains `backend` on `train` as `cfg` says (without a validation split) and evaluates the final
/// weights on `test`. The backend reads the samples itself (a GPU from its resident copy), in the order
/// `epoch_order` gives: the host hands it one order per epoch and then only `(start, rows)` per step.
pub fn fit(
    backend: &mut dyn Backend,
    train: &Arc<Split>,
    test: &Arc<Split>,
    cfg: &TrainConfig,
    progress: &mut dyn Progress,
) -> Result<FitResult> {
    let data = FitData {
        train,
        validation: None,
        test,
    };
    let outcome = fit_from(
        backend,
        data,
        cfg,
        progress,
        FitPosition::default(),
        &mut NoHooks,
    )?;
    if let FitEnd::Diverged(err) = outcome.end {
        return Err(err);
    }
    if outcome.steps == 0 {
        bail!("no training step was run (--steps 0?)")
    }
    let final_eval = match outcome.final_eval {
        Some(eval) => eval,
        None => evaluate(backend, test)?,
    };
    Ok(FitResult {
        history: outcome.position.history,
        final_eval,
        steps: outcome.steps,
    })
}

/// `fit` from `start` (a resumed run: the backend already holds the checkpoint's parameters and
/// optimizer state), asking `hooks` whether to stop between steps and telling it every finished epoch.
pub fn fit_from(
    backend: &mut dyn Backend,
    data: FitData,
    cfg: &TrainConfig,
    progress: &mut dyn Progress,
    start: FitPosition,
    hooks: &mut dyn FitHooks,
) -> Result<FitOutcome> {
    let engine = &mut Blocking(backend);
    pollster::block_on(fit_engine(engine, data, cfg, progress, start, hooks))
}

/// The fit loop over any `FitEngine`: `fit_from` blocks on it through `Blocking`; a GPU engine's
/// readbacks are awaited (`fit_engine(&mut gpu, ...)`), which is how a browser (wasm32, WebGPU),
/// where nothing may block, trains. One loop, so the same results (tests/gpu_train.rs).
pub async fn fit_engine<E: FitEngine>(
    engine: &mut E,
    data: FitData<'_>,
    cfg: &TrainConfig,
    progress: &mut dyn Progress,
    start: FitPosition,
    hooks: &mut dyn FitHooks,
) -> Result<FitOutcome> {
    let train = data.train;
    if train.is_empty() {
        bail!("the training split is empty");
    }
    ensure!(
        start.sample <= train.len(),
        "the run stopped at sample {} of an epoch, but the training split has {}",
        start.sample,
        train.len()
    );
    engine.backend().attach(Role::Train, train)?;
    let steps_per_epoch = steps_per_epoch(train.len(), cfg.batch_size);
    let max_reached = |b: &dyn Backend| {
        cfg.max_steps
            .is_some_and(|max| b.steps_done() >= max as u64)
    };
    let mut pos = start;
    let mut final_eval = None;
    let mut end = FitEnd::Finished;
    'epochs: while pos.epoch < cfg.epochs {
        if pos.sample == 0 && (max_reached(engine.backend()) || hooks.should_stop()) {
            if !max_reached(engine.backend()) {
                end = FitEnd::Interrupted;
            }
            break;
        }
        let order = epoch_order(train.len(), cfg.seed, pos.epoch, cfg.shuffle);
        engine.backend().set_order(&order)?;
        progress.epoch_start(pos.epoch, cfg.epochs, steps_per_epoch);
        let started = Instant::now();
        let mut last_tick = started;
        // The first step of an epoch ticks at once, so the live line shows metrics from its first draw.
        let mut ticked = false;
        let mut steps_this_epoch = pos.sample.div_ceil(cfg.batch_size);
        while pos.sample < train.len() && !max_reached(engine.backend()) {
            let rows = cfg.batch_size.min(train.len() - pos.sample);
            engine.backend().train_step(pos.sample, rows)?;
            pos.sample += rows;
            steps_this_epoch += 1;
            let tick = progress.live() && (!ticked || last_tick.elapsed() >= TICK);
            if engine.stats_due() && !tick {
                pos.running.add(engine.awaited_stats().await?);
            }
            if tick {
                ticked = true;
                pos.running.add(engine.awaited_stats().await?);
                if let Err(e) = check_finite(&pos.running, pos.epoch, steps_this_epoch) {
                    end = FitEnd::Diverged(e);
                    break 'epochs;
                }
                progress.tick(steps_this_epoch, &pos.running);
                last_tick = Instant::now();
            }
            if pos.sample < train.len() && hooks.should_stop() {
                pos.running.add(engine.awaited_stats().await?);
                pos.seconds += started.elapsed().as_secs_f64();
                end = FitEnd::Interrupted;
                break 'epochs;
            }
        }
        pos.running.add(engine.awaited_stats().await?);
        if let Err(e) = check_finite(&pos.running, pos.epoch, steps_this_epoch) {
            end = FitEnd::Diverged(e);
            break;
        }
        let seconds = pos.seconds + started.elapsed().as_secs_f64();
        let val = match data.validation {
            Some(v) => Some(engine.awaited_evaluation(v).await?),
            None => None,
        };
        let test = match cfg.test_every_epoch {
            true => Some(engine.awaited_evaluation(data.test).await?),
            false => None,
        };
        let record = EpochRecord {
            epoch: pos.epoch + 1,
            loss: pos.running.mean_loss(),
            accuracy: pos.running.accuracy(),
            val: val.as_ref().map(Evaluation::scores),
            test: test.as_ref().map(Evaluation::scores),
            seconds,
        };
        progress.epoch_end(&record, steps_this_epoch, steps_per_epoch);
        pos.epoch += 1;
        pos.sample = 0;
        pos.running = StepStats::default();
        pos.seconds = 0.0;
        track_best(engine, cfg, &record, &mut pos).await?;
        pos.history.push(record);
        final_eval = test;
        hooks.epoch_done(engine.backend(), &pos)?;
        if let (Some(rule), Some(best)) = (&cfg.early_stopping, &pos.best)
            && patience_spent(rule, best, pos.epoch)
            && pos.epoch < cfg.epochs
        {
            end = FitEnd::StoppedEarly;
            break;
        }
    }
    if let FitEnd::Diverged(_) = end {
        // What a checkpoint of this run may hold is the end of the last finished epoch.
        pos.sample = 0;
        pos.running = StepStats::default();
        pos.seconds = 0.0;
    }
    let mut restored_epoch = None;
    if matches!(end, FitEnd::Finished | FitEnd::StoppedEarly)
        && cfg.early_stopping.is_some()
        && let Some(best) = &pos.best
        && let Some(params) = &best.params
    {
        if best.epoch != pos.epoch {
            engine.backend().set_params(params)?;
            final_eval = None;
        }
        restored_epoch = Some(best.epoch);
    }
    Ok(FitOutcome {
        end,
        position: pos,
        final_eval,
        restored_epoch,
        steps: engine.backend().steps_done(),
    })
}

/// Makes the epoch just finished (`pos.epoch`) the best one when it improves on it, keeping its
/// weights where early stopping will restore them.
async fn track_best<E: FitEngine>(
    engine: &mut E,
    cfg: &TrainConfig,
    record: &EpochRecord,
    pos: &mut FitPosition,
) -> Result<()> {
    if cfg.early_stopping.is_none() && !cfg.save_best {
        return Ok(());
    }
    let min_delta = cfg.early_stopping.map_or(0.0, |r| r.min_delta);
    let (_, value) = record.monitored();
    if improves(value, pos.best.as_ref(), min_delta) {
        let params = match cfg.early_stopping {
            Some(_) => Some(engine.awaited_params().await?),
            None => None,
        };
        pos.best = Some(BestEpoch {
            epoch: pos.epoch,
            value,
            steps: engine.backend().steps_done(),
            params,
        });
    }
    Ok(())
}

/// A running loss above this has diverged: a model guessing uniformly scores ln 10 = 2.30, and 100
/// means a probability of e^-100 on the true class on average. Real runs stay below 10 from the first
/// steps on; a learning rate far too high explodes past it within an epoch.
pub const DIVERGED_LOSS: f64 = 100.0;

fn check_finite(stats: &StepStats, epoch: usize, step: usize) -> Result<()> {
    let loss = stats.mean_loss();
    // NaN fails the comparison too.
    if loss <= DIVERGED_LOSS {
        Ok(())
    } else {
        Err(diverged(loss, epoch, step))
    }
}

fn diverged(loss: f64, epoch: usize, step: usize) -> anyhow::Error {
    let what = if loss.is_finite() {
        format!("exploded to {loss:.3e}, above {DIVERGED_LOSS} (uniform guessing scores 2.30)")
    } else {
        format!("became {loss}")
    };
    anyhow::Error::new(Hinted::new(
        anyhow::anyhow!(
            "training diverged: the loss {what} in epoch {} by step {step}",
            epoch + 1
        ),
        "lower the learning rate (--lr) or check the input data",
    ))
}
