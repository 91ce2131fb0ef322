//! Issue 10, item 3: special files never hang or exhaust memory. A FIFO given as a photo or as
//! `--model`, and `/dev/zero` as a photo, a model or a data file, are refused at once as not regular
//! files (the 20 s guard of `run_measured` only catches hangs).

#![cfg(unix)]

mod common;

use std::path::Path;

use common::{run_measured, small_model, tiny_data};

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn a_fifo_as_a_photo_or_as_the_model_is_refused_without_waiting_for_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_model(dir.path());
    let fifo = dir.path().join("pipe.png");
    mkfifo(&fifo);
    let (fifo, model) = (fifo.to_str().unwrap(), model.to_str().unwrap());
    let m = run_measured(
        &["predict", "--device", "cpu", "--model", model, fifo],
        &[],
        300,
    );
    assert_eq!(m.code, Some(1), "{}", m.stderr);
    assert!(
        m.errors()[0].contains("not a regular file (a FIFO)"),
        "{}",
        m.stderr
    );
    let m = run_measured(&["evaluate", "--device", "cpu", "--model", fifo], &[], 300);
    assert_eq!(m.code, Some(1), "{}", m.stderr);
    assert_eq!(m.errors().len(), 1, "{}", m.stderr);
    assert!(m.errors()[0].contains("a FIFO"), "{}", m.stderr);
}

#[test]
fn dev_zero_as_a_photo_a_model_or_a_data_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    tiny_data(dir.path(), None);
    let model = small_model(dir.path());
    let model = model.to_str().unwrap();
    let m = run_measured(
        &["predict", "--device", "cpu", "--model", model, "/dev/zero"],
        &[],
        300,
    );
    assert_eq!(m.code, Some(1), "{}", m.stderr);
    assert!(m.errors()[0].contains("a character device"), "{}", m.stderr);
    let m = run_measured(&["evaluate", "--model", "/dev/zero"], &[], 300);
    assert_eq!(m.code, Some(1), "{}", m.stderr);
    assert!(m.errors()[0].contains("a character device"), "{}", m.stderr);
    let images = dir.path().join(fmnist::data::TEST_IMAGES);
    std::fs::remove_file(&images).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &images).unwrap();
    let data = dir.path().to_str().unwrap();
    let m = run_measured(
        &[
            "evaluate",
            "--device",
            "cpu",
            "--model",
            model,
            "--data-dir",
            data,
        ],
        &[],
        300,
    );
    assert_eq!(m.code, Some(1), "{}", m.stderr);
    assert!(
        m.errors()[0].contains("t10k-images-idx3-ubyte.gz: not a regular file"),
        "{}",
        m.stderr
    );
}
