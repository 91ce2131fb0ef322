//! The self-test's optimizer cases beyond the texture updates (in `mod.rs`): the range updates
//! (adam, sgd, rmsprop) against their twins, and the kernels with an update fused in run with every
//! optimizer. Shared by `fmnist selftest` (through `buffer_path_ladder`) and tests/kernels.rs.

use anyhow::Result;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::buffer_path::{case_result, dense_tail_tex_update_case, tails};
use super::grad_update::{grad_update_gather_case, grad_update_gather_tex_case};
use super::random;
use crate::check::{CaseResult, TOL_ELEMENTWISE, compare};
use crate::config::{OptimizerConfig, OptimizerKind};
use crate::cpu;
use crate::gpu::harness::{Harness, Packed, StepCase};
use crate::gpu::kernels::Kernel;

/// `opt`'s range update (adam, sgd or rmsprop) over vec4s `[off4, off4 + len4)` of `n` floats against
/// its twin on that range; g is NaN outside the range and p, m, v must come back unchanged there.
pub async fn update_range_case(
    h: &Harness,
    opt: &OptimizerConfig,
    n: usize,
    off4: usize,
    len4: usize,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (n * 7 + off4) as u64);
    let start = Packed {
        p: random(n, -1.0, 1.0, &mut rng),
        m: random(n, -0.01, 0.01, &mut rng),
        v: random(n, 0.0, 1e-4, &mut rng),
    };
    let mut g = vec![f32::NAN; n];
    let range = 4 * off4..4 * (off4 + len4);
    g[range.clone()].copy_from_slice(&random(4 * len4, -0.1, 0.1, &mut rng));
    let alpha = opt.alpha(3) as f32;
    let got = h.update_range(&start, &g, off4, len4, alpha, opt).await?;
    let (mut cp, mut cm, mut cv) = (start.p.clone(), start.m.clone(), start.v.clone());
    let step = cpu::UpdateStep::<f32>::new(opt, 3);
    let (p, gr, m, v) = (
        &mut cp[range.clone()],
        &g[range.clone()],
        &mut cm[range.clone()],
        &mut cv[range],
    );
    match opt.kind() {
        OptimizerKind::Adam => cpu::adam(p, gr, m, v, alpha, step.beta1, step.beta2, step.epsilon),
        OptimizerKind::Sgd => cpu::sgd(p, gr, m, &step),
        OptimizerKind::Rmsprop => cpu::rmsprop(p, gr, m, v, &step),
    }
    let name = super::with_optimizer(Kernel::update_range(opt.kind()).entry_point(), opt);
    let s = format!("[{off4}, +{len4}) of {}", n / 4);
    Ok(vec![
        case_result(
            &format!("{name} params"),
            &s,
            compare(&got.p, &cp, TOL_ELEMENTWISE),
        ),
        case_result(
            &format!("{name} m"),
            &s,
            compare(&got.m, &cm, TOL_ELEMENTWISE),
        ),
        case_result(
            &format!("{name} v"),
            &s,
            compare(&got.v, &cv, TOL_ELEMENTWISE),
        ),
    ])
}

/// The kernels with an update fused in (grad_update_gather, grad_update_gather_tex, dense_tail_tex's
/// update) with every optimizer but Adam (which the ladder above runs on every shape), on an odd
/// partial batch, the tutorial's first layer and its last.
pub async fn fused_updates_ladder(h: &Harness, seed: u64) -> Result<Vec<CaseResult>> {
    let mut out = Vec::new();
    for opt in super::ladder_optimizers().iter().skip(1) {
        for (inputs, classes, cap, rows) in
            [(61, 13, 70, 40), (784, 128, 32, 32), (128, 10, 32, 31)]
        {
            let case = StepCase::new(inputs, classes, cap, rows, false, seed);
            out.extend(grad_update_gather_case(h, opt, &case, classes, seed).await?);
            out.extend(grad_update_gather_tex_case(h, opt, &case, classes, seed).await?);
            if tails(h, classes).contains(&Kernel::DenseTailTex) {
                out.extend(dense_tail_tex_update_case(h, opt, &case, classes, seed).await?);
            }
        }
    }
    Ok(out)
}
