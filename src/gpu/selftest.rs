//! Every WGSL entry point against its CPU twin (`cpu.rs`) on random inputs over a ladder of shapes, and one
//! training step GPU vs CPU. Inputs are packed into the GPU's padded layout with NaN in every padding
//! lane, and outputs are poisoned with NaN before each run, so a kernel that reads padding or skips an
//! element fails. Closeness is `|gpu - cpu| <= atol + rtol * |cpu|`. The buffer-path kernels read a
//! step from a split of random u8 images (`StepCase`) through an order whose entries outside the
//! step are valid sample indices too, so a kernel that reads them produces pixels where zeros belong. Shared by `fmnist selftest` and tests/kernels.rs, tests/gpu_train.rs.

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
use crate::gpu::buffers::{self, pad4};
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::{
    self, AdamDims, AdamRangeDims, FLAG_BIAS, FLAG_COLSUM, FLAG_MASK, FLAG_RELU, ForwardGatherDims,
    GatherDims, GradAdamDims, Kernel, Kernels, MatmulDims, StepRecord, StepStat, TailDims,
};
use crate::gpu::plan::Operands;
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

/// A stats record no kernel writes: what every stats buffer holds before a run.
const POISON_STAT: StepStat = StepStat {
    loss: f32::NAN,
    correct: u32::MAX,
    nonfinite: u32::MAX,
    _pad: u32::MAX,
};
/// Floats (4-byte words) per `StepStat`.
const STAT_FLOATS: usize = std::mem::size_of::<StepStat>() / 4;

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

    /// One adam_tex step over flat vectors (length a multiple of 4): returns (params, m, v).
    #[allow(clippy::too_many_arguments)]
    pub fn adam_tex(
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
        self.run(Kernel::AdamTex, &bind, Some(&tex), groups);
        Ok((
            self.download(&pb, p.len())?,
            self.download(&mb, p.len())?,
            self.download(&vb, p.len())?,
        ))
    }
}

