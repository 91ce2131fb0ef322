//! `fmnist train`: the flags, and the plan of a new run (the run folder, the first weights). A run
//! continued with `--resume` is planned by `resume.rs`; both are carried out by `session.rs`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use fmnist::checkpoint;
use fmnist::config::{
    AdamConfig, DEFAULT_SEED, EarlyStopping, OptimizerConfig, OptimizerKind, RmspropConfig,
    SgdConfig, TrainConfig,
};
use fmnist::data::{self, DataLocation, Dataset};
use fmnist::model::{MlpSpec, glorot_init};
use fmnist::run::{InitFile, RunDir, RunRecord, RunStatus, sha256_file};
use fmnist::train::FitPosition;

use super::session::{self, Plan};
use super::{DataArgs, DeviceArgs};

/// Where `train` puts a run when `--out` is not given: `runs/<date-time>`.
const DEFAULT_RUNS: &str = "runs";

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Passes over the training set.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Samples per optimizer step.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub batch_size: u32,
    /// The optimizer, with Keras 3's defaults for every hyper-parameter not given.
    #[arg(long, value_enum, default_value_t = OptimizerArg::Adam)]
    pub optimizer: OptimizerArg,
    /// The learning rate [default: Keras': 0.001 for adam and rmsprop, 0.01 for sgd].
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Momentum of sgd and rmsprop [default: 0].
    #[arg(long, value_name = "M", allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    /// Nesterov momentum for sgd.
    #[arg(long)]
    pub nesterov: bool,
    /// rmsprop's discount of the squared-gradient average [default: 0.9].
    #[arg(long, allow_negative_numbers = true)]
    pub rho: Option<f64>,
    /// adam's first-moment decay [default: 0.9].
    #[arg(long, allow_negative_numbers = true)]
    pub beta1: Option<f64>,
    /// adam's second-moment decay [default: 0.999].
    #[arg(long, allow_negative_numbers = true)]
    pub beta2: Option<f64>,
    /// adam's and rmsprop's epsilon [default: 1e-7].
    #[arg(long, allow_negative_numbers = true)]
    pub epsilon: Option<f64>,
    /// Hidden layer sizes, comma-separated (e.g. 256,128) [default: 128, or the --init checkpoint's].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub hidden: Option<Vec<u32>>,
    /// The classes' names, comma-separated (10 of them), for data other than Fashion-MNIST [default:
    /// the lines of class_names.txt beside the data files, else Fashion-MNIST's]. They are saved in the
    /// model and label its figures.
    #[arg(long, value_name = "A,B,...")]
    pub class_names: Option<String>,
    /// Seed of the initial weights and of the per-epoch shuffle.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    #[command(flatten)]
    pub device: DeviceArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Output folder (default: runs/<date-time>); refused when it already holds a run.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace the run that --out already holds.
    #[arg(long, requires = "out")]
    pub overwrite: bool,
    /// Continue the interrupted run in DIR from its checkpoint, with its saved settings.
    #[arg(long, value_name = "DIR", conflicts_with_all = [
        "epochs", "batch_size", "optimizer", "lr", "momentum", "nesterov", "rho", "beta1", "beta2",
        "epsilon", "hidden", "seed", "out", "overwrite", "limit_train", "steps",
        "no_shuffle", "init", "dropout", "validation_split", "test_every_epoch", "early_stopping", "min_delta",
        "save_best",
    ])]
    pub resume: Option<PathBuf>,
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
    /// Dropout after the hidden layers, in training only (Keras' Dropout): one rate for every hidden
    /// layer, or one per hidden layer, comma-separated like --hidden [default: none].
    #[arg(
        long,
        value_name = "RATE",
        value_delimiter = ',',
        allow_negative_numbers = true
    )]
    pub dropout: Option<Vec<f64>>,
    /// Hold out the last fraction F of the training images (before shuffling) and report val_loss and
    /// val_accuracy after every epoch, as Keras' validation_split does.
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    pub validation_split: Option<f64>,
    /// Evaluate the test set after every epoch too (test_loss, test_accuracy), not only at the end.
    #[arg(long)]
    pub test_every_epoch: bool,
    /// Stop when the monitored loss (val_loss with --validation-split, else loss) has not improved for
    /// PATIENCE epochs, and end with the best epoch's weights.
    #[arg(long, value_name = "PATIENCE", allow_negative_numbers = true)]
    pub early_stopping: Option<usize>,
    /// The smallest drop of the monitored loss that counts as an improvement for --early-stopping.
    #[arg(
        long,
        value_name = "D",
        requires = "early_stopping",
        allow_negative_numbers = true
    )]
    pub min_delta: Option<f64>,
    /// Keep the best epoch's weights (lowest val_loss, else loss) as best.safetensors in the run folder.
    #[arg(long)]
    pub save_best: bool,
    /// Time every GPU kernel and print the per-kernel profile after training.
    #[arg(long)]
    pub profile: bool,
}

