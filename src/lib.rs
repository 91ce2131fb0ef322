//! fmnist: the Keras Fashion-MNIST tutorial as one native program. Data flows one way:
//! IDX files (`data`) -> minibatches (`batches`) -> a `Backend` (`backend::CpuBackend` or the GPU engine)
//! that runs forward, backward and Adam -> metrics, checkpoints and history (`train`, `checkpoint`, `run`).
//! The library returns `Result` and prints only through `log` and the progress reporter.

pub mod atomic;
pub mod backend;
pub mod batches;
pub mod check;
pub mod checkpoint;
pub mod config;
pub mod console;
pub mod cpu;
pub mod data;
pub mod device;
pub mod error;
pub mod evaluate;
pub mod files;
pub mod gpu;
#[cfg(not(target_arch = "wasm32"))]
pub mod interrupt;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod onnx;
pub mod per_class;
pub mod photo;
pub mod plot;
pub mod predictions;
pub mod progress;
pub mod resume;
pub mod run;
pub mod summary;
pub mod tensorfile;
pub mod train;