/// Packs u8 bytes 4 to a u32, little-endian, as the GPU holds a split; the bytes of the last u32 past
/// the data are 0xa5, never a pixel.
pub fn pack_u8(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks(4)
        .map(|c| {
            let mut w = [0xa5u8; 4];
            w[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(w)
        })
        .collect()
}

/// Tight `(rows, cols)` -> `(rows, ld)` with `fill` in the padding lanes.
pub fn pad_ld(tight: &[f32], rows: usize, cols: usize, ld: usize, fill: f32) -> Vec<f32> {
    let mut out = vec![fill; rows.max(1) * ld];
    for r in 0..rows {
        out[r * ld..r * ld + cols].copy_from_slice(&tight[r * cols..(r + 1) * cols]);
    }
    out
}

/// `(rows, ld)` from float `off` on -> tight `(rows, cols)`.
pub fn unpad_ld(padded: &[f32], off: usize, rows: usize, cols: usize, ld: usize) -> Vec<f32> {
    (0..rows)
        .flat_map(|r| padded[off + r * ld..off + r * ld + cols].iter().copied())
        .collect()
}

/// A pass/fail verdict as a `Closeness` (for checks that are exact: counts, untouched lanes).
fn verdict(ok: bool) -> Closeness {
    Closeness {
        max_abs: 0.0,
        max_rel: 0.0,
        worst: 0,
        gpu: f32::NAN,
        cpu: f32::NAN,
        used: if ok { 0.0 } else { f32::INFINITY },
        atol: 0.0,
        rtol: 0.0,
    }
}

/// The samples of one step for the kernels that read the resident dataset: a split of `samples` random
/// u8 images of `inputs` pixels with labels, an order of random sample indices (repeated and out of
/// order), and which rows are live. The order runs past the step with valid indices too: out-of-range
/// ones would read as zeros on a device with robust buffer access, hiding a kernel that fills the
/// rows past a partial batch from them.
#[derive(Clone, Debug)]
pub struct StepCase {
    pub images: Vec<u8>,
    pub labels: Vec<u32>,
    pub order: Vec<u32>,
    pub samples: usize,
    pub inputs: usize,
    pub capacity: usize,
    pub rows: cpu::StepRows,
}

impl StepCase {
    /// `rows` live rows of `capacity`, from a split of at least 50 samples (more than a batch, so the
    /// order matters), labels below `classes`; `direct` reads rows in split order from a non-zero start.
    pub fn new(
        inputs: usize,
        classes: usize,
        capacity: usize,
        rows: usize,
        direct: bool,
        seed: u64,
    ) -> Self {
        let mut rng =
            ChaCha8Rng::seed_from_u64(seed ^ (inputs * 7_919 + capacity * 31 + rows) as u64);
        let samples = 50.max(capacity + 3);
        let images = (0..samples * inputs).map(|_| rng.random()).collect();
        let labels = (0..samples)
            .map(|_| rng.random_range(0..classes as u32))
            .collect();
        let start = if direct { (samples - rows) / 2 } else { 3 };
        let order = (0..start + capacity + 2)
            .map(|_| rng.random_range(0..samples as u32))
            .collect();
        Self {
            images,
            labels,
            order,
            samples,
            inputs,
            capacity,
            rows: cpu::StepRows {
                rows,
                start,
                direct,
            },
        }
    }

    /// "5/8 of 50x7 shuffled".
    pub fn describe(&self) -> String {
        format!(
            "{}/{} of {}x{} {}",
            self.rows.rows,
            self.capacity,
            self.samples,
            self.inputs,
            if self.rows.direct {
                "direct"
            } else {
                "shuffled"
            }
        )
    }

    fn record(&self) -> StepRecord {
        let rows = self.rows.rows;
        StepRecord {
            rows: rows as u32,
            slot: 0,
            stat: 2,
            alpha: 0.0,
            scale: (1.0 / rows.max(1) as f64) as f32,
            start: self.rows.start as u32,
            _pad: [0; 2],
        }
    }
}

/// What a dense_tail run returns, tight: dlogits (capacity, classes), dW (k, classes), db (classes),
/// dZ (capacity, k) (all NaN when not asked for), and the one stats record.
pub struct TailOut {
    pub dlogits: Vec<f32>,
    pub dw: Vec<f32>,
    pub db: Vec<f32>,
    pub dx: Vec<f32>,
    pub stat: StepStat,
}

/// What a grad_adam_gather run returns: params, m and v in their padded GPU layout (as `ParamsPacking`
/// describes), to be unpacked and checked for untouched padding.
pub struct Packed {
    pub p: Vec<f32>,
    pub m: Vec<f32>,
    pub v: Vec<f32>,
}

/// Where a test puts one layer's W (rows, cols) and b (cols) in a flat padded buffer: W from float 4
/// (a NaN quad before it) with one whole extra padding quad per row, b after a gap quad.
#[derive(Clone, Copy, Debug)]
pub struct ParamsPacking {
    pub rows: usize,
    pub cols: usize,
    pub w_off: usize,
    pub ld: usize,
    pub b_off: usize,
    pub total: usize,
}

impl ParamsPacking {
    pub fn new(rows: usize, cols: usize) -> Self {
        let ld = pad4(cols) + 4;
        let w_off = 4;
        let b_off = w_off + rows * ld + 4;
        Self {
            rows,
            cols,
            w_off,
            ld,
            b_off,
            total: b_off + pad4(cols) + 4,
        }
    }

    /// Tight W and b -> the flat buffer, `fill` everywhere else.
    pub fn pack(&self, w: &[f32], b: &[f32], fill: f32) -> Vec<f32> {
        let mut out = vec![fill; self.total];
        for r in 0..self.rows {
            let at = self.w_off + r * self.ld;
            out[at..at + self.cols].copy_from_slice(&w[r * self.cols..(r + 1) * self.cols]);
        }
        out[self.b_off..self.b_off + self.cols].copy_from_slice(&b[..self.cols]);
        out
    }

    /// The flat buffer -> tight (W, b).
    pub fn unpack(&self, flat: &[f32]) -> (Vec<f32>, Vec<f32>) {
        (
            unpad_ld(flat, self.w_off, self.rows, self.cols, self.ld),
            flat[self.b_off..self.b_off + self.cols].to_vec(),
        )
    }

    /// Whether every float outside W and b has the same bits in `a` and `b`.
    pub fn padding_equal(&self, a: &[f32], b: &[f32]) -> bool {
        let mut inside = vec![false; self.total];
        for r in 0..self.rows {
            let at = self.w_off + r * self.ld;
            inside[at..at + self.cols].fill(true);
        }
        inside[self.b_off..self.b_off + self.cols].fill(true);
        (0..self.total).all(|i| inside[i] || a[i].to_bits() == b[i].to_bits())
    }

    /// The same layer in the CPU's tight flat layout: W at 0, b right after it.
    pub fn cpu_layer(&self) -> crate::model::LayerOffsets {
        crate::model::LayerOffsets {
            weight: 0,
            bias: self.rows * self.cols,
            fan_in: self.rows,
            fan_out: self.cols,
        }
    }
}

impl Harness {
    /// A step record bound as the window at byte `offset` of the returned buffer (not at 0, so the
    /// window is exercised as the backend binds it).
    fn record_buffer(&self, rec: &StepRecord) -> (wgpu::Buffer, u64) {
        let stride = (self.ctx.device.limits().min_uniform_buffer_offset_alignment as usize)
            .max(std::mem::size_of::<StepRecord>());
        let mut bytes = vec![0xffu8; 2 * stride];
        bytes[stride..stride + std::mem::size_of::<StepRecord>()]
            .copy_from_slice(bytemuck::bytes_of(rec));
        let buf = buffers::uniform_init(&self.ctx.device, "selftest step records", &bytes);
        (buf, stride as u64)
    }

    fn split_buffers(&self, case: &StepCase) -> (wgpu::Buffer, wgpu::Buffer) {
        let d = &self.ctx.device;
        let images = pack_u8(&case.images);
        (
            buffers::storage_init(d, "selftest images (u8 x4)", bytemuck::cast_slice(&images)),
            buffers::storage_init(d, "selftest order", bytemuck::cast_slice(&case.order)),
        )
    }

    /// `gather` of `case` into x (capacity, ldx), poisoned first: returns x padded.
    pub fn gather(&self, case: &StepCase, ldx: usize) -> Result<Vec<f32>> {
        let d = &self.ctx.device;
        let (images, order) = self.split_buffers(case);
        let poison = vec![f32::NAN; case.capacity * ldx];
        let x = buffers::storage_init(d, "selftest x (poisoned)", bytemuck::cast_slice(&poison));
        let dims = GatherDims {
            inputs: case.inputs as u32,
            ldx: ldx as u32,
            capacity: case.capacity as u32,
            direct: case.rows.direct as u32,
        };
        let u = buffers::uniform_init(d, "selftest gather dims", bytemuck::bytes_of(&dims));
        let (r, at) = self.record_buffer(&case.record());
        let bind = kernels::bind_group(
            d,
            "selftest gather",
            &self.kernels.gather_layout,
            &[&images, &order, &x, &u, &r],
            Some((4, at, std::mem::size_of::<StepRecord>() as u64)),
        );
        self.run(
            Kernel::Gather,
            &bind,
            None,
            kernels::gather_groups(case.capacity, ldx),
        );
        self.download(&x, poison.len())
    }

    /// `forward_gather` of `case` through W (inputs, fan_out) and b (fan_out), tight; NaN in every
    /// padding lane of the parameters and in act before the run. Returns act (capacity, fan_out) tight.
    pub fn forward_gather(
        &self,
        case: &StepCase,
        w: &[f32],
        b: &[f32],
        fan_out: usize,
        relu: bool,
    ) -> Result<Vec<f32>> {
        let d = &self.ctx.device;
        let (images, order) = self.split_buffers(case);
        let pk = ParamsPacking::new(case.inputs, fan_out);
        let params = pk.pack(w, b, f32::NAN);
        let p = buffers::storage_init(d, "selftest params", bytemuck::cast_slice(&params));
        let ldc = pad4(fan_out);
        let poison = vec![f32::NAN; case.capacity * ldc];
        let act =
            buffers::storage_init(d, "selftest act (poisoned)", bytemuck::cast_slice(&poison));
        let dims = ForwardGatherDims {
            inputs: case.inputs as u32,
            fan_out: fan_out as u32,
            capacity: case.capacity as u32,
            ldc: ldc as u32,
            w_off: pk.w_off as u32,
            ldw: pk.ld as u32,
            b_off: pk.b_off as u32,
            direct: case.rows.direct as u32,
            relu: relu as u32,
            _pad: [0; 3],
        };
        let u = buffers::uniform_init(d, "selftest forward_gather dims", bytemuck::bytes_of(&dims));
        let (r, at) = self.record_buffer(&case.record());
        let bind = kernels::bind_group(
            d,
            "selftest forward_gather",
            &self.kernels.forward_gather_layout,
            &[&images, &order, &p, &act, &u, &r],
            Some((5, at, std::mem::size_of::<StepRecord>() as u64)),
        );
        self.run(
            Kernel::ForwardGather,
            &bind,
            None,
            kernels::forward_gather_groups(case.capacity, fan_out),
        );
        let out = self.download(&act, poison.len())?;
        Ok(unpad_ld(&out, 0, case.capacity, fan_out, ldc))
    }

    /// `dense_tail` on act (capacity, k) tight, whose rows past the step are sent as NaN (they must not
    /// be read), W (k, classes), b (classes), the labels and order of `case`. Every padding lane of the
    /// inputs is NaN, every output poisoned. `input_grad` asks for dZ.
    #[allow(clippy::too_many_arguments)]
    pub fn dense_tail(
        &self,
        case: &StepCase,
        act: &[f32],
        w: &[f32],
        b: &[f32],
        k: usize,
        classes: usize,
        input_grad: bool,
    ) -> Result<TailOut> {
        let d = &self.ctx.device;
        let cap = case.capacity;
        let lda = pad4(k);
        let mut act_pad = pad_ld(act, cap, k, lda, f32::NAN);
        act_pad[case.rows.rows * lda..].fill(f32::NAN);
        let pk = ParamsPacking::new(k, classes);
        let params = pk.pack(w, b, f32::NAN);
        let ldo = pad4(classes);
        let dl_off = cap * lda + 4;
        let dz_poison = vec![f32::NAN; dl_off + cap * ldo];
        let g_poison = vec![f32::NAN; pk.total];
        let stats_init = [POISON_STAT; 4];
        let a_buf = buffers::storage_init(d, "selftest act", bytemuck::cast_slice(&act_pad));
        let p_buf = buffers::storage_init(d, "selftest params", bytemuck::cast_slice(&params));
        let l_buf = buffers::storage_init(d, "selftest labels", bytemuck::cast_slice(&case.labels));
        let (_, order) = self.split_buffers(case);
        let g_buf = buffers::storage_init(
            d,
            "selftest grads (poisoned)",
            bytemuck::cast_slice(&g_poison),
        );
        let dz_buf = buffers::storage_init(
            d,
            "selftest dz (poisoned)",
            bytemuck::cast_slice(&dz_poison),
        );
        let s_buf = buffers::storage_init(d, "selftest stats", bytemuck::cast_slice(&stats_init));
        let dims = TailDims {
            k: k as u32,
            classes: classes as u32,
            capacity: cap as u32,
            lda: lda as u32,
            ldw: pk.ld as u32,
            ldo: ldo as u32,
            w_off: pk.w_off as u32,
            b_off: pk.b_off as u32,
            dl_off: dl_off as u32,
            dx_off: 0,
            direct: case.rows.direct as u32,
            input_grad: input_grad as u32,
        };
        let u = buffers::uniform_init(d, "selftest dense_tail dims", bytemuck::bytes_of(&dims));
        let (r, at) = self.record_buffer(&case.record());
        let bind = kernels::bind_group(
            d,
            "selftest dense_tail",
            self.kernels.layout(Kernel::DenseTail),
            &[
                &a_buf, &p_buf, &l_buf, &order, &g_buf, &dz_buf, &s_buf, &u, &r,
            ],
            Some((8, at, std::mem::size_of::<StepRecord>() as u64)),
        );
        self.run(Kernel::DenseTail, &bind, None, kernels::dense_tail_groups());
        let dz = self.download(&dz_buf, dz_poison.len())?;
        let grads = self.download(&g_buf, g_poison.len())?;
        let stats = self.download(&s_buf, STAT_FLOATS * stats_init.len())?;
        let stats: &[StepStat] = bytemuck::cast_slice(&stats);
        let (dw, db) = pk.unpack(&grads);
        Ok(TailOut {
            dlogits: unpad_ld(&dz, dl_off, cap, classes, ldo),
            dw,
            db,
            dx: unpad_ld(&dz, 0, cap, k, lda),
            stat: stats[2],
        })
    }

    /// `grad_adam_gather` of `case` with dZ (capacity, fan_out) tight, whose rows past the step and
    /// padding lanes are NaN (neither may be read), on params, m and v already packed by `pk`.
    #[allow(clippy::too_many_arguments)]
    pub fn grad_adam_gather(
        &self,
        case: &StepCase,
        dz: &[f32],
        pk: &ParamsPacking,
        start: &Packed,
        alpha: f32,
        cfg: &AdamConfig,
    ) -> Result<Packed> {
        let d = &self.ctx.device;
        let (images, order) = self.split_buffers(case);
        let ldz = pad4(pk.cols) + 4;
        let dz_off = 8;
        let mut dz_pad = vec![f32::NAN; dz_off];
        let mut live = pad_ld(dz, case.capacity, pk.cols, ldz, f32::NAN);
        live[case.rows.rows * ldz..].fill(f32::NAN);
        dz_pad.extend(live);
        let dz_buf = buffers::storage_init(d, "selftest dz", bytemuck::cast_slice(&dz_pad));
        let pb = buffers::storage_init(d, "selftest p", bytemuck::cast_slice(&start.p));
        let mb = buffers::storage_init(d, "selftest m", bytemuck::cast_slice(&start.m));
        let vb = buffers::storage_init(d, "selftest v", bytemuck::cast_slice(&start.v));
        let dims = GradAdamDims {
            inputs: pk.rows as u32,
            fan_out: pk.cols as u32,
            ld: pk.ld as u32,
            ldz: ldz as u32,
            w_off: pk.w_off as u32,
            b_off: pk.b_off as u32,
            dz_off: dz_off as u32,
            direct: case.rows.direct as u32,
            beta1: cfg.beta1 as f32,
            beta2: cfg.beta2 as f32,
            eps: cfg.epsilon as f32,
            _pad: 0,
        };
        let u = buffers::uniform_init(d, "selftest grad_adam dims", bytemuck::bytes_of(&dims));
        let rec = StepRecord {
            alpha,
            ..case.record()
        };
        let (r, at) = self.record_buffer(&rec);
        let bind = kernels::bind_group(
            d,
            "selftest grad_adam_gather",
            self.kernels.layout(Kernel::GradAdamGather),
            &[&images, &order, &dz_buf, &pb, &mb, &vb, &u, &r],
            Some((7, at, std::mem::size_of::<StepRecord>() as u64)),
        );
        self.run(
            Kernel::GradAdamGather,
            &bind,
            None,
            kernels::grad_adam_gather_groups(pk.rows, pk.cols),
        );
        Ok(Packed {
            p: self.download(&pb, pk.total)?,
            m: self.download(&mb, pk.total)?,
            v: self.download(&vb, pk.total)?,
        })
    }

    /// The buffer `adam` over the vec4s `[off4, off4 + len4)` of flat p, g, m, v: returns the whole
    /// (p, m, v), which must be unchanged outside the range.
    #[allow(clippy::too_many_arguments)]
    pub fn adam_range(
        &self,
        bufs: &Packed,
        g: &[f32],
        off4: usize,
        len4: usize,
        alpha: f32,
        cfg: &AdamConfig,
    ) -> Result<Packed> {
        let d = &self.ctx.device;
        let n = bufs.p.len();
        let pb = buffers::storage_init(d, "selftest p", bytemuck::cast_slice(&bufs.p));
        let gb = buffers::storage_init(d, "selftest g", bytemuck::cast_slice(g));
        let mb = buffers::storage_init(d, "selftest m", bytemuck::cast_slice(&bufs.m));
        let vb = buffers::storage_init(d, "selftest v", bytemuck::cast_slice(&bufs.v));
        let dims = AdamRangeDims {
            off4: off4 as u32,
            len4: len4 as u32,
            beta1: cfg.beta1 as f32,
            beta2: cfg.beta2 as f32,
            eps: cfg.epsilon as f32,
            _pad: [0; 3],
        };
        let u = buffers::uniform_init(d, "selftest adam range dims", bytemuck::bytes_of(&dims));
        let rec = StepRecord {
            alpha,
            ..Default::default()
        };
        let (r, at) = self.record_buffer(&rec);
        let bind = kernels::bind_group(
            d,
            "selftest adam",
            &self.kernels.adam_range_layout,
            &[&pb, &gb, &mb, &vb, &u, &r],
            Some((5, at, std::mem::size_of::<StepRecord>() as u64)),
        );
        self.run(Kernel::Adam, &bind, None, kernels::adam_range_groups(len4));
        Ok(Packed {
            p: self.download(&pb, n)?,
            m: self.download(&mb, n)?,
            v: self.download(&vb, n)?,
        })
    }
}

fn case_result(kernel: &str, shape: &str, closeness: Closeness) -> CaseResult {
    CaseResult {
        kernel: kernel.to_string(),
        shape: shape.to_string(),
        closeness,
    }
}

/// `gather` against cpu::gather, with x `pad` floats wider than `pad4(inputs)`: the values (which
/// must agree bit for bit, since both sides normalise by the same multiply), and zeros in every
/// padding lane and every row past the step.
pub fn gather_case(h: &Harness, case: &StepCase, pad: usize) -> Result<Vec<CaseResult>> {
    let (cap, inputs) = (case.capacity, case.inputs);
    let ldx = pad4(inputs) + pad;
    let got = h.gather(case, ldx)?;
    let mut want = vec![f32::NAN; cap * inputs];
    cpu::gather(&case.images, &case.order, &mut want, inputs, cap, case.rows);
    let tight = unpad_ld(&got, 0, cap, inputs, ldx);
    let bits_equal = tight
        .iter()
        .zip(&want)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    let padding_zero = (0..cap).all(|r| {
        got[r * ldx + inputs..(r + 1) * ldx]
            .iter()
            .all(|&v| v == 0.0)
    });
    let s = case.describe();
    Ok(vec![
        case_result("gather x", &s, compare(&tight, &want, TOL_ELEMENTWISE)),
        case_result(
            "gather x bit for bit, padding 0",
            &s,
            verdict(bits_equal && padding_zero),
        ),
    ])
}

fn to_f64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

fn to_f32(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

/// `forward_gather` against cpu::forward_gather run in f64 (so the reference's own rounding, which
/// over 784 terms is as large as the GPU's, does not count against the GPU), with Glorot-sized W and
/// b in [-0.5, 0.5]: pre-activations of the size training sees.
pub fn forward_gather_case(
    h: &Harness,
    case: &StepCase,
    fan_out: usize,
    relu: bool,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (case.inputs * 131 + fan_out) as u64);
    let limit = (6.0 / (case.inputs + fan_out) as f32).sqrt();
    let w = random(case.inputs * fan_out, -limit, limit, &mut rng);
    let b = random(fan_out, -0.5, 0.5, &mut rng);
    let got = h.forward_gather(case, &w, &b, fan_out, relu)?;
    let pk = ParamsPacking::new(case.inputs, fan_out);
    let mut params = to_f64(&w);
    params.extend(to_f64(&b));
    let mut want = vec![f64::NAN; case.capacity * fan_out];
    cpu::forward_gather(
        &case.images,
        &case.order,
        &params,
        &mut want,
        &pk.cpu_layer(),
        case.capacity,
        case.rows,
        relu,
    );
    let want = to_f32(&want);
    Ok(vec![case_result(
        &format!("forward_gather{}", if relu { "+relu" } else { "" }),
        &format!("{} ->{fan_out}", case.describe()),
        compare(&got, &want, TOL_REDUCTION),
    )])
}

/// `dense_tail` against cpu::dense_tail on a layer of k inputs and `classes` outputs: act a ReLU output
/// (so the mask has zeros), Glorot-sized W and b (logits of a few units, as in training).
pub fn dense_tail_case(
    h: &Harness,
    case: &StepCase,
    classes: usize,
    input_grad: bool,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    let k = case.inputs;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (k * 977 + classes) as u64);
    let limit = (6.0 / (k + classes) as f32).sqrt();
    let mut act = random(case.capacity * k, -1.0, 1.0, &mut rng);
    cpu::relu(&mut act);
    let w = random(k * classes, -limit, limit, &mut rng);
    let b = random(classes, -0.5, 0.5, &mut rng);
    dense_tail_check(h, case, &act, &w, &b, classes, input_grad)
}

