//! `fmnist show`: the tutorial's first two figures, one image (`--index`) or a square grid (`--grid N`),
//! from the training or test split.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use fmnist::data;
use fmnist::error::HintExt;
use fmnist::plot::samples;

use super::DataArgs;
use fmnist::outln;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SplitChoice {
    Train,
    Test,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Draw this image with a colour bar (default: 0).
    #[arg(long, value_name = "I", conflicts_with = "grid")]
    pub index: Option<usize>,
    /// Draw the first N images in a square grid with their class names; N must be a square (25 = 5x5).
    #[arg(long, value_name = "N")]
    pub grid: Option<usize>,
    /// Which split to draw from.
    #[arg(long, value_enum, default_value_t = SplitChoice::Train)]
    pub split: SplitChoice,
    /// PNG file to write (default: image-<split>-<I>.png or grid-<split>-<N>.png).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The classes' names, comma-separated, for data other than Fashion-MNIST [default: the lines of
    /// class_names.txt beside the data files, else Fashion-MNIST's].
    #[arg(long, value_name = "A,B,...")]
    pub class_names: Option<String>,
    #[command(flatten)]
    pub data: DataArgs,
}

pub fn run(args: ShowArgs) -> Result<ExitCode> {
    let split_name = match args.split {
        SplitChoice::Train => "train",
        SplitChoice::Test => "test",
    };
    // Check the flags before the (slower) data load.
    let side = match args.grid {
        Some(n) => Some(square_side(n)?),
        None => None,
    };
    let location = data::locate(args.data.data_dir.as_deref())?;
    let split = match args.split {
        SplitChoice::Train => data::load(&location.dir).map(|d| d.train),
        SplitChoice::Test => data::load_test(&location.dir).map(std::sync::Arc::new),
    }
    .with_context(|| format!("loading Fashion-MNIST from {}", location.dir.display()))?;
    let names = super::class_names(args.class_names.as_deref(), &location.dir)?;
    let (figure, default_name) = match side {
        Some(side) => {
            let n = side * side;
            if n > split.len() {
                bail!(
                    "--grid {n}: the {split_name} split has only {} images",
                    split.len()
                );
            }
            outln!("The first {n} {split_name} images ({side}x{side})");
            (
                samples::grid(&split, side, &names)?,
                format!("grid-{split_name}-{n}.png"),
            )
        }
        None => {
            let i = args.index.unwrap_or(0);
            if i >= split.len() {
                bail!(
                    "--index {i}: the {split_name} split has {} images (0-{})",
                    split.len(),
                    split.len() - 1
                );
            }
            outln!(
                "{} image {i}: {}",
                if split_name == "train" {
                    "Train"
                } else {
                    "Test"
                },
                names.get(split.labels[i] as usize)
            );
            (
                samples::single(split.image(i))?,
                format!("image-{split_name}-{i}.png"),
            )
        }
    };
    let out = args.out.unwrap_or_else(|| PathBuf::from(default_name));
    figure.save(&out)?;
    outln!("Figure saved to {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// The side of an `n`-image square grid.
fn square_side(n: usize) -> Result<usize> {
    let side = (n as f64).sqrt().round() as usize;
    if n == 0 || side * side != n {
        let lower = ((n as f64).sqrt().floor() as usize).max(1);
        return Err(anyhow::anyhow!("--grid {n}: not a square number")).hint(format!(
            "use a square such as {} or {}",
            lower * lower,
            (lower + 1) * (lower + 1)
        ));
    }
    if side > 30 {
        return Err(anyhow::anyhow!(
            "--grid {n}: at most 900 images (30x30) fit one figure"
        ))
        .hint("use --grid 100 or less to read the class names");
    }
    Ok(side)
}
