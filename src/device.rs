//! `--device auto|cpu|gpu`: turns the user's choice into a `Backend`.

use std::sync::Arc;

use anyhow::Result;
use clap::ValueEnum;

use crate::backend::{Backend, CpuBackend, OptimizerState, Role};
use crate::config::OptimizerConfig;
use crate::data::Split;
use crate::error::Hinted;
use crate::gpu::GpuBackend;
use crate::gpu::context::{AdapterSummary, GpuContext, NO_ADAPTER_HINT, list_adapters};
use crate::gpu::plan::Operands;
use crate::metrics::StepStats;
use crate::model::MlpSpec;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    /// A hardware GPU when there is one, else the faster of the software GPU and the CPU path.
    Auto,
    /// The CPU path.
    Cpu,
    /// The GPU engine (any Vulkan, Metal or DX12 adapter, software ones included).
    Gpu,
}

/// Which adapter to use when the device is a GPU.
#[derive(Clone, Debug, Default)]
pub struct AdapterChoice {
    /// Substring of the adapter name (`--adapter`).
    pub name: Option<String>,
}

/// Builds the backend that trains/evaluates `params` with batches of up to `batch_capacity` rows
/// (1: evaluation and prediction only). `auto` takes a hardware GPU when there is one; on a software
/// adapter only (lavapipe) it takes the CPU path, which measured several times faster here
/// (docs/perf.md), and says so in `device_name()`. A model over the memory budget is refused first.
pub fn make_backend(
    device: DeviceChoice,
    adapter: &AdapterChoice,
    spec: MlpSpec,
    params: Vec<f32>,
    optimizer: OptimizerConfig,
    batch_capacity: usize,
) -> Result<Box<dyn Backend>> {
    spec.check_memory(batch_capacity, "")?;
    match device {
        DeviceChoice::Cpu => Ok(Box::new(CpuBackend::new(
            spec,
            params,
            optimizer,
            batch_capacity,
        ))),
        DeviceChoice::Gpu => Ok(Box::new(open_gpu(
            adapter.name.as_deref(),
            spec,
            params,
            optimizer,
            batch_capacity,
        )?)),
        DeviceChoice::Auto => {
            let (use_gpu, why) = auto_choice(adapter)?;
            let open = || -> Result<Box<dyn Backend>> {
                let gpu = open_gpu(
                    adapter.name.as_deref(),
                    spec.clone(),
                    params.clone(),
                    optimizer,
                    batch_capacity,
                )?;
                Ok(Box::new(gpu))
            };
            let cpu = || -> Box<dyn Backend> {
                Box::new(CpuBackend::new(
                    spec.clone(),
                    params.clone(),
                    optimizer,
                    batch_capacity,
                ))
            };
            let (backend, why) = open_or_cpu(use_gpu, why, open, cpu);
            Ok(Box::new(Explained::new(backend, why)))
        }
    }
}

/// `--device auto` once the adapter is chosen: the GPU from `open` when `use_gpu`, else, or when
/// opening it fails, the CPU path from `cpu`, with the reason to show. A GPU that cannot run the engine
/// must not stop the run: the CPU path computes the same thing.
fn open_or_cpu<B>(
    use_gpu: bool,
    why: String,
    open: impl FnOnce() -> Result<B>,
    cpu: impl FnOnce() -> B,
) -> (B, String) {
    if use_gpu {
        match open() {
            Ok(gpu) => return (gpu, why),
            Err(e) => {
                let why = format!("auto: the GPU could not be used ({e:#}); using the CPU path");
                return (cpu(), why);
            }
        }
    }
    (cpu(), why)
}

/// `GpuBackend::new`, with a hint that names what makes the largest buffer too large for the adapter.
fn open_gpu(
    name: Option<&str>,
    spec: MlpSpec,
    params: Vec<f32>,
    optimizer: OptimizerConfig,
    batch_capacity: usize,
) -> Result<GpuBackend> {
    let needs = GpuBackend::needs(&spec, batch_capacity);
    let advice = if batch_capacity <= 1 {
        format!(
            "the model's widest layer ({} units) sets the size of the evaluation buffers; --device cpu evaluates it",
            spec.widest()
        )
    } else if needs.largest_buffer > GpuBackend::needs(&spec, 1).largest_buffer {
        "use a smaller --batch-size, or --device cpu".to_string()
    } else {
        format!(
            "the model's widest layer ({} units) sets the size of the largest buffer: use smaller hidden layers (--hidden), or --device cpu",
            spec.widest()
        )
    };
    let ctx = GpuContext::open_advised(name, needs, &advice)?;
    GpuBackend::with_context(ctx, spec, params, optimizer, batch_capacity)
}

