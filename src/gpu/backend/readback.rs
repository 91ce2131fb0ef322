//! The GPU backend's readbacks as futures: what a browser (wasm32, WebGPU) awaits, and what the
//! `Backend` trait's methods block on natively (`pollster`). The stats, the logits of an evaluation or
//! of host inputs, the parameters and the optimizer's state. Tested through every GPU test (the trait
//! methods) and tests/gpu_train.rs (awaited directly).

use web_time::Instant;

use anyhow::{Result, ensure};

use super::GpuBackend;
use crate::backend::{OptimizerState, check_range};
use crate::gpu::kernels::StepRecord;
use crate::metrics::StepStats;

/// Steps a browser's trainer queues before it awaits their stats. WebGPU cannot block, so that await is
/// the only back-pressure on the queue (and what hands the page back its event loop); natively the
/// submission pacing in `flush` and the blocking read when the slots run out do both.
pub const BROWSER_STEPS_AHEAD: usize = 4 * super::MAX_SLOTS;

impl GpuBackend {
    /// Whether the trainer must await `take_stats_async` before the next step: in a browser, every
    /// `BROWSER_STEPS_AHEAD` steps; natively never (the engine reads its stats itself).
    pub fn stats_due(&self) -> bool {
        cfg!(target_arch = "wasm32") && self.stats.used + self.pending >= BROWSER_STEPS_AHEAD
    }

    /// `Backend::take_stats` as a future: the running loss and accuracy of the steps so far.
    pub async fn take_stats_async(&mut self) -> Result<StepStats> {
        self.read_stats_async().await?;
        Ok(self.stats.take())
    }

    /// Reads the GPU's per-step stats (after submitting the queued steps).
    pub(super) async fn read_stats_async(&mut self) -> Result<()> {
        self.flush()?;
        let t = Instant::now();
        self.structure.readback_bytes += self.stats.read(&self.ctx).await?;
        self.in_flight = None;
        self.host.wait += t.elapsed();
        Ok(())
    }

    /// `Backend::eval_logits` as a future (the readback awaited).
    pub async fn eval_logits_async(
        &mut self,
        start: usize,
        rows: usize,
        out: &mut [f32],
    ) -> Result<()> {
        ensure!(
            self.eval.has_split(),
            "eval_logits before an evaluation split was attached"
        );
        check_range(start, rows, self.eval.split_len(), self.eval.cap)?;
        ensure!(
            out.len() >= rows * self.spec.outputs,
            "eval_logits: the output holds fewer than {rows} rows"
        );
        self.flush()?;
        let t = Instant::now();
        let bytes = self
            .eval
            .split_logits(&self.ctx, &self.kernels, start, rows, out)
            .await?;
        self.structure.readback_bytes += bytes;
        self.structure.upload_bytes += std::mem::size_of::<StepRecord>() as u64;
        self.in_flight = None;
        self.host.wait += t.elapsed();
        self.ctx.check("the evaluation forward pass")
    }

    /// `Backend::logits` as a future.
    pub async fn logits_async(&mut self, x: &[f32], rows: usize, out: &mut [f32]) -> Result<()> {
        let (inputs, outputs) = (self.spec.inputs, self.spec.outputs);
        ensure!(
            rows <= self.eval.cap,
            "logits of {rows} rows exceed the GPU's {}",
            self.eval.cap
        );
        ensure!(
            x.len() >= rows * inputs && out.len() >= rows * outputs,
            "logits: buffers too short"
        );
        if rows == 0 {
            return Ok(());
        }
        self.flush()?;
        let bytes = self
            .eval
            .host_logits(&self.ctx, &self.kernels, x, rows, inputs, out)
            .await?;
        self.structure.readback_bytes += bytes;
        self.in_flight = None;
        self.ctx.check("the forward pass")
    }

    /// `Backend::params` as a future.
    pub async fn params_async(&mut self) -> Result<Vec<f32>> {
        self.flush()?;
        let p = self.state.download(&self.ctx, &self.state.params).await?;
        self.in_flight = None;
        self.structure.readback_bytes += (self.state.total() * 4) as u64;
        self.ctx.check("reading the parameters")?;
        Ok(p)
    }

    /// `Backend::optimizer_state` as a future.
    pub async fn optimizer_state_async(&mut self) -> Result<OptimizerState> {
        self.flush()?;
        let m = self.state.download(&self.ctx, &self.state.m).await?;
        let v = self.state.download(&self.ctx, &self.state.v).await?;
        self.in_flight = None;
        self.structure.readback_bytes += (2 * self.state.total() * 4) as u64;
        self.ctx.check("reading Adam's state")?;
        Ok(OptimizerState {
            kind: self.optimizer.kind(),
            m,
            v,
            steps: self.steps,
        })
    }
}
