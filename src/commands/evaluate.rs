//! `fmnist evaluate`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use fmnist::checkpoint;
use fmnist::config::AdamConfig;
use fmnist::data;
use fmnist::device::make_backend;
use fmnist::evaluate::evaluate;

use super::{DataArgs, DeviceArgs};

#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// A checkpoint written by `fmnist train` (model.safetensors).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    #[command(flatten)]
    pub device: DeviceArgs,
    #[command(flatten)]
    pub data: DataArgs,
}

pub fn run(args: EvaluateArgs) -> Result<ExitCode> {
    let ck = checkpoint::load(&args.model)?;
    let location = data::locate(args.data.data_dir.as_deref())?;
    let test = data::load_test(&location.dir)
        .with_context(|| format!("loading the test set from {}", location.dir.display()))?;
    let mut backend = make_backend(
        args.device.device,
        &args.device.adapter_choice(),
        ck.spec,
        ck.params,
        AdamConfig::default(),
        1,
    )?;
    println!("Device: {}", backend.device_name());
    let eval = evaluate(backend.as_mut(), &test)?;
    println!(
        "{}/{} - test_loss: {:.4} - test_accuracy: {:.4}",
        test.len(),
        test.len(),
        eval.loss,
        eval.accuracy
    );
    println!("Test accuracy: {:.4}", eval.accuracy);
    super::report::print_per_class(&eval.confusion());
    Ok(ExitCode::SUCCESS)
}
