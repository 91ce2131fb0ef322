//! `fmnist export`: a saved model as an ONNX file for any ONNX runtime.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};
use fmnist::checkpoint;
use fmnist::error::HintExt;
use fmnist::onnx::{self, InputShape};
use fmnist::outln;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Onnx,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Input {
    /// `images [N, 28, 28]` float32 in [0, 1], as the tutorial's test_images / 255.
    Image,
    /// `images [N, 784]` float32 in [0, 1].
    Flat,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A checkpoint written by `fmnist train` (model.safetensors).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// The format to write.
    #[arg(long, value_enum, default_value_t = Format::Onnx)]
    pub format: Format,
    /// The file to write, e.g. model.onnx.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// The shape of the model's input.
    #[arg(long, value_enum, default_value_t = Input::Image)]
    pub input: Input,
    /// Replace --output when it exists (refused otherwise).
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(args: ExportArgs) -> Result<ExitCode> {
    refuse_existing(&args.output, args.overwrite)?;
    let ck = checkpoint::load(&args.model)?;
    let shape = match args.input {
        Input::Image => InputShape::Image,
        Input::Flat => InputShape::Flat,
    };
    let Format::Onnx = args.format;
    let bytes = onnx::encode(&ck.spec, &ck.params, &ck.meta.class_names, shape);
    fmnist::atomic::write_atomic(&args.output, &bytes)?;
    outln!(
        "Wrote {} ({} bytes): {} with input `images` {} float32 in [0, 1] and output `probabilities` [N, {}]",
        args.output.display(),
        bytes.len(),
        ck.spec.describe(),
        match shape {
            InputShape::Image => "[N, 28, 28]",
            InputShape::Flat => "[N, 784]",
        },
        ck.spec.outputs
    );
    Ok(ExitCode::SUCCESS)
}

/// An existing `path` is kept unless `overwrite`.
fn refuse_existing(path: &Path, overwrite: bool) -> Result<()> {
    if !overwrite && std::fs::symlink_metadata(path).is_ok() {
        return Err(anyhow::anyhow!("{}: already exists", path.display()))
            .hint("pass --overwrite to replace it, or name another file");
    }
    Ok(())
}
