//! CPU path throughput: each twin kernel on the training shapes, then a full training epoch on the real
//! data, printed as a table. Run with `cargo bench --bench cpu_step`. Figures go to docs/perf.md.

use std::hint::black_box;
use std::time::Instant;

use fmnist::backend::CpuBackend;
use fmnist::config::TrainConfig;
use fmnist::cpu;
use fmnist::model::{MlpSpec, glorot_init};
use fmnist::progress::Silent;
use fmnist::train::fit;

/// Median seconds of `f` over `reps` runs after two warm-up calls.
fn time<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    f();
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

fn kernels(threads: usize) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let (b, i, h) = (32, 784, 128);
    let x: Vec<f32> = (0..b * i).map(|k| (k % 255) as f32 / 255.0).collect();
    let w1: Vec<f32> = (0..i * h).map(|k| ((k % 17) as f32 - 8.0) * 0.01).collect();
    let dy: Vec<f32> = (0..b * h).map(|k| ((k % 13) as f32 - 6.0) * 0.01).collect();
    let mut y = vec![0.0f32; b * h];
    let mut dw = vec![0.0f32; i * h];
    let n = 101_776;
    let (mut p, g, mut m, mut v) = (
        vec![0.1f32; n],
        vec![0.01f32; n],
        vec![0.0f32; n],
        vec![0.0f32; n],
    );
    let gflops = |s: f64| 2.0 * (b * i * h) as f64 / s / 1e9;
    pool.install(|| {
        let s = time(300, || cpu::matmul(black_box(&x), &w1, &mut y, b, i, h));
        println!(
            "{threads:>7}  {:<30} {:>8.1} {:>8.1}",
            "matmul 32x784x128 (forward)",
            s * 1e6,
            gflops(s)
        );
        let s = time(300, || {
            cpu::matmul_at_b(black_box(&x), &dy, &mut dw, i, b, h)
        });
        println!(
            "{threads:>7}  {:<30} {:>8.1} {:>8.1}",
            "matmul_at_b 784x32x128 (dW1)",
            s * 1e6,
            gflops(s)
        );
        let s = time(300, || {
            cpu::adam(
                black_box(&mut p),
                &g,
                &mut m,
                &mut v,
                1e-3,
                0.9,
                0.999,
                1e-7,
            )
        });
        println!(
            "{threads:>7}  {:<30} {:>8.1} {:>8}",
            "adam over 101,776 params",
            s * 1e6,
            "-"
        );
    });
}

fn main() {
    println!(
        "{:>7}  {:<30} {:>8} {:>8}",
        "threads", "CPU kernel", "us", "GFLOP/s"
    );
    kernels(1);
    kernels(2);
    let data = fmnist::data::locate_and_load(None).expect("the real data (make setup)");
    let spec = MlpSpec::fashion(&[128]).unwrap();
    let cfg = TrainConfig {
        epochs: 1,
        ..TrainConfig::default()
    };
    let mut x = vec![0.0f32; 32 * 784];
    fmnist::batches::normalise_range(&data.train, 0, 32, &mut x);
    let labels: Vec<u32> = data.train.labels[..32].iter().map(|&l| l as u32).collect();
    let mut backend = CpuBackend::new(
        spec.clone(),
        glorot_init(&spec, 1),
        cfg.adam,
        cfg.batch_size,
    );
    let s = time(500, || backend.step_on(&x, &labels, 32));
    println!(
        "train_step alone (one fixed batch, {} threads): {:.1} us",
        backend.threads(),
        s * 1e6
    );
    let order = fmnist::batches::epoch_order(data.train.len(), 1, 0, true);
    let mut lab = vec![0u32; 32];
    let t = std::time::Instant::now();
    for idx in order.chunks(32) {
        fmnist::batches::gather_normalise(&data.train, idx, &mut x, &mut lab);
        black_box(&x);
    }
    println!(
        "gather + normalise alone: {:.1} us per batch",
        t.elapsed().as_secs_f64() * 1e6 / 1875.0
    );
    let mut epochs = Vec::new();
    for _ in 0..3 {
        let mut backend = CpuBackend::new(
            spec.clone(),
            glorot_init(&spec, 1),
            cfg.adam,
            cfg.batch_size,
        );
        let r = fit(&mut backend, &data.train, &data.test, &cfg, &mut Silent).unwrap();
        epochs.push(r.history[0].seconds);
    }
    epochs.sort_by(f64::total_cmp);
    let e = epochs[1];
    println!(
        "CPU training epoch (60000 samples, batch 32, each batch gathered by its step): median of 3 = {e:.3} s ({:.0} samples/s, {:.0} us/step)",
        60000.0 / e,
        e / 1875.0 * 1e6
    );
}
