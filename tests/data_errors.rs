//! Every malformed IDX case yields its own error naming the file, built in the test (no fixtures).

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use fmnist::data::{self, IdxError, encode_idx};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn images(n: u32) -> Vec<u8> {
    encode_idx(3, &[n, 28, 28], &vec![7u8; n as usize * 784])
}

fn labels(values: &[u8]) -> Vec<u8> {
    encode_idx(1, &[values.len() as u32], values)
}

/// A folder with a valid tiny dataset (3 train, 2 test samples).
fn valid_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), data::TRAIN_IMAGES, &gzip(&images(3)));
    write(d.path(), data::TRAIN_LABELS, &gzip(&labels(&[0, 9, 4])));
    write(d.path(), data::TEST_IMAGES, &gzip(&images(2)));
    write(d.path(), data::TEST_LABELS, &gzip(&labels(&[1, 2])));
    d
}

#[test]
fn a_valid_tiny_dataset_loads_gzip_or_plain() {
    let d = valid_dir();
    let ds = data::load(d.path()).unwrap();
    assert_eq!((ds.train.len(), ds.test.len()), (3, 2));
    assert_eq!(ds.train.labels, vec![0, 9, 4]);
    assert_eq!(ds.train.image(2)[783], 7);
    // Uncompressed files (torchvision's raw folder) are found when the .gz is absent.
    std::fs::remove_file(d.path().join(data::TEST_LABELS)).unwrap();
    write(d.path(), "t10k-labels-idx1-ubyte", &labels(&[3, 3]));
    assert_eq!(data::load(d.path()).unwrap().test.labels, vec![3, 3]);
}

