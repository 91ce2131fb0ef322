//! history.csv: one row per finished epoch, rewritten after every epoch; read back by
//! `fmnist plot --run DIR` and `train --resume` (for the seconds). Tested through
//! tests/train_cpu.rs, tests/resume.rs and tests/validation.rs.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::HISTORY_FILE;
use crate::atomic::write_atomic;
use crate::train::{EpochRecord, Scores};

/// The columns, old ones first: `seconds` stays the sixth. A score an epoch did not evaluate is an
/// empty cell (pandas reads NaN).
const HISTORY_HEADER: &str =
    "epoch,loss,accuracy,test_loss,test_accuracy,seconds,val_loss,val_accuracy";
/// What runs written before validation existed hold (test scores every epoch); still read.
const HISTORY_HEADER_V1: &str = "epoch,loss,accuracy,test_loss,test_accuracy,seconds";

pub fn write_history(dir: &Path, history: &[EpochRecord]) -> Result<()> {
    let cells = |s: Option<Scores>| match s {
        Some(s) => (format!("{:.6}", s.loss), format!("{:.6}", s.accuracy)),
        None => (String::new(), String::new()),
    };
    let mut csv = format!("{HISTORY_HEADER}\n");
    for r in history {
        let (test_loss, test_accuracy) = cells(r.test);
        let (val_loss, val_accuracy) = cells(r.val);
        csv += &format!(
            "{},{:.6},{:.6},{test_loss},{test_accuracy},{:.3},{val_loss},{val_accuracy}\n",
            r.epoch, r.loss, r.accuracy, r.seconds
        );
    }
    write_atomic(&dir.join(HISTORY_FILE), csv.as_bytes())
}

pub fn read_history(path: &Path) -> Result<Vec<EpochRecord>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the history", path.display()))?;
    let mut lines = text.lines();
    let columns = match lines.next().map(str::trim) {
        Some(HISTORY_HEADER) => 8,
        Some(HISTORY_HEADER_V1) => 6,
        _ => bail!(
            "{}: not an fmnist history (the first line must be `{HISTORY_HEADER}`)",
            path.display()
        ),
    };
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let bad = || {
                anyhow::anyhow!(
                    "{}: line {}: expected {columns} comma-separated values (numbers, or empty \
                     for a score not evaluated), got `{line}`",
                    path.display(),
                    i + 2
                )
            };
            if f.len() != columns {
                return Err(bad());
            }
            let num = |k: usize| -> Result<f64> { f[k].parse().map_err(|_| bad()) };
            let scores = |k: usize| -> Result<Option<Scores>> {
                if k >= columns || (f[k].is_empty() && f[k + 1].is_empty()) {
                    return Ok(None);
                }
                Ok(Some(Scores {
                    loss: num(k)?,
                    accuracy: num(k + 1)?,
                }))
            };
            Ok(EpochRecord {
                epoch: num(0)? as usize,
                loss: num(1)?,
                accuracy: num(2)?,
                test: scores(3)?,
                seconds: num(5)?,
                val: scores(6)?,
            })
        })
        .collect()
}
