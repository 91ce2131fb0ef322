//! The `Backend` trait: what the fit loop, `evaluate` and `predict` need from a device. Implemented by the
//! CPU path (`cpu::CpuBackend`, re-exported here) and the GPU engine (`gpu::GpuBackend`). Parameters cross this boundary
//! only in the flat `[in, out]` layout of `model::ParamLayout`, whatever a device keeps inside.

use std::sync::Arc;

use anyhow::{Result, bail, ensure};

use crate::config::OptimizerKind;
use crate::data::Split;
use crate::metrics::StepStats;
use crate::model::MlpSpec;

/// Which split a backend reads: the training split (through the epoch's order) or the evaluated one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Train,
    Eval,
}

/// The optimizer's state in the flat `ParamLayout` order: its two slots per parameter, and the steps
/// taken (which set Adam's bias correction of the next step). With the parameters it is all a step
/// depends on besides its samples, so saving and restoring it continues a run exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState {
    /// Whose state this is.
    pub kind: OptimizerKind,
    /// `(params)`: Adam's first moment, SGD's and RMSprop's momentum (zeros without momentum).
    pub m: Vec<f32>,
    /// `(params)`: Adam's second moment, RMSprop's mean square (zeros for SGD).
    pub v: Vec<f32>,
    pub steps: u64,
}

/// Checks that `params` holds one value per parameter of `spec`.
pub fn check_params(params: &[f32], spec: &MlpSpec) -> Result<()> {
    let total = spec.layout().total;
    ensure!(
        params.len() == total,
        "{} parameter values for a model of {total} parameters",
        params.len()
    );
    Ok(())
}

impl OptimizerState {
    /// Checks that this is `kind`'s state and that `m` and `v` fit a model of `params` parameters.
    pub fn check(&self, params: usize, kind: OptimizerKind) -> Result<()> {
        ensure!(
            self.kind == kind,
            "the optimizer state is {}'s but the run uses {}",
            self.kind.name(),
            kind.name()
        );
        ensure!(
            self.m.len() == params && self.v.len() == params,
            "the optimizer state holds {} and {} values for a model of {params} parameters",
            self.m.len(),
            self.v.len()
        );
        Ok(())
    }
}

pub trait Backend {
    /// What the run is computed on, e.g. `cpu (matrixmultiply, 2 threads)` or `llvmpipe ... (Vulkan, Cpu)`.
    fn device_name(&self) -> String;
    fn spec(&self) -> &MlpSpec;
    /// Makes `split` the data that `role` reads. A GPU uploads it once and keeps it resident (so the
    /// steps and evaluations that follow move no samples); attaching the same `Arc` again does nothing.
    fn attach(&mut self, role: Role, split: &Arc<Split>) -> Result<()>;
    /// The sample order of the coming steps (one epoch's shuffle): indices into the training split.
    fn set_order(&mut self, order: &[u32]) -> Result<()>;
    /// One forward + backward + Adam step on the training samples `order[start..start + rows]`. The
    /// step's loss and accuracy are added to the running stats; a device may queue the work.
    fn train_step(&mut self, start: usize, rows: usize) -> Result<()>;
    /// The stats accumulated since the last call (then reset). Waits for queued steps.
    fn take_stats(&mut self) -> Result<StepStats>;
    /// Logits `(rows, outputs)` of the evaluated split's samples `start..start + rows`;
    /// `rows <= eval_batch()`.
    fn eval_logits(&mut self, start: usize, rows: usize, out: &mut [f32]) -> Result<()>;
    /// Logits `(rows, outputs)` of normalised host inputs `x (rows, inputs)` (photos); `rows <= eval_batch()`.
    fn logits(&mut self, x: &[f32], rows: usize, out: &mut [f32]) -> Result<()>;
    /// Largest `rows` that `logits` and `eval_logits` accept.
    fn eval_batch(&self) -> usize;
    /// The parameters, flat, in `ParamLayout` order.
    fn params(&mut self) -> Result<Vec<f32>>;
    /// Dropout after the hidden layers of every training step from now on (Keras' `Dropout`, training
    /// only: evaluation and prediction never drop).
    fn set_dropout(&mut self, dropout: &crate::cpu::Dropout) -> Result<()>;
    /// Replaces the parameters (flat, `ParamLayout` order), e.g. with the best epoch's at the end of
    /// an early-stopped fit; the optimizer state is left as it is (Keras restores weights only).
    fn set_params(&mut self, params: &[f32]) -> Result<()>;
    /// Optimizer steps taken so far.
    fn steps_done(&self) -> u64;
    /// The optimizer's slots and step count (waits for queued steps).
    fn optimizer_state(&mut self) -> Result<OptimizerState>;
    /// Replaces the optimizer's slots and step count, e.g. with those of a checkpoint being resumed.
    fn set_optimizer_state(&mut self, state: &OptimizerState) -> Result<()>;
    /// Starts timing every kernel; `false` when this device has no per-kernel profile (the CPU path).
    fn start_profile(&mut self) -> Result<bool> {
        Ok(false)
    }
    /// The per-kernel profile since `start_profile` (waits for queued work).
    fn profile_report(&mut self) -> Result<Option<crate::metrics::ProfileReport>> {
        Ok(None)
    }
}

/// Checks that `split` fits `spec`: images as wide as the inputs, every label a class.
pub fn check_split(split: &Split, spec: &MlpSpec) -> Result<()> {
    ensure!(
        split.pixels == spec.inputs,
        "the data has {} pixels per image but the model takes {} inputs",
        split.pixels,
        spec.inputs
    );
    if let Some(&bad) = split.labels.iter().find(|&&l| l as usize >= spec.outputs) {
        bail!("label {bad} is out of range for {} classes", spec.outputs);
    }
    Ok(())
}

/// Checks an epoch order against the training split it indexes.
pub fn check_order(order: &[u32], train: Option<&Arc<Split>>) -> Result<()> {
    let Some(train) = train else {
        bail!("set_order before a training split was attached")
    };
    if let Some(&bad) = order.iter().find(|&&i| i as usize >= train.len()) {
        bail!(
            "sample {bad} of the order is past the training split's {} samples",
            train.len()
        );
    }
    Ok(())
}

/// Checks that `start..start + rows` lies inside `len` and `rows` fits `capacity`.
pub fn check_range(start: usize, rows: usize, len: usize, capacity: usize) -> Result<()> {
    ensure!(
        rows >= 1 && rows <= capacity,
        "a batch of {rows} rows does not fit the batch capacity {capacity}"
    );
    ensure!(
        start.checked_add(rows).is_some_and(|end| end <= len),
        "samples {start}..{} are past the {len} available",
        start.saturating_add(rows)
    );
    Ok(())
}

pub use crate::cpu::CpuBackend;
