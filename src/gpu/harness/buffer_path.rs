//! The harness runs of the buffer-path kernels, which read one step from a split of u8 images resident
//! on the device through an order: gather, forward_gather, grad_update_gather and the buffer adam (the
//! tails are in `tail.rs`), with their inputs (`StepCase`, the samples of one step; `ParamsPacking`,
//! one layer in a flat padded buffer) and outputs. Every padding lane of an input is NaN and every
//! output poisoned before the run; each step record is bound as a window past offset 0, as the backend
//! binds it. Tested through tests/kernels.rs (the buffer-path cases of `gpu::selftest`).

use anyhow::Result;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Harness;
use crate::config::OptimizerConfig;
use crate::cpu;
use crate::gpu::buffers::{self, pad4};
use crate::gpu::kernels::{self, Kernel};
use crate::gpu::uniforms::{
    DropFields, ForwardGatherDims, GatherDims, GradUpdateDims, StepRecord, StepStat,
    UpdateRangeDims,
};

/// A stats record no kernel writes: what every stats buffer holds before a run.
pub(super) const POISON_STAT: StepStat = StepStat {
    loss: f32::NAN,
    correct: u32::MAX,
    nonfinite: u32::MAX,
    _pad: u32::MAX,
};
/// Floats (4-byte words) per `StepStat`.
pub(super) const STAT_FLOATS: usize = std::mem::size_of::<StepStat>() / 4;

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
    /// The step's optimizer-step number (dropout's Philox counter).
    pub counter: u32,
}

/// The optimizer-step number every step case carries.
pub const CASE_COUNTER: u32 = 5;

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
            counter: CASE_COUNTER,
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

    pub(crate) fn record(&self) -> StepRecord {
        let rows = self.rows.rows;
        StepRecord {
            rows: rows as u32,
            slot: 0,
            stat: 2,
            alpha: 0.0,
            scale: (1.0 / rows.max(1) as f64) as f32,
            start: self.rows.start as u32,
            counter: self.counter,
            _pad: 0,
        }
    }
}

