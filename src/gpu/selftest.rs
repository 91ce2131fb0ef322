//! Every WGSL entry point against its CPU twin (`cpu.rs`) on random inputs over a ladder of shapes, and one
//! training step GPU vs CPU. Inputs are packed into the GPU's padded layout with NaN in every padding
//! lane, and outputs are poisoned with NaN before each run, so a kernel that reads padding or skips an
//! element fails. Closeness is `|gpu - cpu| <= atol + rtol * |cpu|`. Shared by `fmnist selftest` and
//! tests/kernels.rs, tests/gpu_train.rs.

use anyhow::Result;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use std::sync::Arc;

use crate::backend::{Backend, CpuBackend, Role};
use crate::batches::epoch_order;
use crate::config::AdamConfig;
use crate::cpu;
use crate::data::Split;
use crate::gpu::GpuBackend;
use crate::gpu::plan::Operands;
use crate::gpu::buffers::{self, pad4};
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::{
    self, AdamDims, FLAG_BIAS, FLAG_COLSUM, FLAG_MASK, FLAG_RELU, Kernel, Kernels, MatmulDims,
    StepRecord, StepStat, XentDims,
};
use crate::model::{MlpSpec, glorot_init};

/// Elementwise ops and Adam.
pub const TOL_ELEMENTWISE: (f32, f32) = (1e-6, 1e-5);
/// Reductions (matmuls over k, column sums, loss sums).
pub const TOL_REDUCTION: (f32, f32) = (1e-5, 1e-4);

/// The ladder, as training shapes `(batch, fan_in, fan_out)`: 1, 7, T-1, T, T+1 around both matmul
/// tiles T (`kernels::MM_TILE` and `kernels::TEX_TILE`), an odd shape, and the tutorial's two layers.
pub fn shape_ladder() -> Vec<(usize, usize, usize)> {
    let (t, u) = (kernels::MM_TILE, kernels::TEX_TILE);
    vec![
        (1, 1, 1),
        (7, 7, 7),
        (t - 1, t - 1, t - 1),
        (t, t, t),
        (t + 1, t + 1, t + 1),
        (u - 1, u - 1, u - 1),
        (u, u, u),
        (u + 1, u + 1, u + 1),
        (33, 785, 129),
        (32, 784, 128),
        (32, 128, 10),
    ]
}

/// How far a GPU result is from its CPU twin.
#[derive(Clone, Debug)]
pub struct Closeness {
    pub max_abs: f32,
    pub max_rel: f32,
    /// Index of the element that used most of its tolerance, with both values.
    pub worst: usize,
    pub gpu: f32,
    pub cpu: f32,
    /// Largest `|gpu - cpu| / (atol + rtol |cpu|)`: <= 1 passes; infinite for NaN or a length mismatch.
    pub used: f32,
    pub atol: f32,
    pub rtol: f32,
}

impl Closeness {
    pub fn pass(&self) -> bool {
        self.used <= 1.0
    }
    pub fn describe(&self) -> String {
        format!(
            "max abs {:.2e}, max rel {:.2e}, worst [{}] gpu {} cpu {} ({:.0}% of atol {:.0e} + rtol {:.0e})",
            self.max_abs,
            self.max_rel,
            self.worst,
            self.gpu,
            self.cpu,
            100.0 * self.used,
            self.atol,
            self.rtol
        )
    }
}

/// Compares elementwise; NaN anywhere in `gpu` fails.
pub fn compare(gpu: &[f32], cpu: &[f32], (atol, rtol): (f32, f32)) -> Closeness {
    let mut c = Closeness {
        max_abs: 0.0,
        max_rel: 0.0,
        worst: 0,
        gpu: f32::NAN,
        cpu: f32::NAN,
        used: if gpu.len() == cpu.len() {
            0.0
        } else {
            f32::INFINITY
        },
        atol,
        rtol,
    };
    for (i, (&g, &r)) in gpu.iter().zip(cpu).enumerate() {
        let d = (g - r).abs();
        let used = if d.is_nan() {
            f32::INFINITY
        } else {
            d / (atol + rtol * r.abs())
        };
        c.max_abs = c.max_abs.max(if d.is_nan() { f32::INFINITY } else { d });
        if r != 0.0 {
            c.max_rel = c.max_rel.max(d / r.abs());
        }
        if used > c.used || i == 0 {
            c.used = c.used.max(used);
            (c.worst, c.gpu, c.cpu) = (i, g, r);
        }
    }
    c
}

