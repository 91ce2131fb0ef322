//! Shared test helpers: the real dataset (cached per test binary) and running the `fmnist` binary.
#![allow(dead_code)]

use std::process::{Command, Output};
use std::sync::OnceLock;

use fmnist::data::Dataset;

/// The real Fashion-MNIST, loaded once per test binary. Tests that need it fail with the fix when absent.
pub fn dataset() -> &'static Dataset {
    static DATA: OnceLock<Dataset> = OnceLock::new();
    DATA.get_or_init(|| {
        fmnist::data::locate_and_load(None)
            .unwrap_or_else(|e| panic!("{e:#}: these tests need the real data (run `make setup`)"))
    })
}

/// Runs the release `fmnist` binary with `args`.
pub fn fmnist(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fmnist"))
        .args(args)
        .output()
        .expect("the fmnist binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The number after `key` on the last line that has it, e.g. `Test accuracy: 0.8512`.
pub fn number_after(text: &str, key: &str) -> f64 {
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains(key))
        .unwrap_or_else(|| panic!("no `{key}` in output:\n{text}"));
    let rest = &line[line.find(key).unwrap() + key.len()..];
    rest.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number after `{key}` in `{line}`"))
}
