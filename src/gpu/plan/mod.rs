//! A training step as a list of dispatch sites, and how steps are recorded into command buffers. The
//! operand path picks the builder: `buffers` (plain storage buffers, a few fused kernels, no copies: the
//! whole submission is one compute pass) for hardware GPUs, `textures` (operands mirrored into rgba32float
//! textures by copies, which software rasterisers fetch several times faster, docs/perf.md) for software
//! adapters. `FMNIST_GPU_OPERANDS=buffers|textures` overrides the choice. Passes are split only where a
//! texture mirror must be refreshed (copies cannot sit inside a compute pass).
//! Tested by tests/gpu_train.rs on both paths (training vs the CPU, the structural gates per step).

pub mod buffers;
pub mod textures;

use anyhow::{Result, bail};

use crate::config::AdamConfig;
use crate::gpu::buffers::{GpuLayout, TextureMirror};
use crate::gpu::dataset::ResidentSplit;
use crate::gpu::kernels::{
    self, FLAG_BIAS, FLAG_COLSUM, FLAG_MASK, FLAG_RELU, GatherDims, Kernel, Kernels, MatmulDims,
    StepRecord, TailDims,
};
use crate::gpu::params::ParamState;

/// Which operands the training kernels read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operands {
    /// Storage buffers: what hardware GPUs load at full speed.
    Buffers,
    /// Texture mirrors refreshed by copies: several times faster on software rasterisers.
    Textures,
}

impl Operands {
    /// The environment variable that overrides the choice.
    pub const ENV: &'static str = "FMNIST_GPU_OPERANDS";

    /// Texture mirrors on software adapters (where they measured faster), storage buffers elsewhere,
    /// unless `FMNIST_GPU_OPERANDS` says otherwise.
    pub fn choose(device_type: wgpu::DeviceType) -> Result<Self> {
        match std::env::var(Self::ENV) {
            Ok(v) => Self::parse(&v),
            Err(std::env::VarError::NotPresent) => Ok(match device_type {
                wgpu::DeviceType::Cpu => Operands::Textures,
                _ => Operands::Buffers,
            }),
            Err(e) => bail!("{}: {e}", Self::ENV),
        }
    }

    pub fn parse(v: &str) -> Result<Self> {
        match v.trim() {
            "buffers" => Ok(Operands::Buffers),
            "textures" => Ok(Operands::Textures),
            other => bail!("{}={other:?}: expected `buffers` or `textures`", Self::ENV),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Operands::Buffers => "buffers",
            Operands::Textures => "textures",
        }
    }
}

/// The per-step records of one submission: `slots` records, each bound at its own offset.
pub struct StepRing {
    pub slots: usize,
    /// Bytes between records (the uniform offset alignment).
    pub stride: usize,
    /// `(slots, stride)` bytes, uniform.
    pub buffer: wgpu::Buffer,
}

impl StepRing {
    pub fn new(device: &wgpu::Device, label: &str, slots: usize) -> Self {
        let stride = (device.limits().min_uniform_buffer_offset_alignment as usize)
            .max(std::mem::size_of::<StepRecord>());
        Self {
            buffer: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: (slots * stride) as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            slots,
            stride,
        }
    }

    /// `(binding, offset, size)` of slot `s`'s record, for `kernels::bind_group`.
    pub fn record(&self, binding: u32, s: usize) -> Option<(u32, u64, u64)> {
        Some((
            binding,
            (s * self.stride) as u64,
            std::mem::size_of::<StepRecord>() as u64,
        ))
    }
}

/// What a plan builder reads.
pub struct PlanInputs<'a> {
    pub device: &'a wgpu::Device,
    pub kernels: &'a Kernels,
    pub state: &'a ParamState,
    pub adam: AdamConfig,
    /// Rows per batch.
    pub cap: usize,
    pub inputs: usize,
    pub train: &'a ResidentSplit,
    pub order: &'a wgpu::Buffer,
    /// The order as a texture (the texture path's).
    pub order_tex: Option<&'a crate::gpu::dataset::OrderTexture>,
    pub ring: &'a StepRing,
    /// Per-step stats records (`StepStat`), one per step.
    pub stats: &'a wgpu::Buffer,
}

