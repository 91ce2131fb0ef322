//! Device-neutral measurements: the running loss and accuracy of training steps, and the per-kernel
//! profile with the structure of a step (dispatches, copies, passes, bytes moved between host and
//! device) that `fmnist profile`, `train --profile` and `bench` print. Filled by the backends; tested
//! by tests/cli_gpu.rs and tests/gpu_train.rs (the structural gates).

use std::fmt::Write as _;
use std::time::Duration;

/// Metrics summed over the steps since the last `take_stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepStats {
    pub loss_sum: f64,
    pub correct: u64,
    pub samples: u64,
    pub steps: u64,
}

impl StepStats {
    pub fn add(&mut self, other: StepStats) {
        self.loss_sum += other.loss_sum;
        self.correct += other.correct;
        self.samples += other.samples;
        self.steps += other.steps;
    }
    pub fn mean_loss(&self) -> f64 {
        self.loss_sum / self.samples.max(1) as f64
    }
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.samples.max(1) as f64
    }
}

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

/// What training steps cost in structure: GPU commands recorded and bytes moved between host and
/// device. Counted by the GPU engine for every step; the profile reports the per-step average.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepStructure {
    pub steps: u64,
    pub dispatches: u64,
    /// Buffer-to-texture copies.
    pub copies: u64,
    /// Compute passes.
    pub passes: u64,
    /// Bytes written from the host into device buffers (step records, epoch orders, inputs).
    pub upload_bytes: u64,
    /// Bytes read back to the host (stats, logits, parameters).
    pub readback_bytes: u64,
}

impl StepStructure {
    /// Adds recorded commands.
    pub fn add_commands(&mut self, dispatches: u64, copies: u64, passes: u64) {
        self.dispatches += dispatches;
        self.copies += copies;
        self.passes += passes;
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &StepStructure) -> StepStructure {
        StepStructure {
            steps: self.steps - earlier.steps,
            dispatches: self.dispatches - earlier.dispatches,
            copies: self.copies - earlier.copies,
            passes: self.passes - earlier.passes,
            upload_bytes: self.upload_bytes - earlier.upload_bytes,
            readback_bytes: self.readback_bytes - earlier.readback_bytes,
        }
    }

    /// Per-step averages: (dispatches, copies, passes, bytes uploaded, bytes read back).
    pub fn per_step(&self) -> (f64, f64, f64, f64, f64) {
        let n = self.steps.max(1) as f64;
        (
            self.dispatches as f64 / n,
            self.copies as f64 / n,
            self.passes as f64 / n,
            self.upload_bytes as f64 / n,
            self.readback_bytes as f64 / n,
        )
    }

    /// `Per step: D dispatches, C copies, P passes, U bytes uploaded, R bytes read back`.
    pub fn line(&self) -> String {
        let (d, c, p, u, r) = self.per_step();
        format!(
            "Per step: {} dispatches, {} copies, {} passes, {} bytes uploaded, {} bytes read back",
            short(d),
            short(c),
            short(p),
            short(u),
            short(r)
        )
    }
}

/// A per-step average without trailing zeros: `4`, `0.03`, `384`.
fn short(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
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
    /// Invocations one dispatch runs (workgroups x workgroup size).
    pub invocations: u64,
}

/// What the profile prints.
#[derive(Clone, Debug)]
pub struct ProfileReport {
    pub timing: Timing,
    pub rows: Vec<KernelRow>,
    pub host: HostTimes,
    pub steps: u64,
    pub wall: Duration,
    /// What the profiled steps recorded and moved.
    pub structure: StepStructure,
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
        // The name column fits the longest kernel name, 48 characters at least.
        let w = self.rows.iter().map(|r| r.name.len()).fold(48, usize::max);
        let _ = writeln!(
            s,
            "Kernel profile over {} steps ({})",
            self.steps,
            self.timing.describe()
        );
        let _ = writeln!(
            s,
            "{:<w$} {:>11} {:>10} {:>10} {:>9} {:>6} {:>12}",
            "kernel", "invocations", "dispatches", "total ms", "mean us", "share", "rate"
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
                "{:<w$} {:>11} {:>10} {:>10.1} {:>9.1} {:>5.1}% {:>12}",
                r.name,
                r.invocations,
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
        let _ = writeln!(s, "{}", self.structure.line());
        s
    }
}
