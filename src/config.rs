//! Training configuration with Keras' defaults; saved as config.json beside every run.

use serde::{Deserialize, Serialize};

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

/// Everything that determines a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub hidden: Vec<usize>,
    pub adam: AdamConfig,
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
            adam: AdamConfig::default(),
            seed: DEFAULT_SEED,
            shuffle: true,
            limit_train: None,
            max_steps: None,
            validation_split: None,
            test_every_epoch: false,
            early_stopping: None,
            save_best: false,
        }
    }
}
