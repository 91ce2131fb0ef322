//! A training step as a list of dispatch sites, and how steps are recorded into command buffers. The
//! operand path picks the builder: `buffers` (plain storage buffers, a few fused kernels, no copies: the
//! whole submission is one compute pass) for hardware GPUs, `textures` (operands mirrored into rgba32float
//! textures by copies, which software rasterisers fetch several times faster, docs/perf.md) for software
//! adapters. `FMNIST_GPU_OPERANDS=buffers|textures` overrides the choice. Passes are split only where a
//! texture mirror must be refreshed (copies cannot sit inside a compute pass).
//! Tested by tests/gpu_train.rs on both paths (training vs the CPU, the structural gates per step).

pub mod buffers;
mod sites;
pub mod textures;

pub use sites::*;

use anyhow::{Result, bail};

use crate::config::OptimizerConfig;
use crate::gpu::buffers::{GpuLayout, TextureMirror};
use crate::gpu::dataset::ResidentSplit;
use crate::gpu::kernels::{Kernel, Kernels, StepRecord};
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
    /// The run's optimizer: which update kernel the step ends with.
    pub optimizer: OptimizerConfig,
    /// The run's dropout after the hidden layers (none: every layer inactive).
    pub dropout: &'a crate::cpu::Dropout,
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
