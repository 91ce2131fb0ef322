//! `fmnist bench`: the same training (same data, seed, batches) on the CPU path and the GPU engine on
//! both operand paths (storage buffers, texture mirrors; `FMNIST_GPU_OPERANDS` picks one) side by side:
//! seconds per epoch, samples per second and their ratio, then each GPU path's per-kernel profile.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use fmnist::backend::CpuBackend;
use fmnist::config::TrainConfig;
use fmnist::data;
use fmnist::gpu::bench::{EpochTiming, profile_steps, time_epochs, warm_up};
use fmnist::gpu::plan::Operands;
use fmnist::gpu::{GpuBackend, GpuContext};
use fmnist::model::{MlpSpec, glorot_init};

use super::DataArgs;
use fmnist::{out, outln};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Epochs timed on each device.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub epochs: u64,
    /// Stop each run after N steps (quick comparisons); seconds per epoch are then extrapolated.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: Option<u64>,
    /// Samples per step.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub batch_size: u32,
    /// Steps in the GPU's per-kernel profile.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub profile_steps: u64,
    /// Pick the GPU adapter whose name contains this text (case-insensitive).
    #[arg(long, value_name = "NAME")]
    pub adapter: Option<String>,
    #[command(flatten)]
    pub data: DataArgs,
}

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    let ds = data::locate_and_load(args.data.data_dir.as_deref())?;
    let cfg = TrainConfig {
        epochs: args.epochs as usize,
        batch_size: args.batch_size as usize,
        max_steps: args.steps.map(|s| s as usize),
        ..TrainConfig::default()
    };
    let spec = MlpSpec::fashion(&cfg.hidden)?;
    let params = glorot_init(&spec, cfg.seed);
    let steps_per_epoch = ds.train.len().div_ceil(cfg.batch_size);
    let mut rows: Vec<EpochTiming> = Vec::new();
    let mut cpu = CpuBackend::new(spec.clone(), params.clone(), cfg.optimizer, cfg.batch_size);
    rows.push(time_epochs(&mut cpu, &ds.train, &ds.test, &cfg)?);
    // Both operand paths, unless FMNIST_GPU_OPERANDS names one.
    let paths = match std::env::var_os(Operands::ENV) {
        Some(v) => vec![Operands::parse(&v.to_string_lossy())?],
        None => vec![Operands::Buffers, Operands::Textures],
    };
    let mut gpus = Vec::new();
    for operands in paths {
        let ctx = GpuContext::open(
            args.adapter.as_deref(),
            GpuBackend::needs(&spec, cfg.batch_size),
        )?;
        let mut gpu = GpuBackend::with_operands(
            ctx,
            operands,
            spec.clone(),
            params.clone(),
            cfg.optimizer,
            cfg.batch_size,
        )?;
        // One untimed submission first: a new pipeline's first dispatch compiles it.
        let warm = gpu.steps_per_submission();
        warm_up(&mut gpu, &ds.train, cfg.batch_size, warm)?;
        rows.push(time_epochs(&mut gpu, &ds.train, &ds.test, &cfg)?);
        gpus.push(gpu);
    }
    let scale = |t: &EpochTiming| match cfg.max_steps {
        // Partial runs: seconds per epoch extrapolated from seconds per step.
        Some(s) => t.seconds_per_epoch * steps_per_epoch as f64 / s.min(steps_per_epoch) as f64,
        None => t.seconds_per_epoch,
    };
    outln!(
        "{:<80} {:>10} {:>12} {:>10} {:>9}",
        "device",
        "s/epoch",
        "samples/s",
        "vs CPU",
        "test acc"
    );
    let cpu_s = scale(&rows[0]);
    for t in &rows {
        outln!(
            "{:<80} {:>10.2} {:>12.0} {:>9.2}x {:>9.4}",
            t.device,
            scale(t),
            t.samples_per_second,
            cpu_s / scale(t),
            t.test_accuracy
        );
    }
    outln!("(vs CPU > 1 means faster than the CPU path in this same run)");
    for gpu in &mut gpus {
        let (report, _) =
            profile_steps(gpu, &ds.train, cfg.batch_size, args.profile_steps as usize)?;
        if let Some(r) = report {
            outln!("\n{} operands:", gpu.operands().name());
            out!("{}", r.table());
            if let Some(h) = r.heaviest() {
                outln!("Bound by: {}", h.name);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
