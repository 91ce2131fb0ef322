//! The self-test's dropout cases: the `dropout` entry point and the first layer's forward epilogue
//! against cpu::dropout (the same Philox masks bit for bit), and dropout's scale in the tails' dZ.
//! Shared by `fmnist selftest` (through `buffer_path_ladder`) and tests/kernels.rs.

use anyhow::Result;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::buffer_path::{case_result, dense_tail_check, forward_gather_dropout_case, tails};
use super::random;
use crate::check::{CaseResult, TOL_ELEMENTWISE, compare};
use crate::cpu;
use crate::gpu::harness::{Harness, StepCase};
use crate::gpu::kernels::Kernel;
use crate::gpu::uniforms::DropFields;

/// `dropout` over hidden layer `layer`'s output of `cols` columns (a ReLU output, NaN in its padding
/// lanes) against cpu::dropout at `rate`: the same mask bit for bit, kept values scaled, rows past the
/// step untouched.
pub async fn dropout_case(
    h: &Harness,
    case: &StepCase,
    cols: usize,
    layer: u32,
    rate: f64,
    seed: u64,
) -> Result<Vec<CaseResult>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (cols * 977 + layer as usize) as u64);
    let mut act = random(case.capacity * cols, -1.0, 1.0, &mut rng);
    cpu::relu(&mut act);
    let mut rates = vec![0.0; layer as usize];
    rates.push(rate);
    let dropout = cpu::Dropout::new(&rates, seed);
    let got = h
        .dropout(
            case,
            &act,
            cols,
            layer,
            DropFields::of(&dropout, layer as usize),
        )
        .await?;
    let mut want = act.clone();
    let d = dropout.layer(layer as usize);
    cpu::dropout(
        &mut want,
        case.rows.rows,
        cols,
        layer,
        dropout.key,
        case.counter,
        d,
    );
    let kept = want[..case.rows.rows * cols]
        .iter()
        .zip(&act)
        .filter(|(w, a)| **a > 0.0 && **w > 0.0)
        .count();
    let s = format!(
        "{} ->{cols} layer {layer} rate {rate} ({kept} kept)",
        case.describe()
    );
    Ok(vec![case_result(
        "dropout",
        &s,
        compare(&got, &want, TOL_ELEMENTWISE),
    )])
}

/// Dropout where the kernels apply it: the first layer's forward epilogue (both paths), the `dropout`
/// entry point of deeper layers, and its backward scale in the tails' dZ, on full and partial batches
/// of odd widths.
pub async fn dropout_ladder(h: &Harness, seed: u64) -> Result<Vec<CaseResult>> {
    let mut out = Vec::new();
    for (inputs, classes, cap, rows) in [(61, 13, 70, 40), (784, 128, 32, 32), (7, 5, 8, 5)] {
        let case = StepCase::new(inputs, classes, cap, rows, false, seed);
        for rate in [0.2, 0.5] {
            for kernel in [Kernel::ForwardGather, Kernel::ForwardGatherTex] {
                out.extend(
                    forward_gather_dropout_case(h, kernel, &case, classes, true, Some(rate), seed)
                        .await?,
                );
            }
            out.extend(dropout_case(h, &case, classes, 1, rate, seed).await?);
            out.extend(dropout_case(h, &case, classes, 2, rate, seed).await?);
        }
        // dZ of a layer after dropout 0.5: its kept lanes doubled.
        let k = inputs;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (k * 71 + classes) as u64);
        let mut act = random(cap * k, -1.0, 1.0, &mut rng);
        cpu::relu(&mut act);
        let limit = (6.0 / (k + classes) as f32).sqrt();
        let w = random(k * classes, -limit, limit, &mut rng);
        let b = random(classes, -0.5, 0.5, &mut rng);
        for kernel in tails(h, classes) {
            out.extend(
                dense_tail_check(h, kernel, &case, &act, &w, &b, classes, Some(2.0), None).await?,
            );
        }
    }
    Ok(out)
}