impl PlanInputs<'_> {
    pub fn layout(&self) -> &GpuLayout {
        &self.state.layout
    }
}

/// One dispatch of the training step, with everything it needs bound.
pub struct Site {
    pub name: String,
    pub kernel: Kernel,
    pub groups: (u32, u32, u32),
    /// Group 0: one bind group, or one per ring slot (the sites that read the step's record).
    pub binds: Vec<wgpu::BindGroup>,
    /// Group 1 (texture operands), when the kernel has one.
    pub tex_binds: Vec<wgpu::BindGroup>,
    /// Texture mirrors to refresh before / after this dispatch (outside any compute pass).
    pub copy_before: Vec<TextureMirror>,
    pub copy_after: Vec<TextureMirror>,
    /// Per dispatch: floating-point operations (products) or bytes moved (the rest), for the profile.
    pub flops: f64,
    pub bytes: f64,
}

impl Site {
    /// A site without texture operands or copies.
    pub fn plain(
        name: String,
        kernel: Kernel,
        groups: (u32, u32, u32),
        binds: Vec<wgpu::BindGroup>,
    ) -> Self {
        Self {
            name,
            kernel,
            groups,
            binds,
            tex_binds: Vec::new(),
            copy_before: Vec::new(),
            copy_after: Vec::new(),
            flops: 0.0,
            bytes: 0.0,
        }
    }

    pub fn invocations(&self) -> u64 {
        self.kernel.invocations(self.groups)
    }

    fn dispatch(&self, kernels: &Kernels, pass: &mut wgpu::ComputePass<'_>, slot: usize) {
        pass.set_pipeline(kernels.pipeline(self.kernel));
        let pick = |v: &[wgpu::BindGroup]| v.len().saturating_sub(1).min(slot);
        pass.set_bind_group(0, &self.binds[pick(&self.binds)], &[]);
        if !self.tex_binds.is_empty() {
            pass.set_bind_group(1, &self.tex_binds[pick(&self.tex_binds)], &[]);
        }
        let (x, y, z) = self.groups;
        pass.dispatch_workgroups(x, y, z);
    }
}

/// How the profile wants timestamps written.
#[derive(Clone, Copy)]
pub enum Stamps<'a> {
    None,
    /// One before every dispatch and one after the last, inside the passes.
    InPass(&'a wgpu::QuerySet),
    /// One pass per dispatch, with begin and end timestamps.
    PerPass(&'a wgpu::QuerySet),
    /// A timestamp before every dispatch into a set of `FLUSH_POINTS` queries that is never read: the
    /// texture path's flush points (`flush_points`).
    Flush(&'a wgpu::QuerySet),
}

/// Queries in the set of `Stamps::Flush`, written in turn.
pub const FLUSH_POINTS: u32 = 64;

/// The query set of `Stamps::Flush`, where the step wants flush points: on the texture path (software
/// adapters) with timestamps inside passes. lavapipe flushes its context at every timestamp it writes,
/// and training with one before each dispatch ran 10-15% faster per epoch there (docs/perf.md, item
/// 12); the timestamps themselves are never resolved or read.
pub fn flush_points(
    ctx: &crate::gpu::context::GpuContext,
    operands: Operands,
) -> Option<wgpu::QuerySet> {
    (operands == Operands::Textures && ctx.timestamps_inside_passes).then(|| {
        ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("flush points (never read)"),
            ty: wgpu::QueryType::Timestamp,
            count: FLUSH_POINTS,
        })
    })
}

/// What recording some steps cost, for the structure counts of the profile.
#[derive(Clone, Copy, Debug, Default)]
pub struct Encoded {
    pub dispatches: u64,
    pub copies: u64,
    pub passes: u64,
    /// Timestamp queries written.
    pub queries: u32,
}

