//! The training steps' loss, accuracy and non-finite counts on the device: one `StepStat` slot per step,
//! written by `dense_tail`, read back in one copy when the host asks (a progress tick, the end of an
//! epoch) or when the slots run out. Tested through tests/gpu_train.rs (GPU stats match the CPU path's,
//! a diverging loss stops training).

use anyhow::Result;

use crate::gpu::buffers;
use crate::gpu::context::GpuContext;
use crate::gpu::kernels::StepStat;
use crate::metrics::StepStats;

/// Steps whose stats the device holds before the host must read them.
pub const STAT_SLOTS: usize = 8192;

pub struct StatSlots {
    /// `(STAT_SLOTS)` StepStat.
    pub buffer: wgpu::Buffer,
    read: wgpu::Buffer,
    host: Vec<StepStat>,
    /// Slots written (or queued to be written) since the last read.
    pub used: usize,
    /// Samples and steps of those, known on the host.
    unread: StepStats,
    /// Stats read but not yet taken.
    carried: StepStats,
}

impl StatSlots {
    pub fn new(device: &wgpu::Device) -> Self {
        let bytes = (STAT_SLOTS * std::mem::size_of::<StepStat>()) as u64;
        Self {
            buffer: buffers::storage(device, "step stats (STAT_SLOTS)", bytes),
            read: buffers::readback(device, "step stats readback", bytes),
            host: vec![StepStat::default(); STAT_SLOTS],
            used: 0,
            unread: StepStats::default(),
            carried: StepStats::default(),
        }
    }

    /// The slot for the next step of `rows` samples, `ahead` steps after those already counted.
    pub fn claim(&mut self, ahead: usize, rows: usize) -> u32 {
        self.unread.add(StepStats {
            loss_sum: 0.0,
            correct: 0,
            samples: rows as u64,
            steps: 1,
        });
        (self.used + ahead) as u32
    }

    /// Whether `pending` more steps would overrun the slots.
    pub fn full(&self, pending: usize) -> bool {
        self.used + pending >= STAT_SLOTS
    }

    /// Reads the used slots (awaits the GPU) into the carried stats and frees them; returns the
    /// bytes read back. A step whose kernel counted non-finite values makes the loss NaN: the count comes
    /// from bit patterns, which holds where a driver compiles with fast math and a sum could hide them.
    pub async fn read(&mut self, ctx: &GpuContext) -> Result<u64> {
        let n = self.used;
        if n == 0 {
            return Ok(0);
        }
        let bytes = (n * std::mem::size_of::<StepStat>()) as u64;
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("read stats"),
            });
        enc.copy_buffer_to_buffer(&self.buffer, 0, &self.read, 0, bytes);
        ctx.queue.submit([enc.finish()]);
        buffers::read_mapped_async(
            &ctx.device,
            &self.read,
            bytes,
            bytemuck::cast_slice_mut(&mut self.host[..n]),
        )
        .await?;
        ctx.check("reading the step stats")?;
        let mut got = std::mem::take(&mut self.unread);
        let mut nonfinite = 0u64;
        for s in &self.host[..n] {
            got.loss_sum += s.loss as f64;
            got.correct += s.correct as u64;
            nonfinite += s.nonfinite as u64;
        }
        if nonfinite > 0 {
            got.loss_sum = f64::NAN;
        }
        self.carried.add(got);
        self.used = 0;
        Ok(bytes)
    }

    /// The stats read so far (then reset).
    pub fn take(&mut self) -> StepStats {
        std::mem::take(&mut self.carried)
    }

    /// Forgets unread slots (a new training split replaces the step that wrote them).
    pub fn reset(&mut self) {
        self.used = 0;
        self.unread = StepStats::default();
    }
}