/// `dense_tail` with logits of about `±spread` (from the bias): the max-subtracted softmax and the
/// log-sum-exp loss must stay finite at ±1000.
pub fn dense_tail_spread_case(
    h: &Harness,
    case: &StepCase,
    classes: usize,
    spread: f32,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    let k = case.inputs;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let mut act = random(case.capacity * k, -1.0, 1.0, &mut rng);
    cpu::relu(&mut act);
    let w = random(k * classes, -0.1, 0.1, &mut rng);
    let b = random(classes, -spread, spread, &mut rng);
    dense_tail_check(h, case, &act, &w, &b, classes, true)
}

/// Runs dense_tail on the GPU and its twin on the CPU (in f64, the reference's rounding left out) on the
/// given operands and compares every output.
pub fn dense_tail_check(
    h: &Harness,
    case: &StepCase,
    act: &[f32],
    w: &[f32],
    b: &[f32],
    classes: usize,
    input_grad: bool,
) -> Result<Vec<CaseResult>> {
    let (k, cap) = (case.inputs, case.capacity);
    let got = h.dense_tail(case, act, w, b, k, classes, input_grad)?;
    let pk = ParamsPacking::new(k, classes);
    let layer = pk.cpu_layer();
    let mut params = to_f64(w);
    params.extend(to_f64(b));
    let mut grads = vec![f64::NAN; params.len()];
    let mut dl = vec![f64::NAN; cap * classes];
    let mut dx = vec![f64::NAN; cap * k];
    let want = cpu::dense_tail(
        &to_f64(act),
        &params,
        &case.labels,
        &case.order,
        &mut grads,
        &mut dl,
        input_grad.then_some(&mut dx[..]),
        &layer,
        cap,
        case.rows,
        case.record().scale as f64,
    );
    let (grads, dl, dx) = (to_f32(&grads), to_f32(&dl), to_f32(&dx));
    let s = format!("{} ->{classes}", case.describe());
    let red = TOL_REDUCTION;
    let mut loss = compare(&[got.stat.loss], &[want.loss as f32], red);
    if got.stat.correct != want.correct || got.stat.nonfinite != want.nonfinite {
        loss.used = f32::INFINITY;
    }
    let mut out = vec![
        case_result("dense_tail dlogits", &s, compare(&got.dlogits, &dl, red)),
        case_result(
            "dense_tail dW",
            &s,
            compare(&got.dw, &grads[layer.weight_range()], red),
        ),
        case_result(
            "dense_tail db",
            &s,
            compare(&got.db, &grads[layer.bias_range()], red),
        ),
        case_result(
            &format!(
                "dense_tail loss, correct {}/{}, nonfinite {}/{}",
                got.stat.correct, want.correct, got.stat.nonfinite, want.nonfinite
            ),
            &s,
            loss,
        ),
    ];
    if input_grad {
        out.push(case_result(
            "dense_tail dZ (masked)",
            &s,
            compare(&got.dx, &dx, red),
        ));
    } else {
        // Without input_grad the dZ region is not written: it must still hold its poison.
        out.push(case_result(
            "dense_tail no dZ written",
            &s,
            verdict(got.dx.iter().all(|v| v.is_nan())),
        ));
    }
    Ok(out)
}

