//! `cargo bench --bench epoch`: the same training on the CPU path and the GPU engine, printed as a table
//! (seconds per epoch extrapolated from FMNIST_BENCH_STEPS steps, default 300; samples/s; ratio vs the
//! CPU), then the GPU's per-kernel profile. Needs the dataset and an adapter; says so and exits 0
//! without them, so `cargo bench` works everywhere.

use fmnist::backend::CpuBackend;
use fmnist::config::TrainConfig;
use fmnist::gpu::GpuBackend;
use fmnist::gpu::bench::{profile_steps, time_epochs, warm_up};
use fmnist::model::{MlpSpec, glorot_init};

fn main() -> anyhow::Result<()> {
    let steps: usize = std::env::var("FMNIST_BENCH_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let ds = match fmnist::data::locate_and_load(None) {
        Ok(d) => d,
        Err(e) => {
            println!("bench epoch: skipped: no data ({e:#})");
            return Ok(());
        }
    };
    let cfg = TrainConfig {
        epochs: 1,
        max_steps: Some(steps),
        ..TrainConfig::default()
    };
    let spec = MlpSpec::fashion(&cfg.hidden)?;
    let params = glorot_init(&spec, cfg.seed);
    let per_epoch = ds.train.len().div_ceil(cfg.batch_size) as f64;
    let mut cpu = CpuBackend::new(spec.clone(), params.clone(), cfg.optimizer, cfg.batch_size);
    let c = time_epochs(&mut cpu, &ds.train, &ds.test, &cfg)?;
    let c_epoch = c.seconds_per_epoch * per_epoch / steps as f64;
    println!(
        "{:<60} {:>9} {:>11} {:>8}",
        "device", "s/epoch", "samples/s", "vs CPU"
    );
    println!(
        "{:<60} {:>9.2} {:>11.0} {:>7.2}x",
        c.device, c_epoch, c.samples_per_second, 1.0
    );
    let mut gpu = match GpuBackend::new(None, spec, params, cfg.optimizer, cfg.batch_size) {
        Ok(g) => g,
        Err(e) => {
            println!("gpu: skipped: no adapter ({e:#})");
            return Ok(());
        }
    };
    let warm = gpu.steps_per_submission();
    warm_up(&mut gpu, &ds.train, cfg.batch_size, warm)?;
    let g = time_epochs(&mut gpu, &ds.train, &ds.test, &cfg)?;
    let g_epoch = g.seconds_per_epoch * per_epoch / steps as f64;
    println!(
        "{:<60} {:>9.2} {:>11.0} {:>7.2}x",
        g.device,
        g_epoch,
        g.samples_per_second,
        c_epoch / g_epoch
    );
    let (report, _) = profile_steps(&mut gpu, &ds.train, cfg.batch_size, steps.min(200))?;
    if let Some(r) = report {
        print!("{}", r.table());
    }
    Ok(())
}
