//! The harness run of the `dropout` entry point (the first layer's dropout runs inside
//! `forward_gather` and `forward_gather_tex`, whose runs take it as an argument).

use anyhow::Result;

use super::{Harness, StepCase, pad_ld, unpad_ld};
use crate::gpu::buffers::{self, pad4};
use crate::gpu::kernels::{self, Kernel};
use crate::gpu::uniforms::{DropFields, DropoutDims, StepRecord};

impl Harness {
    /// `dropout` of hidden layer `layer` over act (capacity, cols) tight, whose padding lanes are NaN
    /// (left as they are) and whose rows past the step must come back unchanged. Returns act tight.
    pub async fn dropout(
        &self,
        case: &StepCase,
        act: &[f32],
        cols: usize,
        layer: u32,
        drop: DropFields,
    ) -> Result<Vec<f32>> {
        let d = &self.ctx.device;
        let ld = pad4(cols) + 4;
        let padded = pad_ld(act, case.capacity, cols, ld, f32::NAN);
        let buf = buffers::storage_init(d, "selftest act", bytemuck::cast_slice(&padded));
        let dims = DropoutDims {
            cols: cols as u32,
            ld: ld as u32,
            layer,
            threshold: drop.threshold,
            scale: drop.scale,
            key0: drop.key0,
            key1: drop.key1,
            _pad: 0,
        };
        let u = buffers::uniform_init(d, "selftest dropout dims", bytemuck::bytes_of(&dims));
        let (r, at) = self.record_buffer(&case.record());
        let bind = kernels::bind_group(
            d,
            "selftest dropout",
            &self.kernels.dropout_layout,
            &[&buf, &u, &r],
            Some((2, at, std::mem::size_of::<StepRecord>() as u64)),
        );
        self.run(
            Kernel::Dropout,
            &bind,
            None,
            kernels::dropout_groups(case.capacity, cols),
        );
        let out = self.download(&buf, padded.len()).await?;
        Ok(unpad_ld(&out, 0, case.capacity, cols, ld))
    }
}