impl Encoded {
    /// Adds `other`'s commands (and queries).
    pub fn add(&mut self, other: &Encoded) {
        self.dispatches += other.dispatches;
        self.copies += other.copies;
        self.passes += other.passes;
        self.queries += other.queries;
    }

    /// Counts the recorded commands into the device-neutral structure counters.
    pub fn count_into(&self, s: &mut crate::metrics::StepStructure) {
        s.add_commands(self.dispatches, self.copies, self.passes);
    }
}

/// A training step's dispatches in order, and the buffers only they use.
pub struct StepPlan {
    pub operands: Operands,
    pub sites: Vec<Site>,
    pub keep: Vec<wgpu::Buffer>,
}

impl StepPlan {
    /// Records `steps` steps (ring slots `0..steps`) into `enc`.
    pub fn encode(
        &self,
        enc: &mut wgpu::CommandEncoder,
        kernels: &Kernels,
        steps: usize,
        stamps: Stamps<'_>,
    ) -> Encoded {
        let mut out = Encoded::default();
        let mut pass: Option<wgpu::ComputePass<'static>> = None;
        let mut pending_after: &[TextureMirror] = &[];
        for s in 0..steps {
            for site in &self.sites {
                let own_pass = matches!(stamps, Stamps::PerPass(_));
                if own_pass || !site.copy_before.is_empty() || !pending_after.is_empty() {
                    drop(pass.take());
                    for c in pending_after.iter().chain(&site.copy_before) {
                        c.encode(enc);
                        out.copies += 1;
                    }
                }
                let writes = match stamps {
                    Stamps::PerPass(set) => {
                        out.queries += 2;
                        Some(wgpu::ComputePassTimestampWrites {
                            query_set: set,
                            beginning_of_pass_write_index: Some(out.queries - 2),
                            end_of_pass_write_index: Some(out.queries - 1),
                        })
                    }
                    _ => None,
                };
                let p = pass.get_or_insert_with(|| {
                    out.passes += 1;
                    enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("train steps"),
                        timestamp_writes: writes,
                    })
                    .forget_lifetime()
                });
                match stamps {
                    Stamps::InPass(set) => {
                        p.write_timestamp(set, out.queries);
                        out.queries += 1;
                    }
                    Stamps::Flush(set) => {
                        p.write_timestamp(set, (out.dispatches % FLUSH_POINTS as u64) as u32);
                    }
                    _ => {}
                }
                site.dispatch(kernels, p, s);
                out.dispatches += 1;
                pending_after = &site.copy_after;
            }
        }
        if let (Stamps::InPass(set), Some(p)) = (stamps, pass.as_mut()) {
            p.write_timestamp(set, out.queries);
            out.queries += 1;
        }
        drop(pass);
        for c in pending_after {
            c.encode(enc);
            out.copies += 1;
        }
        out
    }

    /// Records site `i` alone for ring slot `slot`, with its copies (the wall-clock profile).
    pub fn encode_site(
        &self,
        enc: &mut wgpu::CommandEncoder,
        kernels: &Kernels,
        i: usize,
        slot: usize,
    ) -> Encoded {
        let site = &self.sites[i];
        let mut out = Encoded::default();
        for c in &site.copy_before {
            c.encode(enc);
            out.copies += 1;
        }
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(&site.name),
                timestamp_writes: None,
            });
            site.dispatch(kernels, &mut pass, slot);
        }
        out.passes += 1;
        out.dispatches += 1;
        for c in &site.copy_after {
            c.encode(enc);
            out.copies += 1;
        }
        out
    }
}

/// The per-slot bind groups of a kernel whose binding `record` is the step's record: `buffers` in
/// binding order, then the record.
pub fn per_slot(
    p: &PlanInputs<'_>,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    buffers: &[&wgpu::Buffer],
    record: u32,
) -> Vec<wgpu::BindGroup> {
    let mut all: Vec<&wgpu::Buffer> = buffers.to_vec();
    all.push(&p.ring.buffer);
    (0..p.ring.slots)
        .map(|s| kernels::bind_group(p.device, label, layout, &all, p.ring.record(record, s)))
        .collect()
}

