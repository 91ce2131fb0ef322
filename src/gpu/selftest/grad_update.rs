//! The cases of the first layer's fused gradient-and-update kernels, grad_update_gather (buffer path) and
//! grad_update_gather_tex (texture path), against their CPU twins on steps drawn from a split of random
//! u8 images (`StepCase`), from a state that has seen a few steps. Shared by `fmnist selftest` (through
//! `buffer_path_ladder`) and tests/kernels.rs.

use anyhow::Result;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::buffer_path::{case_result, verdict};
use super::random;
use crate::check::{CaseResult, TOL_REDUCTION, compare};
use crate::config::OptimizerConfig;
use crate::cpu;
use crate::gpu::harness::{Harness, Packed, ParamsPacking, StepCase};
use crate::gpu::kernels::Kernel;

/// `grad_update_gather` built for `opt` against cpu::grad_update_gather from a state that has seen a
/// few steps; padding lanes of p, m and v hold finite sentinels that must come back bit for bit, and
/// dZ's padding lanes and rows past the step are NaN.
pub async fn grad_update_gather_case(
    h: &Harness,
    opt: &OptimizerConfig,
    case: &StepCase,
    fan_out: usize,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    grad_update_case(h, Kernel::GradUpdateGather, opt, case, fan_out, seed).await
}

/// `grad_update_gather_tex` against cpu::grad_update_gather_tex, as `grad_update_gather_case`, with p, m
/// and v in an atlas layout (`ParamsPacking::atlas`).
pub async fn grad_update_gather_tex_case(
    h: &Harness,
    opt: &OptimizerConfig,
    case: &StepCase,
    fan_out: usize,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    grad_update_case(h, Kernel::GradUpdateGatherTex, opt, case, fan_out, seed).await
}

/// The signature of the first layer's fused gradient-and-update twins.
type GradUpdateTwin = fn(
    &[u8],
    &[u32],
    &[f32],
    &mut [f32],
    &mut [f32],
    &mut [f32],
    &crate::model::LayerOffsets,
    cpu::StepRows,
    cpu::UpdateStep<f32>,
);

/// One of the first layer's fused gradient-and-update kernels, built for `opt`, against its twin.
async fn grad_update_case(
    h: &Harness,
    kernel: Kernel,
    opt: &OptimizerConfig,
    case: &StepCase,
    fan_out: usize,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    let inputs = case.inputs;
    let tex = kernel == Kernel::GradUpdateGatherTex;
    let salt = if tex { 619 } else { 613 };
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (inputs * salt + fan_out) as u64);
    let alpha = opt.alpha(3) as f32;
    let n = inputs * fan_out + fan_out;
    let (p, m, v) = (
        random(n, -1.0, 1.0, &mut rng),
        random(n, -0.01, 0.01, &mut rng),
        random(n, 0.0, 1e-4, &mut rng),
    );
    let scale = 1.0 / case.rows.rows as f32;
    let dz: Vec<f32> = random(case.capacity * fan_out, -scale, scale, &mut rng);
    let pk = if tex {
        ParamsPacking::atlas(inputs, fan_out)
    } else {
        ParamsPacking::new(inputs, fan_out)
    };
    let w = inputs * fan_out;
    let start = Packed {
        p: pk.pack(&p[..w], &p[w..], 7.0),
        m: pk.pack(&m[..w], &m[w..], 0.5),
        v: pk.pack(&v[..w], &v[w..], 0.25),
    };
    let step = cpu::UpdateStep::<f32>::new(opt, 3);
    let (mut cp, mut cm, mut cv) = (p, m, v);
    let layer = pk.cpu_layer();
    let (got, twin) = if tex {
        let got = h
            .grad_update_gather_tex(case, &dz, &pk, &start, alpha, opt)
            .await?;
        (got, cpu::grad_update_gather_tex::<f32> as GradUpdateTwin)
    } else {
        let got = h
            .grad_update_gather(case, &dz, &pk, &start, alpha, opt)
            .await?;
        (got, cpu::grad_update_gather::<f32> as GradUpdateTwin)
    };
    let (images, order) = (&case.images, &case.order);
    twin(
        images, order, &dz, &mut cp, &mut cm, &mut cv, &layer, case.rows, step,
    );
    let (s, name) = (
        format!("{} ->{fan_out}", case.describe()),
        super::with_optimizer(kernel.entry_point(), opt),
    );
    let mut out = Vec::new();
    for (what, gpu, cpu_side, before) in [
        ("params", &got.p, &cp, &start.p),
        ("m", &got.m, &cm, &start.m),
        ("v", &got.v, &cv, &start.v),
    ] {
        let (gw, gb) = pk.unpack(gpu);
        out.push(case_result(
            &format!("{name} W {what}"),
            &s,
            compare(&gw, &cpu_side[..w], TOL_REDUCTION),
        ));
        out.push(case_result(
            &format!("{name} b {what}"),
            &s,
            compare(&gb, &cpu_side[w..], TOL_REDUCTION),
        ));
        out.push(case_result(
            &format!("{name} {what} padding kept"),
            &s,
            verdict(pk.padding_equal(gpu, before)),
        ));
    }
    Ok(out)
}
