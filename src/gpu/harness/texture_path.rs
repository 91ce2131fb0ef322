//! The harness run of the texture path's first-layer kernel, `grad_adam_tex`: the gathered inputs and dZ
//! as NaN-padded textures, p, m and v in an atlas layout (`ParamsPacking::atlas`) both as buffers and as
//! their texture mirrors. Tested through tests/kernels.rs (`gpu::selftest::grad_adam_tex_case`).

use anyhow::Result;

use super::Harness;
use super::buffer_path::{Packed, ParamsPacking, StepCase, pad_ld};
use crate::config::AdamConfig;
use crate::gpu::buffers::{self, pad4};
use crate::gpu::kernels::{self, Kernel};
use crate::gpu::uniforms::{GradAdamTexDims, StepRecord};

impl Harness {
    /// `grad_adam_tex` of `case` with the gathered inputs x (capacity, inputs) and dZ (capacity,
    /// fan_out) tight, both as textures whose rows past the step and padding lanes are NaN, on p, m and
    /// v packed by `pk` (an atlas layout, `ParamsPacking::atlas`) and mirrored into textures.
    #[allow(clippy::too_many_arguments)]
    pub fn grad_adam_tex(
        &self,
        case: &StepCase,
        x: &[f32],
        dz: &[f32],
        pk: &ParamsPacking,
        start: &Packed,
        alpha: f32,
        cfg: &AdamConfig,
    ) -> Result<Packed> {
        let d = &self.ctx.device;
        let (cap, live) = (case.capacity, case.rows.rows);
        let texture = |label: &str, data: &[f32], rows: usize, width: usize| {
            let t = buffers::float_texture(d, label, width, rows)?;
            buffers::write_texture(&self.ctx.queue, &t, width, rows, data);
            anyhow::Ok(t.create_view(&Default::default()))
        };
        let padded = |tight: &[f32], cols: usize| {
            let ld = pad4(cols);
            let mut out = pad_ld(tight, cap, cols, ld, f32::NAN);
            out[live * ld..].fill(f32::NAN);
            (out, ld)
        };
        let (x_pad, ldx) = padded(x, pk.rows);
        let (dz_pad, ldz) = padded(dz, pk.cols);
        let atlas_rows = pk.total / pk.ld;
        let views = [
            texture("selftest p_tex", &start.p, atlas_rows, pk.ld)?,
            texture("selftest dz_tex", &dz_pad, cap, ldz)?,
            texture("selftest m_tex", &start.m, atlas_rows, pk.ld)?,
            texture("selftest v_tex", &start.v, atlas_rows, pk.ld)?,
            texture("selftest x_tex", &x_pad, cap, ldx)?,
        ];
        let pb = buffers::storage_init(d, "selftest p", bytemuck::cast_slice(&start.p));
        let gb = buffers::storage(d, "selftest g (unused)", 16);
        let mb = buffers::storage_init(d, "selftest m", bytemuck::cast_slice(&start.m));
        let vb = buffers::storage_init(d, "selftest v", bytemuck::cast_slice(&start.v));
        let dims = GradAdamTexDims {
            inputs: pk.rows as u32,
            fan_out: pk.cols as u32,
            ld: pk.ld as u32,
            w_row: (pk.w_off / pk.ld) as u32,
            b_row: (pk.b_off / pk.ld) as u32,
            beta1: cfg.beta1 as f32,
            beta2: cfg.beta2 as f32,
            eps: cfg.epsilon as f32,
        };
        let u = buffers::uniform_init(d, "selftest grad_adam_tex dims", bytemuck::bytes_of(&dims));
        let rec = StepRecord {
            alpha,
            ..case.record()
        };
        let (r, at) = self.record_buffer(&rec);
        let bind = kernels::bind_group(
            d,
            "selftest grad_adam_tex",
            self.kernels.layout(Kernel::GradAdamTex),
            &[&pb, &gb, &mb, &vb, &u, &r],
            Some((5, at, std::mem::size_of::<StepRecord>() as u64)),
        );
        let tex = kernels::views_bind_group(
            d,
            "selftest grad_adam_tex textures",
            &self.kernels.grad_adam_tex_tex_layout,
            &views.iter().collect::<Vec<_>>(),
        );
        self.run(
            Kernel::GradAdamTex,
            &bind,
            Some(&tex),
            kernels::grad_adam_tex_groups(pk.rows, pk.cols),
        );
        Ok(Packed {
            p: self.download(&pb, pk.total)?,
            m: self.download(&mb, pk.total)?,
            v: self.download(&vb, pk.total)?,
        })
    }
}