impl TrainArgs {
    fn config(&self) -> Result<TrainConfig> {
        if self.epochs == 0 {
            bail!("--epochs 0: train for at least one epoch");
        }
        if let Some(f) = self.validation_split
            && !(f > 0.0 && f < 1.0)
        {
            bail!(
                "--validation-split {f}: the fraction held out must lie strictly between 0 and 1"
            );
        }
        let min_delta = self.min_delta.unwrap_or(0.0);
        if !(min_delta.is_finite() && min_delta >= 0.0) {
            bail!("--min-delta {min_delta}: the smallest improvement must be a number >= 0");
        }
        Ok(TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size as usize,
            hidden: self.hidden.as_ref().map_or_else(
                || TrainConfig::default().hidden,
                |h| h.iter().map(|&h| h as usize).collect(),
            ),
            optimizer: self.optimizer()?,
            seed: self.seed,
            shuffle: !self.no_shuffle,
            limit_train: self.limit_train.map(|n| n as usize),
            max_steps: self.steps.map(|n| n as usize),
            validation_split: self.validation_split,
            test_every_epoch: self.test_every_epoch,
            early_stopping: self.early_stopping.map(|patience| EarlyStopping {
                patience,
                min_delta,
            }),
            save_best: self.save_best,
            dropout: self.dropout.clone().unwrap_or_default(),
        })
    }
}

/// `--optimizer` as clap parses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizerArg {
    Adam,
    Sgd,
    Rmsprop,
}

impl TrainArgs {
    /// The optimizer the flags ask for: Keras' defaults overridden by each flag given, every value
    /// checked, and a flag the optimizer does not have refused (so a typo is not silently ignored).
    fn optimizer(&self) -> Result<OptimizerConfig> {
        let kind = match self.optimizer {
            OptimizerArg::Adam => OptimizerKind::Adam,
            OptimizerArg::Sgd => OptimizerKind::Sgd,
            OptimizerArg::Rmsprop => OptimizerKind::Rmsprop,
        };
        let name = kind.name();
        let given = [
            (
                "--momentum",
                self.momentum.is_some(),
                kind != OptimizerKind::Adam,
            ),
            ("--nesterov", self.nesterov, kind == OptimizerKind::Sgd),
            ("--rho", self.rho.is_some(), kind == OptimizerKind::Rmsprop),
            ("--beta1", self.beta1.is_some(), kind == OptimizerKind::Adam),
            ("--beta2", self.beta2.is_some(), kind == OptimizerKind::Adam),
            (
                "--epsilon",
                self.epsilon.is_some(),
                kind != OptimizerKind::Sgd,
            ),
        ];
        if let Some((flag, ..)) = given.iter().find(|(_, set, applies)| *set && !applies) {
            bail!("{flag}: --optimizer {name} has no such hyper-parameter");
        }
        let check = |flag: &str, v: Option<f64>, ok: fn(f64) -> bool, what: &str| -> Result<()> {
            match v {
                Some(x) if !ok(x) => bail!("{flag} {x}: {what}"),
                _ => Ok(()),
            }
        };
        let unit = |x: f64| (0.0..1.0).contains(&x);
        check(
            "--lr",
            self.lr,
            |x| x.is_finite() && x > 0.0,
            "the learning rate must be a positive number",
        )?;
        check(
            "--momentum",
            self.momentum,
            unit,
            "the momentum must lie in [0, 1)",
        )?;
        check("--rho", self.rho, unit, "rho must lie in [0, 1)")?;
        check("--beta1", self.beta1, unit, "beta1 must lie in [0, 1)")?;
        check("--beta2", self.beta2, unit, "beta2 must lie in [0, 1)")?;
        check(
            "--epsilon",
            self.epsilon,
            |x| x.is_finite() && x > 0.0,
            "epsilon must be a positive number",
        )?;
        Ok(match OptimizerConfig::default_for(kind) {
            OptimizerConfig::Adam(a) => OptimizerConfig::Adam(AdamConfig {
                learning_rate: self.lr.unwrap_or(a.learning_rate),
                beta1: self.beta1.unwrap_or(a.beta1),
                beta2: self.beta2.unwrap_or(a.beta2),
                epsilon: self.epsilon.unwrap_or(a.epsilon),
            }),
            OptimizerConfig::Sgd(s) => OptimizerConfig::Sgd(SgdConfig {
                learning_rate: self.lr.unwrap_or(s.learning_rate),
                momentum: self.momentum.unwrap_or(s.momentum),
                nesterov: self.nesterov,
            }),
            OptimizerConfig::Rmsprop(r) => OptimizerConfig::Rmsprop(RmspropConfig {
                learning_rate: self.lr.unwrap_or(r.learning_rate),
                rho: self.rho.unwrap_or(r.rho),
                momentum: self.momentum.unwrap_or(r.momentum),
                epsilon: self.epsilon.unwrap_or(r.epsilon),
            }),
        })
    }
}

