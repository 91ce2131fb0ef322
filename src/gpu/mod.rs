//! The GPU engine: WGSL kernels (`shaders/`) on wgpu, for any Vulkan, Metal or DX12 adapter (software ones
//! such as lavapipe included). `context` opens the device and turns wgpu's errors into ours, `kernels`
//! builds the pipelines, `buffers` holds the padded GPU layout, `params` the model's state, `dataset` the
//! resident splits, `plan` a training step's dispatches per operand path, `eval` the forward pass,
//! `profile` the per-kernel timing, `backend` owns them all; `selftest` checks every kernel against its
//! CPU twin (shared by `fmnist selftest` and tests/kernels.rs).

pub mod backend;
pub mod bench;
pub mod buffers;
pub mod context;
pub mod dataset;
pub mod eval;
pub mod kernels;
pub mod params;
pub mod plan;
pub mod profile;
pub mod selftest;
pub mod stats;

pub use backend::GpuBackend;
pub use context::{AdapterSummary, GpuContext, list_adapters};
