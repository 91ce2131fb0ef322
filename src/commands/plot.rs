//! `fmnist plot --run DIR`: redraws a run's figures from its files (history.csv and model.safetensors;
//! the model is evaluated again on the test set for the confusion matrix, predictions and mistakes).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use fmnist::checkpoint;
use fmnist::error::HintExt;
use fmnist::evaluate::evaluate;
use fmnist::plot::run_figures;
use fmnist::run;

use super::report::{print_figures, print_per_class};
use super::{DataArgs, DeviceArgs};
use fmnist::outln;

#[derive(Args, Debug)]
pub struct PlotArgs {
    /// A folder written by `fmnist train` (holding history.csv and model.safetensors).
    #[arg(long, value_name = "DIR")]
    pub run: PathBuf,
    #[command(flatten)]
    pub device: DeviceArgs,
    #[command(flatten)]
    pub data: DataArgs,
}

pub fn run(args: PlotArgs) -> Result<ExitCode> {
    let dir = &args.run;
    let history_path = dir.join(run::HISTORY_FILE);
    if !history_path.is_file() {
        return Err(anyhow::anyhow!(
            "--run {}: not a run folder (no {})",
            dir.display(),
            run::HISTORY_FILE
        ))
        .hint("give the folder that `fmnist train --out DIR` wrote (runs/<date-time> by default)");
    }
    let history = run::read_history(&history_path)?;
    let ck = checkpoint::load(&dir.join(run::MODEL_FILE))?;
    let names = ck.meta.class_names.clone();
    let test = args.data.load_test()?;
    let mut backend = args.device.inference_backend(ck)?;
    outln!("Device: {}", backend.device_name());
    let eval = evaluate(backend.as_mut(), &test)?;
    super::report::print_test_scores(&eval);
    print_per_class(&eval.confusion(), &names);
    let paths = run_figures::write(dir, &history, &eval, &test, &names)?;
    print_figures(&paths);
    Ok(ExitCode::SUCCESS)
}
