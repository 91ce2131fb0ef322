//! Training configuration with Keras' defaults; saved as config.json beside every run.

use serde::{Deserialize, Deserializer, Serialize};

/// Adam's hyper-parameters, Keras' defaults (`keras.optimizers.Adam()`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// Keras' epsilon (1e-7), added to `sqrt(v)` outside the bias correction; PyTorch differs here.
    pub epsilon: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            learning_rate: 0.001,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
        }
    }
}

/// Keras 3's `SGD()`: `p -= lr g`, or with momentum `m = momentum m - lr g; p += m` (Nesterov:
/// `p += momentum m - lr g` with the new m).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    pub learning_rate: f64,
    pub momentum: f64,
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            learning_rate: 0.01,
            momentum: 0.0,
            nesterov: false,
        }
    }
}

/// Keras 3's `RMSprop()` (not centered): `v = rho v + (1 - rho) g^2; inc = lr g / sqrt(v + eps)`, then
/// `p -= inc`, or with momentum `m = momentum m + inc; p -= m`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RmspropConfig {
    pub learning_rate: f64,
    pub rho: f64,
    pub momentum: f64,
    pub epsilon: f64,
}

impl Default for RmspropConfig {
    fn default() -> Self {
        Self {
            learning_rate: 0.001,
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
        }
    }
}

/// Which optimizer a run uses (`--optimizer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    Adam,
    Sgd,
    Rmsprop,
}

impl OptimizerKind {
    /// Keras' lower-case name, as `--optimizer` and the checkpoint spell it.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Adam => "adam",
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Rmsprop => "rmsprop",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Adam, Self::Sgd, Self::Rmsprop]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// The optimizer and its hyper-parameters, each defaulting to Keras 3's. Serialised with its `name`;
/// runs written before other optimizers existed hold an untagged `"adam": {...}`, still read.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum OptimizerConfig {
    Adam(AdamConfig),
    Sgd(SgdConfig),
    Rmsprop(RmspropConfig),
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Adam(AdamConfig::default())
    }
}

impl From<AdamConfig> for OptimizerConfig {
    fn from(a: AdamConfig) -> Self {
        OptimizerConfig::Adam(a)
    }
}

impl OptimizerConfig {
    /// Keras' defaults for `kind`.
    pub fn default_for(kind: OptimizerKind) -> Self {
        match kind {
            OptimizerKind::Adam => Self::Adam(AdamConfig::default()),
            OptimizerKind::Sgd => Self::Sgd(SgdConfig::default()),
            OptimizerKind::Rmsprop => Self::Rmsprop(RmspropConfig::default()),
        }
    }

    pub fn kind(&self) -> OptimizerKind {
        match self {
            OptimizerConfig::Adam(_) => OptimizerKind::Adam,
            OptimizerConfig::Sgd(_) => OptimizerKind::Sgd,
            OptimizerConfig::Rmsprop(_) => OptimizerKind::Rmsprop,
        }
    }

    pub fn learning_rate(&self) -> f64 {
        match self {
            OptimizerConfig::Adam(a) => a.learning_rate,
            OptimizerConfig::Sgd(s) => s.learning_rate,
            OptimizerConfig::Rmsprop(r) => r.learning_rate,
        }
    }

    /// The step size of optimizer step `t` (1-based) that the update kernels read from the step's
    /// record: Adam's bias-corrected `lr sqrt(1 - b2^t) / (1 - b1^t)`, else the learning rate.
    pub fn alpha(&self, t: u64) -> f64 {
        match self {
            OptimizerConfig::Adam(a) => {
                crate::cpu::adam_alpha(a.learning_rate, a.beta1, a.beta2, t)
            }
            _ => self.learning_rate(),
        }
    }

    /// The `Config:` line's words, e.g. `Adam lr 0.001 beta1 0.9 beta2 0.999 epsilon 1e-7`.
    pub fn describe(&self) -> String {
        match self {
            OptimizerConfig::Adam(a) => format!(
                "Adam lr {} beta1 {} beta2 {} epsilon {:e}",
                a.learning_rate, a.beta1, a.beta2, a.epsilon
            ),
            OptimizerConfig::Sgd(s) => format!(
                "SGD lr {} momentum {}{}",
                s.learning_rate,
                s.momentum,
                if s.nesterov { " nesterov" } else { "" }
            ),
            OptimizerConfig::Rmsprop(r) => format!(
                "RMSprop lr {} rho {} momentum {} epsilon {:e}",
                r.learning_rate, r.rho, r.momentum, r.epsilon
            ),
        }
    }
}