/// One row of the self-test table.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub kernel: String,
    pub shape: String,
    pub closeness: Closeness,
}

impl CaseResult {
    pub fn line(&self) -> String {
        let c = &self.closeness;
        format!(
            "{:<28} {:<14} {:>10.2e} {:>10.2e} {:>14} {}",
            self.kernel,
            self.shape,
            c.max_abs,
            c.max_rel,
            format!("{:.0e}/{:.0e}", c.atol, c.rtol),
            if c.pass() {
                "pass".to_string()
            } else {
                format!("FAIL: {}", c.describe())
            }
        )
    }
    pub fn header() -> String {
        format!(
            "{:<28} {:<14} {:>10} {:>10} {:>14} {}",
            "kernel", "shape", "max abs", "max rel", "atol/rtol", "result"
        )
    }
}

/// Uniform random values in [lo, hi).
pub fn random(n: usize, lo: f32, hi: f32, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

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

/// What a matmul run returns: C tight `(m, n)` and, with FLAG_COLSUM, the column sums `(n)`.
pub struct MatmulOut {
    pub c: Vec<f32>,
    pub colsum: Vec<f32>,
}

/// Floats per row of the texture mirrors in the Adam check (any multiple of 4 works; not the atlas
/// width, so the index arithmetic is checked on a second shape).
const ADAM_MIRROR_WIDTH: usize = 64;

/// Runs single kernels on host data: the harness behind the tests and `fmnist selftest`.
pub struct Harness {
    pub ctx: GpuContext,
    pub kernels: Kernels,
}

impl Harness {
    pub fn new(ctx: GpuContext) -> Self {
        let kernels = Kernels::new(&ctx.device);
        Self { ctx, kernels }
    }

    fn run(
        &self,
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
            pass.set_pipeline(self.kernels.pipeline(kernel));
            pass.set_bind_group(0, bind, &[]);
            if let Some(t) = textures {
                pass.set_bind_group(1, t, &[]);
            }
            pass.dispatch_workgroups(groups.0, groups.1, groups.2);
        }
        self.ctx.queue.submit([enc.finish()]);
    }

    fn download(&self, buf: &wgpu::Buffer, floats: usize) -> Result<Vec<f32>> {
        let staging = buffers::readback(&self.ctx.device, "selftest readback", (floats * 4) as u64);
        let mut out = vec![0.0f32; floats];
        buffers::download_f32(
            &self.ctx.device,
            &self.ctx.queue,
            buf,
            0,
            &staging,
            &mut out,
        )?;
        Ok(out)
    }

    /// One matmul in `layout` with `flags`. `a`, `b` tight in the layout's shapes; `bias (n)` for
    /// FLAG_BIAS; `mask (m, n)` (a ReLU output) for FLAG_MASK.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(
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
    }

    /// As `matmul`; with `textures`, the texture variant (`mm_nn_tex`, `mm_tn_tex`) reads A and B from
    /// rgba32float textures holding the same padded rows (NaN in the padding lanes).
    #[allow(clippy::too_many_arguments)]
    pub fn matmul_with(
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
        let out = self.download(&c_buf, c_poison.len())?;
        Ok(MatmulOut {
            c: unpad_rows(&out, m, n),
            colsum: out[colsum_off..colsum_off + n].to_vec(),
        })
    }

    /// softmax_xent over `capacity` rows of which the first `rows` are live: returns dlogits (capacity,
    /// cols), the summed loss and the correct count.
    pub fn softmax_xent(
        &self,
        logits: &[f32],
        labels: &[u32],
        rows: usize,
        capacity: usize,
        cols: usize,
    ) -> Result<(Vec<f32>, f32, u32)> {
        let d = &self.ctx.device;
        let ld = pad4(cols);
        let z = pad_rows(logits, capacity, cols);
        let poison = vec![f32::NAN; capacity * ld];
        // Labels in slot 1 of a two-slot ring, so the slot arithmetic is exercised.
        let mut lab = vec![u32::MAX; 2 * capacity];
        lab[capacity..capacity + rows].copy_from_slice(&labels[..rows]);
        // Four steps' worth of partials, poisoned; the step under test is stat slot 2.
        let stats_init = vec![
            StepStat {
                loss: f32::NAN,
                correct: u32::MAX,
            };
            4 * kernels::XENT_WG
        ];
        let z_buf = buffers::storage_init(d, "selftest logits", bytemuck::cast_slice(&z));
        let l_buf = buffers::storage_init(d, "selftest labels", bytemuck::cast_slice(&lab));
        let dz_buf = buffers::storage_init(
            d,
            "selftest dlogits (poisoned)",
            bytemuck::cast_slice(&poison),
        );
        let s_buf = buffers::storage_init(d, "selftest stats", bytemuck::cast_slice(&stats_init));
        let dims = XentDims {
            cols: cols as u32,
            ld: ld as u32,
            capacity: capacity as u32,
            _pad: 0,
        };
        let u = buffers::uniform_init(d, "selftest xent dims", bytemuck::bytes_of(&dims));
        let stride = self.ctx.device.limits().min_uniform_buffer_offset_alignment as usize;
        let mut recs = vec![0u8; 2 * stride];
        let rec = StepRecord {
            rows: rows as u32,
            slot: 1,
            stat: 2,
            alpha: 0.0,
            scale: (1.0 / rows.max(1) as f64) as f32,
            _pad: [0; 3],
        };
        recs[stride..stride + std::mem::size_of::<StepRecord>()]
            .copy_from_slice(bytemuck::bytes_of(&rec));
        let r_buf = buffers::uniform_init(d, "selftest step records", &recs);
        let bind = kernels::bind_group(
            d,
            "selftest softmax_xent",
            &self.kernels.xent_layout,
            &[&z_buf, &l_buf, &dz_buf, &s_buf, &u, &r_buf],
            Some((5, stride as u64, std::mem::size_of::<StepRecord>() as u64)),
        );
        self.run(Kernel::SoftmaxXent, &bind, None, (1, 1, 1));
        let dz = unpad_rows(&self.download(&dz_buf, poison.len())?, capacity, cols);
        let stats = self.download(&s_buf, 2 * stats_init.len())?;
        let partials = &bytemuck::cast_slice::<f32, StepStat>(&stats)
            [2 * kernels::XENT_WG..3 * kernels::XENT_WG];
        let loss = partials.iter().map(|p| p.loss).sum();
        let correct = partials.iter().map(|p| p.correct).sum();
        Ok((dz, loss, correct))
    }

    /// One Adam step over flat vectors (length a multiple of 4): returns (params, m, v).
    #[allow(clippy::too_many_arguments)]
    pub fn adam(
        &self,
        p: &[f32],
        g: &[f32],
        m: &[f32],
        v: &[f32],
        alpha: f32,
        cfg: &AdamConfig,
    ) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        let d = &self.ctx.device;
        let len4 = p.len() / 4;
        let pb = buffers::storage_init(d, "selftest p", bytemuck::cast_slice(p));
        let gb = buffers::storage_init(d, "selftest g", bytemuck::cast_slice(g));
        let mb = buffers::storage_init(d, "selftest m", bytemuck::cast_slice(m));
        let vb = buffers::storage_init(d, "selftest v", bytemuck::cast_slice(v));
        let groups = kernels::adam_groups(len4, ADAM_MIRROR_WIDTH / 4);
        let dims = AdamDims {
            len4: len4 as u32,
            beta1: cfg.beta1 as f32,
            beta2: cfg.beta2 as f32,
            eps: cfg.epsilon as f32,
            row4: (ADAM_MIRROR_WIDTH / 4) as u32,
            _pad: [0; 3],
        };
        let u = buffers::uniform_init(d, "selftest adam dims", bytemuck::bytes_of(&dims));
        let rec = StepRecord {
            alpha,
            ..Default::default()
        };
        let r = buffers::uniform_init(d, "selftest step record", bytemuck::bytes_of(&rec));
        let bind = kernels::bind_group(
            d,
            "selftest adam",
            &self.kernels.adam_layout,
            &[&pb, &gb, &mb, &vb, &u, &r],
            Some((5, 0, std::mem::size_of::<StepRecord>() as u64)),
        );
        // The texture mirrors Adam reads, as the backend keeps them: rows of ADAM_MIRROR_WIDTH floats.
        let rows = p.len().div_ceil(ADAM_MIRROR_WIDTH).max(1);
        let mirror = |label: &str, data: &[f32]| -> Result<wgpu::TextureView> {
            let t = buffers::float_texture(d, label, ADAM_MIRROR_WIDTH, rows)?;
            let mut padded = data.to_vec();
            padded.resize(rows * ADAM_MIRROR_WIDTH, 0.0);
            buffers::write_texture(&self.ctx.queue, &t, ADAM_MIRROR_WIDTH, rows, &padded);
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
            "selftest adam textures",
            &self.kernels.adam_tex_layout,
            &[&views[0], &views[1], &views[2], &views[3]],
        );
        self.run(Kernel::Adam, &bind, Some(&tex), groups);
        Ok((
            self.download(&pb, p.len())?,
            self.download(&mb, p.len())?,
            self.download(&vb, p.len())?,
        ))
    }
}

