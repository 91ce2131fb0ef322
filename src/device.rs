//! `--device auto|cpu|gpu`: turns the user's choice into a `Backend`.

use anyhow::Result;
use clap::ValueEnum;

use crate::backend::{Backend, CpuBackend};
use crate::config::AdamConfig;
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

/// Builds the backend that trains/evaluates `params` with batches of up to `batch_capacity` rows.
pub fn make_backend(
    device: DeviceChoice,
    _adapter: &AdapterChoice,
    spec: MlpSpec,
    params: Vec<f32>,
    adam: AdamConfig,
    batch_capacity: usize,
) -> Result<Box<dyn Backend>> {
    match device {
        DeviceChoice::Cpu | DeviceChoice::Auto => Ok(Box::new(CpuBackend::new(
            spec,
            params,
            adam,
            batch_capacity,
        ))),
        DeviceChoice::Gpu => Err(anyhow::Error::new(crate::error::Hinted::new(
            anyhow::anyhow!("--device gpu: the GPU engine is not available in this build"),
            "use --device cpu",
        ))),
    }
}

/// One line per device this build can use, for `fmnist info`.
pub fn describe_devices() -> Vec<String> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    vec![format!("cpu: the CPU path ({threads} hardware threads)")]
}