/// `grad_adam_gather` against cpu::grad_adam_gather from a state that has seen a few steps; padding
/// lanes of p, m and v hold finite sentinels that must come back bit for bit, and dZ's padding lanes
/// and rows past the step are NaN.
pub fn grad_adam_gather_case(
    h: &Harness,
    case: &StepCase,
    fan_out: usize,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    let inputs = case.inputs;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (inputs * 613 + fan_out) as u64);
    let cfg = AdamConfig::default();
    let alpha = cpu::adam_alpha(cfg.learning_rate, cfg.beta1, cfg.beta2, 3) as f32;
    let n = inputs * fan_out + fan_out;
    let (p, m, v) = (
        random(n, -1.0, 1.0, &mut rng),
        random(n, -0.01, 0.01, &mut rng),
        random(n, 0.0, 1e-4, &mut rng),
    );
    let scale = 1.0 / case.rows.rows as f32;
    let dz: Vec<f32> = random(case.capacity * fan_out, -scale, scale, &mut rng);
    let pk = ParamsPacking::new(inputs, fan_out);
    let w = inputs * fan_out;
    let start = Packed {
        p: pk.pack(&p[..w], &p[w..], 7.0),
        m: pk.pack(&m[..w], &m[w..], 0.5),
        v: pk.pack(&v[..w], &v[w..], 0.25),
    };
    let got = h.grad_adam_gather(case, &dz, &pk, &start, alpha, &cfg)?;
    let (mut cp, mut cm, mut cv) = (p, m, v);
    cpu::grad_adam_gather(
        &case.images,
        &case.order,
        &dz,
        &mut cp,
        &mut cm,
        &mut cv,
        &pk.cpu_layer(),
        case.rows,
        cpu::AdamStep {
            alpha,
            beta1: cfg.beta1 as f32,
            beta2: cfg.beta2 as f32,
            epsilon: cfg.epsilon as f32,
        },
    );
    let s = format!("{} ->{fan_out}", case.describe());
    let mut out = Vec::new();
    for (name, gpu, cpu_side, before) in [
        ("params", &got.p, &cp, &start.p),
        ("m", &got.m, &cm, &start.m),
        ("v", &got.v, &cv, &start.v),
    ] {
        let (gw, gb) = pk.unpack(gpu);
        out.push(case_result(
            &format!("grad_adam_gather W {name}"),
            &s,
            compare(&gw, &cpu_side[..w], TOL_REDUCTION),
        ));
        out.push(case_result(
            &format!("grad_adam_gather b {name}"),
            &s,
            compare(&gb, &cpu_side[w..], TOL_REDUCTION),
        ));
        out.push(case_result(
            &format!("grad_adam_gather {name} padding kept"),
            &s,
            verdict(pk.padding_equal(gpu, before)),
        ));
    }
    Ok(out)
}

