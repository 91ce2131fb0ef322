//! A split resident on the device: its images as packed u8 (4 pixels per u32, so the 60,000 training
//! images take 47 MB and stay under the 128 MiB binding limit every adapter offers, where f32 would not)
//! and its labels as u32; and the epoch's order, uploaded once per epoch. Kernels gather a step's rows by
//! index and normalise them themselves (`gather.wgsl`), so a training step uploads no samples.
//! On the texture path the images are also held as an rgba32uint texture and the order as an r32uint
//! one (`ImageTexture`, `OrderTexture`), the layouts gather.wgsl describes, which the texture path's
//! first-layer kernels read.
//! Tested through tests/gpu_train.rs (training and evaluation read only resident data), the kernel
//! tests (tests/kernels.rs) and the unit tests below.

use std::sync::Arc;

use anyhow::{Result, bail};

use crate::data::Split;
use crate::gpu::buffers;

/// One split on the device.
pub struct ResidentSplit {
    /// `(len * pixels / 4)` u32: the images' bytes, little-endian, padded with zeros to a whole u32;
    /// None where only the texture is read (`images()`).
    images: Option<wgpu::Buffer>,
    /// `(len)` u32.
    pub labels: wgpu::Buffer,
    /// The images again, as a texture, on the texture path.
    pub texture: Option<ImageTexture>,
    pub len: usize,
    /// The host split this copy was made from: attaching the same `Arc` again uploads nothing.
    source: Arc<Split>,
}

impl ResidentSplit {
    /// Uploads `split`: its labels, and its images as a buffer (`buffer`), a texture (`texture`) or
    /// both; fails with the sizes when the adapter cannot bind that much in one buffer or hold it in
    /// one texture.
    pub fn upload(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        what: &str,
        split: &Arc<Split>,
        buffer: bool,
        texture: bool,
    ) -> Result<Self> {
        let bytes = split.images.len().div_ceil(4) * 4;
        let limit = device.limits().max_storage_buffer_binding_size;
        if bytes as u64 > limit {
            bail!(
                "the {what} images take {bytes} bytes but the adapter binds at most {limit} bytes per buffer"
            );
        }
        let labels: Vec<u32> = split.labels.iter().map(|&l| l as u32).collect();
        let max = device.limits().max_texture_dimension_2d as usize;
        let texture = texture
            .then(|| ImageTexture::upload(device, queue, what, &split.images, split.pixels, max))
            .transpose()?;
        Ok(Self {
            texture,
            images: buffer.then(|| {
                buffers::storage_init(
                    device,
                    &format!("{what} images (len * pixels / 4) u32"),
                    &split.images,
                )
            }),
            labels: buffers::storage_init(
                device,
                &format!("{what} labels (len) u32"),
                bytemuck::cast_slice(&labels),
            ),
            len: split.len(),
            source: split.clone(),
        })
    }

    /// The images buffer, which the kernels reading samples from storage bind.
    pub fn images(&self) -> &wgpu::Buffer {
        self.images
            .as_ref()
            .expect("the split was uploaded with its images buffer for these kernels")
    }

    /// Whether this is the device copy of `split`.
    pub fn holds(&self, split: &Arc<Split>) -> bool {
        Arc::ptr_eq(&self.source, split)
    }

    /// Bytes moved to the device by `upload`.
    pub fn bytes(&self) -> u64 {
        self.images.as_ref().map_or(0, |b| b.size())
            + self.labels.size()
            + self.texture.as_ref().map_or(0, |t| t.bytes())
    }
}

/// The order buffer `(len)` u32 for a training split of `len` samples.
pub fn order_buffer(device: &wgpu::Device, len: usize) -> wgpu::Buffer {
    buffers::storage(device, "epoch order (len) u32", (len * 4) as u64)
}

/// Entries of the order per row of `OrderTexture` (`ORDER_TEX_WIDTH` in the shaders).
pub const ORDER_TEX_WIDTH: usize = 4096;

