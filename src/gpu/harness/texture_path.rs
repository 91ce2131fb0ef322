//! The harness runs of the texture path's first-layer kernels, `forward_gather_tex` and
//! `grad_update_gather_tex`: the case's split as an images texture (laid out for a small texture side,
//! so samples spread over several texture rows) and its order as an order texture; dZ as a
//! NaN-padded texture; W, p, m and v in an atlas layout (`ParamsPacking::atlas`) both as buffers and as
//! their texture mirrors. Tested through tests/kernels.rs (`gpu::selftest::forward_gather_case` and
//! `grad_update_gather_tex_case`).

use anyhow::Result;

use super::Harness;
use super::buffer_path::{Packed, ParamsPacking, StepCase, pad_ld, unpad_ld};
use crate::config::OptimizerConfig;
use crate::gpu::buffers::{self, pad4};
use crate::gpu::dataset::{ImageTexture, OrderTexture};
use crate::gpu::kernels::{self, Kernel};
use crate::gpu::uniforms::{DropFields, ForwardGatherTexDims, GradUpdateGatherTexDims, StepRecord};

/// The texture side the harness lays a case's images out for (where they fit; else the adapter's).
const SMALL_SIDE: usize = 128;

impl Harness {
    /// The case's images and order as the texture path holds them. Training always reads through the
    /// order, and grad_update_gather_tex has no direct mode: a direct case is given the identity order,
    /// which reads the same rows.
    fn sample_textures(&self, case: &StepCase) -> Result<(ImageTexture, OrderTexture)> {
        let (d, q) = (&self.ctx.device, &self.ctx.queue);
        let identity: Vec<u32>;
        let order_entries = if case.rows.direct {
            identity = (0..case.samples as u32).collect();
            &identity
        } else {
            &case.order
        };
        let upload = |max| ImageTexture::upload(d, q, "selftest", &case.images, case.inputs, max);
        let images =
            upload(SMALL_SIDE).or_else(|_| upload(d.limits().max_texture_dimension_2d as usize))?;
        let order = OrderTexture::new(d, order_entries.len())?;
        order.write(q, order_entries);
        Ok((images, order))
    }

    /// An rgba32float texture of `rows` x `width` floats holding `data`.
    fn float_view(
        &self,
        label: &str,
        data: &[f32],
        rows: usize,
        width: usize,
    ) -> Result<wgpu::TextureView> {
        let t = buffers::float_texture(&self.ctx.device, label, width, rows)?;
        buffers::write_texture(&self.ctx.queue, &t, width, rows, data);
        Ok(t.create_view(&Default::default()))
    }

    /// `forward_gather_tex` of `case` through W (inputs, fan_out) and b (fan_out), tight, packed in an
    /// atlas layout with NaN in every padding lane (W read from its texture, b from the buffer); act
    /// poisoned before the run; `drop`'s dropout after ReLU. Returns act (capacity, fan_out) tight.
    #[allow(clippy::too_many_arguments)]
    pub async fn forward_gather_tex(
        &self,
        case: &StepCase,
        w: &[f32],
        b: &[f32],
        fan_out: usize,
        relu: bool,
        drop: DropFields,
    ) -> Result<Vec<f32>> {
        let d = &self.ctx.device;
        let (images, order) = self.sample_textures(case)?;
        let pk = ParamsPacking::atlas(case.inputs, fan_out);
        let params = pk.pack(w, b, f32::NAN);
        let w_view = self.float_view("selftest W atlas", &params, pk.total / pk.ld, pk.ld)?;
        let p = buffers::storage_init(d, "selftest params", bytemuck::cast_slice(&params));
        let ldc = pad4(fan_out);
        let poison = vec![f32::NAN; case.capacity * ldc];
        let act =
            buffers::storage_init(d, "selftest act (poisoned)", bytemuck::cast_slice(&poison));
        let dims = ForwardGatherTexDims {
            inputs: case.inputs as u32,
            fan_out: fan_out as u32,
            capacity: case.capacity as u32,
            ldc: ldc as u32,
            w_row: (pk.w_off / pk.ld) as u32,
            b_off: pk.b_off as u32,
            texels: images.shape.texels as u32,
            row_shift: images.shape.row_shift,
            direct: case.rows.direct as u32,
            relu: relu as u32,
            drop,
            _pad: [0; 2],
        };
        let u = buffers::uniform_init(
            d,
            "selftest forward_gather_tex dims",
            bytemuck::bytes_of(&dims),
        );
        let (r, at) = self.record_buffer(&case.record());
        let bind = kernels::bind_group(
            d,
            "selftest forward_gather_tex",
            self.kernels.layout(Kernel::ForwardGatherTex),
            &[&p, &act, &u, &r],
            Some((3, at, std::mem::size_of::<StepRecord>() as u64)),
        );
        let views = [w_view, images.view(), order.view()];
        let tex = kernels::views_bind_group(
            d,
            "selftest forward_gather_tex textures",
            &self.kernels.forward_gather_tex_tex_layout,
            &views.iter().collect::<Vec<_>>(),
        );
        self.run(
            Kernel::ForwardGatherTex,
            &bind,
            Some(&tex),
            kernels::matmul_groups(Kernel::ForwardGatherTex, case.capacity, fan_out),
        );
        let out = self.download(&act, poison.len()).await?;
        Ok(unpad_ld(&out, 0, case.capacity, fan_out, ldc))
    }

