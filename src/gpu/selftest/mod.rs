//! The self-test's case list: every WGSL entry point against its CPU twin (`cpu/ops.rs`,
//! `cpu/fused.rs`, `cpu/update.rs`, `cpu/dropout.rs`) on random inputs over a ladder of shapes, and one
//! training step GPU vs CPU. The kernels run through `gpu::harness` (NaN in every padding lane,
//! outputs poisoned first) and are judged by `check::compare`. Every case that reads the GPU is an
//! `async fn` awaiting its readbacks, down to `run_all`, the whole self-test, so a browser (wasm32,
//! WebGPU), where nothing may block, can run it; native callers block on it (through `pollster`).
//! This file holds the shape ladder, the optimizers checked, the matmul and texture update cases, the
//! whole ladder, the random data helpers, the training-step cases and `run_all`; `buffer_path` and
//! `grad_update` the cases of the kernels that read a step from a resident split, `updates` the
//! optimizers' other cases and `dropout` dropout's. Shared by `fmnist selftest` and tests/kernels.rs,
//! tests/gpu_train.rs.

use anyhow::Result;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use std::sync::Arc;

use crate::backend::{Backend, CpuBackend, Role};
use crate::batches::epoch_order;
use crate::check::{CaseResult, Closeness, TOL_ELEMENTWISE, TOL_REDUCTION, compare};
use crate::config::{OptimizerConfig, OptimizerKind, RmspropConfig, SgdConfig};
use crate::cpu;
use crate::data::Split;
use crate::gpu::GpuBackend;
use crate::gpu::context::{GpuContext, Needs, OPEN_ADVICE};
use crate::gpu::harness::{Harness, Layout};
use crate::gpu::kernels;
use crate::gpu::plan::Operands;
use crate::gpu::uniforms::{FLAG_BIAS, FLAG_COLSUM, FLAG_MASK, FLAG_RELU};
use crate::model::{MlpSpec, glorot_init};

mod buffer_path;
mod dropout;
mod grad_update;
mod updates;

pub use buffer_path::{
    buffer_path_ladder, dense_tail_case, dense_tail_check, dense_tail_spread_case,
    dense_tail_tex_update_case, forward_gather_case, forward_gather_dropout_case, gather_case,
    step_cases,
};
pub use dropout::{dropout_case, dropout_ladder};
pub use grad_update::{grad_update_gather_case, grad_update_gather_tex_case};
pub use updates::{fused_updates_ladder, update_range_case};

/// The ladder, as training shapes `(batch, fan_in, fan_out)`: 1, 7, T-1, T, T+1 around both matmul
/// tiles T (`kernels::MM_TILE` and `kernels::TEX_TILE`), an odd shape, and the tutorial's two layers.
pub fn shape_ladder() -> Vec<(usize, usize, usize)> {
    let (t, u) = (kernels::MM_TILE, kernels::TEX_TILE);
    vec![
        (1, 1, 1),
        (7, 7, 7),
        (t - 1, t - 1, t - 1),
        (t, t, t),
        (t + 1, t + 1, t + 1),
        (u - 1, u - 1, u - 1),
        (u, u, u),
        (u + 1, u + 1, u + 1),
        (33, 785, 129),
        (32, 784, 128),
        (32, 128, 10),
    ]
}

