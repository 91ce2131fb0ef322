//! Labelled buffers and the GPU-side parameter layout. Inside the GPU every matrix has rows padded to a
//! multiple of 4 floats (so every kernel reads whole vec4s whatever the layer widths); `GpuLayout` maps
//! the CPU's flat `[in, out]` vector (`model::ParamLayout`) to that padded layout and back, which is the
//! only place the two meet. Tested by the unit tests below and, through the backend, tests/gpu_train.rs.

use anyhow::{Result, anyhow};
use wgpu::util::DeviceExt;

use crate::model::ParamLayout;

/// `n` rounded up to a multiple of 4: the row stride of a matrix with `n` columns on the GPU.
pub fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// Floats per texture row that a buffer-to-texture copy accepts: rows must be a multiple of 256 bytes.
pub const TEXTURE_ROW_FLOATS: usize = 64;

/// `n` rounded up to a multiple of `TEXTURE_ROW_FLOATS`: the row stride of a matrix that is mirrored
/// into a texture by copies (the first layer's weight, and so the whole parameter atlas, and its dZ).
pub fn pad_texture_row(n: usize) -> usize {
    n.div_ceil(TEXTURE_ROW_FLOATS) * TEXTURE_ROW_FLOATS
}

/// Where one dense layer's tensors sit in the GPU's flat parameter buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuLayer {
    /// Weight `(fan_in, ld)`, row-major, columns past `fan_out` zero.
    pub weight: usize,
    /// Bias `(ld)`, entries past `fan_out` zero.
    pub bias: usize,
    pub fan_in: usize,
    pub fan_out: usize,
    /// Row stride of the weight (and of the layer's activations and dZ): `pad_texture_row(fan_out)`, so
    /// each can be mirrored into a texture by a copy.
    pub ld: usize,
}

/// The GPU's flat parameter (and gradient, m, v) layout. The first layer's weight starts at 0 with a
/// row stride that a texture row can mirror, and the total is a whole number of such rows, so the flat
/// buffer copies into a texture (the "atlas", `atlas_width` floats wide) whose first `fan_in` rows are
/// exactly that weight: what the texture variant of the first layer's matmul reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuLayout {
    pub layers: Vec<GpuLayer>,
    /// Floats in the flat buffer, a multiple of `atlas_width`.
    pub total: usize,
}

impl GpuLayout {
    pub fn of(cpu: &ParamLayout) -> Self {
        let mut at = 0;
        let mut layers = Vec::new();
        for l in &cpu.layers {
            let ld = pad_texture_row(l.fan_out);
            let weight = at;
            at += l.fan_in * ld;
            let bias = at;
            at += ld;
            layers.push(GpuLayer {
                weight,
                bias,
                fan_in: l.fan_in,
                fan_out: l.fan_out,
                ld,
            });
        }
        let width = layers.first().map_or(4, |l| l.ld);
        Self {
            layers,
            total: at.next_multiple_of(width),
        }
    }

    /// Floats per row of the parameter atlas: the first layer's row stride.
    pub fn atlas_width(&self) -> usize {
        self.layers[0].ld
    }

    /// Rows of the parameter atlas.
    pub fn atlas_rows(&self) -> usize {
        self.total / self.atlas_width()
    }

    /// The first atlas row the texture path's adam_tex updates: the row after W1 and b1, which
    /// grad_update_gather_tex updates, or 0 in a model without hidden layers (the tail computes that layer's
    /// gradients, and adam_tex applies them).
    pub fn adam_tex_row0(&self) -> usize {
        if self.layers.len() == 1 {
            0
        } else {
            self.layers[0].bias / self.atlas_width() + 1
        }
    }

    /// CPU flat vector -> GPU flat vector (padding zero).
    pub fn pack(&self, cpu: &ParamLayout, flat: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0f32; self.total];
        for (g, c) in self.layers.iter().zip(&cpu.layers) {
            for r in 0..c.fan_in {
                let src = &flat[c.weight + r * c.fan_out..c.weight + (r + 1) * c.fan_out];
                out[g.weight + r * g.ld..g.weight + r * g.ld + c.fan_out].copy_from_slice(src);
            }
            out[g.bias..g.bias + c.fan_out].copy_from_slice(&flat[c.bias_range()]);
        }
        out
    }

    /// GPU flat vector -> CPU flat vector (the CPU layout's alignment padding zero).
    pub fn unpack(&self, cpu: &ParamLayout, gpu: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0f32; cpu.total];
        for (g, c) in self.layers.iter().zip(&cpu.layers) {
            for r in 0..c.fan_in {
                out[c.weight + r * c.fan_out..c.weight + (r + 1) * c.fan_out]
                    .copy_from_slice(&gpu[g.weight + r * g.ld..g.weight + r * g.ld + c.fan_out]);
            }
            out[c.bias_range()].copy_from_slice(&gpu[g.bias..g.bias + c.fan_out]);
        }
        out
    }
}