fn shape(b: usize, i: usize, o: usize) -> String {
    format!("{b}x{i}x{o}")
}

/// Every matmul layout and fused epilogue on one training shape `(batch, fan_in, fan_out)`.
pub fn matmul_cases(
    h: &Harness,
    (bt, fi, fo): (usize, usize, usize),
    seed: u64,
) -> Result<Vec<CaseResult>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (bt * 1_000_003 + fi * 1009 + fo) as u64);
    let mut out = Vec::new();
    let s = shape(bt, fi, fo);
    let red = TOL_REDUCTION;
    let mut push = |kernel: &str, c: Closeness| {
        out.push(CaseResult {
            kernel: kernel.to_string(),
            shape: s.clone(),
            closeness: c,
        })
    };
    // Forward X (bt, fi) · W (fi, fo), then + bias, then ReLU.
    let x = random(bt * fi, -1.0, 1.0, &mut rng);
    let w = random(fi * fo, -1.0, 1.0, &mut rng);
    let bias = random(fo, -1.0, 1.0, &mut rng);
    let mut want = vec![0.0f32; bt * fo];
    cpu::matmul(&x, &w, &mut want, bt, fi, fo);
    let got = h.matmul(Layout::Nn, bt, fo, fi, &x, &w, 0, None, None)?;
    push("matmul (mm_nn X·W)", compare(&got.c, &want, red));
    cpu::bias_add(&mut want, &bias, bt, fo);
    let got = h.matmul(Layout::Nn, bt, fo, fi, &x, &w, FLAG_BIAS, Some(&bias), None)?;
    push("bias_add (mm_nn+bias)", compare(&got.c, &want, red));
    cpu::relu(&mut want);
    let relu_out = want.clone();
    let got = h.matmul(
        Layout::Nn,
        bt,
        fo,
        fi,
        &x,
        &w,
        FLAG_BIAS | FLAG_RELU,
        Some(&bias),
        None,
    )?;
    push("relu (mm_nn+bias+relu)", compare(&got.c, &want, red));
    let got = h.matmul_with(
        true,
        Layout::Nn,
        bt,
        fo,
        fi,
        &x,
        &w,
        FLAG_BIAS | FLAG_RELU,
        Some(&bias),
        None,
    )?;
    push("matmul+bias+relu (mm_nn_tex)", compare(&got.c, &want, red));
    // Weight gradient X^T (fi, bt) · dY (bt, fo) and the bias gradient colsum(dY).
    let dy = random(bt * fo, -1.0, 1.0, &mut rng);
    let mut want = vec![0.0f32; fi * fo];
    cpu::matmul_at_b(&x, &dy, &mut want, fi, bt, fo);
    let got = h.matmul(Layout::Tn, fi, fo, bt, &x, &dy, FLAG_COLSUM, None, None)?;
    push("matmul_at_b (mm_tn X^T·dY)", compare(&got.c, &want, red));
    let mut db = vec![0.0f32; fo];
    cpu::bias_grad(&dy, &mut db, bt, fo);
    push("bias_grad (mm_tn colsum)", compare(&got.colsum, &db, red));
    let got = h.matmul_with(
        true,
        Layout::Tn,
        fi,
        fo,
        bt,
        &x,
        &dy,
        FLAG_COLSUM,
        None,
        None,
    )?;
    push("matmul_at_b (mm_tn_tex)", compare(&got.c, &want, red));
    push(
        "bias_grad (mm_tn_tex colsum)",
        compare(&got.colsum, &db, red),
    );
    // Input gradient dY (bt, fo) · W^T (fo, fi), then the ReLU mask of a (bt, fi) ReLU output.
    let mut want = vec![0.0f32; bt * fi];
    cpu::matmul_a_bt(&dy, &w, &mut want, bt, fo, fi);
    let got = h.matmul(Layout::Nt, bt, fi, fo, &dy, &w, 0, None, None)?;
    push("matmul_a_bt (mm_nt dY·W^T)", compare(&got.c, &want, red));
    let mut act = random(bt * fi, -1.0, 1.0, &mut rng);
    cpu::relu(&mut act);
    cpu::relu_backward(&mut want, &act);
    let got = h.matmul(Layout::Nt, bt, fi, fo, &dy, &w, FLAG_MASK, None, Some(&act))?;
    push("relu_backward (mm_nt+mask)", compare(&got.c, &want, red));
    let got = h.matmul_with(
        true,
        Layout::Nt,
        bt,
        fi,
        fo,
        &dy,
        &w,
        FLAG_MASK,
        None,
        Some(&act),
    )?;
    push("matmul_a_bt+mask (mm_nt_tex)", compare(&got.c, &want, red));
    drop(relu_out);
    Ok(out)
}

