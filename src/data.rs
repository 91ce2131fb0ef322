//! Fashion-MNIST on disk: the IDX reader (gzip or plain), its validation, and where the files are looked
//! for. Images stay `u8` in memory; `batches.rs` normalises them to f32 per minibatch.
//! Every malformed case has its own `IdxError`; tests/data_errors.rs builds each one.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use flate2::read::GzDecoder;

pub const IMAGE_SIDE: usize = 28;
pub const PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;
pub const NUM_CLASSES: usize = 10;

/// The tutorial's class names, indexed by label.
pub const CLASS_NAMES: [&str; NUM_CLASSES] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

/// The four files, by their official names; each may also be present uncompressed (without `.gz`).
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte.gz";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte.gz";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte.gz";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte.gz";

/// Where the official files can be downloaded, for the "no data" hint.
pub const DOWNLOAD_URL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    #[error("{path}: file not found")]
    Missing { path: PathBuf },
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: not a gzip file (the name ends in .gz but the content does not start with the gzip magic 1f 8b)"
    )]
    NotGzip { path: PathBuf },
    #[error("{path}: corrupt gzip data: {source}")]
    CorruptGzip {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: wrong magic number 0x{found:08x}, expected 0x{expected:08x} (an IDX {what} file)"
    )]
    BadMagic {
        path: PathBuf,
        found: u32,
        expected: u32,
        what: &'static str,
    },
    #[error("{path}: header too short: {len} bytes, an IDX {what} header needs {needed}")]
    ShortHeader {
        path: PathBuf,
        len: usize,
        needed: usize,
        what: &'static str,
    },
    #[error("{path}: images are {rows}x{cols}, expected {IMAGE_SIDE}x{IMAGE_SIDE}")]
    BadDims {
        path: PathBuf,
        rows: usize,
        cols: usize,
    },
    #[error(
        "{path}: truncated: the header promises {expected} bytes of data, the file holds {found}"
    )]
    Truncated {
        path: PathBuf,
        expected: usize,
        found: usize,
    },
    #[error("{path}: {extra} bytes after the {expected} bytes the header promises")]
    TrailingBytes {
        path: PathBuf,
        expected: usize,
        extra: usize,
    },
    #[error("{images} holds {n_images} images but {labels} holds {n_labels} labels")]
    CountMismatch {
        images: PathBuf,
        n_images: usize,
        labels: PathBuf,
        n_labels: usize,
    },
    #[error("{path}: label {label} at index {index} is not a class (0-9)")]
    BadLabel {
        path: PathBuf,
        index: usize,
        label: u8,
    },
}

/// One split (train or test): `images (len, pixels)` as u8 and `labels (len)`. Fashion-MNIST images have
/// 784 pixels; tests use other widths to exercise padding.
#[derive(Clone, Debug)]
pub struct Split {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
    /// Pixels per image.
    pub pixels: usize,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// The pixels of image `i`, row-major.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * self.pixels..(i + 1) * self.pixels]
    }
    /// A copy of the first `n` samples (all when `n >= len`).
    pub fn truncated(&self, n: usize) -> Split {
        let n = n.min(self.len());
        Split {
            images: self.images[..n * self.pixels].to_vec(),
            labels: self.labels[..n].to_vec(),
            pixels: self.pixels,
        }
    }
    /// How many samples of each class.
    pub fn class_counts(&self) -> [usize; NUM_CLASSES] {
        let mut counts = [0; NUM_CLASSES];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }
}

#[derive(Clone, Debug)]
pub struct Dataset {
    pub dir: PathBuf,
    /// Shared, not copied, by every backend that trains or evaluates on it.
    pub train: Arc<Split>,
    pub test: Arc<Split>,
}

/// Reads and validates the four files in `dir`.
pub fn load(dir: &Path) -> Result<Dataset, IdxError> {
    Ok(Dataset {
        dir: dir.to_path_buf(),
        train: Arc::new(load_split(dir, TRAIN_IMAGES, TRAIN_LABELS)?),
        test: Arc::new(load_split(dir, TEST_IMAGES, TEST_LABELS)?),
    })
}

/// Reads the test split only (evaluate and predict need nothing else).
pub fn load_test(dir: &Path) -> Result<Split, IdxError> {
    load_split(dir, TEST_IMAGES, TEST_LABELS)
}

fn load_split(dir: &Path, images: &str, labels: &str) -> Result<Split, IdxError> {
    let (images_path, labels_path) = (resolve(dir, images), resolve(dir, labels));
    let images = read_idx_images(&images_path)?;
    let labels = read_idx_labels(&labels_path)?;
    let n_images = images.len() / PIXELS;
    if n_images != labels.len() {
        return Err(IdxError::CountMismatch {
            images: images_path,
            n_images,
            labels: labels_path,
            n_labels: labels.len(),
        });
    }
    Ok(Split {
        images,
        labels,
        pixels: PIXELS,
    })
}