/// The buffer `adam` over vec4s `[off4, off4 + len4)` of `n` floats against cpu::adam on that range;
/// g is NaN outside the range and p, m, v must come back unchanged there.
pub fn adam_range_case(
    h: &Harness,
    n: usize,
    off4: usize,
    len4: usize,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (n * 7 + off4) as u64);
    let cfg = AdamConfig::default();
    let start = Packed {
        p: random(n, -1.0, 1.0, &mut rng),
        m: random(n, -0.01, 0.01, &mut rng),
        v: random(n, 0.0, 1e-4, &mut rng),
    };
    let mut g = vec![f32::NAN; n];
    let range = 4 * off4..4 * (off4 + len4);
    g[range.clone()].copy_from_slice(&random(4 * len4, -0.1, 0.1, &mut rng));
    let alpha = cpu::adam_alpha(cfg.learning_rate, cfg.beta1, cfg.beta2, 3) as f32;
    let got = h.adam_range(&start, &g, off4, len4, alpha, &cfg)?;
    let (mut cp, mut cm, mut cv) = (start.p.clone(), start.m.clone(), start.v.clone());
    cpu::adam(
        &mut cp[range.clone()],
        &g[range.clone()],
        &mut cm[range.clone()],
        &mut cv[range],
        alpha,
        cfg.beta1 as f32,
        cfg.beta2 as f32,
        cfg.epsilon as f32,
    );
    let s = format!("[{off4}, +{len4}) of {}", n / 4);
    Ok(vec![
        case_result("adam params", &s, compare(&got.p, &cp, TOL_ELEMENTWISE)),
        case_result("adam m", &s, compare(&got.m, &cm, TOL_ELEMENTWISE)),
        case_result("adam v", &s, compare(&got.v, &cv, TOL_ELEMENTWISE)),
    ])
}