/// softmax_xent on `rows` live rows of `capacity`, logits scaled by `spread`.
pub fn softmax_case(
    h: &Harness,
    rows: usize,
    capacity: usize,
    cols: usize,
    spread: f32,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (rows * 7919 + cols) as u64);
    let logits = random(capacity * cols, -spread, spread, &mut rng);
    let labels: Vec<u32> = (0..capacity)
        .map(|_| rng.random_range(0..cols as u32))
        .collect();
    let scale = 1.0 / rows as f64;
    let mut want = vec![0.0f32; capacity * cols];
    let (loss, correct) = cpu::softmax_xent(&logits, &labels, &mut want, rows, cols, scale as f32);
    let (got, gl, gc) = h.softmax_xent(&logits, &labels, rows, capacity, cols)?;
    let s = format!("{rows}/{capacity}x{cols}");
    let mut dl = compare(&got, &want, TOL_ELEMENTWISE);
    if gc != correct {
        // A wrong count fails the case whatever the values say.
        dl.used = f32::INFINITY;
    }
    Ok(vec![
        CaseResult {
            kernel: format!("softmax_xent dlogits (±{spread})"),
            shape: s.clone(),
            closeness: dl,
        },
        CaseResult {
            kernel: format!("softmax_xent loss sum, correct {gc}/{correct}"),
            shape: s,
            closeness: compare(&[gl], &[loss], TOL_REDUCTION),
        },
    ])
}

