//! `fmnist predict`: class probabilities of test images.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use fmnist::batches::normalise_range;
use fmnist::checkpoint;
use fmnist::config::AdamConfig;
use fmnist::data::{self, CLASS_NAMES, NUM_CLASSES, PIXELS};
use fmnist::device::make_backend;
use fmnist::evaluate::{argmax, predict};

use super::{DataArgs, DeviceArgs};

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A checkpoint written by `fmnist train` (model.safetensors).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Test image to classify; repeat for several (default: 0).
    #[arg(long = "index", value_name = "I")]
    pub indices: Vec<usize>,
    #[command(flatten)]
    pub device: DeviceArgs,
    #[command(flatten)]
    pub data: DataArgs,
}

pub fn run(args: PredictArgs) -> Result<ExitCode> {
    let ck = checkpoint::load(&args.model)?;
    let location = data::locate(args.data.data_dir.as_deref())?;
    let test = data::load_test(&location.dir)
        .with_context(|| format!("loading the test set from {}", location.dir.display()))?;
    let indices = if args.indices.is_empty() {
        vec![0]
    } else {
        args.indices.clone()
    };
    if let Some(bad) = indices.iter().find(|&&i| i >= test.len()) {
        bail!(
            "--index {bad}: the test set has {} images (0-{})",
            test.len(),
            test.len() - 1
        );
    }
    let mut x = vec![0.0f32; indices.len() * PIXELS];
    for (r, &i) in indices.iter().enumerate() {
        normalise_range(&test, i, 1, &mut x[r * PIXELS..]);
    }
    let mut backend = make_backend(
        args.device.device,
        &args.device.adapter_choice(),
        ck.spec,
        ck.params,
        AdamConfig::default(),
        1,
    )?;
    let probs = predict(backend.as_mut(), &x, indices.len())?;
    for (r, &i) in indices.iter().enumerate() {
        let p = &probs[r * NUM_CLASSES..(r + 1) * NUM_CLASSES];
        let (pred, label) = (argmax(p), test.labels[i] as usize);
        println!("Test image {i} (true: {})", CLASS_NAMES[label]);
        for (c, name) in CLASS_NAMES.iter().enumerate() {
            println!(
                "  {name:<12} {:>7.2}%{}",
                100.0 * p[c],
                if c == pred { "  <-" } else { "" }
            );
        }
        println!(
            "  Predicted: {} {:.0}% ({})",
            CLASS_NAMES[pred],
            100.0 * p[pred],
            if pred == label { "right" } else { "wrong" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