/// Reads `optimizer` (tagged with its name) or the `adam` object of older config.json files.
fn optimizer_or_legacy_adam<'de, D: Deserializer<'de>>(d: D) -> Result<OptimizerConfig, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Tagged(OptimizerConfig),
        Legacy(AdamConfig),
    }
    Ok(match Either::deserialize(d)? {
        Either::Tagged(o) => o,
        Either::Legacy(a) => OptimizerConfig::Adam(a),
    })
}

/// Everything that determines a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub hidden: Vec<usize>,
    #[serde(alias = "adam", deserialize_with = "optimizer_or_legacy_adam")]
    pub optimizer: OptimizerConfig,
    pub seed: u64,
    /// Reshuffle the training set every epoch (Keras' `fit(shuffle=True)`).
    pub shuffle: bool,
    /// Train on the first N training images only.
    pub limit_train: Option<usize>,
    /// Stop after this many optimizer steps in total.
    pub max_steps: Option<usize>,
    /// Hold out the last fraction of the training images (after `limit_train`, before shuffling) and
    /// evaluate it after every epoch as `val_*` (Keras' `validation_split`).
    #[serde(default)]
    pub validation_split: Option<f64>,
    /// Evaluate the test set after every epoch too (`test_*` in the history); by default it is
    /// evaluated once, at the end, as the tutorial does.
    #[serde(default)]
    pub test_every_epoch: bool,
    /// Stop when the monitored loss stops improving, and end with the best epoch's weights.
    #[serde(default)]
    pub early_stopping: Option<EarlyStopping>,
    /// Keep the best epoch's weights as best.safetensors in the run folder.
    #[serde(default)]
    pub save_best: bool,
    /// Dropout after the hidden layers (Keras' `Dropout(rate)`, in training only): one rate for every
    /// hidden layer, or one per hidden layer; empty for none (`dropout_rates`).
    #[serde(default)]
    pub dropout: Vec<f64>,
}

impl TrainConfig {
    /// The dropout rate after each hidden layer (empty without dropout): one given rate applies to
    /// every hidden layer.
    pub fn dropout_rates(&self) -> anyhow::Result<Vec<f64>> {
        let hidden = self.hidden.len();
        if let Some(&bad) = self.dropout.iter().find(|r| !(0.0..1.0).contains(*r)) {
            anyhow::bail!("--dropout {bad}: a rate must lie in [0, 1)");
        }
        match self.dropout.as_slice() {
            [] => Ok(Vec::new()),
            [rate] => Ok(vec![*rate; hidden]),
            rates if rates.len() == hidden => Ok(rates.to_vec()),
            rates => anyhow::bail!(
                "--dropout: {} rates for {hidden} hidden layers (give one rate, or one per hidden layer)",
                rates.len()
            ),
        }
    }
}

/// Keras' `EarlyStopping(monitor, patience, min_delta, restore_best_weights=True)`. The monitor is
/// `val_loss` when the run holds out a validation split, else `loss`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    /// Epochs in a row without improvement after which training stops.
    pub patience: usize,
    /// An epoch improves only when it lowers the best loss by more than this.
    pub min_delta: f64,
}

/// The seed used when `--seed` is not given; printed at the start of every run.
pub const DEFAULT_SEED: u64 = 42;

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 32,
            hidden: vec![128],
            optimizer: OptimizerConfig::default(),
            seed: DEFAULT_SEED,
            shuffle: true,
            limit_train: None,
            max_steps: None,
            validation_split: None,
            test_every_epoch: false,
            early_stopping: None,
            save_best: false,
            dropout: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_optimizer_round_trips_with_its_name_and_an_old_adam_object_still_reads() {
        let sgd = TrainConfig {
            optimizer: OptimizerConfig::Sgd(SgdConfig {
                momentum: 0.9,
                nesterov: true,
                ..SgdConfig::default()
            }),
            ..TrainConfig::default()
        };
        let text = serde_json::to_string(&sgd).unwrap();
        assert!(
            text.contains(r#""optimizer":{"name":"sgd","learning_rate":0.01"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<TrainConfig>(&text).unwrap(), sgd);
        // config.json of runs written before other optimizers existed.
        let legacy = text.replace(
            r#""optimizer":{"name":"sgd","learning_rate":0.01,"momentum":0.9,"nesterov":true}"#,
            r#""adam":{"learning_rate":0.002,"beta1":0.9,"beta2":0.999,"epsilon":1e-7}"#,
        );
        let old: TrainConfig = serde_json::from_str(&legacy).unwrap();
        assert_eq!(
            old.optimizer,
            OptimizerConfig::Adam(AdamConfig {
                learning_rate: 0.002,
                ..AdamConfig::default()
            })
        );
    }
}