/// A storage buffer of `bytes` (at least 16), zero-initialised by wgpu.
pub fn storage(device: &wgpu::Device, label: &str, bytes: u64) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(16).next_multiple_of(4),
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    })
}

/// A storage buffer holding `data`.
pub fn storage_init(device: &wgpu::Device, label: &str, data: &[u8]) -> wgpu::Buffer {
    let mut padded;
    let contents = if data.len() < 16 || !data.len().is_multiple_of(4) {
        padded = data.to_vec();
        padded.resize(data.len().max(16).next_multiple_of(4), 0);
        &padded[..]
    } else {
        data
    };
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC,
    })
}

/// An rgba32float texture of `width` floats (a multiple of 4) by `rows`: one texel holds 4 consecutive
/// floats of a row. Read by the matmuls' texture variants and by Adam.
pub fn float_texture(
    device: &wgpu::Device,
    label: &str,
    width: usize,
    rows: usize,
) -> Result<wgpu::Texture> {
    let max = device.limits().max_texture_dimension_2d as usize;
    if width / 4 > max || rows > max {
        return Err(anyhow!(
            "{label}: a {}x{rows} texture exceeds the adapter's {max}-texel limit (use a smaller batch or model, or --device cpu)",
            width / 4
        ));
    }
    Ok(device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d {
            width: (width / 4) as u32,
            height: rows as u32,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba32Float,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    }))
}

/// Writes `rows` rows of `width` floats from `data` into the top of `texture`.
pub fn write_texture(
    queue: &wgpu::Queue,
    texture: &wgpu::Texture,
    width: usize,
    rows: usize,
    data: &[f32],
) {
    queue.write_texture(
        texture.as_image_copy(),
        bytemuck::cast_slice(&data[..rows * width]),
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some((width * 4) as u32),
            rows_per_image: Some(rows as u32),
        },
        wgpu::Extent3d {
            width: (width / 4) as u32,
            height: rows as u32,
            depth_or_array_layers: 1,
        },
    );
}

/// A copy of a buffer's first `rows` rows of `width` floats into a texture of that shape: how a texture
/// mirror follows the buffer a kernel wrote. `width * 4` must be a multiple of 256 bytes.
#[derive(Clone, Debug)]
pub struct TextureMirror {
    pub buffer: wgpu::Buffer,
    /// Where the mirrored rows start in `buffer`, in floats (a multiple of 4).
    pub offset: usize,
    pub texture: wgpu::Texture,
    pub width: usize,
    pub rows: usize,
}

impl TextureMirror {
    /// A texture of `rows` x `width` floats mirroring `buffer` from float `offset` on.
    pub fn new(
        device: &wgpu::Device,
        label: &str,
        buffer: &wgpu::Buffer,
        offset: usize,
        width: usize,
        rows: usize,
    ) -> Result<Self> {
        let texture = float_texture(device, label, width, rows)?;
        Ok(Self {
            buffer: buffer.clone(),
            offset,
            texture,
            width,
            rows,
        })
    }

    pub fn view(&self) -> wgpu::TextureView {
        self.texture.create_view(&Default::default())
    }

    pub fn encode(&self, enc: &mut wgpu::CommandEncoder) {
        enc.copy_buffer_to_texture(
            wgpu::TexelCopyBufferInfo {
                buffer: &self.buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: (self.offset * 4) as u64,
                    bytes_per_row: Some((self.width * 4) as u32),
                    rows_per_image: Some(self.rows as u32),
                },
            },
            self.texture.as_image_copy(),
            wgpu::Extent3d {
                width: (self.width / 4) as u32,
                height: self.rows as u32,
                depth_or_array_layers: 1,
            },
        );
    }
}