pub fn run(args: TrainArgs) -> Result<ExitCode> {
    let plan = match &args.resume {
        Some(dir) => match super::resume::plan(dir, &args)? {
            Some(plan) => plan,
            None => return Ok(ExitCode::SUCCESS),
        },
        None => plan_new(&args)?,
    };
    session::execute(plan, &args)
}

/// Loads the training data as `cfg` says: `--limit-train` applied, then `--validation-split` held out.
pub fn load_data(location: &DataLocation, cfg: &TrainConfig) -> Result<Dataset> {
    let mut dataset = data::load(&location.dir)
        .with_context(|| format!("loading Fashion-MNIST from {}", location.dir.display()))?;
    if let Some(n) = cfg.limit_train {
        dataset.train = Arc::new(dataset.train.truncated(n));
    }
    if let Some(fraction) = cfg.validation_split {
        let train = Arc::try_unwrap(std::mem::take(&mut dataset.train))
            .unwrap_or_else(|shared| (*shared).clone());
        let (train, validation) = train
            .split_validation(fraction)
            .with_context(|| format!("--validation-split {fraction}"))?;
        dataset.train = Arc::new(train);
        dataset.validation = Some(Arc::new(validation));
    }
    Ok(dataset)
}

/// The first weights of a run: the `--init` checkpoint's (checked against `cfg`), else Glorot-uniform
/// from the seed. Returns the spec, the weights and how they were made.
pub fn first_weights(
    init: Option<&Path>,
    hidden_given: bool,
    cfg: &TrainConfig,
) -> Result<(MlpSpec, Vec<f32>, String)> {
    match init {
        Some(path) => {
            let ck = checkpoint::load(path)?;
            if hidden_given && ck.spec.hidden != cfg.hidden {
                bail!(
                    "--init {}: the checkpoint has hidden layers {:?} but --hidden asks for {:?}",
                    path.display(),
                    ck.spec.hidden,
                    cfg.hidden
                );
            }
            Ok((
                ck.spec,
                ck.params,
                format!("weights from {}", path.display()),
            ))
        }
        None => {
            let spec = MlpSpec::fashion(&cfg.hidden)?;
            let sizes: Vec<String> = cfg.hidden.iter().map(|h| h.to_string()).collect();
            spec.check_memory(cfg.batch_size, &format!("--hidden {}: ", sizes.join(",")))?;
            let params = glorot_init(&spec, cfg.seed);
            Ok((spec, params, "Glorot-uniform initialisation".to_string()))
        }
    }
}

fn plan_new(args: &TrainArgs) -> Result<Plan> {
    let cfg = args.config()?;
    let location = data::locate(args.data.data_dir.as_deref())?;
    let mut dataset = load_data(&location, &cfg)?;
    dataset.class_names = super::class_names(args.class_names.as_deref(), &location.dir)?;
    let (spec, params, origin) = first_weights(args.init.as_deref(), args.hidden.is_some(), &cfg)?;
    let init = match &args.init {
        Some(path) => Some(InitFile {
            path: std::path::absolute(path).unwrap_or_else(|_| path.clone()),
            sha256: sha256_file(path)?,
        }),
        None => None,
    };
    let cfg = TrainConfig {
        hidden: spec.hidden.clone(),
        ..cfg
    };
    // A single rate applies to every hidden layer; a list must name each.
    cfg.dropout_rates()?;
    let dir = match &args.out {
        Some(out) => RunDir::create(out, args.overwrite)?,
        None => RunDir::create_default(Path::new(DEFAULT_RUNS))?,
    };
    let record = RunRecord {
        status: RunStatus::Running,
        program: RunRecord::program_version(),
        config: cfg.clone(),
        data_dir: std::path::absolute(&location.dir).unwrap_or_else(|_| location.dir.clone()),
        init,
        device: String::new(),
        device_choice: session::choice_name(args.device.choice()),
        adapter: args.device.adapter.clone(),
        epochs_done: 0,
        steps_done: 0,
        message: None,
    };
    Ok(Plan {
        cfg,
        spec,
        params,
        optimizer: None,
        start: FitPosition::default(),
        dir,
        record,
        location,
        dataset,
        origin,
    })
}
