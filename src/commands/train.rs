//! `fmnist train`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use fmnist::checkpoint::{self, CheckpointMeta};
use fmnist::config::{AdamConfig, DEFAULT_SEED, TrainConfig};
use fmnist::data;
use fmnist::device::make_backend;
use fmnist::model::{MlpSpec, glorot_init};
use fmnist::progress::KerasProgress;
use fmnist::run;
use fmnist::train::fit;
use fmnist::{out, outln};

use super::{DataArgs, DeviceArgs};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Passes over the training set.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Samples per optimizer step.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub batch_size: u32,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 0.001)]
    pub lr: f64,
    /// Hidden layer sizes, comma-separated (e.g. 256,128) [default: 128, or the --init checkpoint's].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub hidden: Option<Vec<u32>>,
    /// Seed of the initial weights and of the per-epoch shuffle.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    #[command(flatten)]
    pub device: DeviceArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Output folder (default: runs/<date-time>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Train on the first N training images only.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit_train: Option<u64>,
    /// Stop after N optimizer steps.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: Option<u64>,
    /// Keep the dataset order instead of reshuffling every epoch.
    #[arg(long)]
    pub no_shuffle: bool,
    /// Start from this checkpoint's weights instead of a fresh initialisation.
    #[arg(long, value_name = "FILE")]
    pub init: Option<PathBuf>,
    /// Time every GPU kernel and print the per-kernel profile after training.
    #[arg(long)]
    pub profile: bool,
}

impl TrainArgs {
    fn config(&self) -> Result<TrainConfig> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            bail!(
                "--lr {}: the learning rate must be a positive number",
                self.lr
            );
        }
        if self.epochs == 0 {
            bail!("--epochs 0: train for at least one epoch");
        }
        Ok(TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size as usize,
            hidden: self.hidden.as_ref().map_or_else(
                || TrainConfig::default().hidden,
                |h| h.iter().map(|&h| h as usize).collect(),
            ),
            adam: AdamConfig {
                learning_rate: self.lr,
                ..AdamConfig::default()
            },
            seed: self.seed,
            shuffle: !self.no_shuffle,
            limit_train: self.limit_train.map(|n| n as usize),
            max_steps: self.steps.map(|n| n as usize),
        })
    }
}

pub fn run(args: TrainArgs) -> Result<ExitCode> {
    let cfg = args.config()?;
    let location = data::locate(args.data.data_dir.as_deref())?;
    let mut dataset = data::load(&location.dir)
        .with_context(|| format!("loading Fashion-MNIST from {}", location.dir.display()))?;
    if let Some(n) = cfg.limit_train {
        dataset.train = Arc::new(dataset.train.truncated(n));
    }
    let (spec, params, start) = match &args.init {
        Some(path) => {
            let ck = checkpoint::load(path)?;
            if args.hidden.is_some() && ck.spec.hidden != cfg.hidden {
                bail!(
                    "--init {}: the checkpoint has hidden layers {:?} but --hidden asks for {:?}",
                    path.display(),
                    ck.spec.hidden,
                    cfg.hidden
                );
            }
            (
                ck.spec,
                ck.params,
                format!("weights from {}", path.display()),
            )
        }
        None => {
            let spec = MlpSpec::fashion(&cfg.hidden)?;
            let params = glorot_init(&spec, cfg.seed);
            (spec, params, "Glorot-uniform initialisation".to_string())
        }
    };
    let cfg = TrainConfig {
        hidden: spec.hidden.clone(),
        ..cfg
    };
    let mut backend = make_backend(
        args.device.device,
        &args.device.adapter_choice(),
        spec.clone(),
        params,
        cfg.adam,
        cfg.batch_size,
    )?;
    let out = args.out.clone().unwrap_or_else(run::default_run_dir);
    outln!("Device: {}", backend.device_name());
    outln!(
        "Data:   {} ({}) - train {} images, test {} images",
        location.dir.display(),
        location.source,
        dataset.train.len(),
        dataset.test.len()
    );
    outln!(
        "Model:  {} ({} parameters), {start}",
        spec.describe(),
        spec.parameter_count()
    );
    outln!(
        "Config: epochs {} - batch size {} - Adam lr {} beta1 {} beta2 {} epsilon {:e} - seed {}{}{}",
        cfg.epochs,
        cfg.batch_size,
        cfg.adam.learning_rate,
        cfg.adam.beta1,
        cfg.adam.beta2,
        cfg.adam.epsilon,
        cfg.seed,
        if cfg.shuffle { "" } else { " - no shuffle" },
        cfg.max_steps
            .map(|s| format!(" - stop after {s} steps"))
            .unwrap_or_default()
    );
    outln!("Output: {}", out.display());
    if args.profile && !backend.start_profile()? {
        outln!(
            "Profile: {} has no per-kernel profile",
            backend.device_name()
        );
    }
    run::write_config(&out, &cfg, &backend.device_name())?;
    let result = fit(
        backend.as_mut(),
        &dataset.train,
        &dataset.test,
        &cfg,
        &mut KerasProgress::default(),
    )?;
    run::write_history(&out, &result.history)?;
    let model_path = out.join(run::MODEL_FILE);
    let params = backend.params()?;
    let meta = CheckpointMeta {
        epochs: Some(result.history.len()),
        seed: Some(cfg.seed),
        steps: Some(result.steps),
    };
    checkpoint::save(&model_path, &spec, &params, &meta)?;
    if let Some(report) = backend.profile_report()? {
        out!("{}", report.table());
    }
    outln!("Test accuracy: {:.4}", result.final_eval.accuracy);
    outln!("Model saved to {}", model_path.display());
    super::report::print_per_class(&result.final_eval.confusion());
    let figures =
        fmnist::plot::run_figures::write(&out, &result.history, &result.final_eval, &dataset.test)?;
    super::report::print_figures(&figures);
    Ok(ExitCode::SUCCESS)
}
