//! The figures a training run leaves in its folder: history.png, confusion.png, predictions.png (the
//! tutorial's 5x3 grid) and mistakes.png. Written by `fmnist train` at the end and redrawn by
//! `fmnist plot --run DIR`; tests/plots.rs writes them into a temporary folder.

use std::path::{Path, PathBuf};

use anyhow::{Result, ensure};

use super::{confusion, history, mistakes, predictions};
use crate::data::{ClassNames, Split};
use crate::evaluate::Evaluation;
use crate::train::EpochRecord;

pub const HISTORY_PNG: &str = "history.png";
pub const CONFUSION_PNG: &str = "confusion.png";
pub const PREDICTIONS_PNG: &str = "predictions.png";
pub const MISTAKES_PNG: &str = "mistakes.png";

/// The tutorial's prediction grid: 5 rows of 3 image/bars pairs.
pub const GRID: (usize, usize) = (5, 3);
/// How many wrong predictions mistakes.png shows.
pub const MISTAKES: usize = 24;

/// Draws every run figure into `dir` and returns their paths. `eval` must be the evaluation of `test`;
/// `names` label the classes.
pub fn write(
    dir: &Path,
    history: &[EpochRecord],
    eval: &Evaluation,
    test: &Split,
    names: &ClassNames,
) -> Result<Vec<PathBuf>> {
    ensure!(
        eval.len() == test.len(),
        "the evaluation covers {} images but the test split has {}",
        eval.len(),
        test.len()
    );
    let mut written = Vec::new();
    let mut save = |name: &str, fig: super::Figure| -> Result<()> {
        let path = dir.join(name);
        fig.save(&path)?;
        written.push(path);
        Ok(())
    };
    save(HISTORY_PNG, history::figure(history)?)?;
    save(CONFUSION_PNG, confusion::figure(&eval.confusion(), names)?)?;
    let (rows, cols) = GRID;
    let n = (rows * cols).min(test.len());
    let images: Vec<&[u8]> = (0..n).map(|i| test.image(i)).collect();
    if n == rows * cols {
        save(
            PREDICTIONS_PNG,
            predictions::grid(&images, &eval.probs, &eval.labels, rows, cols, names)?,
        )?;
    }
    save(
        MISTAKES_PNG,
        mistakes::figure(&mistakes::most_confident(eval, MISTAKES), test, names)?,
    )?;
    Ok(written)
}