#[test]
fn missing_file() {
    let d = tempfile::tempdir().unwrap();
    let e = data::read_idx_images(&d.path().join(data::TRAIN_IMAGES)).unwrap_err();
    assert!(matches!(e, IdxError::Missing { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("train-images-idx3-ubyte.gz: file not found"),
        "{e}"
    );
}

#[test]
fn not_gzip() {
    let d = tempfile::tempdir().unwrap();
    let e = data::read_idx_images(&write(d.path(), "x-images.gz", &images(1))).unwrap_err();
    assert!(matches!(e, IdxError::NotGzip { .. }), "{e}");
}

#[test]
fn corrupt_gzip() {
    let d = tempfile::tempdir().unwrap();
    let mut bytes = gzip(&images(4));
    let n = bytes.len();
    bytes.truncate(n / 2); // cut the stream mid-way
    let e = data::read_idx_images(&write(d.path(), "x-images.gz", &bytes)).unwrap_err();
    assert!(matches!(e, IdxError::CorruptGzip { .. }), "{e}");
}

#[test]
fn wrong_magic() {
    let d = tempfile::tempdir().unwrap();
    // A label file where images are expected: magic 0x801 instead of 0x803.
    let e = data::read_idx_images(&write(d.path(), "x", &labels(&[1, 2]))).unwrap_err();
    assert!(
        matches!(
            e,
            IdxError::BadMagic {
                found: 0x801,
                expected: 0x803,
                ..
            }
        ),
        "{e}"
    );
    let e =
        data::read_idx_labels(&write(d.path(), "y", &[0x50, 0x4b, 3, 4, 0, 0, 0, 0])).unwrap_err();
    assert!(matches!(e, IdxError::BadMagic { .. }), "{e}");
}

#[test]
fn short_header() {
    let d = tempfile::tempdir().unwrap();
    let e = data::read_idx_images(&write(d.path(), "x", &[0, 0, 8, 3, 0, 0])).unwrap_err();
    assert!(matches!(e, IdxError::ShortHeader { .. }), "{e}");
    let e = data::read_idx_images(&write(d.path(), "e", &[])).unwrap_err();
    assert!(matches!(e, IdxError::ShortHeader { .. }), "{e}");
}

#[test]
fn wrong_image_dims() {
    let d = tempfile::tempdir().unwrap();
    let e = data::read_idx_images(&write(
        d.path(),
        "x",
        &encode_idx(3, &[2, 32, 32], &[0; 2 * 32 * 32]),
    ))
    .unwrap_err();
    assert!(
        matches!(
            e,
            IdxError::BadDims {
                rows: 32,
                cols: 32,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn truncated_and_trailing_data() {
    let d = tempfile::tempdir().unwrap();
    let mut bytes = images(3);
    bytes.truncate(bytes.len() - 100);
    let e = data::read_idx_images(&write(d.path(), "x", &bytes)).unwrap_err();
    assert!(
        matches!(
            e,
            IdxError::Truncated {
                expected: 2352,
                found: 2252,
                ..
            }
        ),
        "{e}"
    );
    let mut bytes = labels(&[1, 2]);
    bytes.push(5);
    let e = data::read_idx_labels(&write(d.path(), "y", &bytes)).unwrap_err();
    assert!(matches!(e, IdxError::TrailingBytes { extra: 1, .. }), "{e}");
}

#[test]
fn label_out_of_range() {
    let d = tempfile::tempdir().unwrap();
    let e = data::read_idx_labels(&write(d.path(), "y", &labels(&[1, 10, 2]))).unwrap_err();
    assert!(
        matches!(
            e,
            IdxError::BadLabel {
                index: 1,
                label: 10,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn image_and_label_counts_differ() {
    let d = valid_dir();
    write(d.path(), data::TRAIN_LABELS, &gzip(&labels(&[0, 1])));
    let e = data::load(d.path()).unwrap_err();
    assert!(
        matches!(
            e,
            IdxError::CountMismatch {
                n_images: 3,
                n_labels: 2,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("3 images") && e.to_string().contains("2 labels"),
        "{e}"
    );
}

#[test]
fn an_explicit_data_dir_without_data_says_where_it_looked_and_how_to_get_it() {
    let d = tempfile::tempdir().unwrap();
    let e = data::locate(Some(d.path())).unwrap_err();
    assert!(
        format!("{e:#}").contains(&d.path().display().to_string()),
        "{e:#}"
    );
    let hint = fmnist::error::hint_of(&e).expect("a hint");
    assert!(
        hint.contains("make setup") && hint.contains("dataset-fashion-mnist"),
        "{hint}"
    );
}

#[test]
fn a_multi_member_gzip_loads_like_one_member() {
    // `cat a.gz b.gz` (and bgzip) makes one valid gzip file of several members.
    let d = valid_dir();
    let bytes = images(3);
    let (a, b) = bytes.split_at(1000);
    let mut joined = gzip(a);
    joined.extend(gzip(b));
    write(d.path(), data::TRAIN_IMAGES, &joined);
    let ds = data::load(d.path()).unwrap();
    assert_eq!(ds.train.images, bytes[16..]);
}

#[test]
fn junk_after_the_gzip_stream_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut bytes = gzip(&images(2));
    bytes.extend_from_slice(b"junk after the stream");
    let e = data::read_idx_images(&write(d.path(), "x-images.gz", &bytes)).unwrap_err();
    assert!(matches!(e, IdxError::CorruptGzip { .. }), "{e}");
    // Data inside the stream past what the header declares is trailing data, however it is split.
    let mut more = images(2);
    more.extend_from_slice(&[0; 5000]);
    let e = data::read_idx_images(&write(d.path(), "y-images.gz", &gzip(&more))).unwrap_err();
    assert!(
        matches!(
            e,
            IdxError::TrailingBytes {
                extra: 5000,
                at_least: false,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn a_declared_count_over_the_limit_and_an_empty_file_are_refused_before_reading_data() {
    let d = tempfile::tempdir().unwrap();
    let e = data::read_idx_labels(&write(d.path(), "big", &encode_idx(1, &[u32::MAX], &[])))
        .unwrap_err();
    assert!(
        matches!(
            e,
            IdxError::TooMany {
                count: 4294967295,
                ..
            }
        ),
        "{e}"
    );
    let e = data::read_idx_images(&write(d.path(), "none", &encode_idx(3, &[0, 28, 28], &[])))
        .unwrap_err();
    assert!(matches!(e, IdxError::Empty { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("none: the header declares no images"),
        "{e}"
    );
}

/// What a browser hands the library: the files' bytes, gzip-compressed or not (told by the content,
/// whatever the name says), with the same errors naming the file.
#[test]
fn a_split_from_bytes_reads_gzip_or_plain_and_names_the_file_in_errors() {
    let split =
        data::split_from_bytes("a.gz", &gzip(&images(3)), "b", &labels(&[0, 9, 4])).unwrap();
    assert_eq!((split.len(), split.pixels), (3, 784));
    assert_eq!(split.labels, vec![0, 9, 4]);
    let plain = data::split_from_bytes("x", &images(3), "y.gz", &gzip(&labels(&[0, 9, 4])));
    assert_eq!(plain.unwrap().images, split.images);

    let e = data::split_from_bytes("imgs", &images(3), "lbls", &labels(&[0, 1])).unwrap_err();
    assert!(matches!(e, IdxError::CountMismatch { .. }), "{e}");
    assert!(
        e.to_string().contains("imgs") && e.to_string().contains("lbls"),
        "{e}"
    );
    let e = data::split_from_bytes("imgs", &labels(&[1]), "lbls", &labels(&[1])).unwrap_err();
    assert!(e.to_string().starts_with("imgs"), "{e}");
    let mut corrupt = gzip(&images(3));
    corrupt.truncate(corrupt.len() / 2);
    let e = data::split_from_bytes("c.gz", &corrupt, "l", &labels(&[0, 1, 2])).unwrap_err();
    assert!(e.to_string().starts_with("c.gz"), "{e}");
}
