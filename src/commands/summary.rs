//! `fmnist summary`: Keras' `model.summary()` of the model `train --hidden` would build, or of a saved
//! checkpoint's.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use fmnist::checkpoint;
use fmnist::config::TrainConfig;
use fmnist::model::MlpSpec;
use fmnist::outln;

#[derive(Args, Debug)]
pub struct SummaryArgs {
    /// Hidden layer sizes, comma-separated, as `train --hidden` takes them [default: 128].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=65536), conflicts_with = "model")]
    pub hidden: Option<Vec<u32>>,
    /// A checkpoint written by `fmnist train` (model.safetensors): summarise its model instead.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
}

pub fn run(args: SummaryArgs) -> Result<ExitCode> {
    let (spec, name) = match &args.model {
        Some(path) => (
            checkpoint::load(path)?.spec,
            path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
        ),
        None => {
            let hidden: Vec<usize> = args.hidden.as_ref().map_or_else(
                || TrainConfig::default().hidden,
                |h| h.iter().map(|&u| u as usize).collect(),
            );
            (MlpSpec::fashion(&hidden)?, "sequential".to_string())
        }
    };
    fmnist::out!("{}", fmnist::summary::summary(&spec, &name));
    outln!(
        " (ReLU after every hidden layer; the last layer's outputs are logits, softmax turns them into probabilities)"
    );
    Ok(ExitCode::SUCCESS)
}