/// Uniform random values in [lo, hi).
pub fn random(n: usize, lo: f32, hi: f32, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// A reference's inputs in f64, for twins run in f64.
pub(crate) fn to_f64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

/// A reference computed in f64, rounded once to compare with the GPU's f32.
pub(crate) fn to_f32(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

fn shape(b: usize, i: usize, o: usize) -> String {
    format!("{b}x{i}x{o}")
}

/// Every matmul layout and fused epilogue on one training shape `(batch, fan_in, fan_out)`.
pub async fn matmul_cases(
    h: &Harness,
    (bt, fi, fo): (usize, usize, usize),
    seed: u64,
) -> Result<Vec<CaseResult>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (bt * 1_000_003 + fi * 1009 + fo) as u64);
    let mut out = Vec::new();
    let s = shape(bt, fi, fo);
    let red = TOL_REDUCTION;
    let mut push = |kernel: &str, c: Closeness| {
        out.push(CaseResult {
            kernel: kernel.to_string(),
            shape: s.clone(),
            closeness: c,
        })
    };
    // Forward X (bt, fi) · W (fi, fo), then + bias, then ReLU.
    let x = random(bt * fi, -1.0, 1.0, &mut rng);
    let w = random(fi * fo, -1.0, 1.0, &mut rng);
    let bias = random(fo, -1.0, 1.0, &mut rng);
    // The twins run in f64 (as forward_gather's do), so a product over 785 terms is judged by the GPU's
    // rounding alone: with the twin's f32 sum counted too, results near zero (where the terms cancel)
    // failed the reduction tolerance for some seeds.
    let (x64, w64, bias64) = (to_f64(&x), to_f64(&w), to_f64(&bias));
    let mut want = vec![0.0f64; bt * fo];
    cpu::matmul(&x64, &w64, &mut want, bt, fi, fo);
    let got = h
        .matmul(Layout::Nn, bt, fo, fi, &x, &w, 0, None, None)
        .await?;
    push("matmul (mm_nn X·W)", compare(&got.c, &to_f32(&want), red));
    cpu::bias_add(&mut want, &bias64, bt, fo);
    let got = h
        .matmul(Layout::Nn, bt, fo, fi, &x, &w, FLAG_BIAS, Some(&bias), None)
        .await?;
    push(
        "bias_add (mm_nn+bias)",
        compare(&got.c, &to_f32(&want), red),
    );
    cpu::relu(&mut want);
    let want = to_f32(&want);
    let got = h
        .matmul(
            Layout::Nn,
            bt,
            fo,
            fi,
            &x,
            &w,
            FLAG_BIAS | FLAG_RELU,
            Some(&bias),
            None,
        )
        .await?;
    push("relu (mm_nn+bias+relu)", compare(&got.c, &want, red));
    let got = h
        .matmul_with(
            true,
            Layout::Nn,
            bt,
            fo,
            fi,
            &x,
            &w,
            FLAG_BIAS | FLAG_RELU,
            Some(&bias),
            None,
        )
        .await?;
    push("matmul+bias+relu (mm_nn_tex)", compare(&got.c, &want, red));
    // Weight gradient X^T (fi, bt) · dY (bt, fo) and the bias gradient colsum(dY).
    let dy = random(bt * fo, -1.0, 1.0, &mut rng);
    let dy64 = to_f64(&dy);
    let mut want = vec![0.0f64; fi * fo];
    cpu::matmul_at_b(&x64, &dy64, &mut want, fi, bt, fo);
    let want = to_f32(&want);
    let got = h
        .matmul(Layout::Tn, fi, fo, bt, &x, &dy, FLAG_COLSUM, None, None)
        .await?;
    push("matmul_at_b (mm_tn X^T·dY)", compare(&got.c, &want, red));
    let mut db = vec![0.0f64; fo];
    cpu::bias_grad(&dy64, &mut db, bt, fo);
    let db = to_f32(&db);
    push("bias_grad (mm_tn colsum)", compare(&got.colsum, &db, red));
    let got = h
        .matmul_with(
            true,
            Layout::Tn,
            fi,
            fo,
            bt,
            &x,
            &dy,
            FLAG_COLSUM,
            None,
            None,
        )
        .await?;
    push("matmul_at_b (mm_tn_tex)", compare(&got.c, &want, red));
    push(
        "bias_grad (mm_tn_tex colsum)",
        compare(&got.colsum, &db, red),
    );
    // Input gradient dY (bt, fo) · W^T (fo, fi), then the ReLU mask of a (bt, fi) ReLU output.
    let mut dx = vec![0.0f64; bt * fi];
    cpu::matmul_a_bt(&dy64, &w64, &mut dx, bt, fo, fi);
    let got = h
        .matmul(Layout::Nt, bt, fi, fo, &dy, &w, 0, None, None)
        .await?;
    push(
        "matmul_a_bt (mm_nt dY·W^T)",
        compare(&got.c, &to_f32(&dx), red),
    );
    let mut act = random(bt * fi, -1.0, 1.0, &mut rng);
    cpu::relu(&mut act);
    let act64 = to_f64(&act);
    let mut want = dx.clone();
    cpu::relu_backward(&mut want, &act64);
    let want = to_f32(&want);
    let got = h
        .matmul(Layout::Nt, bt, fi, fo, &dy, &w, FLAG_MASK, None, Some(&act))
        .await?;
    push("relu_backward (mm_nt+mask)", compare(&got.c, &want, red));
    let got = h
        .matmul_with(
            true,
            Layout::Nt,
            bt,
            fi,
            fo,
            &dy,
            &w,
            FLAG_MASK,
            None,
            Some(&act),
        )
        .await?;
    push("matmul_a_bt+mask (mm_nt_tex)", compare(&got.c, &want, red));
    // The same with dropout's backward: `act` a layer's output after dropout 0.5, kept lanes doubled.
    let mut want = dx;
    cpu::relu_dropout_backward(&mut want, &act64, 2.0);
    let want = to_f32(&want);
    for textures in [false, true] {
        let got = h
            .mm_nt_dropout_mask(textures, bt, fi, fo, &dy, &w, &act, 2.0)
            .await?;
        let name = if textures { "mm_nt_tex" } else { "mm_nt" };
        let what = format!("relu_dropout_backward ({name}+mask+dropout)");
        push(&what, compare(&got.c, &want, red));
    }
    Ok(out)
}

