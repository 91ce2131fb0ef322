//! The buffer-path cases: gather, forward_gather (and the texture path's forward_gather_tex),
//! dense_tail (and dense_tail_tex) and the buffer adam (the first layer's fused gradient-and-Adam
//! kernels are in `grad_update.rs`)
//! against their CPU twins on steps drawn from a split of random u8 images (`StepCase`), full batches
//! through a shuffled order and partial ones in split order, with odd row lengths; forward_gather's and
//! dense_tail's references run in f64. Shared by `fmnist selftest` (through `buffer_path_ladder`) and
//! tests/kernels.rs.

use anyhow::Result;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::grad_update::{grad_update_gather_case, grad_update_gather_tex_case};
use super::{random, shape_ladder, to_f32, to_f64};
use crate::check::{CaseResult, Closeness, TOL_ELEMENTWISE, TOL_REDUCTION, compare};
use crate::config::OptimizerConfig;
use crate::cpu;
use crate::gpu::buffers::pad4;
use crate::gpu::harness::{Harness, ParamsPacking, StepCase, TailUpdateStart, unpad_ld};
use crate::gpu::kernels::{self, Kernel};
use crate::gpu::uniforms::DropFields;

/// A pass/fail verdict as a `Closeness` (for checks that are exact: counts, untouched lanes).
pub(super) fn verdict(ok: bool) -> Closeness {
    Closeness {
        max_abs: 0.0,
        max_rel: 0.0,
        worst: 0,
        gpu: f32::NAN,
        cpu: f32::NAN,
        used: if ok { 0.0 } else { f32::INFINITY },
        atol: 0.0,
        rtol: 0.0,
    }
}

pub(super) fn case_result(kernel: &str, shape: &str, closeness: Closeness) -> CaseResult {
    CaseResult {
        kernel: kernel.to_string(),
        shape: shape.to_string(),
        closeness,
    }
}

/// `gather` against cpu::gather, with x `pad` floats wider than `pad4(inputs)`: the values (which
/// must agree bit for bit, since both sides normalise by the same multiply), and zeros in every
/// padding lane and every row past the step.
pub async fn gather_case(h: &Harness, case: &StepCase, pad: usize) -> Result<Vec<CaseResult>> {
    let (cap, inputs) = (case.capacity, case.inputs);
    let ldx = pad4(inputs) + pad;
    let got = h.gather(case, ldx).await?;
    let mut want = vec![f32::NAN; cap * inputs];
    cpu::gather(&case.images, &case.order, &mut want, inputs, cap, case.rows);
    let tight = unpad_ld(&got, 0, cap, inputs, ldx);
    let bits_equal = tight
        .iter()
        .zip(&want)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    let padding_zero = (0..cap).all(|r| {
        got[r * ldx + inputs..(r + 1) * ldx]
            .iter()
            .all(|&v| v == 0.0)
    });
    let s = case.describe();
    Ok(vec![
        case_result("gather x", &s, compare(&tight, &want, TOL_ELEMENTWISE)),
        case_result(
            "gather x bit for bit, padding 0",
            &s,
            verdict(bits_equal && padding_zero),
        ),
    ])
}

/// `kernel` (forward_gather or forward_gather_tex) against its twin run in f64 (so the reference's own
/// rounding, which over 784 terms is as large as the GPU's, does not count against the GPU), with
/// Glorot-sized W and b in [-0.5, 0.5]: pre-activations of the size training sees.
pub async fn forward_gather_case(
    h: &Harness,
    kernel: Kernel,
    case: &StepCase,
    fan_out: usize,
    relu: bool,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    forward_gather_dropout_case(h, kernel, case, fan_out, relu, None, seed).await
}

