//! `fmnist profile`: N training steps on the GPU with every kernel timed, then the per-kernel table
//! (dispatches, total ms, mean us, share, GFLOP/s or GB/s) and the host-side upload/encode/submit/wait.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use fmnist::config::AdamConfig;
use fmnist::data;
use fmnist::gpu::GpuBackend;
use fmnist::gpu::bench::{profile_steps, warm_up};
use fmnist::model::{MlpSpec, glorot_init};

use super::DataArgs;
use fmnist::{out, outln};

#[derive(Args, Debug)]
pub struct ProfileArgs {
    /// Training steps to time (after one untimed submission of warm-up).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub steps: u64,
    /// Samples per step.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub batch_size: u32,
    /// Hidden layer sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "128", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub hidden: Vec<u32>,
    /// Pick the GPU adapter whose name contains this text (case-insensitive).
    #[arg(long, value_name = "NAME")]
    pub adapter: Option<String>,
    #[command(flatten)]
    pub data: DataArgs,
}

pub fn run(args: ProfileArgs) -> Result<ExitCode> {
    let hidden: Vec<usize> = args.hidden.iter().map(|&h| h as usize).collect();
    let spec = MlpSpec::fashion(&hidden)?;
    let batch = args.batch_size as usize;
    let params = glorot_init(&spec, 1);
    let mut gpu = GpuBackend::new(
        args.adapter.as_deref(),
        spec.clone(),
        params,
        AdamConfig::default(),
        batch,
    )?;
    let ds = data::locate_and_load(args.data.data_dir.as_deref())?;
    if batch > ds.train.len() {
        bail!(
            "--batch-size {batch} exceeds the {} training images",
            ds.train.len()
        );
    }
    outln!("Device: {}", fmnist::backend::Backend::device_name(&gpu));
    outln!(
        "Model:  {} - batch {batch} - {} steps per submission",
        spec.describe(),
        gpu.steps_per_submission()
    );
    let warmup = gpu.steps_per_submission();
    warm_up(&mut gpu, &ds.train, batch, warmup)?;
    let (report, secs) = profile_steps(&mut gpu, &ds.train, batch, args.steps as usize)?;
    let Some(report) = report else {
        bail!("the GPU backend returned no profile")
    };
    out!("{}", report.table());
    if let Some(h) = report.heaviest() {
        outln!(
            "Bound by: {} ({:.0}% of GPU time); {:.2} ms per step with profiling = {:.1} s per {}-sample epoch",
            h.name,
            100.0 * h.total_ns / report.gpu_ns().max(1.0),
            secs * 1e3,
            secs * ds.train.len().div_ceil(batch) as f64,
            ds.train.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
