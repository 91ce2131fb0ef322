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
        }
    }
}
