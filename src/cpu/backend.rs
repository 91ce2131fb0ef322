//! `CpuBackend`: the CPU path behind the `Backend` trait (the fast step, its thread pools, evaluation
//! and prediction on the fast products). Tested by tests/train_cpu.rs, tests/resume.rs and
//! tests/gpu_train.rs (the GPU against it).

use std::sync::Arc;

use anyhow::{Result, bail, ensure};

use crate::backend::{
    Backend, OptimizerState, Role, check_order, check_params, check_range, check_split,
};
use crate::batches::{gather_normalise, normalise_range};
use crate::config::OptimizerConfig;
use crate::cpu::{self, Workspace};
use crate::data::Split;
use crate::metrics::StepStats;
use crate::model::{MlpSpec, ParamLayout};

/// Rows per `logits` call on the CPU: large enough to amortise, small enough to stay in cache.
const CPU_EVAL_BATCH: usize = 1000;

/// The CPU path: the fast path in `cpu/`, allocation-free per step. Each step gathers and normalises
/// its samples into `x` on the compute threads, right before the step reads them (measured faster
/// than gathering on the calling thread or in a producer thread, docs/perf.md).
pub struct CpuBackend {
    spec: MlpSpec,
    layout: ParamLayout,
    optimizer: OptimizerConfig,
    dropout: cpu::Dropout,
    params: Vec<f32>,
    grads: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    train_ws: Workspace<f32>,
    eval_ws: Workspace<f32>,
    train: Option<Arc<Split>>,
    eval: Option<Arc<Split>>,
    order: Vec<u32>,
    /// `(batch_capacity, inputs)`: the step's normalised samples.
    x: Vec<f32>,
    /// `(batch_capacity)`.
    labels: Vec<u32>,
    /// `(CPU_EVAL_BATCH, inputs)`.
    eval_x: Vec<f32>,
    steps: u64,
    stats: StepStats,
    /// The step runs inside these pools (two threads, or one while a busy neighbour makes the split
    /// step slower), so the kernels' `rayon::join` splits are cheap hand-offs between their threads.
    threads: cpu::ComputeThreads,
}

impl CpuBackend {
    /// A backend that trains `params` (flat, `spec.layout()` order) with batches of up to `batch_capacity`.
    pub fn new(
        spec: MlpSpec,
        params: Vec<f32>,
        optimizer: impl Into<OptimizerConfig>,
        batch_capacity: usize,
    ) -> Self {
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
            x: vec![0.0; batch_capacity * spec.inputs],
            labels: vec![0; batch_capacity],
            eval_x: vec![0.0; CPU_EVAL_BATCH * spec.inputs],
            train: None,
            eval: None,
            order: Vec::new(),
            spec,
            layout,
            optimizer: optimizer.into(),
            dropout: cpu::Dropout::default(),
            params,
            grads: vec![0.0; n],
            m: vec![0.0; n],
            v: vec![0.0; n],
            steps: 0,
            stats: StepStats::default(),
            threads: cpu::ComputeThreads::new(),
        }
    }

    /// Threads the CPU path computes on.
    pub fn threads(&self) -> usize {
        self.threads.threads()
    }

    /// Whether the compute threads flush denormal floats to zero (`cpu::flush_denormals`).
    pub fn flushes_denormals(&self) -> bool {
        self.threads.install(cpu::flushes_denormals)
    }

    /// One step on normalised host samples `x (rows, inputs)` with `labels (rows)`: what `train_step`
    /// runs after its gather, public for the benches and the fast-path tests.
    pub fn step_on(&mut self, x: &[f32], labels: &[u32], rows: usize) {
        self.step(rows, StepBatch::Given(x, labels));
    }

    /// One step inside a pool of `threads`: the batch gathered there too when it comes from the split, so a step
    /// hands work to the compute threads once (while the calling thread gathered, they went idle).
    fn step(&mut self, rows: usize, batch: StepBatch<'_>) {
        self.steps += 1;
        let step = cpu::UpdateStep::new(&self.optimizer, self.steps);
        let drop = self.dropout.step(self.steps);
        let Self {
            layout,
            params,
            grads,
            m,
            v,
            train_ws,
            threads,
            x: x_buf,
            labels: labels_buf,
            ..
        } = self;
        let (loss, correct) = threads.step(|| {
            let (x, labels): (&[f32], &[u32]) = match batch {
                StepBatch::Given(x, labels) => (x, labels),
                StepBatch::Gather(split, order) => {
                    gather_normalise(split, order, x_buf, labels_buf);
                    (x_buf, labels_buf)
                }
            };
            let drop = drop.as_ref();
            cpu::train_step(
                layout, params, grads, m, v, x, labels, rows, train_ws, step, drop,
            )
        });
        self.stats.add(StepStats {
            loss_sum: loss as f64,
            correct: correct as u64,
            samples: rows as u64,
            steps: 1,
        });
    }
}