/// `forward_gather_case` with the first layer's dropout of `rate` (and its seed) in the epilogue.
#[allow(clippy::too_many_arguments)]
pub async fn forward_gather_dropout_case(
    h: &Harness,
    kernel: Kernel,
    case: &StepCase,
    fan_out: usize,
    relu: bool,
    rate: Option<f64>,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    let dropout = cpu::Dropout::new(&rate.into_iter().collect::<Vec<_>>(), seed);
    let drop = dropout.step(case.counter as u64);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (case.inputs * 131 + fan_out) as u64);
    let limit = (6.0 / (case.inputs + fan_out) as f32).sqrt();
    let w = random(case.inputs * fan_out, -limit, limit, &mut rng);
    let b = random(fan_out, -0.5, 0.5, &mut rng);
    let tex = kernel == Kernel::ForwardGatherTex;
    let fields = DropFields::of(&dropout, 0);
    let got = if tex {
        h.forward_gather_tex(case, &w, &b, fan_out, relu, fields)
            .await?
    } else {
        h.forward_gather(case, &w, &b, fan_out, relu, fields)
            .await?
    };
    let pk = ParamsPacking::new(case.inputs, fan_out);
    let mut params = to_f64(&w);
    params.extend(to_f64(&b));
    let mut want = vec![f64::NAN; case.capacity * fan_out];
    let twin = if tex {
        cpu::forward_gather_tex
    } else {
        cpu::forward_gather
    };
    twin(
        &case.images,
        &case.order,
        &params,
        &mut want,
        &pk.cpu_layer(),
        case.capacity,
        case.rows,
        relu,
        drop.as_ref(),
    );
    let want = to_f32(&want);
    Ok(vec![case_result(
        &format!(
            "{}{}{}",
            kernel.entry_point(),
            if relu { "+relu" } else { "" },
            rate.map(|r| format!("+dropout {r}")).unwrap_or_default()
        ),
        &format!("{} ->{fan_out}", case.describe()),
        compare(&got, &want, TOL_REDUCTION),
    )])
}

/// `kernel` (dense_tail or dense_tail_tex) against cpu::dense_tail on a layer of k inputs and `classes`
/// outputs: act a ReLU output (so the mask has zeros), Glorot-sized W and b (logits of a few units, as in
/// training).
pub async fn dense_tail_case(
    h: &Harness,
    kernel: Kernel,
    case: &StepCase,
    classes: usize,
    input_grad: bool,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    let k = case.inputs;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (k * 977 + classes) as u64);
    let limit = (6.0 / (k + classes) as f32).sqrt();
    let mut act = random(case.capacity * k, -1.0, 1.0, &mut rng);
    cpu::relu(&mut act);
    let w = random(k * classes, -limit, limit, &mut rng);
    let b = random(classes, -0.5, 0.5, &mut rng);
    dense_tail_check(
        h,
        kernel,
        case,
        &act,
        &w,
        &b,
        classes,
        input_grad.then_some(0.0),
        None,
    )
    .await
}

/// `dense_tail_tex` that also applies `opt`'s update to its layer (as the texture path runs it when no
/// layer lies between the first and the last), from a state that has seen a few steps: p, m and v after
/// the step against the twin's, their padding kept bit for bit.
pub async fn dense_tail_tex_update_case(
    h: &Harness,
    opt: &OptimizerConfig,
    case: &StepCase,
    classes: usize,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    let k = case.inputs;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (k * 983 + classes) as u64);
    let limit = (6.0 / (k + classes) as f32).sqrt();
    let mut act = random(case.capacity * k, -1.0, 1.0, &mut rng);
    cpu::relu(&mut act);
    let w = random(k * classes, -limit, limit, &mut rng);
    let b = random(classes, -0.5, 0.5, &mut rng);
    let n = k * classes + classes;
    let start = TailUpdateStart {
        m: random(n, -0.01, 0.01, &mut rng),
        v: random(n, 0.0, 1e-4, &mut rng),
        alpha: opt.alpha(3) as f32,
        optimizer: *opt,
    };
    let t = Kernel::DenseTailTex;
    dense_tail_check(h, t, case, &act, &w, &b, classes, Some(0.0), Some(&start)).await
}

/// `dense_tail` with logits of about `±spread` (from the bias): the max-subtracted softmax and the
/// log-sum-exp loss must stay finite at ±1000.
pub async fn dense_tail_spread_case(
    h: &Harness,
    kernel: Kernel,
    case: &StepCase,
    classes: usize,
    spread: f32,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    let k = case.inputs;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let mut act = random(case.capacity * k, -1.0, 1.0, &mut rng);
    cpu::relu(&mut act);
    let w = random(k * classes, -0.1, 0.1, &mut rng);
    let b = random(classes, -spread, spread, &mut rng);
    dense_tail_check(h, kernel, case, &act, &w, &b, classes, Some(0.0), None).await
}