/// What a grad_update_gather run returns: params, m and v in their padded GPU layout (as `ParamsPacking`
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

    /// The layout grad_update_gather_tex reads as an atlas: rows of `ld = pad4(cols) + 4` floats (one whole
    /// padding quad), a sentinel row, W from row 1, a gap row, b at row `rows + 2`.
    pub fn atlas(rows: usize, cols: usize) -> Self {
        let ld = pad4(cols) + 4;
        Self {
            rows,
            cols,
            w_off: ld,
            ld,
            b_off: (rows + 2) * ld,
            total: (rows + 3) * ld,
        }
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
    pub(super) fn record_buffer(&self, rec: &StepRecord) -> (wgpu::Buffer, u64) {
        let stride = (self.ctx.device.limits().min_uniform_buffer_offset_alignment as usize)
            .max(std::mem::size_of::<StepRecord>());
        let mut bytes = vec![0xffu8; 2 * stride];
        bytes[stride..stride + std::mem::size_of::<StepRecord>()]
            .copy_from_slice(bytemuck::bytes_of(rec));
        let buf = buffers::uniform_init(&self.ctx.device, "selftest step records", &bytes);
        (buf, stride as u64)
    }

    pub(super) fn split_buffers(&self, case: &StepCase) -> (wgpu::Buffer, wgpu::Buffer) {
        let d = &self.ctx.device;
        let images = pack_u8(&case.images);
        (
            buffers::storage_init(d, "selftest images (u8 x4)", bytemuck::cast_slice(&images)),
            buffers::storage_init(d, "selftest order", bytemuck::cast_slice(&case.order)),
        )
    }

    /// `gather` of `case` into x (capacity, ldx), poisoned first: returns x padded.
    pub async fn gather(&self, case: &StepCase, ldx: usize) -> Result<Vec<f32>> {
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
        self.download(&x, poison.len()).await
    }

    /// `forward_gather` of `case` through W (inputs, fan_out) and b (fan_out), tight, with `drop`'s
    /// dropout after ReLU; NaN in every padding lane of the parameters and in act before the run.
    /// Returns act (capacity, fan_out) tight.
    #[allow(clippy::too_many_arguments)]
    pub async fn forward_gather(
        &self,
        case: &StepCase,
        w: &[f32],
        b: &[f32],
        fan_out: usize,
        relu: bool,
        drop: DropFields,
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
            drop,
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
        let out = self.download(&act, poison.len()).await?;
        Ok(unpad_ld(&out, 0, case.capacity, fan_out, ldc))
    }

    /// `grad_update_gather` of `case` with dZ (capacity, fan_out) tight, whose rows past the step and
    /// padding lanes are NaN (neither may be read), on params, m and v already packed by `pk`.
    #[allow(clippy::too_many_arguments)]
    pub async fn grad_update_gather(
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
        let dims = GradUpdateDims {
            inputs: pk.rows as u32,
            fan_out: pk.cols as u32,
            ld: pk.ld as u32,
            ldz: ldz as u32,
            w_off: pk.w_off as u32,
            b_off: pk.b_off as u32,
            dz_off: dz_off as u32,
            direct: case.rows.direct as u32,
        };
        let u = buffers::uniform_init(d, "selftest grad_update dims", bytemuck::bytes_of(&dims));
        let rec = StepRecord {
            alpha,
            ..case.record()
        };
        let (r, at) = self.record_buffer(&rec);
        let bind = kernels::bind_group(
            d,
            "selftest grad_update_gather",
            kernels.layout(Kernel::GradUpdateGather),
            &[&images, &order, &dz_buf, &pb, &mb, &vb, &u, &r],
            Some((7, at, std::mem::size_of::<StepRecord>() as u64)),
        );
        self.run_on(
            &kernels,
            Kernel::GradUpdateGather,
            &bind,
            None,
            kernels::grad_update_gather_groups(pk.rows, pk.cols),
        );
        Ok(Packed {
            p: self.download(&pb, pk.total).await?,
            m: self.download(&mb, pk.total).await?,
            v: self.download(&vb, pk.total).await?,
        })
    }

    /// `opt`'s range update (adam, sgd or rmsprop) over the vec4s `[off4, off4 + len4)` of flat p, g,
    /// m, v: returns the whole (p, m, v), which must be unchanged outside the range.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_range(
        &self,
        bufs: &Packed,
        g: &[f32],
        off4: usize,
        len4: usize,
        alpha: f32,
        opt: &OptimizerConfig,
    ) -> Result<Packed> {
        let d = &self.ctx.device;
        let kernels = self.kernels_for(opt);
        let kernel = Kernel::update_range(opt.kind());
        let n = bufs.p.len();
        let pb = buffers::storage_init(d, "selftest p", bytemuck::cast_slice(&bufs.p));
        let gb = buffers::storage_init(d, "selftest g", bytemuck::cast_slice(g));
        let mb = buffers::storage_init(d, "selftest m", bytemuck::cast_slice(&bufs.m));
        let vb = buffers::storage_init(d, "selftest v", bytemuck::cast_slice(&bufs.v));
        let dims = UpdateRangeDims {
            off4: off4 as u32,
            len4: len4 as u32,
            _pad: [0; 2],
        };
        let u = buffers::uniform_init(d, "selftest update range dims", bytemuck::bytes_of(&dims));
        let rec = StepRecord {
            alpha,
            ..Default::default()
        };
        let (r, at) = self.record_buffer(&rec);
        let bind = kernels::bind_group(
            d,
            kernel.entry_point(),
            &kernels.update_range_layout,
            &[&pb, &gb, &mb, &vb, &u, &r],
            Some((5, at, std::mem::size_of::<StepRecord>() as u64)),
        );
        self.run_on(
            &kernels,
            kernel,
            &bind,
            None,
            kernels::update_range_groups(len4),
        );
        Ok(Packed {
            p: self.download(&pb, n).await?,
            m: self.download(&mb, n).await?,
            v: self.download(&vb, n).await?,
        })
    }
}