/// One Adam step over `n` floats from a state that has already seen a few steps.
pub fn adam_case(h: &Harness, n: usize, seed: u64) -> Result<Vec<CaseResult>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ n as u64);
    let cfg = AdamConfig::default();
    let p = random(n, -1.0, 1.0, &mut rng);
    let g = random(n, -0.1, 0.1, &mut rng);
    let m = random(n, -0.01, 0.01, &mut rng);
    let v = random(n, 0.0, 1e-4, &mut rng);
    let alpha = cpu::adam_alpha(cfg.learning_rate, cfg.beta1, cfg.beta2, 3) as f32;
    let (gp, gm, gv) = h.adam(&p, &g, &m, &v, alpha, &cfg)?;
    let (mut cp, mut cm, mut cv) = (p.clone(), m.clone(), v.clone());
    cpu::adam(
        &mut cp,
        &g,
        &mut cm,
        &mut cv,
        alpha,
        cfg.beta1 as f32,
        cfg.beta2 as f32,
        cfg.epsilon as f32,
    );
    let s = format!("{n}");
    Ok(vec![
        CaseResult {
            kernel: "adam params".into(),
            shape: s.clone(),
            closeness: compare(&gp, &cp, TOL_ELEMENTWISE),
        },
        CaseResult {
            kernel: "adam m".into(),
            shape: s.clone(),
            closeness: compare(&gm, &cm, TOL_ELEMENTWISE),
        },
        CaseResult {
            kernel: "adam v".into(),
            shape: s,
            closeness: compare(&gv, &cv, TOL_ELEMENTWISE),
        },
    ])
}