/// A uniform buffer holding `data` (written again with `queue.write_buffer` when it changes).
pub fn uniform_init(device: &wgpu::Device, label: &str, data: &[u8]) -> wgpu::Buffer {
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: data,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    })
}

/// A host-readable staging buffer of `bytes`.
pub fn readback(device: &wgpu::Device, label: &str, bytes: u64) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(16).next_multiple_of(4),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// Maps the first `bytes` of a readback buffer after the work that filled it, and copies them out.
/// Blocks: a native process's way of waiting for `read_mapped_async`.
pub fn read_mapped(
    device: &wgpu::Device,
    buffer: &wgpu::Buffer,
    bytes: u64,
    out: &mut [u8],
) -> Result<()> {
    pollster::block_on(read_mapped_async(device, buffer, bytes, out))
}

/// `read_mapped` as a future: the one wait of every readback. Natively it polls the device until the
/// GPU is done; in a browser (wasm32, WebGPU, where nothing may block) the mapping completes on the
/// event loop, and awaiting yields to it.
pub async fn read_mapped_async(
    device: &wgpu::Device,
    buffer: &wgpu::Buffer,
    bytes: u64,
    out: &mut [u8],
) -> Result<()> {
    let slice = buffer.slice(..bytes);
    let (tx, rx) = futures_channel::oneshot::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    #[cfg(not(target_arch = "wasm32"))]
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| anyhow!("waiting for the GPU: {e}"))?;
    #[cfg(target_arch = "wasm32")]
    let _ = device;
    rx.await
        .map_err(|_| anyhow!("the GPU never answered the readback"))?
        .map_err(|e| anyhow!("mapping a readback buffer: {e}"))?;
    {
        let view = slice
            .get_mapped_range()
            .map_err(|e| anyhow!("reading a mapped buffer: {e}"))?;
        out[..bytes as usize].copy_from_slice(&view);
    }
    buffer.unmap();
    Ok(())
}

/// Copies `bytes` from `src` (at `offset`) into `staging`, submits, and reads them back as f32.
/// Blocks: a native process's way of waiting for `download_f32_async`.
pub fn download_f32(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    src: &wgpu::Buffer,
    offset: u64,
    staging: &wgpu::Buffer,
    out: &mut [f32],
) -> Result<()> {
    pollster::block_on(download_f32_async(device, queue, src, offset, staging, out))
}

/// `download_f32` as a future (see `read_mapped_async`).
pub async fn download_f32_async(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    src: &wgpu::Buffer,
    offset: u64,
    staging: &wgpu::Buffer,
    out: &mut [f32],
) -> Result<()> {
    let bytes = (out.len() * 4) as u64;
    if bytes == 0 {
        return Ok(());
    }
    let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("download"),
    });
    enc.copy_buffer_to_buffer(src, offset, staging, 0, bytes);
    queue.submit([enc.finish()]);
    read_mapped_async(device, staging, bytes, bytemuck::cast_slice_mut(out)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MlpSpec;

    #[test]
    fn pack_unpack_round_trips_and_pads_rows() {
        let spec = MlpSpec::new(7, &[5, 3], 10).unwrap();
        let cpu = spec.layout();
        let gpu = GpuLayout::of(&cpu);
        assert_eq!(gpu.layers[0].ld, TEXTURE_ROW_FLOATS);
        assert_eq!(gpu.layers[2].ld, TEXTURE_ROW_FLOATS);
        assert_eq!(gpu.total % gpu.atlas_width(), 0);
        assert!(
            gpu.layers
                .iter()
                .all(|l| l.weight % 4 == 0 && l.bias % 4 == 0)
        );
        let mut flat = vec![0.0f32; cpu.total];
        for l in &cpu.layers {
            for i in l.weight_range().chain(l.bias_range()) {
                flat[i] = i as f32 + 1.0;
            }
        }
        let packed = gpu.pack(&cpu, &flat);
        // Row 1 of layer 0's weight starts at its ld, and its padding is zero.
        assert_eq!(packed[TEXTURE_ROW_FLOATS], flat[5]);
        assert_eq!(packed[5..TEXTURE_ROW_FLOATS], [0.0; TEXTURE_ROW_FLOATS - 5]);
        assert_eq!(gpu.unpack(&cpu, &packed), flat);
    }
}