/// Where a split's samples sit in an `ImageTexture`: `texels` rgba32uint texels (16 pixels each) a
/// sample, `1 << row_shift` samples a row (a power of two, so a shader finds a sample's row by a
/// shift), `width` x `height` texels in all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageTextureShape {
    pub texels: usize,
    pub row_shift: u32,
    pub width: usize,
    pub height: usize,
}

impl ImageTextureShape {
    /// The shape for `len` samples of `pixels` pixels in textures at most `max` texels a side.
    pub fn of(what: &str, pixels: usize, len: usize, max: usize) -> Result<Self> {
        let texels = pixels.div_ceil(16).max(1);
        if texels > max {
            bail!(
                "the {what} images have {pixels} pixels each, more than a texture row of this adapter holds ({} pixels); use FMNIST_GPU_OPERANDS=buffers or --device cpu",
                max * 16
            );
        }
        let row_shift = (max / texels).ilog2();
        let per_row = 1usize << row_shift;
        let height = len.div_ceil(per_row).max(1);
        if height > max {
            bail!(
                "the {what} split's {len} samples of {pixels} pixels need a {}x{height} texture, past this adapter's {max}-texel limit; use FMNIST_GPU_OPERANDS=buffers or --device cpu",
                per_row * texels
            );
        }
        Ok(Self {
            texels,
            row_shift,
            width: per_row * texels,
            height,
        })
    }

    /// The texture's rows `rows` as bytes: each sample's pixels from its first texel, zeros elsewhere.
    fn rows_bytes(&self, images: &[u8], pixels: usize, rows: std::ops::Range<usize>) -> Vec<u8> {
        let row_bytes = self.width * 16;
        let mut out = vec![0u8; rows.len() * row_bytes];
        let per_row = 1usize << self.row_shift;
        let len = images.len() / pixels.max(1);
        for s in rows.start * per_row..(rows.end * per_row).min(len) {
            let at = (s / per_row - rows.start) * row_bytes + (s % per_row) * self.texels * 16;
            out[at..at + pixels].copy_from_slice(&images[s * pixels..(s + 1) * pixels]);
        }
        out
    }
}

/// A split's images as an rgba32uint texture (`ImageTextureShape`'s layout), for kernels that gather
/// samples by texel fetches.
pub struct ImageTexture {
    texture: wgpu::Texture,
    pub shape: ImageTextureShape,
}

impl ImageTexture {
    /// Uploads `images` (`pixels` bytes a sample) for a texture at most `max` texels a side, in
    /// slices of about 4 MB, so the host never holds a second whole copy.
    pub fn upload(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        what: &str,
        images: &[u8],
        pixels: usize,
        max: usize,
    ) -> Result<Self> {
        let len = images.len() / pixels.max(1);
        let shape = ImageTextureShape::of(what, pixels, len, max)?;
        let texture = uint_texture(
            device,
            &format!(
                "{what} images texture ({} samples a row)",
                1 << shape.row_shift
            ),
            wgpu::TextureFormat::Rgba32Uint,
            shape.width,
            shape.height,
        );
        let rows_per_write = ((4 << 20) / (shape.width * 16)).max(1);
        for y0 in (0..shape.height).step_by(rows_per_write) {
            let y1 = (y0 + rows_per_write).min(shape.height);
            let data = shape.rows_bytes(images, pixels, y0..y1);
            write_rows(
                queue,
                &texture,
                &data,
                shape.width * 16,
                y0,
                shape.width,
                y1 - y0,
            );
        }
        Ok(Self { texture, shape })
    }

    pub fn view(&self) -> wgpu::TextureView {
        self.texture.create_view(&Default::default())
    }

    pub fn bytes(&self) -> u64 {
        (self.shape.width * self.shape.height * 16) as u64
    }
}

/// The epoch's order as an r32uint texture, `ORDER_TEX_WIDTH` entries a row.
pub struct OrderTexture {
    texture: wgpu::Texture,
}

impl OrderTexture {
    /// Room for an order of `len` entries.
    pub fn new(device: &wgpu::Device, len: usize) -> Result<Self> {
        let height = len.div_ceil(ORDER_TEX_WIDTH).max(1);
        let max = device.limits().max_texture_dimension_2d as usize;
        if height > max {
            bail!(
                "an order of {len} samples needs {height} texture rows, past this adapter's {max}"
            );
        }
        Ok(Self {
            texture: uint_texture(
                device,
                "epoch order texture",
                wgpu::TextureFormat::R32Uint,
                ORDER_TEX_WIDTH,
                height,
            ),
        })
    }

