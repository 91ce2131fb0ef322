//! Carries out a planned training run (new or resumed) in its locked folder: config.json says
//! `running` before the first step; after every epoch the checkpoint, history.csv and config.json are
//! rewritten (and best.safetensors after an improving epoch with `--save-best`); at the end the folder
//! says how the run ended (finished, possibly early, interrupted by Ctrl-C or SIGTERM, diverged,
//! failed) and holds what that state needs. Tested by tests/resume.rs and tests/run_folder.rs.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use clap::ValueEnum;
use fmnist::backend::{Backend, OptimizerState};
use fmnist::checkpoint::{self, CheckpointMeta};
use fmnist::config::TrainConfig;
use fmnist::cpu::Dropout;
use fmnist::data::{DataLocation, Dataset};
use fmnist::device::{AdapterChoice, DeviceChoice, make_backend};
use fmnist::evaluate::evaluate;
use fmnist::interrupt::Interrupt;
use fmnist::model::MlpSpec;
use fmnist::progress::KerasProgress;
use fmnist::resume::{self, RunCheckpoint};
use fmnist::run::{
    BEST_FILE, CHECKPOINT_FILE, HISTORY_FILE, MODEL_FILE, RunDir, RunRecord, RunStatus,
    write_history,
};
use fmnist::train::{FitData, FitEnd, FitHooks, FitPosition, fit_from};
use fmnist::{out, outln};

use super::train::TrainArgs;

/// Everything a run needs before its first step.
pub struct Plan {
    pub cfg: TrainConfig,
    pub spec: MlpSpec,
    pub params: Vec<f32>,
    /// Adam's state to continue from (`None`: a fresh optimizer).
    pub optimizer: Option<OptimizerState>,
    pub start: FitPosition,
    pub dir: RunDir,
    pub record: RunRecord,
    pub location: DataLocation,
    pub dataset: Dataset,
    /// Where the weights come from, for the `Model:` line.
    pub origin: String,
}

/// `--device` as written on the command line, e.g. `cpu`.
pub fn choice_name(choice: DeviceChoice) -> String {
    choice
        .to_possible_value()
        .map_or_else(|| "auto".to_string(), |v| v.get_name().to_string())
}

/// Trains as `plan` says and leaves the folder describing how it ended.
pub fn execute(mut plan: Plan, args: &TrainArgs) -> Result<ExitCode> {
    let choice = DeviceChoice::from_str(&plan.record.device_choice, true)
        .map_err(|e| anyhow!("config.json: device_choice: {e}"))?;
    let adapter = AdapterChoice {
        name: plan.record.adapter.clone(),
    };
    let cfg = &plan.cfg;
    let params = std::mem::take(&mut plan.params);
    let mut backend = make_backend(
        choice,
        &adapter,
        plan.spec.clone(),
        params,
        cfg.optimizer,
        cfg.batch_size,
    )?;
    if let Some(state) = &plan.optimizer {
        backend.set_optimizer_state(state)?;
    }
    backend.set_dropout(&Dropout::new(&cfg.dropout_rates()?, cfg.seed))?;
    print_header(&plan, backend.as_ref());
    if args.profile && !backend.start_profile()? {
        outln!(
            "Profile: {} has no per-kernel profile",
            backend.device_name()
        );
    }
    plan.record.device = backend.device_name();
    plan.record.write(plan.dir.path())?;
    let interrupt = Interrupt::install()?;
    let result = train_and_save(&mut plan, backend.as_mut(), &interrupt);
    if let Err(e) = &result
        && plan.record.status == RunStatus::Running
    {
        // Best effort: the error itself is what the user needs to see.
        plan.record.status = RunStatus::Failed;
        plan.record.message = Some(format!("{e:#}"));
        let _ = plan.record.write(plan.dir.path());
    }
    result
}

fn print_header(plan: &Plan, backend: &dyn Backend) {
    let (cfg, ds) = (&plan.cfg, &plan.dataset);
    outln!("Device: {}", backend.device_name());
    let validation = ds
        .validation
        .as_ref()
        .map(|v| format!(", validation {} images", v.len()))
        .unwrap_or_default();
    outln!(
        "Data:   {} ({}) - train {} images{validation}, test {} images",
        plan.location.dir.display(),
        plan.location.source,
        ds.train.len(),
        ds.test.len()
    );
    outln!(
        "Model:  {} ({} parameters), {}",
        plan.spec.describe(),
        plan.spec.parameter_count(),
        plan.origin
    );
    outln!(
        "Config: epochs {} - batch size {} - {} - seed {}{}{}{}",
        cfg.epochs,
        cfg.batch_size,
        cfg.optimizer.describe(),
        cfg.seed,
        dropout_words(cfg),
        if cfg.shuffle { "" } else { " - no shuffle" },
        cfg.max_steps
            .map(|s| format!(" - stop after {s} steps"))
            .unwrap_or_default()
    );
    if let Some(line) = watch_line(cfg, ds.validation.is_some()) {
        outln!("{line}");
    }
    outln!("Output: {}", plan.dir.path().display());
}

