//! config.json: every input of a run (the training config, the data folder, the `--init` file and its
//! sha256, the device, the program version) and its `status`, so the folder always says what it holds
//! and the run can be repeated or resumed from it. Tested by tests/run_folder.rs and tests/resume.rs.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::CONFIG_FILE;
use crate::atomic::write_atomic;
use crate::config::TrainConfig;

/// What a run folder holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Training, or killed while training (then no process holds the folder's lock): the checkpoint
    /// holds the last finished epoch.
    Running,
    /// Every epoch done; the model is final.
    Finished,
    /// Stopped by Ctrl-C or SIGTERM; the checkpoint and model hold the step it stopped at.
    Interrupted,
    /// The loss became NaN or infinite; the checkpoint holds the last finished epoch.
    Diverged,
    /// Stopped by an error (see `message`); the checkpoint holds the last finished epoch.
    Failed,
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Diverged => "diverged",
            RunStatus::Failed => "failed",
        };
        f.write_str(s)
    }
}

/// The `--init` checkpoint a run started from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitFile {
    pub path: PathBuf,
    pub sha256: String,
}

/// config.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub status: RunStatus,
    /// e.g. `fmnist 0.1.0`.
    pub program: String,
    /// The settings of the run, at the top level of the file.
    #[serde(flatten)]
    pub config: TrainConfig,
    /// The folder the four IDX files were read from.
    pub data_dir: PathBuf,
    /// The checkpoint the weights started from; `null` for a fresh Glorot initialisation.
    pub init: Option<InitFile>,
    /// What it ran on (the last process that trained it).
    pub device: String,
    /// `--device` as given (`auto`, `cpu`, `gpu`), and `--adapter`: what `--resume` uses by default.
    pub device_choice: String,
    pub adapter: Option<String>,
    /// Epochs finished so far.
    pub epochs_done: usize,
    /// Optimizer steps taken so far.
    pub steps_done: u64,
    /// Why the run stopped, when it did not finish.
    pub message: Option<String>,
}

impl RunRecord {
    /// The program name and version recorded in every run.
    pub fn program_version() -> String {
        format!("{} {}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self)? + "\n";
        write_atomic(&dir.join(CONFIG_FILE), json.as_bytes())
    }

    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: not the config.json of an fmnist run", path.display()))
    }
}

/// The sha256 of a file, as 64 lowercase hex digits.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_a_known_input() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
