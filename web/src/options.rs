//! The page's training form as a `TrainConfig`: what `fmnist train`'s flags of the same names set, with
//! the same defaults (the tutorial's) and the same checks.

use anyhow::{Result, bail};
use serde::Deserialize;

use fmnist::config::{OptimizerConfig, OptimizerKind, TrainConfig};
use fmnist::model::MlpSpec;

/// The largest batch the page offers: a browser's GPU memory is shared with everything else it shows.
pub const MAX_BATCH: usize = 4096;
/// The most epochs one press of Train runs.
pub const MAX_EPOCHS: usize = 1000;

/// The form, as the page sends it (JSON); a field left out keeps `fmnist train`'s default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebOptions {
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub hidden: Option<Vec<usize>>,
    /// `adam`, `sgd` or `rmsprop`, with Keras' defaults.
    pub optimizer: Option<String>,
    pub learning_rate: Option<f64>,
    pub seed: Option<u64>,
    pub validation_split: Option<f64>,
    pub dropout: Option<Vec<f64>>,
}

impl WebOptions {
    pub fn parse(json: &str) -> Result<Self> {
        serde_json::from_str(json).map_err(|e| anyhow::anyhow!("the training options: {e}"))
    }

    /// The run these options ask for, checked as the CLI checks its flags.
    pub fn config(&self) -> Result<TrainConfig> {
        let mut cfg = TrainConfig::default();
        if let Some(epochs) = self.epochs {
            if !(1..=MAX_EPOCHS).contains(&epochs) {
                bail!("epochs {epochs}: train for 1 to {MAX_EPOCHS} epochs");
            }
            cfg.epochs = epochs;
        }
        if let Some(batch) = self.batch_size {
            if !(1..=MAX_BATCH).contains(&batch) {
                bail!("batch size {batch}: choose 1 to {MAX_BATCH}");
            }
            cfg.batch_size = batch;
        }
        if let Some(hidden) = &self.hidden {
            if hidden.is_empty() {
                bail!("hidden sizes: give at least one layer, such as 128");
            }
            cfg.hidden = hidden.clone();
        }
        let spec = MlpSpec::fashion(&cfg.hidden)?;
        spec.check_memory(cfg.batch_size, "")?;
        if let Some(name) = &self.optimizer {
            let Some(kind) = OptimizerKind::from_name(name) else {
                bail!("optimizer {name:?}: choose adam, sgd or rmsprop");
            };
            cfg.optimizer = OptimizerConfig::default_for(kind);
        }
        if let Some(lr) = self.learning_rate {
            if !(lr.is_finite() && lr > 0.0) {
                bail!("learning rate {lr}: the learning rate must be a positive number");
            }
            cfg.optimizer = with_learning_rate(cfg.optimizer, lr);
        }
        if let Some(seed) = self.seed {
            cfg.seed = seed;
        }
        if let Some(f) = self.validation_split {
            if !(f > 0.0 && f < 1.0) {
                bail!(
                    "validation split {f}: the fraction held out must lie strictly between 0 and 1"
                );
            }
            cfg.validation_split = Some(f);
        }
        cfg.dropout = self.dropout.clone().unwrap_or_default();
        // The library's message names the CLI's flag; the page's field is called "Dropout".
        cfg.dropout_rates()
            .map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_start_matches("--")))?;
        Ok(cfg)
    }
}

fn with_learning_rate(optimizer: OptimizerConfig, lr: f64) -> OptimizerConfig {
    match optimizer {
        OptimizerConfig::Adam(mut a) => {
            a.learning_rate = lr;
            OptimizerConfig::Adam(a)
        }
        OptimizerConfig::Sgd(mut s) => {
            s.learning_rate = lr;
            OptimizerConfig::Sgd(s)
        }
        OptimizerConfig::Rmsprop(mut r) => {
            r.learning_rate = lr;
            OptimizerConfig::Rmsprop(r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_options_are_the_tutorial() {
        let cfg = WebOptions::parse("{}").unwrap().config().unwrap();
        assert_eq!(cfg, TrainConfig::default());
    }

    #[test]
    fn options_set_what_the_flags_set() {
        let json = r#"{"epochs": 2, "batch_size": 64, "hidden": [256, 64], "optimizer": "sgd",
            "learning_rate": 0.05, "seed": 7, "validation_split": 0.1, "dropout": [0.2]}"#;
        let cfg = WebOptions::parse(json).unwrap().config().unwrap();
        assert_eq!((cfg.epochs, cfg.batch_size, cfg.seed), (2, 64, 7));
        assert_eq!(cfg.hidden, vec![256, 64]);
        assert_eq!(cfg.optimizer.kind(), OptimizerKind::Sgd);
        assert_eq!(cfg.optimizer.learning_rate(), 0.05);
        assert_eq!(cfg.validation_split, Some(0.1));
        assert_eq!(cfg.dropout_rates().unwrap(), vec![0.2, 0.2]);
    }

    #[test]
    fn bad_options_say_which_and_why() {
        for (json, words) in [
            (r#"{"epochs": 0}"#, "epochs 0"),
            (r#"{"batch_size": 0}"#, "batch size 0"),
            (r#"{"hidden": []}"#, "at least one layer"),
            (r#"{"hidden": [0]}"#, "at least one unit"),
            (r#"{"optimizer": "adamw"}"#, "adamw"),
            (r#"{"learning_rate": -1}"#, "learning rate -1"),
            (r#"{"validation_split": 1.5}"#, "validation split 1.5"),
            (
                r#"{"dropout": [1.0]}"#,
                "dropout 1: a rate must lie in [0, 1)",
            ),
            (
                r#"{"dropout": [0.1, 0.2]}"#,
                "dropout: 2 rates for 1 hidden layers",
            ),
            (r#"{"epoch": 3}"#, "unknown field `epoch`"),
            (r#"{"hidden": [1000000]}"#, "at most 65536"),
            (r#"{"hidden": [60000, 60000]}"#, "784-60000-60000-10"),
        ] {
            let err = WebOptions::parse(json)
                .and_then(|o| o.config())
                .unwrap_err();
            let text = format!("{err:#}");
            assert!(text.contains(words), "{json}: {text:?} lacks {words:?}");
            assert!(
                !text.contains("--"),
                "{json}: the page has no flags: {text:?}"
            );
        }
    }
}