/// A step's sites in order, and the uniforms they bind (kept alive with the plan).
#[derive(Default)]
pub struct Sites {
    pub sites: Vec<Site>,
    pub keep: Vec<wgpu::Buffer>,
}

impl Sites {
    pub fn push(&mut self, (site, uniform): (Site, wgpu::Buffer)) {
        self.sites.push(site);
        self.keep.push(uniform);
    }
}

/// `gather`: the step's samples from the resident images, normalised, into `x (cap, ldx)` (zeros in
/// the padding lanes and past a partial batch).
pub fn gather_site(p: &PlanInputs<'_>, x: &wgpu::Buffer, ldx: usize) -> (Site, wgpu::Buffer) {
    let cap = p.cap;
    let dims = GatherDims {
        inputs: p.inputs as u32,
        ldx: ldx as u32,
        capacity: cap as u32,
        direct: 0,
    };
    let u = crate::gpu::buffers::uniform_init(p.device, "gather dims", bytemuck::bytes_of(&dims));
    let binds = per_slot(
        p,
        "gather (slot)",
        &p.kernels.gather_layout,
        &[&p.train.images, p.order, x, &u],
        4,
    );
    let mut site = Site::plain(
        format!("gather {cap}x{}", p.inputs),
        Kernel::Gather,
        kernels::gather_groups(cap, ldx),
        binds,
    );
    site.bytes = (cap * p.inputs * 5) as f64;
    (site, u)
}

/// The `dense_tail` site both paths end their forward with: the last layer's forward and backward from
/// `input (cap, lda)` (the last hidden layer's output, or the gathered x of a model without hidden
/// layers), the loss and the step's stats. dlogits go to `dz` at 0 and dZ of the layer below at
/// `cap * out.ld`. Returns the site and its dims uniform (to keep alive).
pub fn tail_site(
    p: &PlanInputs<'_>,
    input: &wgpu::Buffer,
    lda: usize,
    dz: &wgpu::Buffer,
) -> Result<(Site, wgpu::Buffer)> {
    let k = p.kernels;
    if !k.supports(Kernel::DenseTail) {
        bail!(
            "dense_tail binds {} storage buffers, more than this device allows per shader stage ({})",
            Kernel::DenseTail.storage_buffers(),
            p.device.limits().max_storage_buffers_per_shader_stage
        );
    }
    let dims = tail_dims(p, lda);
    let u =
        crate::gpu::buffers::uniform_init(p.device, "dense_tail dims", bytemuck::bytes_of(&dims));
    let st = p.state;
    let binds = per_slot(
        p,
        "dense_tail (slot)",
        k.layout(Kernel::DenseTail),
        &[
            input,
            &st.params,
            &p.train.labels,
            p.order,
            &st.grads,
            dz,
            p.stats,
            &u,
        ],
        8,
    );
    Ok((tail_plain_site(p, Kernel::DenseTail, binds), u))
}

/// The dims of either tail over an input of row stride `lda`: dlogits at 0 of the dz buffer, dZ after
/// them.
pub fn tail_dims(p: &PlanInputs<'_>, lda: usize) -> TailDims {
    let layout = p.layout();
    let last = layout.layers.len() - 1;
    let out = layout.layers[last];
    TailDims {
        k: out.fan_in as u32,
        classes: out.fan_out as u32,
        capacity: p.cap as u32,
        lda: lda as u32,
        ldw: out.ld as u32,
        ldo: out.ld as u32,
        w_off: out.weight as u32,
        b_off: out.bias as u32,
        dl_off: 0,
        dx_off: (p.cap * out.ld) as u32,
        direct: 0,
        input_grad: u32::from(last > 0),
        adam: 0,
        beta1: p.adam.beta1 as f32,
        beta2: p.adam.beta2 as f32,
        eps: p.adam.epsilon as f32,
    }
}

