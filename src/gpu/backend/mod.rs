//! `GpuBackend`: the MLP trained on a wgpu device. It owns the rooms of the engine: the parameter state
//! (`params`), the resident training split and its epoch order (`dataset`), the step's dispatch list for
//! the adapter's operand path (`plan`), evaluation (`eval`) and the profile (`profile`). A training step
//! writes only its record (rows, where its samples start in the order, Adam's step size, where its stats
//! go) into a ring; every `slots` steps the records are uploaded with one write and the steps are
//! recorded into one submission, at most two in flight. Loss and correct counts stay on the GPU until
//! `take_stats`. Every step's structure (dispatches, copies, passes, bytes moved) is counted. How
//! steps are queued and submitted is in `submit.rs`.
//! Tested by tests/gpu_train.rs (both operand paths vs the CPU, the structural gates) and tests/cli_gpu.rs.

mod profiling;
mod readback;
mod submit;

use std::sync::Arc;

use anyhow::{Result, bail, ensure};

use crate::backend::{Backend, OptimizerState, Role, check_params, check_range, check_split};
use crate::config::OptimizerConfig;
use crate::data::{PIXELS, Split};
use crate::gpu::buffers::pad_texture_row;
use crate::gpu::context::{GpuContext, Needs};
use crate::gpu::dataset::{OrderTexture, ResidentSplit, order_buffer};
use crate::gpu::eval::{EVAL_BATCH, EvalPlan};
use crate::gpu::kernels::Kernels;
use crate::gpu::params::ParamState;
use crate::gpu::plan::{self, Operands, PlanInputs, StepPlan, StepRing};
use crate::gpu::profile::Profiler;
use crate::gpu::stats::StatSlots;
use crate::metrics::{HostTimes, ProfileReport, StepStats, StepStructure};
use crate::model::MlpSpec;

/// Most steps recorded into one submission.
const MAX_SLOTS: usize = 32;

/// The training split on the device, its order, and the step built over them.
struct Training {
    split: ResidentSplit,
    /// `(split.len)` u32.
    order: wgpu::Buffer,
    /// The same order as a texture, on the texture path.
    order_tex: Option<OrderTexture>,
    /// Entries of the current order; 0 until `set_order`.
    order_len: usize,
    plan: StepPlan,
}

pub struct GpuBackend {
    ctx: GpuContext,
    kernels: Kernels,
    spec: MlpSpec,
    state: ParamState,
    optimizer: OptimizerConfig,
    /// Dropout after the hidden layers of each training step (`set_dropout`).
    dropout: crate::cpu::Dropout,
    operands: Operands,
    /// Rows per training batch.
    cap: usize,
    ring: StepRing,
    /// `(slots, ring.stride)` bytes: the records of the steps waiting to be submitted.
    records_host: Vec<u8>,
    stats: StatSlots,
    train: Option<Training>,
    eval: EvalPlan,
    /// Steps recorded in the host ring, not yet submitted.
    pending: usize,
    steps: u64,
    in_flight: Option<wgpu::SubmissionIndex>,
    host: HostTimes,
    structure: StepStructure,
    /// Where the step writes flush points outside profiles (`plan::flush_points`).
    flush_points: Option<wgpu::QuerySet>,
    /// Set by `begin_profile`; the profiler starts with the first submission after it (the step's
    /// dispatch list exists once a training split is attached).
    profile_wanted: bool,
    profiler: Option<Profiler>,
}

impl GpuBackend {
    /// Opens the adapter that `adapter` names (or the best one) and uploads `params` (flat CPU layout).
    pub fn new(
        adapter: Option<&str>,
        spec: MlpSpec,
        params: Vec<f32>,
        optimizer: impl Into<OptimizerConfig>,
        batch_capacity: usize,
    ) -> Result<Self> {
        let needs = Self::needs(&spec, batch_capacity);
        let ctx = GpuContext::open(adapter, needs)?;
        Self::with_context(ctx, spec, params, optimizer, batch_capacity)
    }

    /// The largest buffer this model and batch need, for the device limits: the training images, the
    /// parameters, or the evaluation's widest activations.
    pub fn needs(spec: &MlpSpec, cap: usize) -> Needs {
        let widest = spec
            .layout()
            .layers
            .iter()
            .map(|l| pad_texture_row(l.fan_out))
            .max()
            .unwrap_or(4)
            .max(pad_texture_row(spec.inputs));
        let params = crate::gpu::buffers::GpuLayout::of(&spec.layout()).total * 4;
        let images = 60_000 * PIXELS;
        Needs {
            largest_buffer: [images, params, cap.max(EVAL_BATCH) * widest * 4]
                .into_iter()
                .max()
                .unwrap_or(0) as u64,
        }
    }

