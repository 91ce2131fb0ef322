//! checkpoint.safetensors: what `fmnist train --resume DIR` continues from. It is a model file (the
//! same `layers.{i}.*` tensors, so `evaluate` and `--init` read it too) plus the optimizer's two slots
//! (Adam's moments, SGD's momentum, RMSprop's mean square and momentum; `optimizer` in the metadata
//! names it) as `optimizer.m.layers.{i}.*` and `optimizer.v.layers.{i}.*` in the same shapes, and metadata saying
//! where the fit stands: the optimizer's step count, the epoch and sample reached, the running stats of a
//! partial epoch, the history so far (without timings) and the best epoch (with its weights as
//! `best.layers.{i}.*` where early stopping will restore them). Written in a fixed order, so the same state
//! gives the same bytes. Tested by tests/resume.rs and tests/checkpoint.rs.

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::backend::OptimizerState;
use crate::checkpoint::{
    self, CheckpointMeta, RUN_CHECKPOINT_FORMAT, model_metadata, model_tensors,
};
use crate::config::{OptimizerKind, TrainConfig};
use crate::data::ClassNames;
use crate::metrics::StepStats;
use crate::model::{MlpSpec, ParamLayout};
use crate::tensorfile::{self, Tensor};
use crate::train::{BestEpoch, EpochRecord, FitPosition, Scores};

const M_PREFIX: &str = "optimizer.m.";
const V_PREFIX: &str = "optimizer.v.";
/// The best epoch's weights, kept for early stopping's restore.
const BEST_PREFIX: &str = "best.";

/// Everything a run needs to continue exactly where it stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct RunCheckpoint {
    pub spec: MlpSpec,
    /// Flat, `spec.layout()` order.
    pub params: Vec<f32>,
    pub optimizer: OptimizerState,
    pub position: FitPosition,
    /// The seed, shuffle flag and training-set size the position refers to.
    pub seed: u64,
    pub shuffle: bool,
    pub train_samples: usize,
    /// The names of the classes the run trains on.
    pub class_names: ClassNames,
}

impl RunCheckpoint {
    /// Checks that this checkpoint continues the run `cfg` describes on `train_samples` samples.
    pub fn check_fits(&self, cfg: &TrainConfig, train_samples: usize) -> Result<()> {
        ensure!(
            self.optimizer.kind == cfg.optimizer.kind(),
            "the checkpoint holds {}'s state but the run's config says {}",
            self.optimizer.kind.name(),
            cfg.optimizer.kind().name()
        );
        ensure!(
            self.spec.hidden == cfg.hidden,
            "the checkpoint has hidden layers {:?} but the run's config says {:?}",
            self.spec.hidden,
            cfg.hidden
        );
        ensure!(
            (self.seed, self.shuffle) == (cfg.seed, cfg.shuffle),
            "the checkpoint was shuffled with seed {} (shuffle {}) but the run's config says seed {} (shuffle {})",
            self.seed,
            self.shuffle,
            cfg.seed,
            cfg.shuffle
        );
        ensure!(
            self.train_samples == train_samples,
            "the checkpoint was trained on {} samples per epoch but the data gives {train_samples}",
            self.train_samples
        );
        Ok(())
    }
}

/// An epoch's record without its seconds: the checkpoint of an epoch boundary holds no timing, so the
/// same seed gives the same bytes (history.csv keeps the seconds). Checkpoints written before
/// validation existed hold test scores for every epoch and no `val_*`; they read the same.
#[derive(Serialize, Deserialize)]
struct SavedEpoch {
    epoch: usize,
    loss: f64,
    accuracy: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    val_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    val_accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    test_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    test_accuracy: Option<f64>,
}

impl SavedEpoch {
    fn of(r: &EpochRecord) -> Self {
        Self {
            epoch: r.epoch,
            loss: r.loss,
            accuracy: r.accuracy,
            val_loss: r.val.map(|s| s.loss),
            val_accuracy: r.val.map(|s| s.accuracy),
            test_loss: r.test.map(|s| s.loss),
            test_accuracy: r.test.map(|s| s.accuracy),
        }
    }

