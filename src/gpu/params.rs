//! The model's state on the device: parameters, gradients and Adam's m and v as flat f32 buffers in the
//! padded `GpuLayout`, moved to and from the host's flat `ParamLayout` only here. Tested through
//! tests/gpu_train.rs (parameters round-trip unchanged, training matches the CPU path).

use anyhow::Result;

use crate::gpu::buffers::{self, GpuLayout, TextureMirror};
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::TAIL_TEX_MAX_CLASSES;
use crate::model::ParamLayout;

/// The mirrors of the parameter state: the atlas (the whole flat buffer; its first rows are W1), the
/// later layers' weights, the last layer's W|b for dense_tail_tex, and Adam's operands m and v
/// (atlas-shaped) and g (the atlas rows after b1, which adam_tex updates).
pub struct ParamMirrors {
    pub atlas: TextureMirror,
    pub weights: Vec<TextureMirror>,
    /// The last layer's W with b as one more row, where dense_tail_tex can run it (at most
    /// `TAIL_TEX_MAX_CLASSES` classes) and it is not the first layer (the atlas holds that one).
    tail: Option<TextureMirror>,
    pub g: TextureMirror,
    pub m: TextureMirror,
    pub v: TextureMirror,
}

impl ParamMirrors {
    fn new(
        device: &wgpu::Device,
        layout: &GpuLayout,
        params: &wgpu::Buffer,
        grads: &wgpu::Buffer,
        m: &wgpu::Buffer,
        v: &wgpu::Buffer,
    ) -> Result<Self> {
        let atlas = |label: &str, b: &wgpu::Buffer| {
            TextureMirror::new(
                device,
                label,
                b,
                0,
                layout.atlas_width(),
                layout.atlas_rows(),
            )
        };
        Ok(Self {
            atlas: atlas("params atlas (rows, atlas_width)", params)?,
            // The weights a texture product reads: the hidden layers' after the first (the last
            // layer's is read from its buffer by the tail).
            weights: layout.layers[1..layout.layers.len().saturating_sub(1).max(1)]
                .iter()
                .enumerate()
                .map(|(i, g)| {
                    TextureMirror::new(
                        device,
                        &format!("W{} mirror (fan_in, ld)", i + 2),
                        params,
                        g.weight,
                        g.ld,
                        g.fan_in,
                    )
                })
                .collect::<Result<_>>()?,
            tail: match layout.layers.as_slice() {
                [_, .., last] if last.fan_out <= TAIL_TEX_MAX_CLASSES => Some(TextureMirror::new(
                    device,
                    "last layer W|b mirror (fan_in + 1, ld)",
                    params,
                    last.weight,
                    last.ld,
                    last.fan_in + 1,
                )?),
                _ => None,
            },
            // Only the rows adam_tex reads: grad_update_gather_tex updates W1 and b1 (the first rows) itself.
            g: TextureMirror::new(
                device,
                "grads mirror (atlas rows after b1)",
                grads,
                layout.adam_tex_row0() * layout.atlas_width(),
                layout.atlas_width(),
                layout.atlas_rows() - layout.adam_tex_row0(),
            )?,
            m: atlas("adam m mirror (atlas)", m)?,
            v: atlas("adam v mirror (atlas)", v)?,
        })
    }

    /// The texture holding layer `l`'s weight.
    pub fn weight_view(&self, l: usize) -> wgpu::TextureView {
        if l == 0 {
            self.atlas.view()
        } else {
            self.weights[l - 1].view()
        }
    }

    /// The texture of the last layer's W with b as row `fan_in`, as dense_tail_tex reads it: its own
    /// mirror, or the atlas when the last layer is the first (the atlas row after W1 is b1). None when
    /// the layer is too wide for dense_tail_tex.
    pub fn tail_view(&self, layout: &GpuLayout) -> Option<wgpu::TextureView> {
        match (layout.layers.as_slice(), &self.tail) {
            ([only], _) if only.fan_out <= TAIL_TEX_MAX_CLASSES => Some(self.atlas.view()),
            (_, Some(t)) => Some(t.view()),
            _ => None,
        }
    }

    /// Every mirror that follows the parameters, m and v (refreshed after Adam and host writes).
    pub fn after_adam(&self) -> Vec<TextureMirror> {
        [self.atlas.clone(), self.m.clone(), self.v.clone()]
            .into_iter()
            .chain(self.weights.iter().cloned())
            .chain(self.tail.iter().cloned())
            .collect()
    }
}

pub struct ParamState {
    pub layout: GpuLayout,
    cpu_layout: ParamLayout,
    /// `(layout.total)` each.
    pub params: wgpu::Buffer,
    pub grads: wgpu::Buffer,
    pub m: wgpu::Buffer,
    pub v: wgpu::Buffer,
    /// `(layout.total)`: where `download` reads any of them back.
    read: wgpu::Buffer,
    /// Texture mirrors, on the texture operand path only.
    pub mirrors: Option<ParamMirrors>,
}

impl ParamState {
    /// Uploads `params` (flat, CPU layout); gradients and Adam's moments start at zero. With `mirrors`,
    /// also the texture mirrors of the texture path (call `refresh_mirrors` before they are read).
    pub fn new(
        device: &wgpu::Device,
        cpu_layout: ParamLayout,
        params: &[f32],
        mirrors: bool,
    ) -> Result<Self> {
        let layout = GpuLayout::of(&cpu_layout);
        let bytes = (layout.total * 4) as u64;
        let packed = layout.pack(&cpu_layout, params);
        let params =
            buffers::storage_init(device, "params (GpuLayout)", bytemuck::cast_slice(&packed));
        let grads = buffers::storage(device, "grads (GpuLayout)", bytes);
        let m = buffers::storage(device, "adam m (GpuLayout)", bytes);
        let v = buffers::storage(device, "adam v (GpuLayout)", bytes);
        let mirrors = if mirrors {
            Some(ParamMirrors::new(device, &layout, &params, &grads, &m, &v)?)
        } else {
            None
        };
        Ok(Self {
            read: buffers::readback(device, "params readback (GpuLayout)", bytes),
            params,
            grads,
            m,
            v,
            mirrors,
            layout,
            cpu_layout,
        })
    }

    /// Records the copies that bring the mirrors up to date with the buffers (after the host wrote
    /// them); returns how many.
    pub fn refresh_mirrors(&self, enc: &mut wgpu::CommandEncoder) -> u64 {
        let Some(m) = &self.mirrors else { return 0 };
        let copies = m.after_adam();
        for c in &copies {
            c.encode(enc);
        }
        copies.len() as u64
    }

    /// One of the four buffers, in the CPU's flat layout (awaits the GPU).
    pub async fn download(&self, ctx: &GpuContext, which: &wgpu::Buffer) -> Result<Vec<f32>> {
        let mut gpu = vec![0.0f32; self.layout.total];
        buffers::download_f32_async(&ctx.device, &ctx.queue, which, 0, &self.read, &mut gpu)
            .await?;
        Ok(self.layout.unpack(&self.cpu_layout, &gpu))
    }

    /// Replaces one of the four buffers with `flat` (CPU layout); queued before the next submission.
    pub fn upload(&self, queue: &wgpu::Queue, which: &wgpu::Buffer, flat: &[f32]) {
        let packed = self.layout.pack(&self.cpu_layout, flat);
        queue.write_buffer(which, 0, bytemuck::cast_slice(&packed));
    }

    /// Floats in each buffer.
    pub fn total(&self) -> usize {
        self.layout.total
    }
}
