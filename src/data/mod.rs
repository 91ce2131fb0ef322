//! Fashion-MNIST on disk: the dataset's splits and files. The IDX reader and its validation are in
//! `idx`, where the files are looked for in `locate`. Images stay `u8` in memory; `batches.rs`
//! normalises them to f32 per minibatch. Tested by tests/data_errors.rs.

mod idx;
mod locate;
mod names;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use idx::{
    IdxError, IdxKind, encode_idx, parse_idx_stream, read_idx, read_idx_images, read_idx_labels,
};
pub use locate::{DataLocation, candidates, locate, locate_and_load};
pub use names::{CLASS_NAMES_FILE, ClassNames};

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

/// The four files, by their official names; each may also be present uncompressed (without `.gz`).
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte.gz";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte.gz";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte.gz";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte.gz";

/// Where the official files can be downloaded, for the "no data" hint.
pub const DOWNLOAD_URL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

/// One split (train or test): `images (len, pixels)` as u8 and `labels (len)`. Fashion-MNIST images have
/// 784 pixels; tests use other widths to exercise padding.
#[derive(Clone, Debug, Default)]
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
    /// Keras' `validation_split`: the last `fraction` of the samples (`n - floor(n * (1 - fraction))`
    /// of them) become the validation split and the rest stays for training, in dataset order. Fails
    /// when either part would be empty.
    pub fn split_validation(self, fraction: f64) -> anyhow::Result<(Split, Split)> {
        anyhow::ensure!(
            fraction > 0.0 && fraction < 1.0,
            "the validation fraction must lie strictly between 0 and 1, not {fraction}"
        );
        let n = self.len();
        let keep = (n as f64 * (1.0 - fraction)).floor() as usize;
        anyhow::ensure!(
            keep > 0 && keep < n,
            "{n} training images cannot be split into a training and a validation part at {fraction} \
             (one part would be empty)"
        );
        let Split {
            mut images,
            mut labels,
            pixels,
        } = self;
        let validation = Split {
            images: images.split_off(keep * pixels),
            labels: labels.split_off(keep),
            pixels,
        };
        images.shrink_to_fit();
        labels.shrink_to_fit();
        Ok((
            Split {
                images,
                labels,
                pixels,
            },
            validation,
        ))
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
    /// Held out of the training images by `--validation-split`; `None` until a command splits it off.
    pub validation: Option<Arc<Split>>,
    pub test: Arc<Split>,
    /// The classes' names: Fashion-MNIST's unless a command sets others (`--class-names`, or
    /// `class_names.txt` beside the files).
    pub class_names: ClassNames,
}

/// Reads and validates the four files in `dir`.
pub fn load(dir: &Path) -> Result<Dataset, IdxError> {
    Ok(Dataset {
        dir: dir.to_path_buf(),
        train: Arc::new(load_split(dir, TRAIN_IMAGES, TRAIN_LABELS)?),
        validation: None,
        test: Arc::new(load_split(dir, TEST_IMAGES, TEST_LABELS)?),
        class_names: ClassNames::default(),
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
    paired(images, &images_path, labels, &labels_path)
}

/// Images and labels as one split, when their counts agree.
fn paired(
    images: Vec<u8>,
    images_path: &Path,
    labels: Vec<u8>,
    labels_path: &Path,
) -> Result<Split, IdxError> {
    let n_images = images.len() / PIXELS;
    if n_images != labels.len() {
        return Err(IdxError::CountMismatch {
            images: images_path.to_path_buf(),
            n_images,
            labels: labels_path.to_path_buf(),
            n_labels: labels.len(),
        });
    }
    Ok(Split {
        images,
        labels,
        pixels: PIXELS,
    })
}

/// A split from its two IDX files' bytes (a browser's fetched or chosen files), gzip-compressed or
/// not (told by the content), named `images_name` and `labels_name` in errors.
pub fn split_from_bytes(
    images_name: &str,
    images: &[u8],
    labels_name: &str,
    labels: &[u8],
) -> Result<Split, IdxError> {
    let parse = |name: &str, bytes: &[u8], kind| {
        let plain_size = (!bytes.starts_with(&[0x1f, 0x8b])).then_some(bytes.len() as u64);
        parse_idx_stream(Path::new(name), bytes, plain_size, kind)
    };
    let images = parse(images_name, images, IdxKind::Images)?;
    let labels = parse(labels_name, labels, IdxKind::Labels)?;
    paired(
        images,
        Path::new(images_name),
        labels,
        Path::new(labels_name),
    )
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