/// Where a step's batch comes from.
enum StepBatch<'a> {
    /// Normalised samples and their labels.
    Given(&'a [f32], &'a [u32]),
    /// These entries of the order, gathered from the split.
    Gather(&'a Split, &'a [u32]),
}

impl Backend for CpuBackend {
    fn device_name(&self) -> String {
        format!("cpu ({} threads, matrixmultiply sgemm)", self.threads())
    }

    fn spec(&self) -> &MlpSpec {
        &self.spec
    }

    fn attach(&mut self, role: Role, split: &Arc<Split>) -> Result<()> {
        check_split(split, &self.spec)?;
        match role {
            Role::Train => self.train = Some(split.clone()),
            Role::Eval => self.eval = Some(split.clone()),
        }
        Ok(())
    }

    fn set_order(&mut self, order: &[u32]) -> Result<()> {
        check_order(order, self.train.as_ref())?;
        self.order.clear();
        self.order.extend_from_slice(order);
        Ok(())
    }

    fn train_step(&mut self, start: usize, rows: usize) -> Result<()> {
        check_range(start, rows, self.order.len(), self.labels.len())?;
        let train = self.train.clone().expect("set_order checked the split");
        let order = std::mem::take(&mut self.order);
        self.step(rows, StepBatch::Gather(&train, &order[start..start + rows]));
        self.order = order;
        Ok(())
    }

    fn take_stats(&mut self) -> Result<StepStats> {
        Ok(std::mem::take(&mut self.stats))
    }

    fn eval_logits(&mut self, start: usize, rows: usize, out: &mut [f32]) -> Result<()> {
        let Some(split) = self.eval.clone() else {
            bail!("eval_logits before an evaluation split was attached")
        };
        check_range(start, rows, split.len(), CPU_EVAL_BATCH)?;
        let mut x = std::mem::take(&mut self.eval_x);
        normalise_range(&split, start, rows, &mut x);
        let result = self.logits(&x, rows, out);
        self.eval_x = x;
        result
    }

    fn logits(&mut self, x: &[f32], rows: usize, out: &mut [f32]) -> Result<()> {
        ensure!(
            rows <= CPU_EVAL_BATCH,
            "logits of {rows} rows exceed {CPU_EVAL_BATCH}"
        );
        let Self {
            layout,
            params,
            eval_ws,
            threads,
            ..
        } = self;
        threads.install(|| cpu::fast_forward(layout, params, x, rows, eval_ws));
        out[..rows * self.spec.outputs].copy_from_slice(self.eval_ws.logits(rows));
        Ok(())
    }

    fn eval_batch(&self) -> usize {
        CPU_EVAL_BATCH
    }

    fn params(&mut self) -> Result<Vec<f32>> {
        Ok(self.params.clone())
    }

    fn set_dropout(&mut self, dropout: &cpu::Dropout) -> Result<()> {
        self.dropout = dropout.clone();
        Ok(())
    }

    fn set_params(&mut self, params: &[f32]) -> Result<()> {
        check_params(params, &self.spec)?;
        self.params.copy_from_slice(params);
        Ok(())
    }

    fn steps_done(&self) -> u64 {
        self.steps
    }

    fn optimizer_state(&mut self) -> Result<OptimizerState> {
        Ok(OptimizerState {
            kind: self.optimizer.kind(),
            m: self.m.clone(),
            v: self.v.clone(),
            steps: self.steps,
        })
    }

    fn set_optimizer_state(&mut self, state: &OptimizerState) -> Result<()> {
        state.check(self.layout.total, self.optimizer.kind())?;
        self.m.copy_from_slice(&state.m);
        self.v.copy_from_slice(&state.v);
        self.steps = state.steps;
        Ok(())
    }
}
