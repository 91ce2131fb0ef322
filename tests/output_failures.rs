//! Issue 9, item 3: a failed write to stdout or stderr never panics and never costs the trained model;
//! the exit code and a last line on the stream that still works say what failed. A closed pipe ends
//! quietly.
#![cfg(unix)]

mod common;

use std::fs::File;
use std::process::{Command, Output, Stdio};

use common::quick_model;
use fmnist::backend::Backend;

fn dev_full() -> File {
    File::options()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full opens")
}

/// Runs fmnist with stdout (or stderr) on /dev/full.
fn run_full(args: &[&str], stdout_full: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fmnist"));
    cmd.args(args);
    if stdout_full {
        cmd.stdout(dev_full()).stderr(Stdio::piped());
    } else {
        cmd.stdout(Stdio::piped()).stderr(dev_full());
    }
    cmd.output().expect("fmnist runs")
}

fn assert_reported(o: &Output, stream_text: &[u8], what: &str) {
    let text = String::from_utf8_lossy(stream_text);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert!(
        text.contains(&format!("error: writing to {what} failed"))
            && text.contains("No space left"),
        "{text}"
    );
}

#[test]
fn train_with_stdout_on_a_full_disk_still_saves_the_model_and_says_so() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    let o = run_full(
        &[
            "train",
            "--device",
            "cpu",
            "--limit-train",
            "1000",
            "--epochs",
            "2",
            "--out",
            dir.to_str().unwrap(),
        ],
        true,
    );
    assert_reported(&o, &o.stderr, "stdout");
    assert!(
        dir.join("model.safetensors").is_file(),
        "the model was lost"
    );
    let record = fmnist::run::RunRecord::read(&dir).unwrap();
    assert_eq!(record.status, fmnist::run::RunStatus::Finished);
    assert_eq!(record.epochs_done, 2);
}

#[test]
fn evaluate_and_predict_with_stdout_on_a_full_disk_do_not_panic() {
    let data = common::dataset();
    let (mut backend, _) = quick_model(data);
    let root = tempfile::tempdir().unwrap();
    let model = root.path().join("m.safetensors");
    let params = backend.params().unwrap();
    fmnist::checkpoint::save(&model, backend.spec(), &params, &Default::default()).unwrap();
    let m = model.to_str().unwrap();
    for args in [
        &["evaluate", "--model", m, "--device", "cpu"][..],
        &["predict", "--model", m, "--device", "cpu", "--index", "3"],
        &["predict", "--model", m, "--device", "cpu", "--json"],
    ] {
        let o = run_full(args, true);
        assert_reported(&o, &o.stderr, "stdout");
    }
}

#[test]
fn an_error_with_stderr_on_a_full_disk_is_reported_on_stdout() {
    let o = run_full(
        &["train", "--data-dir", "/nonexistent/fm", "--device", "cpu"],
        false,
    );
    assert_reported(&o, &o.stdout, "stderr");
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fmnist"))
        .args(["show", "--help"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.is_empty(), "nothing on stderr: {err}");
    assert_ne!(o.status.code(), Some(101), "no panic");
}