/// Runs `kernel` (dense_tail or dense_tail_tex) on the GPU and their twin on the CPU (in f64, the
/// reference's rounding left out) on the given operands and compares every output; `input_grad`
/// asks for dZ with that dropout scale (0: none); with `adam` (dense_tail_tex only), also the updated
/// p, m and v.
#[allow(clippy::too_many_arguments)]
pub async fn dense_tail_check(
    h: &Harness,
    kernel: Kernel,
    case: &StepCase,
    act: &[f32],
    w: &[f32],
    b: &[f32],
    classes: usize,
    input_grad: Option<f32>,
    adam: Option<&TailUpdateStart>,
) -> Result<Vec<CaseResult>> {
    let (k, cap) = (case.inputs, case.capacity);
    let got = h
        .tail_kernel(kernel, case, act, w, b, k, classes, input_grad, adam)
        .await?;
    let name = kernel.entry_point();
    let pk = ParamsPacking::new(k, classes);
    let layer = pk.cpu_layer();
    let mut params = to_f64(w);
    params.extend(to_f64(b));
    let mut grads = vec![f64::NAN; params.len()];
    let mut dl = vec![f64::NAN; cap * classes];
    let mut dx = vec![f64::NAN; cap * k];
    let (mut p1, mut m1, mut v1) = (params.clone(), Vec::new(), Vec::new());
    if let Some(a) = adam {
        (m1, v1) = (to_f64(&a.m), to_f64(&a.v));
    }
    let twin_adam = adam.map(|a| cpu::TailUpdate {
        p: &mut p1,
        m: &mut m1,
        v: &mut v1,
        step: f32_step_in_f64(&a.optimizer, a.alpha),
    });
    let (act64, scale) = (to_f64(act), case.record().scale as f64);
    let mask_scale = input_grad.unwrap_or(0.0) as f64;
    let (labels, order, dx_out) = (&case.labels, &case.order, input_grad.map(|_| &mut dx[..]));
    let want = match kernel {
        Kernel::DenseTailTex => cpu::dense_tail_tex(
            &act64, &params, labels, order, &mut grads, &mut dl, dx_out, &layer, cap, case.rows,
            scale, mask_scale, twin_adam,
        ),
        _ => cpu::dense_tail(
            &act64, &params, labels, order, &mut grads, &mut dl, dx_out, &layer, cap, case.rows,
            scale, mask_scale,
        ),
    };
    let (grads, dl, dx) = (to_f32(&grads), to_f32(&dl), to_f32(&dx));
    let s = format!("{} ->{classes}", case.describe());
    let red = TOL_REDUCTION;
    let mut loss = compare(&[got.stat.loss], &[want.loss as f32], red);
    if got.stat.correct != want.correct || got.stat.nonfinite != want.nonfinite {
        loss.used = f32::INFINITY;
    }
    let mut out = vec![
        case_result(
            &format!("{name} dlogits"),
            &s,
            compare(&got.dlogits, &dl, red),
        ),
        case_result(
            &format!("{name} dW"),
            &s,
            compare(&got.dw, &grads[layer.weight_range()], red),
        ),
        case_result(
            &format!("{name} db"),
            &s,
            compare(&got.db, &grads[layer.bias_range()], red),
        ),
        case_result(
            &format!(
                "{name} loss, correct {}/{}, nonfinite {}/{}",
                got.stat.correct, want.correct, got.stat.nonfinite, want.nonfinite
            ),
            &s,
            loss,
        ),
    ];
    if input_grad.is_some() {
        out.push(case_result(
            &format!("{name} dZ (masked)"),
            &s,
            compare(&got.dx, &dx, red),
        ));
    } else {
        // Without input_grad the dZ region is not written: it must still hold its poison.
        out.push(case_result(
            &format!("{name} no dZ written"),
            &s,
            verdict(got.dx.iter().all(|v| v.is_nan())),
        ));
    }
    if let (Some(a), Some(after)) = (adam, &got.after) {
        let before = [
            pk.pack(w, b, f32::NAN),
            pk.pack(&a.m[..layer.bias], &a.m[layer.bias..], 0.5),
            pk.pack(&a.v[..layer.bias], &a.v[layer.bias..], 0.25),
        ];
        let wants = [to_f32(&p1), to_f32(&m1), to_f32(&v1)];
        let gots = [&after.p, &after.m, &after.v];
        for (i, what) in ["params", "m", "v"].into_iter().enumerate() {
            let (gw, gb) = pk.unpack(gots[i]);
            let mut all = gw;
            all.extend(gb);
            out.push(case_result(
                &format!("{name}+adam {what}"),
                &s,
                compare(&all, &wants[i], red),
            ));
            out.push(case_result(
                &format!("{name}+adam {what} padding kept"),
                &s,
                verdict(pk.padding_equal(gots[i], &before[i])),
            ));
        }
    }
    Ok(out)
}