/// `dir/name` if present, else its uncompressed twin `dir/name-without-.gz`, else `dir/name` (which then
/// fails as missing, naming the official file).
pub fn resolve(dir: &Path, gz_name: &str) -> PathBuf {
    let gz = dir.join(gz_name);
    let plain = dir.join(gz_name.trim_end_matches(".gz"));
    if !gz.exists() && plain.exists() {
        plain
    } else {
        gz
    }
}

/// Reads an idx3-ubyte file of 28x28 images; returns the pixels, `(count, 784)` row-major.
pub fn read_idx_images(path: &Path) -> Result<Vec<u8>, IdxError> {
    parse_idx(path, &read_maybe_gzip(path)?, IMAGES_MAGIC, "images")
}

/// Reads an idx1-ubyte label file; every label must be a class index.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, IdxError> {
    let labels = parse_idx(path, &read_maybe_gzip(path)?, LABELS_MAGIC, "labels")?;
    if let Some(index) = labels.iter().position(|&l| l as usize >= NUM_CLASSES) {
        return Err(IdxError::BadLabel {
            path: path.to_path_buf(),
            index,
            label: labels[index],
        });
    }
    Ok(labels)
}

/// The file's bytes, gunzipped when its name ends in `.gz`.
fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>, IdxError> {
    let raw = fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => IdxError::Missing {
            path: path.to_path_buf(),
        },
        _ => IdxError::Io {
            path: path.to_path_buf(),
            source,
        },
    })?;
    if path.extension().is_none_or(|e| e != "gz") {
        return Ok(raw);
    }
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Err(IdxError::NotGzip {
            path: path.to_path_buf(),
        });
    }
    let mut out = Vec::with_capacity(raw.len() * 4);
    GzDecoder::new(&raw[..])
        .read_to_end(&mut out)
        .map_err(|source| IdxError::CorruptGzip {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(out)
}

/// Checks an IDX header (big-endian magic, then one u32 per dimension) and returns the data after it.
fn parse_idx(
    path: &Path,
    bytes: &[u8],
    magic: u32,
    what: &'static str,
) -> Result<Vec<u8>, IdxError> {
    let rank = (magic & 0xff) as usize;
    let needed = 4 + 4 * rank;
    if bytes.len() < 4 {
        return Err(IdxError::ShortHeader {
            path: path.to_path_buf(),
            len: bytes.len(),
            needed,
            what,
        });
    }
    let word = |i: usize| u32::from_be_bytes(bytes[4 * i..4 * i + 4].try_into().expect("4 bytes"));
    let found = word(0);
    if found != magic {
        return Err(IdxError::BadMagic {
            path: path.to_path_buf(),
            found,
            expected: magic,
            what,
        });
    }
    if bytes.len() < needed {
        return Err(IdxError::ShortHeader {
            path: path.to_path_buf(),
            len: bytes.len(),
            needed,
            what,
        });
    }
    let dims: Vec<usize> = (1..=rank).map(|i| word(i) as usize).collect();
    if rank == 3 && (dims[1] != IMAGE_SIDE || dims[2] != IMAGE_SIDE) {
        return Err(IdxError::BadDims {
            path: path.to_path_buf(),
            rows: dims[1],
            cols: dims[2],
        });
    }
    let expected: usize = dims.iter().product();
    let found = bytes.len() - needed;
    if found < expected {
        return Err(IdxError::Truncated {
            path: path.to_path_buf(),
            expected,
            found,
        });
    }
    if found > expected {
        return Err(IdxError::TrailingBytes {
            path: path.to_path_buf(),
            expected,
            extra: found - expected,
        });
    }
    Ok(bytes[needed..].to_vec())
}

/// Serialises an IDX file (the inverse of the reader); tests and the sample generators use it.
pub fn encode_idx(magic_rank: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, magic_rank];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

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

/// The first candidate folder that holds the training images (gzip or plain).
pub fn locate(explicit: Option<&Path>) -> Result<DataLocation> {
    let cands = candidates(explicit);
    if let Some(hit) = cands
        .iter()
        .find(|c| resolve(&c.dir, TRAIN_IMAGES).exists() || resolve(&c.dir, TEST_IMAGES).exists())
    {
        return Ok(hit.clone());
    }
    let looked: Vec<String> = cands.iter().map(|c| c.dir.display().to_string()).collect();
    Err(anyhow::Error::new(crate::error::Hinted::new(
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