/// ` - dropout 0.2` (one rate for every hidden layer) or ` - dropout 0.5,0.2`, or nothing.
fn dropout_words(cfg: &TrainConfig) -> String {
    match cfg.dropout_rates() {
        Ok(rates) if rates.iter().any(|&r| r > 0.0) => {
            let words: Vec<String> = cfg.dropout.iter().map(|r| r.to_string()).collect();
            format!(" - dropout {}", words.join(","))
        }
        _ => String::new(),
    }
}

/// The `Watch:` header line: what early stopping and `--save-best` monitor, and how.
fn watch_line(cfg: &TrainConfig, validation: bool) -> Option<String> {
    let monitor = if validation { "val_loss" } else { "loss" };
    let mut parts = Vec::new();
    if let Some(rule) = cfg.early_stopping {
        parts.push(format!(
            "early stopping on {monitor} (patience {}, min_delta {}), restoring the best epoch's weights",
            rule.patience, rule.min_delta
        ));
    }
    if cfg.save_best {
        parts.push(format!("best {monitor} kept as {BEST_FILE}"));
    }
    (!parts.is_empty()).then(|| format!("Watch:  {}", parts.join(" - ")))
}

/// Saves the run checkpoint, history.csv and config.json after every epoch, and best.safetensors
/// after every improving epoch with `--save-best`; stops on a signal.
struct EpochSaver<'a> {
    plan: &'a mut Plan,
    interrupt: &'a Interrupt,
    /// The monitored loss of the best epoch before this one, for the `improved from` line.
    previous_best: Option<f64>,
}

impl FitHooks for EpochSaver<'_> {
    fn should_stop(&self) -> bool {
        self.interrupt.requested()
    }

    fn epoch_done(&mut self, backend: &mut dyn Backend, position: &FitPosition) -> Result<()> {
        if self.plan.cfg.save_best
            && let Some(best) = &position.best
        {
            if best.epoch == position.epoch {
                save_best(self.plan, backend, position, self.previous_best)?;
                self.previous_best = Some(best.value);
            } else {
                let (monitor, _) = position.history[position.epoch - 1].monitored();
                outln!(
                    "Epoch {}: {monitor} did not improve from {:.5}",
                    position.epoch,
                    best.value
                );
            }
        }
        save_state(self.plan, backend, position)
    }
}

/// Writes best.safetensors from the backend's weights (those of the best epoch, just finished), as
/// Keras' `ModelCheckpoint(save_best_only=True, verbose=1)` does, and says so.
fn save_best(
    plan: &Plan,
    backend: &mut dyn Backend,
    position: &FitPosition,
    previous: Option<f64>,
) -> Result<()> {
    let best = position.best.as_ref().expect("checked by the caller");
    let (monitor, _) = position
        .history
        .last()
        .expect("an epoch was just finished")
        .monitored();
    let meta = CheckpointMeta {
        epochs: Some(best.epoch),
        seed: Some(plan.cfg.seed),
        steps: Some(best.steps),
        class_names: plan.dataset.class_names.clone(),
    };
    let path = plan.dir.file(BEST_FILE);
    checkpoint::save(&path, &plan.spec, &backend.params()?, &meta)?;
    let from = previous.map_or_else(|| "inf".to_string(), |v| format!("{v:.5}"));
    outln!(
        "Epoch {}: {monitor} improved from {from} to {:.5}, saving model to {}",
        best.epoch,
        best.value,
        path.display()
    );
    Ok(())
}

/// Writes checkpoint.safetensors, history.csv and config.json (in that order: the checkpoint carries
/// the history too, so a kill between two writes loses nothing).
fn save_state(plan: &mut Plan, backend: &mut dyn Backend, position: &FitPosition) -> Result<()> {
    let dir = plan.dir.path().to_path_buf();
    let ck = RunCheckpoint {
        spec: plan.spec.clone(),
        params: backend.params()?,
        optimizer: backend.optimizer_state()?,
        position: position.clone(),
        seed: plan.cfg.seed,
        shuffle: plan.cfg.shuffle,
        train_samples: plan.dataset.train.len(),
        class_names: plan.dataset.class_names.clone(),
    };
    resume::save(&dir.join(CHECKPOINT_FILE), &ck)?;
    write_history(&dir, &position.history)?;
    plan.record.epochs_done = position.epoch;
    plan.record.steps_done = ck.optimizer.steps;
    plan.record.write(&dir)
}

