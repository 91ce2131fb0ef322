//! Where the dataset is looked for, first hit wins: `--data-dir`, `$FMNIST_DATA`, `./data/fashion-mnist`,
//! Keras' cache, torchvision's raw folder, Debian's package. A folder that exists but cannot be read is
//! reported as such, not as missing. Tested by tests/data_errors.rs and tests/messages.rs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{DOWNLOAD_URL, Dataset, TEST_IMAGES, TRAIN_IMAGES, load, resolve};
use crate::error::Hinted;

/// Where a data folder came from, printed at start so a user knows which copy is used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataLocation {
    pub dir: PathBuf,
    pub source: &'static str,
}

/// The folders searched, first hit wins: `--data-dir`, `$FMNIST_DATA`, `./data/fashion-mnist`, Keras'
/// cache, a torchvision `FashionMNIST/raw` under `./data`, Debian's `dataset-fashion-mnist`.
pub fn candidates(explicit: Option<&Path>) -> Vec<DataLocation> {
    let mut c = Vec::new();
    if let Some(d) = explicit {
        c.push(DataLocation {
            dir: d.to_path_buf(),
            source: "--data-dir",
        });
        return c; // an explicit folder is never silently replaced by another
    }
    if let Some(d) = std::env::var_os("FMNIST_DATA").filter(|d| !d.is_empty()) {
        c.push(DataLocation {
            dir: PathBuf::from(d),
            source: "$FMNIST_DATA",
        });
    }
    c.push(DataLocation {
        dir: PathBuf::from("data/fashion-mnist"),
        source: "./data/fashion-mnist",
    });
    if let Some(home) = std::env::var_os("HOME") {
        c.push(DataLocation {
            dir: Path::new(&home).join(".keras/datasets/fashion-mnist"),
            source: "Keras cache",
        });
    }
    c.push(DataLocation {
        dir: PathBuf::from("data/FashionMNIST/raw"),
        source: "torchvision ./data/FashionMNIST/raw",
    });
    c.push(DataLocation {
        dir: PathBuf::from("/usr/share/datasets/fashion-mnist"),
        source: "Debian dataset-fashion-mnist",
    });
    c
}

/// The first candidate folder that holds the training or test images (gzip or plain).
pub fn locate(explicit: Option<&Path>) -> Result<DataLocation> {
    let cands = candidates(explicit);
    let mut unreadable = Vec::new();
    for c in &cands {
        match std::fs::read_dir(&c.dir) {
            Ok(_) => {
                if resolve(&c.dir, TRAIN_IMAGES).exists() || resolve(&c.dir, TEST_IMAGES).exists() {
                    return Ok(c.clone());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => unreadable.push(format!("{} ({e})", c.dir.display())),
        }
    }
    if !unreadable.is_empty() {
        return Err(anyhow::Error::new(Hinted::new(
            anyhow::anyhow!("cannot read the data folder {}", unreadable.join(", ")),
            "check its permissions (ls -ld), or pass --data-dir with a folder you can read",
        )));
    }
    let looked: Vec<String> = cands.iter().map(|c| c.dir.display().to_string()).collect();
    Err(anyhow::Error::new(Hinted::new(
        anyhow::anyhow!("Fashion-MNIST not found; looked in: {}", looked.join(", ")),
        format!(
            "run `make setup` (installs Debian's dataset-fashion-mnist), or download the four .gz files from {DOWNLOAD_URL} into ./data/fashion-mnist, or pass --data-dir"
        ),
    )))
}

/// Locates and loads the whole dataset.
pub fn locate_and_load(explicit: Option<&Path>) -> Result<Dataset> {
    let loc = locate(explicit)?;
    load(&loc.dir).with_context(|| {
        format!(
            "loading Fashion-MNIST from {} ({})",
            loc.dir.display(),
            loc.source
        )
    })
}
