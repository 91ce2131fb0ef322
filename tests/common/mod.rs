//! Shared test helpers: the real dataset (loaded once per test binary), a quickly trained CPU model, and
//! running the `fmnist` binary.
#![allow(dead_code)] // each test binary uses a different subset

use std::process::{Command, Output};
use std::sync::OnceLock;

use fmnist::backend::CpuBackend;
use fmnist::config::TrainConfig;
use fmnist::data::Dataset;
use fmnist::model::{MlpSpec, glorot_init};
use fmnist::progress::Silent;
use fmnist::train::{FitResult, fit};

/// The real Fashion-MNIST, loaded once per test binary. Tests that need it fail with the fix when absent.
pub fn dataset() -> &'static Dataset {
    static DATA: OnceLock<Dataset> = OnceLock::new();
    DATA.get_or_init(|| {
        fmnist::data::locate_and_load(None)
            .unwrap_or_else(|e| panic!("{e:#}: these tests need the real data (run `make setup`)"))
    })
}

/// A model trained for 600 steps (about a third of an epoch, ~0.3 s): right often enough to be useful,
/// wrong often enough that every figure has mistakes to show.
pub fn quick_model(ds: &Dataset) -> (CpuBackend, FitResult) {
    let cfg = TrainConfig {
        epochs: 1,
        max_steps: Some(600),
        ..TrainConfig::default()
    };
    let spec = MlpSpec::fashion(&cfg.hidden).unwrap();
    let params = glorot_init(&spec, cfg.seed);
    let mut backend = CpuBackend::new(spec, params, cfg.adam, cfg.batch_size);
    let result = fit(&mut backend, &ds.train, &ds.test, &cfg, &mut Silent).unwrap();
    (backend, result)
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
