//! How `GpuBackend` submits its steps: each step's record queued in the host ring, the ring uploaded
//! with one write and its steps recorded into one submission (at most two in flight), the per-step
//! stats read back when their slots run out, and the profile's submission modes. Tested through
//! tests/gpu_train.rs (the structural counts and every training test).

use web_time::Instant;

use anyhow::Result;

use super::GpuBackend;

use crate::gpu::kernels::StepRecord;
use crate::gpu::plan::Stamps;
use crate::metrics::Timing;

impl GpuBackend {
    pub(super) fn wait_all(&mut self) -> Result<()> {
        let t = Instant::now();
        self.ctx.wait()?;
        self.in_flight = None;
        self.host.wait += t.elapsed();
        Ok(())
    }

    /// Uploads the staged step records and records and submits their steps.
    pub(super) fn flush(&mut self) -> Result<()> {
        let n = self.pending;
        if n == 0 {
            return Ok(());
        }
        self.start_profiler()?;
        let t0 = Instant::now();
        let bytes = n * self.ring.stride;
        self.ctx
            .queue
            .write_buffer(&self.ring.buffer, 0, &self.records_host[..bytes]);
        self.structure.upload_bytes += bytes as u64;
        let t1 = Instant::now();
        self.host.upload += t1 - t0;
        self.pending = 0;
        self.stats.used += n;
        self.structure.steps += n as u64;
        if self
            .profiler
            .as_ref()
            .is_some_and(|p| p.timing == Timing::WallClock)
        {
            return self.run_wall_clock(n);
        }
        let t = self.train.as_ref().expect("steps run on an attached split");
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("train steps"),
            });
        let stamps = match (&self.profiler, &self.flush_points) {
            (Some(p), _) => p.stamps(),
            (None, Some(set)) => Stamps::Flush(set),
            (None, None) => Stamps::None,
        };
        let done = t.plan.encode(&mut enc, &self.kernels, n, stamps);
        if let Some(p) = &self.profiler {
            p.resolve(&mut enc, done.queries);
        }
        done.count_into(&mut self.structure);
        let cmd = enc.finish();
        let t2 = Instant::now();
        self.host.encode += t2 - t1;
        let index = self.ctx.queue.submit([cmd]);
        let t3 = Instant::now();
        self.host.submit += t3 - t2;
        // Pacing: at most two submissions in flight, so the host runs one submission ahead.
        if let Some(prev) = self.in_flight.replace(index) {
            self.ctx.wait_for(prev)?;
        }
        self.host.wait += t3.elapsed();
        if let Some(p) = &mut self.profiler {
            let t = Instant::now();
            p.collect(&self.ctx.device, n, done.queries)?;
            self.in_flight = None;
            self.host.wait += t.elapsed();
        }
        self.ctx.check("a training submission")
    }

    /// Profile without timestamps: each dispatch submitted alone and timed by the host.
    fn run_wall_clock(&mut self, n: usize) -> Result<()> {
        self.wait_all()?;
        let t = self.train.as_ref().expect("steps run on an attached split");
        let p = self.profiler.as_mut().expect("profiling");
        let done = p.time_alone(&self.ctx, &self.kernels, &t.plan, n)?;
        done.count_into(&mut self.structure);
        Ok(())
    }

    /// Reads the GPU's per-step stats when their slots run out. A native process blocks on the
    /// readback; a browser cannot, so its trainer reads them (`take_stats_async`) often enough.
    fn read_stats(&mut self) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        return pollster::block_on(self.read_stats_async());
        #[cfg(target_arch = "wasm32")]
        anyhow::bail!(
            "the per-step stats slots are full: await take_stats_async at least every {} steps",
            crate::gpu::stats::STAT_SLOTS / 2
        )
    }

    /// Queues one step's record; submits when the ring is full.
    pub(super) fn queue_step(&mut self, start: usize, rows: usize) -> Result<()> {
        if self.stats.full(self.pending) {
            self.read_stats()?;
        }
        let t = Instant::now();
        let s = self.pending;
        self.steps += 1;
        let record = StepRecord {
            rows: rows as u32,
            slot: s as u32,
            stat: self.stats.claim(s, rows),
            alpha: self.optimizer.alpha(self.steps) as f32,
            scale: (1.0 / rows as f64) as f32,
            start: start as u32,
            counter: self.steps as u32,
            _pad: 0,
        };
        let at = s * self.ring.stride;
        self.records_host[at..at + std::mem::size_of::<StepRecord>()]
            .copy_from_slice(bytemuck::bytes_of(&record));
        self.host.upload += t.elapsed();
        self.pending += 1;
        if self.pending == self.ring.slots {
            self.flush()?;
        }
        Ok(())
    }
}
