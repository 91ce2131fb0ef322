//! `fmnist info`: the data, its shapes and class counts, and the devices.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use fmnist::data::{self, IMAGE_SIDE};

use super::DataArgs;
use fmnist::outln;

#[derive(Args, Debug)]
pub struct InfoArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Print only the folder where the data was found (exit code 1 when it is not found); `make
    /// setup` asks this instead of repeating the search.
    #[arg(long)]
    pub data_dir_only: bool,
}

pub fn run(args: InfoArgs) -> Result<ExitCode> {
    let location = data::locate(args.data.data_dir.as_deref())?;
    if args.data_dir_only {
        outln!("{}", location.dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let ds = data::load(&location.dir)
        .with_context(|| format!("loading Fashion-MNIST from {}", location.dir.display()))?;
    outln!("Data: {} ({})", location.dir.display(), location.source);
    outln!(
        "  train images ({}, {IMAGE_SIDE}, {IMAGE_SIDE}) u8, labels ({})",
        ds.train.len(),
        ds.train.len()
    );
    outln!(
        "  test  images ({}, {IMAGE_SIDE}, {IMAGE_SIDE}) u8, labels ({})",
        ds.test.len(),
        ds.test.len()
    );
    outln!("  {:<12} {:>6} {:>6}", "class", "train", "test");
    let (tr, te) = (ds.train.class_counts(), ds.test.class_counts());
    let names = super::class_names(None, &location.dir)?;
    for (c, name) in names.iter().enumerate() {
        outln!("  {c} {name:<10} {:>6} {:>6}", tr[c], te[c]);
    }
    outln!("Devices:");
    for line in fmnist::device::describe_devices() {
        outln!("  {line}");
    }
    Ok(ExitCode::SUCCESS)
}
