//! The texture path's first-layer case: `grad_adam_tex` against `cpu::grad_adam_tex` on the steps of the
//! buffer-path ladder (the same `StepCase`s, their inputs gathered on the CPU as the gather kernel
//! writes them). Shared by `fmnist selftest` (through `buffer_path_ladder`) and tests/kernels.rs.

use anyhow::Result;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::buffer_path::{case_result, verdict};
use super::random;
use crate::check::{CaseResult, TOL_REDUCTION, compare};
use crate::config::AdamConfig;
use crate::cpu;
use crate::gpu::harness::{Harness, Packed, ParamsPacking, StepCase};

/// `grad_adam_tex` against cpu::grad_adam_tex on the case's gathered inputs (cpu::gather, as the gather
/// kernel writes them), from a state that has seen a few steps, in an atlas layout whose padding lanes
/// hold finite sentinels that must come back bit for bit.
pub fn grad_adam_tex_case(
    h: &Harness,
    case: &StepCase,
    fan_out: usize,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    let inputs = case.inputs;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (inputs * 619 + fan_out) as u64);
    let cfg = AdamConfig::default();
    let alpha = cpu::adam_alpha(cfg.learning_rate, cfg.beta1, cfg.beta2, 3) as f32;
    let n = inputs * fan_out + fan_out;
    let (p, m, v) = (
        random(n, -1.0, 1.0, &mut rng),
        random(n, -0.01, 0.01, &mut rng),
        random(n, 0.0, 1e-4, &mut rng),
    );
    let scale = 1.0 / case.rows.rows as f32;
    let dz: Vec<f32> = random(case.capacity * fan_out, -scale, scale, &mut rng);
    let mut x = vec![0.0f32; case.capacity * inputs];
    cpu::gather(
        &case.images,
        &case.order,
        &mut x,
        inputs,
        case.capacity,
        case.rows,
    );
    let pk = ParamsPacking::atlas(inputs, fan_out);
    let w = inputs * fan_out;
    let start = Packed {
        p: pk.pack(&p[..w], &p[w..], 7.0),
        m: pk.pack(&m[..w], &m[w..], 0.5),
        v: pk.pack(&v[..w], &v[w..], 0.25),
    };
    let got = h.grad_adam_tex(case, &x, &dz, &pk, &start, alpha, &cfg)?;
    let (mut cp, mut cm, mut cv) = (p, m, v);
    cpu::grad_adam_tex(
        &x,
        &dz,
        &mut cp,
        &mut cm,
        &mut cv,
        &pk.cpu_layer(),
        case.rows,
        cpu::AdamStep {
            alpha,
            beta1: cfg.beta1 as f32,
            beta2: cfg.beta2 as f32,
            epsilon: cfg.epsilon as f32,
        },
    );
    let s = format!("{} ->{fan_out}", case.describe());
    let mut out = Vec::new();
    for (name, gpu, cpu_side, before) in [
        ("params", &got.p, &cp, &start.p),
        ("m", &got.m, &cm, &start.m),
        ("v", &got.v, &cv, &start.v),
    ] {
        let (gw, gb) = pk.unpack(gpu);
        out.push(case_result(
            &format!("grad_adam_tex W {name}"),
            &s,
            compare(&gw, &cpu_side[..w], TOL_REDUCTION),
        ));
        out.push(case_result(
            &format!("grad_adam_tex b {name}"),
            &s,
            compare(&gb, &cpu_side[w..], TOL_REDUCTION),
        ));
        out.push(case_result(
            &format!("grad_adam_tex {name} padding kept"),
            &s,
            verdict(pk.padding_equal(gpu, before)),
        ));
    }
    Ok(out)
}