    fn record(self) -> EpochRecord {
        let scores = |loss: Option<f64>, accuracy: Option<f64>| {
            Some(Scores {
                loss: loss?,
                accuracy: accuracy?,
            })
        };
        EpochRecord {
            epoch: self.epoch,
            loss: self.loss,
            accuracy: self.accuracy,
            val: scores(self.val_loss, self.val_accuracy),
            test: scores(self.test_loss, self.test_accuracy),
            seconds: 0.0,
        }
    }
}

fn history_json(history: &[EpochRecord]) -> Result<String> {
    let saved: Vec<SavedEpoch> = history.iter().map(SavedEpoch::of).collect();
    Ok(serde_json::to_string(&saved)?)
}

/// Saves a run checkpoint to `path`, atomically. `position.seconds` (non-zero only inside an
/// interrupted epoch) is kept; the history's seconds are not (`load` gives 0).
pub fn save(path: &Path, ck: &RunCheckpoint) -> Result<()> {
    let spec = &ck.spec;
    let mut tensors = model_tensors(spec, &ck.params);
    let p = &ck.position;
    let best_params = p.best.as_ref().and_then(|b| b.params.as_ref());
    let extra = [
        (M_PREFIX, Some(&ck.optimizer.m)),
        (V_PREFIX, Some(&ck.optimizer.v)),
        (BEST_PREFIX, best_params),
    ];
    for (prefix, data) in extra.into_iter().filter_map(|(k, d)| Some((k, d?))) {
        tensors.extend(model_tensors(spec, data).into_iter().map(|t| Tensor {
            name: format!("{prefix}{}", t.name),
            ..t
        }));
    }
    let meta = CheckpointMeta {
        epochs: Some(p.epoch),
        seed: Some(ck.seed),
        steps: Some(ck.optimizer.steps),
        class_names: ck.class_names.clone(),
    };
    let mut info = model_metadata(RUN_CHECKPOINT_FORMAT, spec, &meta);
    info.extend([
        ("optimizer", ck.optimizer.kind.name().to_string()),
        ("shuffle", ck.shuffle.to_string()),
        ("train_samples", ck.train_samples.to_string()),
        ("sample", p.sample.to_string()),
        // f64 and u64 print in their shortest exact form, so they read back bit for bit.
        ("running_loss_sum", p.running.loss_sum.to_string()),
        ("running_correct", p.running.correct.to_string()),
        ("running_samples", p.running.samples.to_string()),
        ("running_steps", p.running.steps.to_string()),
        ("running_seconds", p.seconds.to_string()),
        ("history", history_json(&p.history)?),
    ]);
    if let Some(best) = &p.best {
        info.extend([
            ("best_epoch", best.epoch.to_string()),
            ("best_value", best.value.to_string()),
            ("best_steps", best.steps.to_string()),
        ]);
    }
    write_atomic(path, &tensorfile::serialize(&tensors, &info))
}

/// Loads a run checkpoint, checking that it holds everything `save` writes.
pub fn load(path: &Path) -> Result<RunCheckpoint> {
    let bytes = checkpoint::read_file(path)?;
    parse(&bytes).with_context(|| format!("{}: not a usable run checkpoint", path.display()))
}