/// `--device auto`: whether to use the GPU engine, and why. An `--adapter` that names no adapter is an
/// error, as with `--device gpu`, rather than a silent fall back to the CPU path.
pub fn auto_choice(adapter: &AdapterChoice) -> Result<(bool, String)> {
    let adapters = list_adapters();
    let wanted: Vec<&AdapterSummary> = adapters
        .iter()
        .filter(|a| {
            adapter
                .name
                .as_ref()
                .is_none_or(|n| a.name.to_lowercase().contains(&n.to_lowercase()))
        })
        .collect();
    if let (Some(want), true, false) = (&adapter.name, wanted.is_empty(), adapters.is_empty()) {
        let names: Vec<String> = adapters.iter().map(|a| a.describe()).collect();
        return Err(anyhow::Error::new(Hinted::new(
            anyhow::anyhow!(
                "--adapter {want:?} matches no adapter; available: {}",
                names.join("; ")
            ),
            "pass part of one of those names, or leave --adapter out",
        )));
    }
    if let Some(hw) = wanted.iter().find(|a| a.is_hardware()) {
        return Ok((true, format!("auto: hardware GPU {}", hw.describe())));
    }
    Ok(match wanted.first() {
        Some(sw) => (
            false,
            format!(
                "auto: the only GPU adapter is software ({}); the CPU path is faster there (docs/perf.md), use --device gpu to force it",
                sw.describe()
            ),
        ),
        None => (false, "auto: no GPU adapter found".to_string()),
    })
}

/// A backend whose `device_name` also says why `auto` chose it.
struct Explained {
    inner: Box<dyn Backend>,
    why: String,
}

impl Explained {
    fn new(inner: Box<dyn Backend>, why: String) -> Self {
        Self { inner, why }
    }
}

impl Backend for Explained {
    fn device_name(&self) -> String {
        format!("{} [{}]", self.inner.device_name(), self.why)
    }
    fn spec(&self) -> &MlpSpec {
        self.inner.spec()
    }
    fn attach(&mut self, role: Role, split: &Arc<Split>) -> Result<()> {
        self.inner.attach(role, split)
    }
    fn set_order(&mut self, order: &[u32]) -> Result<()> {
        self.inner.set_order(order)
    }
    fn train_step(&mut self, start: usize, rows: usize) -> Result<()> {
        self.inner.train_step(start, rows)
    }
    fn eval_logits(&mut self, start: usize, rows: usize, out: &mut [f32]) -> Result<()> {
        self.inner.eval_logits(start, rows, out)
    }
    fn take_stats(&mut self) -> Result<StepStats> {
        self.inner.take_stats()
    }
    fn logits(&mut self, x: &[f32], rows: usize, out: &mut [f32]) -> Result<()> {
        self.inner.logits(x, rows, out)
    }
    fn eval_batch(&self) -> usize {
        self.inner.eval_batch()
    }
    fn params(&mut self) -> Result<Vec<f32>> {
        self.inner.params()
    }
    fn set_params(&mut self, params: &[f32]) -> Result<()> {
        self.inner.set_params(params)
    }
    fn set_dropout(&mut self, dropout: &crate::cpu::Dropout) -> Result<()> {
        self.inner.set_dropout(dropout)
    }
    fn steps_done(&self) -> u64 {
        self.inner.steps_done()
    }
    fn optimizer_state(&mut self) -> Result<OptimizerState> {
        self.inner.optimizer_state()
    }
    fn set_optimizer_state(&mut self, state: &OptimizerState) -> Result<()> {
        self.inner.set_optimizer_state(state)
    }
    fn start_profile(&mut self) -> Result<bool> {
        self.inner.start_profile()
    }
    fn profile_report(&mut self) -> Result<Option<crate::metrics::ProfileReport>> {
        self.inner.profile_report()
    }
}

/// One line per device this build can use, for `fmnist info`.
pub fn describe_devices() -> Vec<String> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut lines = vec![format!("cpu: the CPU path ({threads} hardware threads)")];
    let adapters = list_adapters();
    if adapters.is_empty() {
        lines.push(format!("gpu: no adapter found; hint: {NO_ADAPTER_HINT}"));
    }
    for a in adapters {
        let operands = match Operands::choose(a.device_type) {
            Ok(o) => o.name().to_string(),
            Err(e) => format!("{e:#}"),
        };
        lines.push(format!(
            "gpu: {} - {} - timestamp queries: {} - operands: {operands}",
            a.describe(),
            if a.is_hardware() {
                "hardware"
            } else {
                "software"
            },
            if a.timestamps { "yes" } else { "no" }
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::open_or_cpu;

    #[test]
    fn auto_falls_back_to_the_cpu_path_with_the_reason_when_the_gpu_fails_to_open() {
        let (got, why) = open_or_cpu(
            true,
            "auto: hardware GPU X".to_string(),
            || Err(anyhow::anyhow!("device lost while creating 'params'")),
            || "cpu",
        );
        assert_eq!(got, "cpu");
        assert_eq!(
            why,
            "auto: the GPU could not be used (device lost while creating 'params'); using the CPU path"
        );
    }

    #[test]
    fn auto_keeps_the_gpu_that_opens_and_never_builds_the_cpu_path_then() {
        let (got, why) = open_or_cpu(
            true,
            "auto: hardware GPU X".to_string(),
            || Ok("gpu"),
            || panic!("the CPU path is built only when needed"),
        );
        assert_eq!((got, why.as_str()), ("gpu", "auto: hardware GPU X"));
    }

    #[test]
    fn auto_on_a_software_adapter_uses_the_cpu_path_without_opening_the_gpu() {
        let (got, why) = open_or_cpu(
            false,
            "auto: only a software adapter".to_string(),
            || -> anyhow::Result<&str> { panic!("the GPU is not opened") },
            || "cpu",
        );
        assert_eq!(
            (got, why.as_str()),
            ("cpu", "auto: only a software adapter")
        );
    }
}
