//! Runs single kernels on host data, for the tests and `fmnist selftest` (the case list stays in
//! `gpu::selftest`): packs inputs into the GPU's padded layout with NaN in every padding lane, poisons
//! every output with NaN, records one dispatch, downloads and unpads the result. Every run that reads
//! a result back is an `async fn` awaiting the readback, so that a browser (wasm32, WebGPU), where a
//! buffer maps only after control returns to its event loop, can run it; native callers block on it
//! (through `pollster`). This file holds the harness, the matmuls with their row padding, and the
//! texture updates; `buffer_path` the kernels that read a step from a resident split (gather,
//! forward_gather, dense_tail, grad_update_gather, the range updates) and their inputs (`StepCase`,
//! `ParamsPacking`). Tested through tests/kernels.rs, whose cases run every entry point here against
//! its CPU twin.

use anyhow::Result;

use std::cell::RefCell;
use std::rc::Rc;

use crate::config::OptimizerConfig;
use crate::gpu::buffers::{self, pad4};
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::{self, Kernel, Kernels};
use crate::gpu::uniforms::{FLAG_DROPOUT, FLAG_MASK, MatmulDims, StepRecord, UpdateTexDims};

mod buffer_path;
mod dropout;
mod tail;
mod texture_path;

pub use buffer_path::{Packed, ParamsPacking, StepCase, pack_u8, pad_ld, unpad_ld};
pub use tail::{TailOut, TailUpdateStart};

/// Tight `(rows, cols)` -> `(rows, pad4(cols))` with NaN in the padding lanes.
pub fn pad_rows(tight: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let ld = pad4(cols);
    let mut out = vec![f32::NAN; rows.max(1) * ld];
    for r in 0..rows {
        out[r * ld..r * ld + cols].copy_from_slice(&tight[r * cols..(r + 1) * cols]);
    }
    out
}

/// `(rows, pad4(cols))` -> tight `(rows, cols)`.
pub fn unpad_rows(padded: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let ld = pad4(cols);
    (0..rows)
        .flat_map(|r| padded[r * ld..r * ld + cols].iter().copied())
        .collect()
}

/// The matmul layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// C = A · B, A (m, k), B (k, n).
    Nn,
    /// C = A · B^T, A (m, k), B (n, k).
    Nt,
    /// C = A^T · B, A (k, m), B (k, n).
    Tn,
}

/// A matmul's layout, shape (m, n, k), operands A and B tight, and flags.
type MatmulArgs<'a> = (Layout, usize, usize, usize, &'a [f32], &'a [f32], u32);

/// What a matmul run returns: C tight `(m, n)` and, with FLAG_COLSUM, the column sums `(n)`.
pub struct MatmulOut {
    pub c: Vec<f32>,
    pub colsum: Vec<f32>,
}

/// Floats per row of the texture mirrors in the update checks (any multiple of 4 works; not the atlas
/// width, so the index arithmetic is checked on a second shape).
const UPDATE_MIRROR_WIDTH: usize = 64;

/// Runs single kernels on host data: the harness behind the tests and `fmnist selftest`.
pub struct Harness {
    pub ctx: GpuContext,
    /// Every pipeline, the updating ones built for Adam with Keras' defaults.
    pub kernels: Kernels,
    /// Pipelines built for other optimizers, as the cases ask for them (the update's rule and
    /// hyper-parameters are compiled into each pipeline).
    by_optimizer: RefCell<Vec<(OptimizerConfig, Rc<Kernels>)>>,
}

impl Harness {
    pub fn new(ctx: GpuContext) -> Self {
        let kernels = Kernels::new(&ctx.device, &OptimizerConfig::default());
        Self {
            ctx,
            kernels,
            by_optimizer: RefCell::new(Vec::new()),
        }
    }

    /// The pipelines built for `opt` (built once per optimizer and kept).
    pub fn kernels_for(&self, opt: &OptimizerConfig) -> Rc<Kernels> {
        let mut cache = self.by_optimizer.borrow_mut();
        if let Some((_, k)) = cache.iter().find(|(o, _)| o == opt) {
            return k.clone();
        }
        let k = Rc::new(Kernels::new(&self.ctx.device, opt));
        cache.push((*opt, k.clone()));
        k
    }

    fn run(
        &self,
        kernel: Kernel,
        bind: &wgpu::BindGroup,
        textures: Option<&wgpu::BindGroup>,
        groups: (u32, u32, u32),
    ) {
        self.run_on(&self.kernels, kernel, bind, textures, groups);
    }

