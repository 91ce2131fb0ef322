//! A run's output folder as a unit: one run per folder, held by one process at a time.
//!
//! A folder holds config.json (every input of the run and its `status`), history.csv and
//! checkpoint.safetensors (rewritten after every epoch), model.safetensors and the figures. A process
//! writing it holds an advisory lock on `.fmnist.lock` inside it for as long as it runs, so a second one
//! fails at once; the stale temp files of killed writers are removed when the folder is opened. The
//! default folder `runs/<date-time>` is created exclusively, with a suffix when the name is taken.
//! Tested by tests/run_folder.rs and tests/resume.rs.

mod history;
mod record;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

pub use history::{read_history, write_history};
pub use record::{InitFile, RunRecord, RunStatus, sha256_file};

use crate::atomic::{remove_stale_temps, sync_dir};
use crate::error::HintExt;
use crate::plot::run_figures;

pub const CONFIG_FILE: &str = "config.json";
pub const HISTORY_FILE: &str = "history.csv";
pub const MODEL_FILE: &str = "model.safetensors";
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// The best epoch's weights, with `train --save-best`.
pub const BEST_FILE: &str = "best.safetensors";
/// The advisory lock a writing process holds; it stays in the folder (removing it would race).
pub const LOCK_FILE: &str = ".fmnist.lock";

/// Every file a run writes: a folder holding any of the first four holds a run, and `--overwrite`
/// removes them all before the new run starts.
pub const RUN_FILES: [&str; 9] = [
    CONFIG_FILE,
    CHECKPOINT_FILE,
    MODEL_FILE,
    HISTORY_FILE,
    BEST_FILE,
    run_figures::HISTORY_PNG,
    run_figures::CONFUSION_PNG,
    run_figures::PREDICTIONS_PNG,
    run_figures::MISTAKES_PNG,
];

/// How many suffixes (`-2`, `-3`, ...) the default folder name tries before giving up.
const MAX_SUFFIX: usize = 1000;

/// An open run folder, locked for this process until dropped.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    _lock: File,
}

impl RunDir {
    /// A new folder `base/<local date-time>`, created exclusively: when the name is taken (another run
    /// started in the same second) `-2`, `-3`, ... is appended.
    pub fn create_default(base: &Path) -> Result<Self> {
        fs::create_dir_all(base)
            .with_context(|| format!("{}: cannot create the folder", base.display()))?;
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S").to_string();
        for n in 1..=MAX_SUFFIX {
            let name = if n == 1 {
                stamp.clone()
            } else {
                format!("{stamp}-{n}")
            };
            let path = base.join(name);
            match fs::create_dir(&path) {
                Ok(()) => {
                    sync_dir(base)
                        .with_context(|| format!("{}: cannot sync the folder", base.display()))?;
                    return Self::lock(path);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("{}: cannot create the folder", path.display()));
                }
            }
        }
        bail!(
            "{}: {MAX_SUFFIX} run folders named {stamp}[-N] already exist",
            base.display()
        )
    }

    /// `--out DIR`: a new folder, or an existing one that holds no run. A folder holding a run is
    /// refused unless `overwrite`, which removes the run's files first.
    pub fn create(dir: &Path, overwrite: bool) -> Result<Self> {
        fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create the folder", dir.display()))?;
        let run = Self::lock(dir.to_path_buf())?;
        if holds_run(dir) {
            if !overwrite {
                let status = RunRecord::read(dir)
                    .map(|r| format!(" (status: {})", r.status))
                    .unwrap_or_default();
                return Err(anyhow::anyhow!(
                    "--out {}: the folder already holds a run{status}",
                    dir.display()
                ))
                .hint(format!(
                    "`fmnist train --resume {}` continues it when unfinished; --overwrite replaces it; or choose another --out",
                    dir.display()
                ));
            }
            for name in RUN_FILES {
                match fs::remove_file(dir.join(name)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(e).with_context(|| {
                            format!("{}: cannot remove the old {name}", dir.display())
                        });
                    }
                    _ => {}
                }
            }
            sync_dir(dir).with_context(|| format!("{}: cannot sync the folder", dir.display()))?;
        }
        Ok(run)
    }

    /// `--resume DIR`: an existing run folder.
    pub fn open_existing(dir: &Path) -> Result<Self> {
        if !dir.join(CONFIG_FILE).is_file() {
            return Err(anyhow::anyhow!(
                "--resume {}: not a run folder (no {CONFIG_FILE})",
                dir.display()
            ))
            .hint("give the folder that `fmnist train` wrote (runs/<date-time> by default)");
        }
        Self::lock(dir.to_path_buf())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Takes the folder's lock (failing at once when another process holds it), then removes the temp
    /// files that killed writers left.
    fn lock(path: PathBuf) -> Result<Self> {
        let lock_path = path.join(LOCK_FILE);
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
        let lock = options
            .open(&lock_path)
            .with_context(|| format!("{}: cannot open the lock file", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(anyhow::anyhow!(
                    "{}: another fmnist process is writing this run folder (it holds {LOCK_FILE})",
                    path.display()
                ))
                .hint("wait for it to finish, or choose another --out");
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(e)
                    .with_context(|| format!("{}: cannot lock the folder", lock_path.display()));
            }
        }
        for removed in remove_stale_temps(&path)? {
            log::info!("removed a stale temp file: {}", removed.display());
        }
        Ok(Self { path, _lock: lock })
    }
}

/// Whether `dir` holds (part of) a run.
pub fn holds_run(dir: &Path) -> bool {
    [CONFIG_FILE, CHECKPOINT_FILE, MODEL_FILE, HISTORY_FILE]
        .iter()
        .any(|f| dir.join(f).exists())
}
