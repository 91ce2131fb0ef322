//! CPU path throughput: each stage of the fast path's training step on the tutorial's shapes (batch 32,
//! 784-128-10), on one and on two threads, with its share of the step; the fused step alone; then a
//! full training epoch on the real data beside numpy's small-GEMM floor (`../shared/peers/blas_floor.py`,
//! run with the peers' Python when it is there: `FMNIST_PEERS_PYTHON`, else
//! `~/.cache/fmnist-peers/tf/bin/python`). Run with `cargo bench --bench cpu_step`; figures go to
//! docs/perf.md.

use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use fmnist::backend::CpuBackend;
use fmnist::config::TrainConfig;
use fmnist::cpu::{self, Products, Real, Tuned};
use fmnist::model::{MlpSpec, glorot_init};
use fmnist::progress::Silent;
use fmnist::train::fit;

const B: usize = 32;
const I: usize = 784;
const H: usize = 128;
const C: usize = 10;

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

fn filled(n: usize, modulo: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|k| ((k * 7919) % modulo) as f32 * scale - 0.5 * modulo as f32 * scale)
        .collect()
}

/// The stages of one step on `threads` threads (the pool's threads flush denormals, as the backend's
/// do): (name, microseconds).
fn stages(threads: usize, data: &fmnist::data::Dataset) -> Vec<(&'static str, f64)> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .start_handler(|_| cpu::flush_denormals())
        .build()
        .unwrap();
    let order = fmnist::batches::epoch_order(data.train.len(), 1, 0, true);
    let mut x = vec![0.0f32; B * I];
    let mut labels = vec![0u32; B];
    let w1 = filled(I * H, 17, 0.01);
    let b1 = filled(H, 5, 0.01);
    let w2 = filled(H * C, 13, 0.01);
    let (mut a1, mut logits) = (vec![0.0f32; B * H], vec![0.0f32; B * C]);
    let (mut dl, mut da) = (vec![0.0f32; B * C], vec![0.0f32; B * H]);
    let (mut dw1, mut dw2) = (vec![0.0f32; I * H], vec![0.0f32; H * C]);
    let (mut db1, mut db2) = (vec![0.0f32; H], vec![0.0f32; C]);
    let n = I * H + H + H * C + C;
    let (mut p, g, mut m, mut v) = (
        vec![0.1f32; n],
        filled(n, 11, 1e-3),
        vec![0.0f32; n],
        vec![0.0f32; n],
    );
    let mut at = 0usize;
    let mut out = Vec::new();
    pool.install(|| {
        let mut us = |name, reps, f: &mut dyn FnMut()| out.push((name, time(reps, f) * 1e6));
        us("gather + normalise 32x784", 300, &mut || {
            at = (at + B) % (order.len() - B);
            fmnist::batches::gather_normalise(&data.train, &order[at..at + B], &mut x, &mut labels);
        });
        us("L1 forward 32x784x128 +b, relu", 300, &mut || {
            Tuned::matmul(black_box(&x), &w1, &mut a1, B, I, H);
            cpu::bias_add(&mut a1, &b1, B, H);
            cpu::relu(&mut a1);
        });
        us("L2 forward 32x128x10 +b", 1000, &mut || {
            Tuned::matmul(black_box(&a1), &w2, &mut logits, B, H, C);
            cpu::bias_add(&mut logits, &b1[..C], B, C);
        });
        us("softmax_xent 32x10", 1000, &mut || {
            black_box(cpu::softmax_xent(
                &logits,
                &labels,
                &mut dl,
                B,
                C,
                1.0 / B as f32,
            ));
        });
        us("L2 dW, db 128x32x10", 1000, &mut || {
            Tuned::matmul_at_b(black_box(&a1), &dl, &mut dw2, H, B, C);
            cpu::bias_grad(&dl, &mut db2, B, C);
        });
        us("L2 dX 32x10x128, relu mask", 1000, &mut || {
            Tuned::matmul_a_bt(black_box(&dl), &w2, &mut da, B, C, H);
            cpu::relu_backward(&mut da, &a1);
        });
        us("L1 dW, db 784x32x128", 300, &mut || {
            Tuned::matmul_at_b(black_box(&x), &da, &mut dw1, I, B, H);
            cpu::bias_grad(&da, &mut db1, B, H);
        });
        us("Adam over 101,770 params", 300, &mut || {
            // As the step does it: one half per thread when there are two.
            let h = if threads > 1 { n / 2 } else { n };
            let (p0, p1) = p.split_at_mut(h);
            let (m0, m1) = m.split_at_mut(h);
            let (v0, v1) = v.split_at_mut(h);
            let adam = |p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
                <f32 as Real>::adam_slice(p, g, m, v, 1e-3, 0.9, 0.999, 1e-7)
            };
            rayon::join(|| adam(p0, &g[..h], m0, v0), || adam(p1, &g[h..], m1, v1));
        });
    });
    out
}

