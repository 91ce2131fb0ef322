//! Per-kernel profiling of the GPU backend's steps: started on request, begun once a training plan
//! exists, read after the queued steps finish. The timing itself is `gpu::profile`'s.

use anyhow::Result;

use super::GpuBackend;
use crate::gpu::profile::Profiler;
use crate::metrics::ProfileReport;

impl GpuBackend {
    /// Starts timing every kernel (see `metrics::Timing` for how) from the next step on; `report`
    /// reads the result.
    pub fn begin_profile(&mut self) -> Result<()> {
        self.flush()?;
        self.profiler = None;
        self.profile_wanted = true;
        self.start_profiler()
    }

    /// Starts the profiler once there is a step to profile.
    pub(super) fn start_profiler(&mut self) -> Result<()> {
        if let (true, None, Some(t)) = (self.profile_wanted, &self.profiler, &self.train) {
            self.profiler = Some(Profiler::begin(
                &self.ctx,
                &t.plan,
                self.ring.slots,
                self.host,
                self.structure,
            )?);
        }
        Ok(())
    }

    /// The profile since `begin_profile` (waits for queued steps).
    pub fn report(&mut self) -> Result<Option<ProfileReport>> {
        self.flush()?;
        self.wait_all()?;
        Ok(self
            .profiler
            .as_ref()
            .map(|p| p.report(self.host, self.structure)))
    }
}
