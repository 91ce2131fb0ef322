//! The GPU engine: WGSL kernels (`shaders/`) on wgpu, for any Vulkan, Metal or DX12 adapter (software ones
//! such as lavapipe included). `context` opens the device, `kernels` builds the pipelines, `buffers` holds
//! the padded GPU layout, `backend` trains, `profile` times kernels and `selftest` checks every kernel
//! against its CPU twin (shared by `fmnist selftest` and tests/kernels.rs).

pub mod backend;
pub mod bench;
pub mod buffers;
pub mod context;
pub mod kernels;
pub mod profile;
pub mod selftest;

pub use backend::GpuBackend;
pub use context::{AdapterSummary, GpuContext, list_adapters};
