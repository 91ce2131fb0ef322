//! The `Backend` trait: what the fit loop, `evaluate` and `predict` need from a device. Implemented by the
//! CPU path (`CpuBackend`, here) and the GPU engine (`gpu::GpuBackend`). Parameters cross this boundary
//! only in the flat `[in, out]` layout of `model::ParamLayout`, whatever a device keeps inside.

use anyhow::Result;

use crate::config::AdamConfig;
use crate::cpu::{self, Workspace};
use crate::model::{MlpSpec, ParamLayout};

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

pub trait Backend {
    /// What the run is computed on, e.g. `cpu (matrixmultiply, 2 threads)` or `llvmpipe ... (Vulkan, Cpu)`.
    fn device_name(&self) -> String;
    fn spec(&self) -> &MlpSpec;
    /// One forward + backward + Adam step on `rows` normalised samples `x (rows, inputs)` with `labels (rows)`.
    /// The step's loss and accuracy are added to the running stats; a device may queue the work.
    fn train_step(&mut self, x: &[f32], labels: &[u32], rows: usize) -> Result<()>;
    /// The stats accumulated since the last call (then reset). Waits for queued steps.
    fn take_stats(&mut self) -> Result<StepStats>;
    /// Logits `(rows, outputs)` of `rows` samples; `rows <= eval_batch()`.
    fn logits(&mut self, x: &[f32], rows: usize, out: &mut [f32]) -> Result<()>;
    /// Largest `rows` that `logits` accepts.
    fn eval_batch(&self) -> usize;
    /// The parameters, flat, in `ParamLayout` order.
    fn params(&mut self) -> Result<Vec<f32>>;
    /// Optimizer steps taken so far.
    fn steps_done(&self) -> u64;
    /// Starts timing every kernel; `false` when this device has no per-kernel profile (the CPU path).
    fn start_profile(&mut self) -> Result<bool> {
        Ok(false)
    }
    /// The per-kernel profile since `start_profile` (waits for queued work).
    fn profile_report(&mut self) -> Result<Option<crate::gpu::profile::ProfileReport>> {
        Ok(None)
    }
}

/// Rows per `logits` call on the CPU: large enough to amortise, small enough to stay in cache.
const CPU_EVAL_BATCH: usize = 1000;

/// The CPU path: the twins in `cpu.rs`, allocation-free per step.
pub struct CpuBackend {
    spec: MlpSpec,
    layout: ParamLayout,
    adam: AdamConfig,
    params: Vec<f32>,
    grads: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    train_ws: Workspace<f32>,
    eval_ws: Workspace<f32>,
    steps: u64,
    stats: StepStats,
    /// The step runs inside this pool, so the kernels' `rayon::join` splits are cheap hand-offs between
    /// its threads instead of a wake-up of a foreign pool from the calling thread.
    pool: rayon::ThreadPool,
}

impl CpuBackend {
    /// A backend that trains `params` (flat, `spec.layout()` order) with batches of up to `batch_capacity`.
    pub fn new(spec: MlpSpec, params: Vec<f32>, adam: AdamConfig, batch_capacity: usize) -> Self {
        let layout = spec.layout();
        assert_eq!(
            params.len(),
            layout.total,
            "parameter vector does not match the layout"
        );
        let n = layout.total;
        Self {
            train_ws: Workspace::new(&layout, batch_capacity),
            eval_ws: Workspace::new(&layout, CPU_EVAL_BATCH),
            spec,
            layout,
            adam,
            params,
            grads: vec![0.0; n],
            m: vec![0.0; n],
            v: vec![0.0; n],
            steps: 0,
            stats: StepStats::default(),
            pool: rayon::ThreadPoolBuilder::new()
                .thread_name(|i| format!("fmnist-cpu-{i}"))
                .build()
                .expect("a thread pool starts"),
        }
    }

    /// Threads the CPU path computes on.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }
}

impl Backend for CpuBackend {
    fn device_name(&self) -> String {
        format!("cpu ({} threads, matrixmultiply sgemm)", self.threads())
    }

    fn spec(&self) -> &MlpSpec {
        &self.spec
    }

    fn train_step(&mut self, x: &[f32], labels: &[u32], rows: usize) -> Result<()> {
        self.steps += 1;
        let a = self.adam;
        let step = cpu::AdamStep {
            alpha: cpu::adam_alpha(a.learning_rate, a.beta1, a.beta2, self.steps) as f32,
            beta1: a.beta1 as f32,
            beta2: a.beta2 as f32,
            epsilon: a.epsilon as f32,
        };
        let Self {
            layout,
            params,
            grads,
            m,
            v,
            train_ws,
            pool,
            ..
        } = self;
        let (loss, correct) = pool.install(|| {
            cpu::train_step(layout, params, grads, m, v, x, labels, rows, train_ws, step)
        });
        self.stats.add(StepStats {
            loss_sum: loss as f64,
            correct: correct as u64,
            samples: rows as u64,
            steps: 1,
        });
        Ok(())
    }

    fn take_stats(&mut self) -> Result<StepStats> {
        Ok(std::mem::take(&mut self.stats))
    }

    fn logits(&mut self, x: &[f32], rows: usize, out: &mut [f32]) -> Result<()> {
        let Self {
            layout,
            params,
            eval_ws,
            pool,
            ..
        } = self;
        pool.install(|| cpu::forward(layout, params, x, rows, eval_ws));
        out[..rows * self.spec.outputs].copy_from_slice(self.eval_ws.logits(rows));
        Ok(())
    }

    fn eval_batch(&self) -> usize {
        CPU_EVAL_BATCH
    }

    fn params(&mut self) -> Result<Vec<f32>> {
        Ok(self.params.clone())
    }

    fn steps_done(&self) -> u64 {
        self.steps
    }
}