/// The step cases of the buffer-path kernels for a ladder shape `(batch, fan_in, fan_out)`: the full
/// batch from a shuffled order, and a partial one (about two thirds) in split order.
pub fn step_cases((bt, fi, fo): (usize, usize, usize), seed: u64) -> [(StepCase, bool); 2] {
    let partial = (bt - bt / 3).max(1);
    [
        (StepCase::new(fi, fo, bt, bt, false, seed), true),
        (StepCase::new(fi, fo, bt, partial, true, seed), false),
    ]
}

/// Every buffer-path kernel on the ladder, plus the partial batches 5 of 8 and 31 of 32 and odd row
/// lengths (7, 785 pixels: rows start mid-u32), and Adam over ranges.
pub fn buffer_path_ladder(h: &Harness, seed: u64) -> Result<Vec<CaseResult>> {
    let mut shapes = shape_ladder();
    shapes.extend([(8, 7, 5), (32, 785, 128), (32, 784, 10)]);
    let mut out = Vec::new();
    for s in shapes {
        for (case, flag) in step_cases(s, seed) {
            out.extend(gather_case(h, &case, if flag { 0 } else { 8 })?);
            out.extend(forward_gather_case(h, &case, s.2, flag, seed)?);
            out.extend(dense_tail_case(h, &case, s.2, flag, seed)?);
            out.extend(grad_adam_gather_case(h, &case, s.2, seed)?);
        }
    }
    for (inputs, classes, cap, rows) in [(7, 5, 8, 5), (784, 128, 32, 31), (785, 10, 32, 31)] {
        let case = StepCase::new(inputs, classes, cap, rows, false, seed);
        out.extend(forward_gather_case(h, &case, classes, true, seed)?);
        out.extend(dense_tail_case(h, &case, classes, true, seed)?);
        out.extend(grad_adam_gather_case(h, &case, classes, seed)?);
    }
    for (inputs, classes, cap, rows, spread) in [(7, 3, 7, 7, 1000.0), (16, 10, 100, 100, 20.0)] {
        let case = StepCase::new(inputs, classes, cap, rows, false, seed);
        out.extend(dense_tail_spread_case(h, &case, classes, spread, seed)?);
    }
    for (n, off4, len4) in [(4, 0, 1), (1000, 3, 200), (101_776, 23_000, 2_064)] {
        out.extend(adam_range_case(h, n, off4, len4, seed)?);
    }
    Ok(out)
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

/// One adam_tex step over `n` floats from a state that has already seen a few steps.
pub fn adam_case(h: &Harness, n: usize, seed: u64) -> Result<Vec<CaseResult>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ n as u64);
    let cfg = AdamConfig::default();
    let p = random(n, -1.0, 1.0, &mut rng);
    let g = random(n, -0.1, 0.1, &mut rng);
    let m = random(n, -0.01, 0.01, &mut rng);
    let v = random(n, 0.0, 1e-4, &mut rng);
    let alpha = cpu::adam_alpha(cfg.learning_rate, cfg.beta1, cfg.beta2, 3) as f32;
    let (gp, gm, gv) = h.adam_tex(&p, &g, &m, &v, alpha, &cfg)?;
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
            kernel: "adam_tex params".into(),
            shape: s.clone(),
            closeness: compare(&gp, &cp, TOL_ELEMENTWISE),
        },
        CaseResult {
            kernel: "adam_tex m".into(),
            shape: s.clone(),
            closeness: compare(&gm, &cm, TOL_ELEMENTWISE),
        },
        CaseResult {
            kernel: "adam_tex v".into(),
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
    for n in [4, 1000, 101_776] {
        out.extend(adam_case(h, n, seed)?);
    }
    out.extend(buffer_path_ladder(h, seed)?);
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
