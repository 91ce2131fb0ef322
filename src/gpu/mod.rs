//! The GPU engine: WGSL kernels (`shaders/`) on wgpu, for any Vulkan, Metal or DX12 adapter (software ones
//! such as lavapipe included). `context` opens the device and turns wgpu's errors into ours, `kernels`
//! names the entry points and their dispatch sizes, `pipelines` builds them per device, `uniforms`
//! mirrors the shaders' uniform structs, `buffers` holds the padded GPU layout, `params` the model's
//! state, `dataset` the resident splits, `plan` a training step's dispatches per operand path, `eval` the
//! forward pass, `profile` the per-kernel timing, `backend` owns them all; `harness` runs single kernels
//! on host data and `selftest` checks every kernel against its CPU twin with it (shared by `fmnist
//! selftest` and tests/kernels.rs).

pub mod backend;
pub mod bench;
pub mod bindings;
pub mod buffers;
pub mod context;
pub mod dataset;
pub mod eval;
pub mod harness;
pub mod kernels;
pub mod params;
pub mod pipelines;
pub mod plan;
pub mod profile;
pub mod selftest;
pub mod stats;
pub mod uniforms;

pub use backend::GpuBackend;
pub use context::{AdapterSummary, GpuContext, list_adapters};
