//! The CPU path: the reference twins of every WGSL kernel (plain loops, named like the shader entry
//! points), the MLP's forward/backward over either the reference products or the fast path's, and the
//! fast path itself. Generic over `Real` so the very same code runs in f64 for the gradient check
//! (tests/cpu_gradcheck.rs) and in f32 for training and as the reference of tests/kernels.rs.
//! Throughput is measured by benches/cpu_step.rs.
//! Files: `backend` (`CpuBackend`, the CPU path behind the `Backend` trait), `real` (the float trait, its tuned product and vectorised Adam), `ops` (the plain twins), `dropout` (the mask generator and dropout's twins), `update` (the optimizers' twins), `fused` (the fused kernels' twins), `mlp`
//! (forward and backward over `Products`), `fast` (the two-core products, denormal flushing and the
//! fused training step), `threads` (the compute pools and the choice between them), tests in
//! `tests.rs`.

mod backend;
mod dropout;
mod fast;
mod fused;
mod mlp;
mod ops;
mod real;
mod threads;
mod update;

/// The one normalisation every device uses (defined beside the batches it builds).
pub use crate::batches::{PIXEL_SCALE, normalise};
pub use backend::CpuBackend;
pub use dropout::*;
pub use fast::{Tuned, fast_forward, flush_denormals, flushes_denormals, train_step};
pub use fused::*;
pub use mlp::*;
pub use ops::*;
pub use real::Real;
pub use threads::{ComputeThreads, ThreadChoice};
pub use update::*;

#[cfg(test)]
mod tests;
