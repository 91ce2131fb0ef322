//! Per-kernel timing of the training step: GPU timestamp queries (inside the compute pass when the adapter
//! allows it, else one pass per dispatch), or wall-clock timing of isolated submissions where the adapter
//! has no timestamps; plus the host side (upload, encode, submit, wait). `ProfileReport::table` is what
//! `fmnist train --profile`, `fmnist profile` and `fmnist bench` print. Tested by tests/cli_gpu.rs.

use std::fmt::Write as _;
use std::time::Duration;

/// How the kernel times were taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    /// Timestamps written between dispatches inside one compute pass (the real pattern).
    TimestampsInPass,
    /// One compute pass per dispatch with begin/end timestamps (adds per-pass overhead).
    TimestampsPerPass,
    /// Each dispatch submitted alone and waited for: wall-clock, includes submit and wait overhead.
    WallClock,
}

impl Timing {
    pub fn describe(self) -> &'static str {
        match self {
            Timing::TimestampsInPass => "GPU timestamps between dispatches in one pass",
            Timing::TimestampsPerPass => "GPU timestamps, one pass per dispatch",
            Timing::WallClock => {
                "wall-clock of isolated submissions (no timestamp queries on this adapter)"
            }
        }
    }
}

/// Time the host spent around the GPU work.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostTimes {
    /// Copying batches into the staging ring and `write_buffer`.
    pub upload: Duration,
    /// Recording command buffers.
    pub encode: Duration,
    /// `queue.submit`.
    pub submit: Duration,
    /// Blocking on the GPU (pacing, metric reads, readbacks).
    pub wait: Duration,
}

/// One dispatch site of the training step, accumulated.
#[derive(Clone, Debug, Default)]
pub struct KernelRow {
    /// e.g. `L1 forward mm_nn+bias+relu 32x784x128`.
    pub name: String,
    pub dispatches: u64,
    pub total_ns: f64,
    /// Per dispatch: floating-point operations (matmuls) or bytes moved (the rest).
    pub flops: f64,
    pub bytes: f64,
}

/// What the profile prints.
#[derive(Clone, Debug)]
pub struct ProfileReport {
    pub timing: Timing,
    pub rows: Vec<KernelRow>,
    pub host: HostTimes,
    pub steps: u64,
    pub wall: Duration,
}

impl ProfileReport {
    pub fn gpu_ns(&self) -> f64 {
        self.rows.iter().map(|r| r.total_ns).sum()
    }

    /// The kernel with the largest share.
    pub fn heaviest(&self) -> Option<&KernelRow> {
        self.rows
            .iter()
            .max_by(|a, b| a.total_ns.total_cmp(&b.total_ns))
    }

    pub fn table(&self) -> String {
        let mut s = String::new();
        let total = self.gpu_ns().max(1.0);
        let _ = writeln!(
            s,
            "Kernel profile over {} steps ({})",
            self.steps,
            self.timing.describe()
        );
        let _ = writeln!(
            s,
            "{:<44} {:>10} {:>10} {:>9} {:>6} {:>12}",
            "kernel", "dispatches", "total ms", "mean us", "share", "rate"
        );
        for r in &self.rows {
            let mean_ns = r.total_ns / r.dispatches.max(1) as f64;
            let rate = if mean_ns <= 0.0 {
                "-".to_string()
            } else if r.flops > 0.0 {
                format!("{:.2} GFLOP/s", r.flops / mean_ns)
            } else {
                format!("{:.2} GB/s", r.bytes / mean_ns)
            };
            let _ = writeln!(
                s,
                "{:<44} {:>10} {:>10.1} {:>9.1} {:>5.1}% {:>12}",
                r.name,
                r.dispatches,
                r.total_ns / 1e6,
                mean_ns / 1e3,
                100.0 * r.total_ns / total,
                rate
            );
        }
        let steps = self.steps.max(1) as f64;
        let _ = writeln!(
            s,
            "GPU kernels: {:.1} ms in all, {:.1} us per step",
            total / 1e6,
            total / 1e3 / steps
        );
        let h = &self.host;
        let per = |d: Duration| d.as_secs_f64() * 1e6 / steps;
        let _ = writeln!(
            s,
            "Host per step: upload {:.1} us, encode {:.1} us, submit {:.1} us, wait {:.1} us; wall {:.1} us per step",
            per(h.upload),
            per(h.encode),
            per(h.submit),
            per(h.wait),
            per(self.wall)
        );
        s
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
