//! The CPU twins of every WGSL kernel, named like the shader entry points, plus the MLP forward/backward
//! built from them. Generic over `Real` so the very same code runs in f64 for the gradient check
//! (tests/cpu_gradcheck.rs) and in f32 for training and as the reference of tests/kernels.rs.
//! Throughput is measured by benches/cpu_step.rs.
//! Files: `real` (the float trait), `ops` (the twins), `mlp` (forward and backward), `fast` (the
//! two-core products and the fused training step), tests in `tests.rs`.

mod fast;
mod mlp;
mod ops;
mod real;

/// The one normalisation every device uses (defined beside the batches it builds).
pub use crate::batches::{PIXEL_SCALE, normalise};
pub use fast::{Tuned, fast_forward, flush_denormals, flushes_denormals, train_step};
pub use mlp::*;
pub use ops::*;
pub use real::Real;

#[cfg(test)]
mod tests;
