//! history.csv: one row per finished epoch, rewritten after every epoch; read back by
//! `fmnist plot --run DIR`. Tested through tests/train_cpu.rs and tests/resume.rs.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::HISTORY_FILE;
use crate::atomic::write_atomic;
use crate::train::EpochRecord;

const HISTORY_HEADER: &str = "epoch,loss,accuracy,test_loss,test_accuracy,seconds";

pub fn write_history(dir: &Path, history: &[EpochRecord]) -> Result<()> {
    let mut csv = format!("{HISTORY_HEADER}\n");
    for r in history {
        csv += &format!(
            "{},{:.6},{:.6},{:.6},{:.6},{:.3}\n",
            r.epoch, r.loss, r.accuracy, r.test_loss, r.test_accuracy, r.seconds
        );
    }
    write_atomic(&dir.join(HISTORY_FILE), csv.as_bytes())
}

pub fn read_history(path: &Path) -> Result<Vec<EpochRecord>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the history", path.display()))?;
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some(HISTORY_HEADER) {
        bail!(
            "{}: not an fmnist history (the first line must be `{HISTORY_HEADER}`)",
            path.display()
        );
    }
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(',').collect();
            let num = |k: usize| -> Result<f64> {
                f.get(k)
                    .and_then(|v| v.trim().parse().ok())
                    .with_context(|| {
                        format!(
                            "{}: line {}: expected 6 numbers, got `{line}`",
                            path.display(),
                            i + 2
                        )
                    })
            };
            Ok(EpochRecord {
                epoch: num(0)? as usize,
                loss: num(1)?,
                accuracy: num(2)?,
                test_loss: num(3)?,
                test_accuracy: num(4)?,
                seconds: num(5)?,
            })
        })
        .collect()
}