/// The whole kernel ladder.
pub fn kernel_ladder(h: &Harness, seed: u64) -> Result<Vec<CaseResult>> {
    let mut out = Vec::new();
    for s in shape_ladder() {
        out.extend(matmul_cases(h, s, seed)?);
    }
    for (rows, cap, cols, spread) in [
        (1, 1, 1, 1.0),
        (1, 1, 10, 5.0),
        (32, 32, 10, 5.0),
        (33, 40, 10, 5.0),
        (7, 7, 3, 1000.0),
        (100, 100, 10, 20.0),
    ] {
        out.extend(softmax_case(h, rows, cap, cols, spread, seed)?);
    }
    for n in [4, 1000, 101_776] {
        out.extend(adam_case(h, n, seed)?);
    }
    Ok(out)
}

/// Random normalised images `(rows, inputs)` in [0, 1] and labels.
pub fn random_batch(rows: usize, inputs: usize, classes: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = random(rows * inputs, 0.0, 1.0, &mut rng);
    let labels = (0..rows)
        .map(|_| rng.random_range(0..classes as u32))
        .collect();
    (x, labels)
}

/// A split of `n` random images of `pixels` bytes with labels below `classes`.
pub fn random_split(n: usize, pixels: usize, classes: usize, seed: u64) -> Split {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Split {
        images: (0..n * pixels).map(|_| rng.random::<u8>()).collect(),
        labels: (0..n).map(|_| rng.random_range(0..classes as u8)).collect(),
        pixels,
    }
}

/// `steps` training steps of the same model from the same weights and batches on both devices; returns
/// (GPU params, CPU params, GPU stats, CPU stats) in the flat CPU layout.
pub fn train_both(
    ctx: GpuContext,
    operands: Operands,
    spec: &MlpSpec,
    batch: usize,
    steps: usize,
    seed: u64,
) -> Result<(
    Vec<f32>,
    Vec<f32>,
    crate::metrics::StepStats,
    crate::metrics::StepStats,
)> {
    let params = glorot_init(spec, seed);
    let adam = AdamConfig::default();
    let mut gpu =
        GpuBackend::with_operands(ctx, operands, spec.clone(), params.clone(), adam, batch)?;
    let mut cpu_b = CpuBackend::new(spec.clone(), params, adam, batch);
    let split = Arc::new(random_split(batch * steps, spec.inputs, spec.outputs, seed));
    let order = epoch_order(split.len(), seed, 0, true);
    for b in [&mut gpu as &mut dyn Backend, &mut cpu_b] {
        b.attach(Role::Train, &split)?;
        b.set_order(&order)?;
        for s in 0..steps {
            b.train_step(s * batch, batch)?;
        }
    }
    let gs = gpu.take_stats()?;
    let cs = cpu_b.take_stats()?;
    Ok((gpu.params()?, cpu_b.params()?, gs, cs))
}

/// One optimizer step GPU (on `operands`) vs CPU on every parameter, per tensor.
pub fn one_step_cases(
    ctx: GpuContext,
    operands: Operands,
    spec: &MlpSpec,
    batch: usize,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    let (g, c, gs, cs) = train_both(ctx, operands, spec, batch, 1, seed)?;
    let path = operands.name();
    let layout = spec.layout();
    let mut out = Vec::new();
    for (i, l) in layout.layers.iter().enumerate() {
        let s = format!("{}x{}", l.fan_in, l.fan_out);
        out.push(CaseResult {
            kernel: format!("train step ({path}): W{} after Adam", i + 1),
            shape: s.clone(),
            closeness: compare(&g[l.weight_range()], &c[l.weight_range()], TOL_REDUCTION),
        });
        out.push(CaseResult {
            kernel: format!("train step ({path}): b{} after Adam", i + 1),
            shape: format!("{}", l.fan_out),
            closeness: compare(&g[l.bias_range()], &c[l.bias_range()], TOL_REDUCTION),
        });
    }
    let mut loss = compare(&[gs.loss_sum as f32], &[cs.loss_sum as f32], TOL_REDUCTION);
    if gs.correct != cs.correct {
        loss.used = f32::INFINITY;
    }
    out.push(CaseResult {
        kernel: format!(
            "train step ({path}): loss, correct {}/{}",
            gs.correct, cs.correct
        ),
        shape: format!("batch {batch}"),
        closeness: loss,
    });
    Ok(out)
}