    /// `grad_update_gather_tex` of `case` with dZ (capacity, fan_out) tight, as a texture whose rows past
    /// the step and padding lanes are NaN, on p, m and v packed by `pk` (an atlas layout,
    /// `ParamsPacking::atlas`) and mirrored into textures.
    #[allow(clippy::too_many_arguments)]
    pub async fn grad_update_gather_tex(
        &self,
        case: &StepCase,
        dz: &[f32],
        pk: &ParamsPacking,
        start: &Packed,
        alpha: f32,
        opt: &OptimizerConfig,
    ) -> Result<Packed> {
        let d = &self.ctx.device;
        let kernels = self.kernels_for(opt);
        let (cap, live) = (case.capacity, case.rows.rows);
        let (images, order) = self.sample_textures(case)?;
        let ldz = pad4(pk.cols);
        let mut dz_pad = pad_ld(dz, cap, pk.cols, ldz, f32::NAN);
        dz_pad[live * ldz..].fill(f32::NAN);
        let atlas_rows = pk.total / pk.ld;
        let views = [
            self.float_view("selftest p_tex", &start.p, atlas_rows, pk.ld)?,
            self.float_view("selftest dz_tex", &dz_pad, cap, ldz)?,
            self.float_view("selftest m_tex", &start.m, atlas_rows, pk.ld)?,
            self.float_view("selftest v_tex", &start.v, atlas_rows, pk.ld)?,
            images.view(),
            order.view(),
        ];
        let pb = buffers::storage_init(d, "selftest p", bytemuck::cast_slice(&start.p));
        let gb = buffers::storage(d, "selftest g (unused)", 16);
        let mb = buffers::storage_init(d, "selftest m", bytemuck::cast_slice(&start.m));
        let vb = buffers::storage_init(d, "selftest v", bytemuck::cast_slice(&start.v));
        let dims = GradUpdateGatherTexDims {
            inputs: pk.rows as u32,
            fan_out: pk.cols as u32,
            ld: pk.ld as u32,
            w_row: (pk.w_off / pk.ld) as u32,
            b_row: (pk.b_off / pk.ld) as u32,
            texels: images.shape.texels as u32,
            row_shift: images.shape.row_shift,
            _pad: 0,
        };
        let u = buffers::uniform_init(
            d,
            "selftest grad_update_gather_tex dims",
            bytemuck::bytes_of(&dims),
        );
        let rec = StepRecord {
            alpha,
            ..case.record()
        };
        let (r, at) = self.record_buffer(&rec);
        let bind = kernels::bind_group(
            d,
            "selftest grad_update_gather_tex",
            kernels.layout(Kernel::GradUpdateGatherTex),
            &[&pb, &gb, &mb, &vb, &u, &r],
            Some((5, at, std::mem::size_of::<StepRecord>() as u64)),
        );
        let tex = kernels::views_bind_group(
            d,
            "selftest grad_update_gather_tex textures",
            &kernels.grad_update_gather_tex_tex_layout,
            &views.iter().collect::<Vec<_>>(),
        );
        self.run_on(
            &kernels,
            Kernel::GradUpdateGatherTex,
            &bind,
            Some(&tex),
            kernels::grad_update_gather_tex_groups(pk.rows, pk.cols),
        );
        Ok(Packed {
            p: self.download(&pb, pk.total).await?,
            m: self.download(&mb, pk.total).await?,
            v: self.download(&vb, pk.total).await?,
        })
    }
}