/// Writes model.safetensors from the backend's weights, those of epoch `epochs` after `steps` steps.
fn save_model(plan: &Plan, backend: &mut dyn Backend, epochs: usize, steps: u64) -> Result<()> {
    let meta = CheckpointMeta {
        epochs: Some(epochs),
        seed: Some(plan.cfg.seed),
        steps: Some(steps),
        class_names: plan.dataset.class_names.clone(),
    };
    checkpoint::save(
        &plan.dir.file(MODEL_FILE),
        &plan.spec,
        &backend.params()?,
        &meta,
    )
}

fn train_and_save(
    plan: &mut Plan,
    backend: &mut dyn Backend,
    interrupt: &Interrupt,
) -> Result<ExitCode> {
    let (train, test) = (plan.dataset.train.clone(), plan.dataset.test.clone());
    let validation = plan.dataset.validation.clone();
    let cfg = plan.cfg.clone();
    let start = std::mem::take(&mut plan.start);
    let previous_best = start.best.as_ref().map(|b| b.value);
    let data = FitData {
        train: &train,
        validation: validation.as_ref(),
        test: &test,
    };
    let outcome = fit_from(
        backend,
        data,
        &cfg,
        &mut KerasProgress::default(),
        start,
        &mut EpochSaver {
            plan,
            interrupt,
            previous_best,
        },
    )?;
    let pos = &outcome.position;
    match outcome.end {
        FitEnd::Finished | FitEnd::StoppedEarly => {
            let stopped_early = matches!(outcome.end, FitEnd::StoppedEarly);
            let (epochs, steps) = match (outcome.restored_epoch, &pos.best) {
                (Some(epoch), Some(best)) => (epoch, best.steps),
                _ => (pos.history.len(), backend.steps_done()),
            };
            let eval = match outcome.final_eval {
                Some(eval) => eval,
                None => evaluate(backend, &test)?,
            };
            save_model(plan, backend, epochs, steps)?;
            if stopped_early {
                plan.record.message = Some(format!(
                    "stopped early after epoch {} of {}; the model holds epoch {epochs}'s weights",
                    pos.epoch, cfg.epochs
                ));
            }
            // The model is final: the folder says so before anything is printed (a closed stdout
            // ends the process).
            plan.record.status = RunStatus::Finished;
            plan.record.write(plan.dir.path())?;
            if stopped_early {
                outln!("Epoch {}: early stopping", pos.epoch);
            }
            if let Some(epoch) = outcome.restored_epoch {
                outln!("Restoring model weights from the end of the best epoch: {epoch}.");
            }
            if let Some(report) = backend.profile_report()? {
                out!("{}", report.table());
            }
            super::report::print_test_scores(&eval);
            outln!("Model saved to {}", plan.dir.file(MODEL_FILE).display());
            super::report::print_per_class(&eval.confusion(), &plan.dataset.class_names);
            let figures = fmnist::plot::run_figures::write(
                plan.dir.path(),
                &pos.history,
                &eval,
                &test,
                &plan.dataset.class_names,
            )?;
            super::report::print_figures(&figures);
            Ok(ExitCode::SUCCESS)
        }
        FitEnd::Interrupted => {
            save_state(plan, backend, pos)?;
            let steps = backend.steps_done();
            save_model(plan, backend, pos.epoch, steps)?;
            let steps_per_epoch = train.len().div_ceil(cfg.batch_size);
            let message = format!(
                "stopped by {} in epoch {}/{} after step {}/{steps_per_epoch}",
                interrupt.signal_name(),
                (pos.epoch + 1).min(cfg.epochs),
                cfg.epochs,
                pos.sample.div_ceil(cfg.batch_size),
            );
            plan.record.status = RunStatus::Interrupted;
            plan.record.message = Some(message.clone());
            plan.record.write(plan.dir.path())?;
            outln!(
                "Interrupted: {message}; saved {CHECKPOINT_FILE}, {HISTORY_FILE} and {MODEL_FILE} in {}",
                plan.dir.path().display()
            );
            outln!("Resume with: {}", resume_command(plan.dir.path()));
            Ok(ExitCode::from(interrupt.exit_code()))
        }
        FitEnd::Diverged(err) => {
            write_history(plan.dir.path(), &pos.history)?;
            plan.record.status = RunStatus::Diverged;
            plan.record.message = Some(format!("{err:#}"));
            plan.record.write(plan.dir.path())?;
            Err(err)
        }
    }
}

/// The command that continues the run in `dir`, as this program was invoked.
fn resume_command(dir: &Path) -> String {
    let program = std::env::args_os()
        .next()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "fmnist".to_string());
    format!(
        "{} train --resume {}",
        shell_quote(&program),
        shell_quote(&dir.to_string_lossy())
    )
}

/// `s` as one shell word.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
