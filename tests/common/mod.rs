//! Helpers shared by the figure and photo tests: the real dataset and a quickly trained CPU model.
#![allow(dead_code)] // each test binary uses a different subset

use fmnist::backend::CpuBackend;
use fmnist::config::TrainConfig;
use fmnist::data::{Dataset, locate_and_load};
use fmnist::model::{MlpSpec, glorot_init};
use fmnist::progress::Silent;
use fmnist::train::{FitResult, fit};

pub fn dataset() -> Dataset {
    locate_and_load(None).expect("the Fashion-MNIST dataset (see `make setup`)")
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