/// numpy's small-GEMM floor per epoch from blas_floor.py, or why it is not available.
fn numpy_floor() -> Result<f64, String> {
    let script = PathBuf::from("../shared/peers/blas_floor.py");
    if !script.exists() {
        return Err(format!("{} not found", script.display()));
    }
    let python = std::env::var_os("FMNIST_PEERS_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/fmnist-peers/tf/bin/python"))
        })
        .filter(|p| p.exists())
        .ok_or(
            "no Python with numpy (set FMNIST_PEERS_PYTHON, or run ../shared/peers/run.sh once)",
        )?;
    let json = std::env::temp_dir().join(format!("fmnist-floor-{}.json", std::process::id()));
    let status = Command::new(&python)
        .arg(&script)
        .arg("--json")
        .arg(&json)
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    let text = std::fs::read_to_string(&json).map_err(|e| format!("{status}: {e}"))?;
    let _ = std::fs::remove_file(&json);
    let key = "\"small_shape_gemm_epoch_s_measured\":";
    let at = text.find(key).ok_or("no floor figure in its output")? + key.len();
    let rest = text[at..].trim_start();
    let end = rest.find([',', '\n', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().map_err(|e| format!("{e}"))
}

fn main() {
    let data = fmnist::data::locate_and_load(None).expect("the real data (make setup)");
    let one = stages(1, &data);
    let two = stages(2, &data);
    let (sum1, sum2): (f64, f64) = (one.iter().map(|s| s.1).sum(), two.iter().map(|s| s.1).sum());
    println!(
        "{:<34} {:>10} {:>7} {:>10} {:>7}",
        "stage of a step (fast path)", "1 thread", "share", "2 threads", "share"
    );
    for ((name, t1), (_, t2)) in one.iter().zip(&two) {
        println!(
            "{name:<34} {t1:>8.1}us {:>6.1}% {t2:>8.1}us {:>6.1}%",
            100.0 * t1 / sum1,
            100.0 * t2 / sum2
        );
    }
    println!(
        "{:<34} {sum1:>8.1}us {:>7} {sum2:>8.1}us",
        "sum of the stages", ""
    );
    let spec = MlpSpec::fashion(&[128]).unwrap();
    let cfg = TrainConfig {
        epochs: 1,
        ..TrainConfig::default()
    };
    let mut x = vec![0.0f32; B * I];
    fmnist::batches::normalise_range(&data.train, 0, B, &mut x);
    let labels: Vec<u32> = data.train.labels[..B].iter().map(|&l| l as u32).collect();
    let mut backend = CpuBackend::new(spec.clone(), glorot_init(&spec, 1), cfg.optimizer, B);
    let s = time(500, || backend.step_on(&x, &labels, B));
    println!(
        "{:<34} {:>8.1}us ({} threads, gather excluded, first-layer dW and Adam fused per thread)",
        "train_step alone",
        s * 1e6,
        backend.threads()
    );
    let mut epochs = Vec::new();
    for _ in 0..3 {
        let mut backend = CpuBackend::new(spec.clone(), glorot_init(&spec, 1), cfg.optimizer, B);
        let r = fit(&mut backend, &data.train, &data.test, &cfg, &mut Silent).unwrap();
        epochs.push(r.history[0].seconds);
    }
    epochs.sort_by(f64::total_cmp);
    let e = epochs[1];
    println!(
        "CPU training epoch (60000 samples, batch 32): median of 3 = {e:.3} s ({:.0} us/step)",
        e / 1875.0 * 1e6
    );
    match numpy_floor() {
        Ok(f) => println!(
            "numpy's five GEMMs of a step alone, per epoch (blas_floor.py, this run): {f:.3} s; the epoch is {:.2}x that floor",
            e / f
        ),
        Err(why) => println!("numpy's floor not measured: {why}"),
    }
}