/// The optimizers every update kernel is checked with: Keras' Adam, SGD with and without (Nesterov)
/// momentum, RMSprop with and without momentum.
pub fn ladder_optimizers() -> Vec<OptimizerConfig> {
    vec![
        OptimizerConfig::default(),
        OptimizerConfig::Sgd(SgdConfig::default()),
        OptimizerConfig::Sgd(SgdConfig {
            momentum: 0.9,
            nesterov: true,
            ..SgdConfig::default()
        }),
        OptimizerConfig::Rmsprop(RmspropConfig::default()),
        OptimizerConfig::Rmsprop(RmspropConfig {
            momentum: 0.9,
            ..RmspropConfig::default()
        }),
    ]
}

/// How a case names an update kernel run with `opt`, e.g. `sgd_tex[sgd m0.9 nesterov]`.
pub fn with_optimizer(entry: &str, opt: &OptimizerConfig) -> String {
    let detail = match opt {
        OptimizerConfig::Sgd(s) if s.nesterov => format!(" m{} nesterov", s.momentum),
        OptimizerConfig::Sgd(s) => format!(" m{}", s.momentum),
        OptimizerConfig::Rmsprop(r) => format!(" m{}", r.momentum),
        OptimizerConfig::Adam(_) => String::new(),
    };
    format!("{entry}[{}{detail}]", opt.kind().name())
}

/// Optimizer slots that have seen a few steps: m and v of `n` floats (v >= 0 for Adam and RMSprop).
fn slots(n: usize, rng: &mut ChaCha8Rng) -> (Vec<f32>, Vec<f32>) {
    (random(n, -0.01, 0.01, rng), random(n, 0.0, 1e-4, rng))
}

/// The twin of `opt`'s update over flat vectors (cpu::adam, cpu::sgd or cpu::rmsprop; their `_tex`
/// variants compute the same).
pub fn update_twin(
    opt: &OptimizerConfig,
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    t: u64,
) {
    let step = cpu::UpdateStep::<f32>::new(opt, t);
    match opt.kind() {
        OptimizerKind::Adam => {
            cpu::adam_tex(p, g, m, v, step.alpha, step.beta1, step.beta2, step.epsilon)
        }
        OptimizerKind::Sgd => cpu::sgd_tex(p, g, m, &step),
        OptimizerKind::Rmsprop => cpu::rmsprop_tex(p, g, m, v, &step),
    }
}

/// One step of `opt`'s texture update (adam_tex, sgd_tex, rmsprop_tex) over `n` floats from a state
/// that has already seen a few steps.
pub async fn update_tex_case(
    h: &Harness,
    opt: &OptimizerConfig,
    n: usize,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ n as u64);
    let p = random(n, -1.0, 1.0, &mut rng);
    let g = random(n, -0.1, 0.1, &mut rng);
    let (m, v) = slots(n, &mut rng);
    let alpha = opt.alpha(3) as f32;
    let (gp, gm, gv) = h.update_tex(&p, &g, &m, &v, alpha, opt).await?;
    let (mut cp, mut cm, mut cv) = (p.clone(), m.clone(), v.clone());
    update_twin(opt, &mut cp, &g, &mut cm, &mut cv, 3);
    let name = with_optimizer(kernels::Kernel::update_tex(opt.kind()).entry_point(), opt);
    let s = format!("{n}");
    Ok([("params", gp, cp), ("m", gm, cm), ("v", gv, cv)]
        .into_iter()
        .map(|(what, got, want)| CaseResult {
            kernel: format!("{name} {what}"),
            shape: s.clone(),
            closeness: compare(&got, &want, TOL_ELEMENTWISE),
        })
        .collect())
}

/// The whole kernel ladder.
pub async fn kernel_ladder(h: &Harness, seed: u64) -> Result<Vec<CaseResult>> {
    let mut out = Vec::new();
    for s in shape_ladder() {
        out.extend(matmul_cases(h, s, seed).await?);
    }
    for opt in ladder_optimizers() {
        for n in [4, 1000, 101_776] {
            out.extend(update_tex_case(h, &opt, n, seed).await?);
        }
    }
    out.extend(buffer_path_ladder(h, seed).await?);
    Ok(out)
}

/// Random normalised images `(rows, inputs)` in [0, 1] and labels.
pub fn random_batch(rows: usize, inputs: usize, classes: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = random(rows * inputs, 0.0, 1.0, &mut rng);
    let labels = (0..rows)
        .map(|_| rng.random_range(0..classes as u32))
        .collect();
    (x, labels)
}

