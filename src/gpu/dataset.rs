//! A split resident on the device: its images as packed u8 (4 pixels per u32, so the 60,000 training
//! images take 47 MB and stay under the 128 MiB binding limit every adapter offers, where f32 would not)
//! and its labels as u32; and the epoch's order, uploaded once per epoch. Kernels gather a step's rows by
//! index and normalise them themselves (`gather.wgsl`), so a training step uploads no samples.
//! Tested through tests/gpu_train.rs (training and evaluation read only resident data).

use std::sync::Arc;

use anyhow::{Result, bail};

use crate::data::Split;
use crate::gpu::buffers;

/// One split on the device.
pub struct ResidentSplit {
    /// `(len * pixels / 4)` u32: the images' bytes, little-endian, padded with zeros to a whole u32.
    pub images: wgpu::Buffer,
    /// `(len)` u32.
    pub labels: wgpu::Buffer,
    pub len: usize,
    /// The host split this copy was made from: attaching the same `Arc` again uploads nothing.
    source: Arc<Split>,
}

impl ResidentSplit {
    /// Uploads `split`; fails with the sizes when the adapter cannot bind that much in one buffer.
    pub fn upload(device: &wgpu::Device, what: &str, split: &Arc<Split>) -> Result<Self> {
        let bytes = split.images.len().div_ceil(4) * 4;
        let limit = device.limits().max_storage_buffer_binding_size;
        if bytes as u64 > limit {
            bail!(
                "the {what} images take {bytes} bytes but the adapter binds at most {limit} bytes per buffer"
            );
        }
        let labels: Vec<u32> = split.labels.iter().map(|&l| l as u32).collect();
        Ok(Self {
            images: buffers::storage_init(
                device,
                &format!("{what} images (len * pixels / 4) u32"),
                &split.images,
            ),
            labels: buffers::storage_init(
                device,
                &format!("{what} labels (len) u32"),
                bytemuck::cast_slice(&labels),
            ),
            len: split.len(),
            source: split.clone(),
        })
    }

    /// Whether this is the device copy of `split`.
    pub fn holds(&self, split: &Arc<Split>) -> bool {
        Arc::ptr_eq(&self.source, split)
    }

    /// Bytes moved to the device by `upload`.
    pub fn bytes(&self) -> u64 {
        self.images.size() + self.labels.size()
    }
}

/// The order buffer `(len)` u32 for a training split of `len` samples.
pub fn order_buffer(device: &wgpu::Device, len: usize) -> wgpu::Buffer {
    buffers::storage(device, "epoch order (len) u32", (len * 4) as u64)
}
