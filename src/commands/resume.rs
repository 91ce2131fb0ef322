//! `fmnist train --resume DIR`: the plan of a run continued from its folder. The settings come from its
//! config.json (flags that would change the run are refused by clap), the weights, Adam's state and the
//! position from checkpoint.safetensors; a run killed before its first epoch ended has no checkpoint
//! and starts again from its recorded first weights.

use std::path::Path;

use anyhow::{Result, bail};
use fmnist::data::{self, DataLocation};
use fmnist::error::HintExt;
use fmnist::outln;
use fmnist::resume;
use fmnist::run::{
    CHECKPOINT_FILE, HISTORY_FILE, RunDir, RunRecord, RunStatus, read_history, sha256_file,
};
use fmnist::train::FitPosition;

use super::session::Plan;
use super::train::{TrainArgs, first_weights, load_data};

/// The plan that continues the run in `dir`, or `None` when it is already finished (said on stdout).
pub fn plan(dir: &Path, args: &TrainArgs) -> Result<Option<Plan>> {
    let run = RunDir::open_existing(dir)?;
    let mut record = RunRecord::read(dir)?;
    match record.status {
        RunStatus::Finished => {
            outln!(
                "{}: the run is finished ({} of {} epochs, {} steps); nothing to do",
                dir.display(),
                record.epochs_done,
                record.config.epochs,
                record.steps_done
            );
            return Ok(None);
        }
        RunStatus::Diverged => {
            return Err(anyhow::anyhow!(
                "--resume {}: the run diverged{}; resuming would repeat it",
                dir.display(),
                record
                    .message
                    .as_deref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            ))
            .hint(format!(
                "start a new run with a lower --lr, e.g. from the last good epoch with --init {}",
                dir.join(CHECKPOINT_FILE).display()
            ));
        }
        RunStatus::Running | RunStatus::Interrupted | RunStatus::Failed => {}
    }
    let cfg = record.config.clone();
    let location = match &args.data.data_dir {
        Some(d) => data::locate(Some(d))?,
        None => DataLocation {
            dir: record.data_dir.clone(),
            source: "the run's config.json",
        },
    };
    let mut dataset = load_data(&location, &cfg)?;
    dataset.class_names = super::class_names(args.class_names.as_deref(), &location.dir)?;
    let ck_path = run.file(CHECKPOINT_FILE);
    let (spec, params, optimizer, start, origin) = if ck_path.exists() {
        let mut ck = resume::load(&ck_path)?;
        ck.check_fits(&cfg, dataset.train.len())?;
        // The run keeps the names it started with, unless --class-names says otherwise.
        if args.class_names.is_none() {
            dataset.class_names = ck.class_names.clone();
        }
        // The checkpoint holds no timings: the seconds of finished epochs come from history.csv.
        if let Ok(old) = read_history(&run.file(HISTORY_FILE)) {
            for r in &mut ck.position.history {
                if let Some(o) = old.iter().find(|o| o.epoch == r.epoch) {
                    r.seconds = o.seconds;
                }
            }
        }
        let p = &ck.position;
        let at = if p.sample == 0 {
            format!("after epoch {}", p.epoch)
        } else {
            format!("in epoch {}, after {} samples", p.epoch + 1, p.sample)
        };
        let origin = format!(
            "resumed from {} {at} ({} steps)",
            ck_path.display(),
            ck.optimizer.steps
        );
        (ck.spec, ck.params, Some(ck.optimizer), ck.position, origin)
    } else {
        // Killed before the first epoch ended: the same first weights again.
        if let Some(init) = &record.init {
            let sha = sha256_file(&init.path)?;
            if sha != init.sha256 {
                bail!(
                    "--resume {}: the run started from {}, which has changed since (sha256 {sha}, recorded {})",
                    dir.display(),
                    init.path.display(),
                    init.sha256
                );
            }
        }
        let init = record.init.as_ref().map(|i| i.path.as_path());
        let (spec, params, origin) = first_weights(init, true, &cfg)?;
        let origin = format!("{origin} (no epoch had finished: starting again)");
        (spec, params, None, FitPosition::default(), origin)
    };
    // Unless told otherwise, the run continues on the device it chose.
    if args.device.device.is_some() || args.device.adapter.is_some() {
        record.device_choice = super::session::choice_name(args.device.choice());
        record.adapter.clone_from(&args.device.adapter);
    }
    record.status = RunStatus::Running;
    record.message = None;
    Ok(Some(Plan {
        cfg,
        spec,
        params,
        optimizer,
        start,
        dir: run,
        record,
        location,
        dataset,
        origin,
    }))
}
