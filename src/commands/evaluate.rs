//! `fmnist evaluate`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use fmnist::checkpoint;
use fmnist::evaluate::evaluate;

use super::{DataArgs, DeviceArgs};
use fmnist::outln;

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
    let names = ck.meta.class_names.clone();
    let test = args.data.load_test()?;
    let mut backend = args.device.inference_backend(ck)?;
    outln!("Device: {}", backend.device_name());
    let eval = evaluate(backend.as_mut(), &test)?;
    super::report::print_test_scores(&eval);
    super::report::print_per_class(&eval.confusion(), &names);
    Ok(ExitCode::SUCCESS)
}