    /// Writes `order` from entry 0 on: its whole rows, then the partial last one.
    pub fn write(&self, queue: &wgpu::Queue, order: &[u32]) {
        let bytes: &[u8] = bytemuck::cast_slice(order);
        let full = order.len() / ORDER_TEX_WIDTH;
        let row_bytes = ORDER_TEX_WIDTH * 4;
        if full > 0 {
            write_rows(
                queue,
                &self.texture,
                &bytes[..full * row_bytes],
                row_bytes,
                0,
                ORDER_TEX_WIDTH,
                full,
            );
        }
        let rest = order.len() % ORDER_TEX_WIDTH;
        if rest > 0 {
            write_rows(
                queue,
                &self.texture,
                &bytes[full * row_bytes..],
                rest * 4,
                full,
                rest,
                1,
            );
        }
    }

    pub fn view(&self) -> wgpu::TextureView {
        self.texture.create_view(&Default::default())
    }
}

fn uint_texture(
    device: &wgpu::Device,
    label: &str,
    format: wgpu::TextureFormat,
    width: usize,
    height: usize,
) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d {
            width: width as u32,
            height: height as u32,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    })
}

/// Writes `rows` rows of `width` texels (`row_bytes` bytes each in `data`) at texture row `y0`.
fn write_rows(
    queue: &wgpu::Queue,
    texture: &wgpu::Texture,
    data: &[u8],
    row_bytes: usize,
    y0: usize,
    width: usize,
    rows: usize,
) {
    queue.write_texture(
        wgpu::TexelCopyTextureInfo {
            texture,
            mip_level: 0,
            origin: wgpu::Origin3d {
                x: 0,
                y: y0 as u32,
                z: 0,
            },
            aspect: wgpu::TextureAspect::All,
        },
        data,
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(row_bytes as u32),
            rows_per_image: Some(rows as u32),
        },
        wgpu::Extent3d {
            width: width as u32,
            height: rows as u32,
            depth_or_array_layers: 1,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fashion_mnist_takes_128_samples_a_row_of_49_texels() {
        let s = ImageTextureShape::of("train", 784, 60_000, 8192).unwrap();
        assert_eq!(
            (s.texels, s.row_shift, s.width, s.height),
            (49, 7, 6272, 469)
        );
    }

    #[test]
    fn samples_start_on_whole_texels_padded_with_zeros() {
        // 3 samples of 5 pixels, 2 samples a row (max 2 texels a side).
        let images: Vec<u8> = (1..=15).collect();
        let s = ImageTextureShape::of("t", 5, 3, 2).unwrap();
        assert_eq!((s.texels, s.row_shift, s.width, s.height), (1, 1, 2, 2));
        let bytes = s.rows_bytes(&images, 5, 0..2);
        assert_eq!(bytes.len(), 2 * 2 * 16);
        assert_eq!(&bytes[..5], &[1, 2, 3, 4, 5]);
        assert!(bytes[5..16].iter().all(|&b| b == 0));
        assert_eq!(&bytes[16..21], &[6, 7, 8, 9, 10]);
        assert_eq!(&bytes[32..37], &[11, 12, 13, 14, 15]);
        assert!(bytes[37..].iter().all(|&b| b == 0));
        // A later slice starts at its own first row.
        assert_eq!(s.rows_bytes(&images, 5, 1..2)[..5], [11, 12, 13, 14, 15]);
    }

    #[test]
    fn a_split_past_the_texture_limits_is_an_error_naming_it() {
        let e = ImageTextureShape::of("train", 16 * 9, 10, 8).unwrap_err();
        assert!(
            e.to_string().contains("train images have 144 pixels"),
            "{e}"
        );
        let e = ImageTextureShape::of("eval", 16, 8 * 8 + 1, 8).unwrap_err();
        assert!(e.to_string().contains("eval split's 65 samples"), "{e}");
    }
}