    /// `run` with the pipelines of `kernels` (those of an optimizer's, `kernels_for`).
    fn run_on(
        &self,
        kernels: &Kernels,
        kernel: Kernel,
        bind: &wgpu::BindGroup,
        textures: Option<&wgpu::BindGroup>,
        groups: (u32, u32, u32),
    ) {
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some(kernel.entry_point()),
            });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(kernel.entry_point()),
                timestamp_writes: None,
            });
            pass.set_pipeline(kernels.pipeline(kernel));
            pass.set_bind_group(0, bind, &[]);
            if let Some(t) = textures {
                pass.set_bind_group(1, t, &[]);
            }
            pass.dispatch_workgroups(groups.0, groups.1, groups.2);
        }
        self.ctx.queue.submit([enc.finish()]);
    }

    /// The first `floats` floats of `buf`, awaited (see `buffers::read_mapped_async`).
    async fn download(&self, buf: &wgpu::Buffer, floats: usize) -> Result<Vec<f32>> {
        let staging = buffers::readback(&self.ctx.device, "selftest readback", (floats * 4) as u64);
        let mut out = vec![0.0f32; floats];
        buffers::download_f32_async(
            &self.ctx.device,
            &self.ctx.queue,
            buf,
            0,
            &staging,
            &mut out,
        )
        .await?;
        Ok(out)
    }

    /// One matmul in `layout` with `flags`. `a`, `b` tight in the layout's shapes; `bias (n)` for
    /// FLAG_BIAS; `mask (m, n)` (a ReLU output) for FLAG_MASK.
    #[allow(clippy::too_many_arguments)]
    pub async fn matmul(
        &self,
        layout: Layout,
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        b: &[f32],
        flags: u32,
        bias: Option<&[f32]>,
        mask: Option<&[f32]>,
    ) -> Result<MatmulOut> {
        self.matmul_with(false, layout, m, n, k, a, b, flags, bias, mask)
            .await
    }

    /// `mm_nt` (or `mm_nt_tex`) with FLAG_MASK | FLAG_DROPOUT: `(dy (m, k) · w (n, k)^T)` where
    /// `act (m, n) > 0`, times `scale` (dropout's backward), else 0.
    #[allow(clippy::too_many_arguments)]
    pub async fn mm_nt_dropout_mask(
        &self,
        textures: bool,
        m: usize,
        n: usize,
        k: usize,
        dy: &[f32],
        w: &[f32],
        act: &[f32],
        scale: f32,
    ) -> Result<MatmulOut> {
        let flags = FLAG_MASK | FLAG_DROPOUT;
        let args = (Layout::Nt, m, n, k, dy, w, flags);
        self.matmul_scaled(textures, args, None, Some(act), scale)
            .await
    }

    /// As `matmul`; with `textures`, the texture variant (`mm_nn_tex`, `mm_tn_tex`) reads A and B from
    /// rgba32float textures holding the same padded rows (NaN in the padding lanes).
    #[allow(clippy::too_many_arguments)]
    pub async fn matmul_with(
        &self,
        textures: bool,
        layout: Layout,
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        b: &[f32],
        flags: u32,
        bias: Option<&[f32]>,
        mask: Option<&[f32]>,
    ) -> Result<MatmulOut> {
        self.matmul_scaled(textures, (layout, m, n, k, a, b, flags), bias, mask, 0.0)
            .await
    }

    /// The matmul behind `matmul_with` and `mm_nt_dropout_mask`: `mask_scale` is MatmulDims'.
    async fn matmul_scaled(
        &self,
        textures: bool,
        (layout, m, n, k, a, b, flags): MatmulArgs<'_>,
        bias: Option<&[f32]>,
        mask: Option<&[f32]>,
        mask_scale: f32,
    ) -> Result<MatmulOut> {
        let d = &self.ctx.device;
        let (a_rows, a_cols, b_rows, b_cols) = match layout {
            Layout::Nn => (m, k, k, n),
            Layout::Nt => (m, k, n, k),
            Layout::Tn => (k, m, k, n),
        };
        let a_pad = pad_rows(a, a_rows, a_cols);
        let mut b_pad = pad_rows(b, b_rows, b_cols);
        let bias_off = b_pad.len();
        if let Some(bias) = bias {
            b_pad.extend(pad_rows(bias, 1, n));
        }
        let e_pad = mask
            .map(|e| pad_rows(e, m, n))
            .unwrap_or_else(|| vec![0.0; 4]);
        let ldc = pad4(n);
        let colsum_off = m.max(1) * ldc;
        let c_poison = vec![f32::NAN; colsum_off + ldc];
        let a_buf = buffers::storage_init(d, "selftest a", bytemuck::cast_slice(&a_pad));
        let b_buf = buffers::storage_init(d, "selftest b", bytemuck::cast_slice(&b_pad));
        let c_buf =
            buffers::storage_init(d, "selftest c (poisoned)", bytemuck::cast_slice(&c_poison));
        let e_buf = buffers::storage_init(d, "selftest e", bytemuck::cast_slice(&e_pad));
        let dims = MatmulDims {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            flags,
            lda: pad4(a_cols) as u32,
            ldb: pad4(b_cols) as u32,
            ldc: ldc as u32,
            lde: ldc as u32,
            a_off: 0,
            b_off: 0,
            c_off: 0,
            e_off: match layout {
                Layout::Nn => bias_off as u32,
                Layout::Nt => 0,
                Layout::Tn => colsum_off as u32,
            },
            mask_scale,
            _pad: [0; 3],
        };
        let u = buffers::uniform_init(d, "selftest dims", bytemuck::bytes_of(&dims));
        let bind = kernels::bind_group(
            d,
            "selftest matmul",
            &self.kernels.matmul_layout,
            &[&a_buf, &b_buf, &c_buf, &e_buf, &u],
            None,
        );
        let kernel = match (layout, textures) {
            (Layout::Nn, false) => Kernel::MmNn,
            (Layout::Nt, false) => Kernel::MmNt,
            (Layout::Tn, false) => Kernel::MmTn,
            (Layout::Nn, true) => Kernel::MmNnTex,
            (Layout::Tn, true) => Kernel::MmTnTex,
            (Layout::Nt, true) => Kernel::MmNtTex,
        };
        let tex = if textures {
            let texture = |label: &str,
                           data: &[f32],
                           rows: usize,
                           cols: usize|
             -> Result<wgpu::TextureView> {
                let width = pad4(cols);
                let t = buffers::float_texture(d, label, width, rows.max(1))?;
                buffers::write_texture(
                    &self.ctx.queue,
                    &t,
                    width,
                    rows.max(1),
                    &data[..rows.max(1) * width],
                );
                Ok(t.create_view(&Default::default()))
            };
            let at = texture("selftest a_tex", &a_pad, a_rows, a_cols)?;
            let bt = texture("selftest b_tex", &b_pad, b_rows, b_cols)?;
            Some(kernels::tex_bind_group(
                d,
                "selftest matmul textures",
                &self.kernels,
                &at,
                &bt,
            ))
        } else {
            None
        };
        self.run(
            kernel,
            &bind,
            tex.as_ref(),
            kernels::matmul_groups(kernel, m, n),
        );
        let out = self.download(&c_buf, c_poison.len()).await?;
        Ok(MatmulOut {
            c: unpad_rows(&out, m, n),
            colsum: out[colsum_off..colsum_off + n].to_vec(),
        })
    }

    /// One step of `opt`'s texture update (adam_tex, sgd_tex or rmsprop_tex) over flat vectors
    /// (length a multiple of 4): returns (params, m, v).
    #[allow(clippy::too_many_arguments)]
    pub async fn update_tex(
        &self,
        p: &[f32],
        g: &[f32],
        m: &[f32],
        v: &[f32],
        alpha: f32,
        opt: &OptimizerConfig,
    ) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        let d = &self.ctx.device;
        let kernels = self.kernels_for(opt);
        let kernel = Kernel::update_tex(opt.kind());
        let len4 = p.len() / 4;
        let pb = buffers::storage_init(d, "selftest p", bytemuck::cast_slice(p));
        let gb = buffers::storage_init(d, "selftest g", bytemuck::cast_slice(g));
        let mb = buffers::storage_init(d, "selftest m", bytemuck::cast_slice(m));
        let vb = buffers::storage_init(d, "selftest v", bytemuck::cast_slice(v));
        let groups = kernels::update_tex_groups(len4, UPDATE_MIRROR_WIDTH / 4, 0);
        let dims = UpdateTexDims {
            len4: len4 as u32,
            row4: (UPDATE_MIRROR_WIDTH / 4) as u32,
            row0: 0,
            _pad: 0,
        };
        let u = buffers::uniform_init(d, "selftest adam dims", bytemuck::bytes_of(&dims));
        let rec = StepRecord {
            alpha,
            ..Default::default()
        };
        let r = buffers::uniform_init(d, "selftest step record", bytemuck::bytes_of(&rec));
        let bind = kernels::bind_group(
            d,
            kernel.entry_point(),
            &kernels.update_tex_layout,
            &[&pb, &gb, &mb, &vb, &u, &r],
            Some((5, 0, std::mem::size_of::<StepRecord>() as u64)),
        );
        // The texture mirrors Adam reads, as the backend keeps them: rows of UPDATE_MIRROR_WIDTH floats.
        let rows = p.len().div_ceil(UPDATE_MIRROR_WIDTH).max(1);
        let mirror = |label: &str, data: &[f32]| -> Result<wgpu::TextureView> {
            let t = buffers::float_texture(d, label, UPDATE_MIRROR_WIDTH, rows)?;
            let mut padded = data.to_vec();
            padded.resize(rows * UPDATE_MIRROR_WIDTH, 0.0);
            buffers::write_texture(&self.ctx.queue, &t, UPDATE_MIRROR_WIDTH, rows, &padded);
            Ok(t.create_view(&Default::default()))
        };
        let views = [
            mirror("selftest p_tex", p)?,
            mirror("selftest g_tex", g)?,
            mirror("selftest m_tex", m)?,
            mirror("selftest v_tex", v)?,
        ];
        let tex = kernels::views_bind_group(
            d,
            "selftest update textures",
            &kernels.update_mirrors_layout,
            &[&views[0], &views[1], &views[2], &views[3]],
        );
        self.run_on(&kernels, kernel, &bind, Some(&tex), groups);
        Ok((
            self.download(&pb, p.len()).await?,
            self.download(&mb, p.len()).await?,
            self.download(&vb, p.len()).await?,
        ))
    }
}