    /// Builds the engine on an already open device, on the operand path the adapter wants
    /// (`Operands::choose`).
    pub fn with_context(
        ctx: GpuContext,
        spec: MlpSpec,
        params: Vec<f32>,
        optimizer: impl Into<OptimizerConfig>,
        batch_capacity: usize,
    ) -> Result<Self> {
        let operands = Operands::choose(ctx.adapter.device_type)?;
        Self::with_operands(ctx, operands, spec, params, optimizer, batch_capacity)
    }

    /// Builds the engine on `operands` (tests run both paths on one adapter).
    pub fn with_operands(
        ctx: GpuContext,
        operands: Operands,
        spec: MlpSpec,
        params: Vec<f32>,
        optimizer: impl Into<OptimizerConfig>,
        batch_capacity: usize,
    ) -> Result<Self> {
        let optimizer = optimizer.into();
        let cpu_layout = spec.layout();
        ensure!(
            params.len() == cpu_layout.total,
            "the parameter vector has {} floats but the model {} needs {}",
            params.len(),
            spec.describe(),
            cpu_layout.total
        );
        ensure!(batch_capacity >= 1, "the batch size must be at least 1");
        let cap = batch_capacity;
        let slots = MAX_SLOTS;
        let (kernels, state, ring, stats, eval) = ctx.scoped("building the GPU engine", || {
            let d = &ctx.device;
            let kernels = Kernels::new(d, &optimizer);
            let state = ParamState::new(
                d,
                cpu_layout.clone(),
                &params,
                operands == Operands::Textures,
            )?;
            let ring = StepRing::new(d, "step records (slots x stride)", slots);
            let stats = StatSlots::new(d);
            let eval = EvalPlan::new(&ctx, &kernels, &state, spec.inputs, operands)?;
            Ok((kernels, state, ring, stats, eval))
        })?;
        let mut backend = Self {
            flush_points: plan::flush_points(&ctx, operands),
            records_host: vec![0; slots * ring.stride],
            kernels,
            state,
            ring,
            stats,
            eval,
            train: None,
            pending: 0,
            steps: 0,
            in_flight: None,
            host: HostTimes::default(),
            structure: StepStructure::default(),
            profile_wanted: false,
            profiler: None,
            ctx,
            spec,
            optimizer,
            dropout: crate::cpu::Dropout::default(),
            operands,
            cap,
        };
        backend.refresh_mirrors()?;
        Ok(backend)
    }

    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// The operand path this engine trains on.
    /// Whether training steps write flush points (`plan::flush_points`).
    pub fn writes_flush_points(&self) -> bool {
        self.flush_points.is_some()
    }

    pub fn operands(&self) -> Operands {
        self.operands
    }

    /// Steps recorded into one submission.
    pub fn steps_per_submission(&self) -> usize {
        self.ring.slots
    }

    /// Counters of everything the steps so far recorded and moved.
    pub fn structure(&self) -> StepStructure {
        self.structure
    }