/// The f32 update step of `opt` (step size `alpha`), carried in f64: the hyper-parameters as the
/// kernel holds them, for a twin run in f64.
fn f32_step_in_f64(opt: &OptimizerConfig, alpha: f32) -> cpu::UpdateStep<f64> {
    let s = cpu::UpdateStep::<f32>::new(opt, 3);
    let f = |x: f32| x as f64;
    cpu::UpdateStep {
        kind: s.kind,
        alpha: f(alpha),
        beta1: f(s.beta1),
        beta2: f(s.beta2),
        epsilon: f(s.epsilon),
        momentum: f(s.momentum),
        rho: f(s.rho),
        nesterov: s.nesterov,
    }
}

/// The tails that run a last layer of `classes` outputs on this device: dense_tail, and dense_tail_tex
/// up to its class limit.
pub fn tails(h: &Harness, classes: usize) -> Vec<Kernel> {
    [Kernel::DenseTail, Kernel::DenseTailTex]
        .into_iter()
        .filter(|&k| h.kernels.supports(k))
        .filter(|&k| k == Kernel::DenseTail || classes <= kernels::TAIL_TEX_MAX_CLASSES)
        .collect()
}

/// The step cases of the buffer-path kernels for a ladder shape `(batch, fan_in, fan_out)`: the full
/// batch from a shuffled order, and a partial one (about two thirds) in split order.
pub fn step_cases((bt, fi, fo): (usize, usize, usize), seed: u64) -> [(StepCase, bool); 2] {
    let partial = (bt - bt / 3).max(1);
    [
        (StepCase::new(fi, fo, bt, bt, false, seed), true),
        (StepCase::new(fi, fo, bt, partial, true, seed), false),
    ]
}

/// Every buffer-path kernel on the ladder, plus the partial batches 5 of 8 and 31 of 32 and odd row
/// lengths (7, 785 pixels: rows start mid-u32), and Adam over ranges.
pub async fn buffer_path_ladder(h: &Harness, seed: u64) -> Result<Vec<CaseResult>> {
    let mut shapes = shape_ladder();
    shapes.extend([(8, 7, 5), (32, 785, 128), (32, 784, 10)]);
    let mut out = Vec::new();
    for s in shapes {
        for (case, flag) in step_cases(s, seed) {
            out.extend(gather_case(h, &case, if flag { 0 } else { 8 }).await?);
            for kernel in [Kernel::ForwardGather, Kernel::ForwardGatherTex] {
                out.extend(forward_gather_case(h, kernel, &case, s.2, flag, seed).await?);
            }
            for kernel in tails(h, s.2) {
                out.extend(dense_tail_case(h, kernel, &case, s.2, flag, seed).await?);
                if kernel == Kernel::DenseTailTex {
                    let adam = OptimizerConfig::default();
                    out.extend(dense_tail_tex_update_case(h, &adam, &case, s.2, seed).await?);
                }
            }
            let adam = OptimizerConfig::default();
            out.extend(grad_update_gather_case(h, &adam, &case, s.2, seed).await?);
            out.extend(grad_update_gather_tex_case(h, &adam, &case, s.2, seed).await?);
        }
    }
    for (inputs, classes, cap, rows) in [
        (7, 5, 8, 5),
        (784, 128, 32, 31),
        (785, 10, 32, 31),
        (130, 16, 33, 33),
        (61, 13, 70, 40),
    ] {
        let case = StepCase::new(inputs, classes, cap, rows, false, seed);
        for kernel in [Kernel::ForwardGather, Kernel::ForwardGatherTex] {
            out.extend(forward_gather_case(h, kernel, &case, classes, true, seed).await?);
        }
        for kernel in tails(h, classes) {
            out.extend(dense_tail_case(h, kernel, &case, classes, true, seed).await?);
        }
        let adam = OptimizerConfig::default();
        out.extend(grad_update_gather_case(h, &adam, &case, classes, seed).await?);
        out.extend(grad_update_gather_tex_case(h, &adam, &case, classes, seed).await?);
    }
    out.extend(super::fused_updates_ladder(h, seed).await?);
    for (inputs, classes, cap, rows, spread) in [(7, 3, 7, 7, 1000.0), (16, 10, 100, 100, 20.0)] {
        let case = StepCase::new(inputs, classes, cap, rows, false, seed);
        for kernel in tails(h, classes) {
            out.extend(dense_tail_spread_case(h, kernel, &case, classes, spread, seed).await?);
        }
    }
    out.extend(super::dropout_ladder(h, seed).await?);
    for opt in super::ladder_optimizers() {
        for (n, off4, len4) in [(4, 0, 1), (1000, 3, 200), (101_776, 23_000, 2_064)] {
            out.extend(super::update_range_case(h, &opt, n, off4, len4, seed).await?);
        }
    }
    Ok(out)
}
