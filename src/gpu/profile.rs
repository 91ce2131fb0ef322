//! The per-kernel profile of the training step (`metrics::ProfileReport` is what it fills): GPU
//! timestamps inside the compute pass when the adapter allows it, else one pass per dispatch with
//! begin/end timestamps, else the wall clock of each dispatch submitted alone (`metrics::Timing`); the
//! structure counts (dispatches, copies, passes, bytes moved) come from the backend's counters.
//! Tested by tests/cli_gpu.rs and tests/gpu_train.rs.

use web_time::Instant;

use anyhow::{Result, bail};

use crate::gpu::context::GpuContext;
use crate::gpu::kernels::Kernels;
use crate::gpu::plan::{Encoded, Stamps, StepPlan};
use crate::metrics::{HostTimes, KernelRow, ProfileReport, StepStructure, Timing};

/// Profiling state from `begin` to `report`.
pub struct Profiler {
    pub timing: Timing,
    queries: Option<QueryRing>,
    rows: Vec<KernelRow>,
    started: Instant,
    steps: u64,
    host_at_start: HostTimes,
    structure_at_start: StepStructure,
    scratch: Vec<f64>,
}

impl Profiler {
    /// Starts profiling `plan`, whose submissions hold up to `slots` steps.
    pub fn begin(
        ctx: &GpuContext,
        plan: &StepPlan,
        slots: usize,
        host: HostTimes,
        structure: StepStructure,
    ) -> Result<Self> {
        let per_submission = (slots * plan.sites.len()) as u32;
        let (timing, queries) = if ctx.timestamps_inside_passes {
            (
                Timing::TimestampsInPass,
                Some(QueryRing::new(&ctx.device, &ctx.queue, per_submission + 1)),
            )
        } else if ctx.timestamps {
            (
                Timing::TimestampsPerPass,
                Some(QueryRing::new(&ctx.device, &ctx.queue, 2 * per_submission)),
            )
        } else {
            (Timing::WallClock, None)
        };
        let needed = match timing {
            Timing::TimestampsInPass => per_submission + 1,
            Timing::TimestampsPerPass => 2 * per_submission,
            Timing::WallClock => 0,
        };
        if let Some(q) = &queries
            && q.capacity < needed
        {
            bail!("the profile needs {needed} timestamp queries per submission");
        }
        Ok(Self {
            timing,
            queries,
            rows: plan
                .sites
                .iter()
                .map(|s| KernelRow {
                    name: s.name.clone(),
                    dispatches: 0,
                    total_ns: 0.0,
                    flops: s.flops,
                    bytes: s.bytes,
                    invocations: s.invocations(),
                })
                .collect(),
            started: Instant::now(),
            steps: 0,
            host_at_start: host,
            structure_at_start: structure,
            scratch: Vec::new(),
        })
    }