    /// The dispatch list of a training step (after a training split is attached), with each
    /// dispatch's invocations: `(name, invocations)`.
    pub fn step_sites(&self) -> Vec<(String, u64)> {
        self.train
            .as_ref()
            .map(|t| {
                t.plan
                    .sites
                    .iter()
                    .map(|s| (s.name.clone(), s.invocations()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Brings the texture mirrors up to date with the parameter buffers (texture path only).
    fn refresh_mirrors(&mut self) -> Result<()> {
        if self.state.mirrors.is_none() {
            return Ok(());
        }
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("refresh mirrors"),
            });
        self.structure.copies += self.state.refresh_mirrors(&mut enc);
        self.ctx.queue.submit([enc.finish()]);
        self.ctx.check("refreshing the texture mirrors")
    }

    /// Uploads `split` as the training data and builds the step over it.
    fn attach_train(&mut self, split: &Arc<Split>) -> Result<()> {
        if self.train.as_ref().is_some_and(|t| t.split.holds(split)) {
            return Ok(());
        }
        self.flush()?;
        self.wait_all()?;
        self.train = None;
        self.profiler = None;
        self.stats.reset();
        let t = self.ctx.scoped("uploading the training split", || {
            let d = &self.ctx.device;
            let textures = self.operands == Operands::Textures;
            // The texture path reads the images buffer only to gather x for a model without hidden
            // layers; its first-layer kernels read the texture.
            let buffer = !textures || self.spec.hidden.is_empty();
            let resident =
                ResidentSplit::upload(d, &self.ctx.queue, "train", split, buffer, textures)?;
            let order = order_buffer(d, split.len());
            let order_tex = textures
                .then(|| OrderTexture::new(d, split.len()))
                .transpose()?;
            let inputs = PlanInputs {
                device: d,
                kernels: &self.kernels,
                state: &self.state,
                optimizer: self.optimizer,
                dropout: &self.dropout,
                cap: self.cap,
                inputs: self.spec.inputs,
                train: &resident,
                order: &order,
                order_tex: order_tex.as_ref(),
                ring: &self.ring,
                stats: &self.stats.buffer,
            };
            let plan = match self.operands {
                Operands::Buffers => plan::buffers::build(&inputs)?,
                Operands::Textures => plan::textures::build(&inputs)?,
            };
            Ok(Training {
                split: resident,
                order,
                order_tex,
                order_len: 0,
                plan,
            })
        })?;
        self.structure.upload_bytes += t.split.bytes();
        self.train = Some(t);
        Ok(())
    }
}

impl Backend for GpuBackend {
    fn device_name(&self) -> String {
        format!(
            "gpu: {} [{} operands]",
            self.ctx.adapter.describe(),
            self.operands.name()
        )
    }

    fn spec(&self) -> &MlpSpec {
        &self.spec
    }

    fn attach(&mut self, role: Role, split: &Arc<Split>) -> Result<()> {
        check_split(split, &self.spec)?;
        match role {
            Role::Train => self.attach_train(split),
            Role::Eval => {
                let ctx = &self.ctx;
                let (kernels, state, eval) = (&self.kernels, &self.state, &mut self.eval);
                let bytes = ctx.scoped("uploading the evaluated split", || {
                    eval.attach(ctx, kernels, state, split)
                })?;
                self.structure.upload_bytes += bytes;
                Ok(())
            }
        }
    }

    fn set_order(&mut self, order: &[u32]) -> Result<()> {
        let Some(t) = &self.train else {
            bail!("set_order before a training split was attached")
        };
        if let Some(&bad) = order.iter().find(|&&i| i as usize >= t.split.len) {
            bail!(
                "sample {bad} of the order is past the training split's {} samples",
                t.split.len
            );
        }
        ensure!(
            order.len() <= t.split.len,
            "an order of {} entries is longer than the training split's {} samples",
            order.len(),
            t.split.len
        );
        // Steps already recorded read the previous order: submit them before it is overwritten.
        self.flush()?;
        let t = self.train.as_mut().expect("checked above");
        self.ctx
            .queue
            .write_buffer(&t.order, 0, bytemuck::cast_slice(order));
        let mut copies = 1;
        if let Some(tex) = &t.order_tex {
            tex.write(&self.ctx.queue, order);
            copies += 1;
        }
        t.order_len = order.len();
        self.structure.upload_bytes += (copies * order.len() * 4) as u64;
        Ok(())
    }

    fn train_step(&mut self, start: usize, rows: usize) -> Result<()> {
        let order_len = self.train.as_ref().map_or(0, |t| t.order_len);
        ensure!(order_len > 0, "train_step before set_order");
        check_range(start, rows, order_len, self.cap)?;
        self.queue_step(start, rows)
    }

    fn take_stats(&mut self) -> Result<StepStats> {
        pollster::block_on(self.take_stats_async())
    }

    fn eval_logits(&mut self, start: usize, rows: usize, out: &mut [f32]) -> Result<()> {
        pollster::block_on(self.eval_logits_async(start, rows, out))
    }

    fn logits(&mut self, x: &[f32], rows: usize, out: &mut [f32]) -> Result<()> {
        pollster::block_on(self.logits_async(x, rows, out))
    }

    fn eval_batch(&self) -> usize {
        self.eval.cap
    }

    fn params(&mut self) -> Result<Vec<f32>> {
        pollster::block_on(self.params_async())
    }

    fn set_dropout(&mut self, dropout: &crate::cpu::Dropout) -> Result<()> {
        if *dropout != self.dropout {
            // The step plan bakes the dropout into its kernels' dims: the next attach rebuilds it.
            self.flush()?;
            self.wait_all()?;
            self.train = None;
            self.profiler = None;
            self.dropout = dropout.clone();
        }
        Ok(())
    }

    fn set_params(&mut self, params: &[f32]) -> Result<()> {
        check_params(params, &self.spec)?;
        self.flush()?;
        self.wait_all()?;
        self.state
            .upload(&self.ctx.queue, &self.state.params, params);
        self.structure.upload_bytes += (self.state.total() * 4) as u64;
        // The texture path's kernels read the weights through their texture mirrors.
        self.refresh_mirrors()
    }

    fn steps_done(&self) -> u64 {
        self.steps
    }

    fn start_profile(&mut self) -> Result<bool> {
        self.begin_profile()?;
        Ok(true)
    }

    fn profile_report(&mut self) -> Result<Option<ProfileReport>> {
        self.report()
    }

    fn optimizer_state(&mut self) -> Result<OptimizerState> {
        pollster::block_on(self.optimizer_state_async())
    }

    fn set_optimizer_state(&mut self, state: &OptimizerState) -> Result<()> {
        state.check(self.spec.layout().total, self.optimizer.kind())?;
        self.flush()?;
        self.wait_all()?;
        let q = &self.ctx.queue;
        self.state.upload(q, &self.state.m, &state.m);
        self.state.upload(q, &self.state.v, &state.v);
        self.structure.upload_bytes += (2 * self.state.total() * 4) as u64;
        // Adam reads m and v through their texture mirrors on the texture path.
        self.refresh_mirrors()?;
        self.steps = state.steps;
        Ok(())
    }
}