fn parse(bytes: &[u8]) -> Result<RunCheckpoint> {
    let model = checkpoint::parse(bytes)?;
    let (_, header) = SafeTensors::read_metadata(bytes)?;
    let info = header.metadata().clone().unwrap_or_default();
    let text = |key: &str| -> Result<&str> {
        info.get(key)
            .map(String::as_str)
            .with_context(|| format!("no `{key}` in the metadata"))
    };
    if text("format")? != RUN_CHECKPOINT_FORMAT {
        bail!(
            "the metadata says format `{}`, not `{RUN_CHECKPOINT_FORMAT}` (a model file has no optimizer state)",
            text("format")?
        );
    }
    fn number<T: std::str::FromStr>(key: &str, v: &str) -> Result<T> {
        v.parse()
            .ok()
            .with_context(|| format!("`{key}` is `{v}`, not a number"))
    }
    let num_u64 = |key: &str| -> Result<u64> { number(key, text(key)?) };
    let num_usize = |key: &str| -> Result<usize> { number(key, text(key)?) };
    let num_f64 = |key: &str| -> Result<f64> { number(key, text(key)?) };
    let st = SafeTensors::deserialize(bytes)?;
    let layout = model.spec.layout();
    let m = read_flat(&st, &layout, M_PREFIX)?;
    let v = read_flat(&st, &layout, V_PREFIX)?;
    let best = match info.get("best_epoch") {
        None => None,
        Some(_) => {
            let has_params = st.names().iter().any(|n| n.starts_with(BEST_PREFIX));
            Some(BestEpoch {
                epoch: num_usize("best_epoch")?,
                value: num_f64("best_value")?,
                steps: num_u64("best_steps")?,
                params: has_params
                    .then(|| read_flat(&st, &layout, BEST_PREFIX))
                    .transpose()?,
            })
        }
    };
    let history: Vec<EpochRecord> = serde_json::from_str::<Vec<SavedEpoch>>(text("history")?)
        .context("`history` is not a list of epoch records")?
        .into_iter()
        .map(SavedEpoch::record)
        .collect();
    let position = FitPosition {
        epoch: num_usize("epochs")?,
        sample: num_usize("sample")?,
        running: StepStats {
            loss_sum: num_f64("running_loss_sum")?,
            correct: num_u64("running_correct")?,
            samples: num_u64("running_samples")?,
            steps: num_u64("running_steps")?,
        },
        seconds: num_f64("running_seconds")?,
        history,
        best,
    };
    ensure!(
        position.history.len() == position.epoch,
        "the history holds {} epochs but the checkpoint says {} were finished",
        position.history.len(),
        position.epoch
    );
    if let Some(best) = &position.best {
        ensure!(
            best.epoch >= 1 && best.epoch <= position.epoch,
            "the best epoch is {} but the checkpoint says {} were finished",
            best.epoch,
            position.epoch
        );
    }
    Ok(RunCheckpoint {
        spec: model.spec,
        params: model.params,
        optimizer: OptimizerState {
            kind: {
                let name = text("optimizer")?;
                OptimizerKind::from_name(name)
                    .with_context(|| format!("`optimizer` is `{name}`, not adam, sgd or rmsprop"))?
            },
            m,
            v,
            steps: num_u64("steps")?,
        },
        position,
        seed: num_u64("seed")?,
        shuffle: number("shuffle", text("shuffle")?)?,
        train_samples: num_usize("train_samples")?,
        class_names: model.meta.class_names,
    })
}

/// The `prefix` + `layers.{i}.{weight,bias}` tensors, flat in `layout` order.
fn read_flat(st: &SafeTensors, layout: &ParamLayout, prefix: &str) -> Result<Vec<f32>> {
    let mut flat = vec![0.0f32; layout.total];
    for (i, l) in layout.layers.iter().enumerate() {
        let parts = [
            ("weight", vec![l.fan_in, l.fan_out], l.weight_range()),
            ("bias", vec![l.fan_out], l.bias_range()),
        ];
        for (part, shape, range) in parts {
            let name = format!("{prefix}layers.{i}.{part}");
            let view = st
                .tensor(&name)
                .map_err(|_| anyhow::anyhow!("missing tensor {name}"))?;
            ensure!(
                view.dtype() == safetensors::Dtype::F32 && view.shape() == shape.as_slice(),
                "tensor {name} is {:?} {:?}, expected F32 {shape:?}",
                view.dtype(),
                view.shape()
            );
            checkpoint::copy_f32(&view, &mut flat[range]);
        }
    }
    Ok(flat)
}