/// A tail site (named and counted like the profile shows it) over its group-0 bind groups.
pub fn tail_plain_site(p: &PlanInputs<'_>, kernel: Kernel, binds: Vec<wgpu::BindGroup>) -> Site {
    let layout = p.layout();
    let last = layout.layers.len() - 1;
    let out = layout.layers[last];
    let mut site = Site::plain(
        format!(
            "L{} {} {}x{}x{}",
            last + 1,
            kernel.entry_point(),
            p.cap,
            out.fan_in,
            out.fan_out
        ),
        kernel,
        kernels::dense_tail_groups(),
        binds,
    );
    site.flops = 6.0 * (p.cap * out.fan_in * out.fan_out) as f64;
    site
}

/// Dimensions of layer `l`'s forward product `act_l = relu(input · W_l + b_l)` over `rows` rows (no ReLU
/// on the last layer), shared by training and evaluation on both paths. `in_ld` is the input's row
/// stride for the first layer.
pub fn forward_dims(
    layout: &GpuLayout,
    l: usize,
    rows: usize,
    in_ld: usize,
    textures: bool,
) -> MatmulDims {
    let g = layout.layers[l];
    let last = l + 1 == layout.layers.len();
    MatmulDims {
        m: rows as u32,
        n: g.fan_out as u32,
        k: g.fan_in as u32,
        flags: FLAG_BIAS | if last { 0 } else { FLAG_RELU },
        lda: if l == 0 {
            in_ld
        } else {
            layout.layers[l - 1].ld
        } as u32,
        ldb: g.ld as u32,
        ldc: g.ld as u32,
        lde: 0,
        a_off: 0,
        // The texture variant reads the weight from its own texture (the first layer's: the atlas,
        // where it comes first) and takes row offsets; the buffer variant takes a float offset.
        b_off: if textures { 0 } else { g.weight as u32 },
        c_off: 0,
        e_off: g.bias as u32,
    }
}

/// Dimensions of layer `l`'s weight gradient `dW_l = input^T dZ_l` with `db_l = colsum(dZ_l)` into the
/// gradients, over `cap` rows; dZ_l sits at float `dz_off` of its buffer. The texture variant reads both
/// operands from their own textures, so it takes no strides or offsets for them.
pub fn weight_grad_dims(
    layout: &GpuLayout,
    l: usize,
    cap: usize,
    dz_off: usize,
    textures: bool,
) -> MatmulDims {
    let g = layout.layers[l];
    let operand = |v: usize| if textures { 0 } else { v as u32 };
    MatmulDims {
        m: g.fan_in as u32,
        n: g.fan_out as u32,
        k: cap as u32,
        flags: FLAG_COLSUM,
        lda: operand(if l == 0 { 0 } else { layout.layers[l - 1].ld }),
        ldb: operand(g.ld),
        ldc: g.ld as u32,
        lde: 0,
        a_off: 0,
        b_off: operand(dz_off),
        c_off: g.weight as u32,
        e_off: g.bias as u32,
    }
}

/// Dimensions of dZ of the layer below `l`: `(dZ_l W_l^T)` masked by `act_{l-1} > 0`, over `cap` rows,
/// written at float 0 of its buffer; dZ_l sits at float `dz_off` of its own.
pub fn input_grad_dims(
    layout: &GpuLayout,
    l: usize,
    cap: usize,
    dz_off: usize,
    textures: bool,
) -> MatmulDims {
    let (g, prev) = (layout.layers[l], layout.layers[l - 1]);
    let operand = |v: usize| if textures { 0 } else { v as u32 };
    MatmulDims {
        m: cap as u32,
        n: g.fan_in as u32,
        k: g.fan_out as u32,
        flags: FLAG_MASK,
        lda: operand(g.ld),
        ldb: operand(g.ld),
        ldc: prev.ld as u32,
        lde: prev.ld as u32,
        a_off: operand(dz_off),
        b_off: operand(g.weight),
        c_off: 0,
        e_off: 0,
    }
}

/// `n` floats as bytes.
pub fn f32_bytes(n: usize) -> u64 {
    (n * 4) as u64
}