    /// How the steps of a submission should write timestamps.
    pub fn stamps(&self) -> Stamps<'_> {
        match (self.timing, &self.queries) {
            (Timing::TimestampsInPass, Some(q)) => Stamps::InPass(&q.set),
            (Timing::TimestampsPerPass, Some(q)) => Stamps::PerPass(&q.set),
            _ => Stamps::None,
        }
    }

    /// Records the resolve of `used` timestamps after a submission's steps.
    pub fn resolve(&self, enc: &mut wgpu::CommandEncoder, used: u32) {
        if let Some(q) = &self.queries {
            q.resolve(enc, used);
        }
    }

    /// Reads the timestamps of a finished submission of `steps` steps and adds them to the rows: the
    /// time between consecutive timestamps (in one pass: a dispatch and the copies after it) or a
    /// pass's begin and end.
    pub fn collect(&mut self, device: &wgpu::Device, steps: usize, used: u32) -> Result<()> {
        let Some(q) = &self.queries else {
            return Ok(());
        };
        q.read(device, used, &mut self.scratch)?;
        let sites = self.rows.len();
        for i in 0..steps * sites {
            let d = match self.timing {
                Timing::TimestampsInPass => self.scratch[i + 1] - self.scratch[i],
                _ => self.scratch[2 * i + 1] - self.scratch[2 * i],
            };
            let row = &mut self.rows[i % sites];
            row.dispatches += 1;
            row.total_ns += d.max(0.0);
        }
        self.steps += steps as u64;
        Ok(())
    }

    /// Runs `steps` steps of `plan` (ring slots `0..steps`) with every dispatch submitted alone and
    /// waited for, timed by the host: the profile of adapters without timestamp queries.
    pub fn time_alone(
        &mut self,
        ctx: &GpuContext,
        kernels: &Kernels,
        plan: &StepPlan,
        steps: usize,
    ) -> Result<Encoded> {
        let mut all = Encoded::default();
        for s in 0..steps {
            for (i, site) in plan.sites.iter().enumerate() {
                let started = Instant::now();
                let mut enc = ctx
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some(&site.name),
                    });
                let done = plan.encode_site(&mut enc, kernels, i, s);
                ctx.queue.submit([enc.finish()]);
                ctx.wait()?;
                all.add(&done);
                self.rows[i].dispatches += 1;
                self.rows[i].total_ns += started.elapsed().as_nanos() as f64;
            }
        }
        self.steps += steps as u64;
        Ok(all)
    }

    /// The profile so far, given the backend's host times and structure counters now.
    pub fn report(&self, host: HostTimes, structure: StepStructure) -> ProfileReport {
        let h0 = self.host_at_start;
        ProfileReport {
            timing: self.timing,
            rows: self.rows.clone(),
            host: HostTimes {
                upload: host.upload.saturating_sub(h0.upload),
                encode: host.encode.saturating_sub(h0.encode),
                submit: host.submit.saturating_sub(h0.submit),
                wait: host.wait.saturating_sub(h0.wait),
            },
            steps: self.steps,
            wall: self.started.elapsed(),
            structure: structure.since(&self.structure_at_start),
        }
    }
}

/// Timestamp queries of one submission: a query set, where to resolve it, and where to read it.
pub struct QueryRing {
    pub set: wgpu::QuerySet,
    pub capacity: u32,
    resolve: wgpu::Buffer,
    read: wgpu::Buffer,
    /// Nanoseconds per tick.
    period: f64,
}

impl QueryRing {
    pub fn new(device: &wgpu::Device, queue: &wgpu::Queue, capacity: u32) -> Self {
        let capacity = capacity.clamp(2, wgpu::QUERY_SET_MAX_QUERIES);
        let bytes = capacity as u64 * 8;
        Self {
            set: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("profile timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: capacity,
            }),
            capacity,
            resolve: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile resolve (capacity u64)"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            read: crate::gpu::buffers::readback(device, "profile readback (capacity u64)", bytes),
            period: queue.get_timestamp_period() as f64,
        }
    }

    /// Records the resolve of the first `used` queries into the readback buffer.
    pub fn resolve(&self, enc: &mut wgpu::CommandEncoder, used: u32) {
        if used == 0 {
            return;
        }
        enc.resolve_query_set(&self.set, 0..used, &self.resolve, 0);
        enc.copy_buffer_to_buffer(&self.resolve, 0, &self.read, 0, used as u64 * 8);
    }

    /// Reads the `used` timestamps back (waits for the GPU), in nanoseconds.
    pub fn read(&self, device: &wgpu::Device, used: u32, out: &mut Vec<f64>) -> anyhow::Result<()> {
        out.clear();
        if used == 0 {
            return Ok(());
        }
        let mut ticks = vec![0u64; used as usize];
        crate::gpu::buffers::read_mapped(
            device,
            &self.read,
            used as u64 * 8,
            bytemuck::cast_slice_mut(&mut ticks),
        )?;
        out.extend(ticks.iter().map(|&t| t as f64 * self.period));
        Ok(())
    }
}