/// A split of `n` random images of `pixels` bytes with labels below `classes`.
pub fn random_split(n: usize, pixels: usize, classes: usize, seed: u64) -> Split {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Split {
        images: (0..n * pixels).map(|_| rng.random::<u8>()).collect(),
        labels: (0..n).map(|_| rng.random_range(0..classes as u8)).collect(),
        pixels,
    }
}

/// `steps` training steps of the same model from the same weights and batches on both devices; returns
/// (GPU params, CPU params, GPU stats, CPU stats) in the flat CPU layout. The GPU's results are read
/// through its awaited readbacks (`take_stats_async`, `params_async`), never the `Backend` trait's
/// blocking ones, so a browser can run this; there the steps must fit the GPU's stats slots, which a
/// browser cannot empty by blocking (`GpuBackend::train_step` fails instead).
pub async fn train_both(
    ctx: GpuContext,
    operands: Operands,
    spec: &MlpSpec,
    batch: usize,
    steps: usize,
    seed: u64,
) -> Result<(
    Vec<f32>,
    Vec<f32>,
    crate::metrics::StepStats,
    crate::metrics::StepStats,
)> {
    let params = glorot_init(spec, seed);
    let opt = OptimizerConfig::default();
    let mut gpu =
        GpuBackend::with_operands(ctx, operands, spec.clone(), params.clone(), opt, batch)?;
    let mut cpu_b = CpuBackend::new(spec.clone(), params, opt, batch);
    let split = Arc::new(random_split(batch * steps, spec.inputs, spec.outputs, seed));
    let order = epoch_order(split.len(), seed, 0, true);
    for b in [&mut gpu as &mut dyn Backend, &mut cpu_b] {
        b.attach(Role::Train, &split)?;
        b.set_order(&order)?;
        for s in 0..steps {
            b.train_step(s * batch, batch)?;
        }
    }
    let gs = gpu.take_stats_async().await?;
    let cs = cpu_b.take_stats()?;
    Ok((gpu.params_async().await?, cpu_b.params()?, gs, cs))
}

/// One optimizer step GPU (on `operands`) vs CPU on every parameter, per tensor.
pub async fn one_step_cases(
    ctx: GpuContext,
    operands: Operands,
    spec: &MlpSpec,
    batch: usize,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    let (g, c, gs, cs) = train_both(ctx, operands, spec, batch, 1, seed).await?;
    let path = operands.name();
    let layout = spec.layout();
    let mut out = Vec::new();
    for (i, l) in layout.layers.iter().enumerate() {
        let s = format!("{}x{}", l.fan_in, l.fan_out);
        out.push(CaseResult {
            kernel: format!("train step ({path}): W{} after Adam", i + 1),
            shape: s.clone(),
            closeness: compare(&g[l.weight_range()], &c[l.weight_range()], TOL_REDUCTION),
        });
        out.push(CaseResult {
            kernel: format!("train step ({path}): b{} after Adam", i + 1),
            shape: format!("{}", l.fan_out),
            closeness: compare(&g[l.bias_range()], &c[l.bias_range()], TOL_REDUCTION),
        });
    }
    let mut loss = compare(&[gs.loss_sum as f32], &[cs.loss_sum as f32], TOL_REDUCTION);
    if gs.correct != cs.correct {
        loss.used = f32::INFINITY;
    }
    out.push(CaseResult {
        kernel: format!(
            "train step ({path}): loss, correct {}/{}",
            gs.correct, cs.correct
        ),
        shape: format!("batch {batch}"),
        closeness: loss,
    });
    Ok(out)
}

/// What `run_all` returns: the adapter the kernels ran on (as `fmnist selftest` names it) and every
/// case, in the order `fmnist selftest` prints them.
pub struct SelftestRun {
    pub adapter: String,
    pub cases: Vec<CaseResult>,
}

/// Everything `fmnist selftest` checks, as a future a browser (wasm32, WebGPU) can await: the kernel
/// ladder on the adapter whose name contains `adapter` (else the best one), then one training step GPU
/// vs CPU of the tutorial's model on each operand path (storage buffers, texture mirrors), each on a
/// device opened for it (a `GpuBackend` owns its context). `fmnist selftest` blocks on it (through
/// `pollster`) and prints the cases.
pub async fn run_all(adapter: Option<&str>, seed: u64) -> Result<SelftestRun> {
    let open = || GpuContext::open_async(adapter, Needs::default(), OPEN_ADVICE);
    let ctx = open().await?;
    let described = ctx.adapter.describe();
    let h = Harness::new(ctx);
    let mut cases = kernel_ladder(&h, seed).await?;
    let spec = MlpSpec::fashion(&[128])?;
    for operands in [Operands::Buffers, Operands::Textures] {
        let ctx = open().await?;
        cases.extend(one_step_cases(ctx, operands, &spec, 32, seed).await?);
    }
    Ok(SelftestRun {
        adapter: described,
        cases,
    })
}
