//! The CPU path checked against mathematics: analytic gradients vs central finite differences in f64,
//! Adam vs its formula computed independently, softmax cross-entropy at extreme logits.

use fmnist::cpu::{self, Workspace};
use fmnist::model::MlpSpec;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_problem(spec: &MlpSpec, rows: usize, seed: u64) -> (Vec<f64>, Vec<f64>, Vec<u32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let layout = spec.layout();
    let mut params = vec![0.0; layout.total];
    for l in &layout.layers {
        for p in &mut params[l.weight_range()] {
            *p = rng.random_range(-0.8..0.8);
        }
        for p in &mut params[l.bias_range()] {
            *p = rng.random_range(-0.3..0.3);
        }
    }
    let x = (0..rows * spec.inputs)
        .map(|_| rng.random_range(0.0..1.0))
        .collect();
    let labels = (0..rows)
        .map(|_| rng.random_range(0..spec.outputs as u32))
        .collect();
    (params, x, labels)
}

/// The mean loss and its analytic gradient, with `drop`'s dropout (its masks fixed by the step).
fn loss_and_grad(
    spec: &MlpSpec,
    params: &[f64],
    x: &[f64],
    labels: &[u32],
    rows: usize,
    drop: Option<&cpu::DropoutStep>,
) -> (f64, Vec<f64>) {
    let layout = spec.layout();
    let mut ws = Workspace::new(&layout, rows);
    let mut grads = vec![0.0; layout.total];
    let (loss, _) = match drop {
        Some(d) => {
            cpu::loss_and_grad_dropout(&layout, params, x, labels, rows, &mut ws, &mut grads, d)
        }
        None => cpu::loss_and_grad(&layout, params, x, labels, rows, &mut ws, &mut grads),
    };
    (loss / rows as f64, grads)
}

fn gradcheck(spec: &MlpSpec, rows: usize) {
    gradcheck_with(spec, rows, None);
}

fn gradcheck_with(spec: &MlpSpec, rows: usize, drop: Option<&cpu::DropoutStep>) {
    let layout = spec.layout();
    let (mut params, x, labels) = random_problem(spec, rows, 3);
    let (_, analytic) = loss_and_grad(spec, &params, &x, &labels, rows, drop);
    let mean_loss = |p: &[f64]| loss_and_grad(spec, p, &x, &labels, rows, drop).0;
    let h = 1e-5;
    let mut worst = (0.0f64, String::new());
    let (mut diff2, mut ref2) = (0.0, 0.0);
    for (li, l) in layout.layers.iter().enumerate() {
        for (kind, range) in [("weight", l.weight_range()), ("bias", l.bias_range())] {
            for i in range {
                let saved = params[i];
                params[i] = saved + h;
                let up = mean_loss(&params);
                params[i] = saved - h;
                let down = mean_loss(&params);
                params[i] = saved;
                let numeric = (up - down) / (2.0 * h);
                let rel =
                    (analytic[i] - numeric).abs() / (analytic[i].abs() + numeric.abs()).max(1e-8);
                if rel > worst.0 {
                    worst = (
                        rel,
                        format!(
                            "layers.{li}.{kind}[{}]: analytic {} numeric {numeric}",
                            i - range_start(l, kind),
                            analytic[i]
                        ),
                    );
                }
                diff2 += (analytic[i] - numeric).powi(2);
                ref2 += numeric.powi(2);
            }
        }
    }
    let norm_rel = (diff2 / ref2).sqrt();
    assert!(
        norm_rel < 1e-6,
        "{}: ||analytic - numeric|| / ||numeric|| = {norm_rel:e} >= 1e-6; worst element {}",
        spec.describe(),
        worst.1
    );
    assert!(
        worst.0 < 1e-6,
        "{}: worst elementwise relative error {:e} >= 1e-6 at {}",
        spec.describe(),
        worst.0,
        worst.1
    );
}

fn range_start(l: &fmnist::model::LayerOffsets, kind: &str) -> usize {
    if kind == "weight" { l.weight } else { l.bias }
}

#[test]
fn gradients_match_central_differences_one_hidden_layer_rel_1e_6() {
    gradcheck(&MlpSpec::new(13, &[7], 5).unwrap(), 6);
}

#[test]
fn gradients_through_dropout_match_central_differences_rel_1e_6() {
    // Each step's masks are fixed by (seed, step), so the loss is a function of the weights and its
    // gradient (ReLU's mask times dropout's scale where kept) is checked like the plain one.
    let spec = MlpSpec::new(11, &[9, 6], 4).unwrap();
    let dropout = cpu::Dropout::new(&[0.5, 0.3], 7);
    let drop = dropout.step(3).unwrap();
    gradcheck_with(&spec, 5, Some(&drop));
}

#[test]
fn gradients_match_central_differences_two_hidden_layers_rel_1e_6() {
    gradcheck(&MlpSpec::new(11, &[9, 6], 4).unwrap(), 5);
}

#[test]
fn adam_matches_keras_formula_over_three_steps_rel_1e_12() {
    let (lr, b1, b2, eps) = (0.01f64, 0.9, 0.999, 1e-7);
    let mut p = vec![0.5, -1.0, 2.0, 0.0];
    let (mut m, mut v) = (vec![0.0; 4], vec![0.0; 4]);
    let grads = [
        [0.1, -0.2, 0.3, 0.0],
        [0.05, 0.4, -0.1, 1e-3],
        [-0.3, 0.1, 0.2, -2.0],
    ];
    // The same update written out in the textbook form with explicit bias-corrected moments, which
    // equals Keras' form (epsilon outside the correction) only when epsilon is scaled accordingly.
    let mut q = p.clone();
    let (mut m2, mut v2) = (vec![0.0; 4], vec![0.0; 4]);
    for (t, g) in grads.iter().enumerate() {
        let t = t as i32 + 1;
        let alpha = cpu::adam_alpha(lr, b1, b2, t as u64);
        assert!((alpha - lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t))).abs() < 1e-15);
        cpu::adam(&mut p, g, &mut m, &mut v, alpha, b1, b2, eps);
        for i in 0..4 {
            m2[i] = b1 * m2[i] + (1.0 - b1) * g[i];
            v2[i] = b2 * v2[i] + (1.0 - b2) * g[i] * g[i];
            let m_hat = m2[i] / (1.0 - b1.powi(t));
            let v_hat = v2[i] / (1.0 - b2.powi(t));
            let eps_hat = eps / (1.0 - b2.powi(t)).sqrt();
            q[i] -= lr * m_hat / (v_hat.sqrt() + eps_hat);
        }
    }
    for i in 0..4 {
        let rel = (p[i] - q[i]).abs() / q[i].abs().max(1e-12);
        assert!(
            rel < 1e-12,
            "param {i}: adam {} vs formula {} (rel {rel:e} >= 1e-12)",
            p[i],
            q[i]
        );
    }
    // First step of Adam moves every parameter with a non-zero gradient by about lr, against the gradient.
    let mut p1 = vec![1.0f64];
    cpu::adam(
        &mut p1,
        &[0.3],
        &mut [0.0],
        &mut [0.0],
        cpu::adam_alpha(lr, b1, b2, 1),
        b1,
        b2,
        eps,
    );
    assert!(
        (p1[0] - (1.0 - lr)).abs() < 1e-6,
        "first step moved to {}",
        p1[0]
    );
}

#[test]
fn softmax_xent_is_finite_for_logits_of_plus_minus_1000() {
    let logits = [1000.0f32, -1000.0, 0.0, -1000.0, 1000.0, 999.0];
    let labels = [1u32, 0];
    let mut d = [0.0f32; 6];
    let (loss, correct) = cpu::softmax_xent(&logits, &labels, &mut d, 2, 3, 0.5);
    assert!(loss.is_finite(), "loss {loss}");
    // Row 0: the label's logit is 2000 below the max -> loss 2000. Row 1: log-sum-exp is
    // 1000 + ln(1 + e^-1) and the label's logit is -1000 -> loss 2000 + ln(1 + e^-1).
    let expected = 4000.0 + (1.0f32 + (-1.0f32).exp()).ln();
    assert!(
        (loss - expected).abs() / expected < 1e-6,
        "loss {loss} expected {expected}"
    );
    assert_eq!(
        correct, 0,
        "row 0 predicts class 0 (label 1), row 1 predicts class 1 (label 0)"
    );
    assert!(d.iter().all(|v| v.is_finite()), "gradient {d:?}");
    let mut probs = [0.0f32; 6];
    cpu::softmax(&logits, &mut probs, 2, 3);
    assert!(probs.iter().all(|p| p.is_finite() && *p >= 0.0));
    assert!((probs[0] - 1.0).abs() < 1e-6 && (probs[..3].iter().sum::<f32>() - 1.0).abs() < 1e-6);
}

#[test]
fn softmax_xent_gradient_rows_sum_to_zero_and_scale_by_batch() {
    let logits = [0.2f64, -0.1, 0.7, 1.5, 0.0, -2.0];
    let mut d = [0.0f64; 6];
    cpu::softmax_xent(&logits, &[2, 0], &mut d, 2, 3, 0.5);
    for row in d.chunks(3) {
        assert!(row.iter().sum::<f64>().abs() < 1e-15);
    }
    assert!(d[2] < 0.0 && d[3] < 0.0, "the label's gradient is negative");
}

#[test]
fn fast_train_step_matches_the_reference_loss_and_grad_then_adam_atol1e6_rtol1e4() {
    // The CPU backend's step (tuned products, the first weight gradient and Adam split across two
    // threads) against the reference pair (plain loops), on the training shape and odd ones, above and
    // below the split threshold: the same function, summed in other orders.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for (spec, rows) in [
        (MlpSpec::new(784, &[128], 10).unwrap(), 32),
        (MlpSpec::new(13, &[7, 6], 5).unwrap(), 6),
        (MlpSpec::new(785, &[33], 10).unwrap(), 17),
    ] {
        let layout = spec.layout();
        let (params64, x64, labels) = random_problem(&spec, rows, 9);
        let params: Vec<f32> = params64.iter().map(|&p| p as f32).collect();
        let x: Vec<f32> = x64.iter().map(|&v| v as f32).collect();
        let n = layout.total;
        let adam = cpu::UpdateStep::<f32>::new(&Default::default(), 1);
        // Reference: two steps of loss_and_grad + adam.
        let (mut p_ref, mut m_ref, mut v_ref, mut g_ref) = (
            params.clone(),
            vec![0.0f32; n],
            vec![0.0f32; n],
            vec![0.0f32; n],
        );
        let mut ws = Workspace::new(&layout, rows);
        let mut ref_out = Vec::new();
        for _ in 0..2 {
            ref_out.push(cpu::loss_and_grad(
                &layout, &p_ref, &x, &labels, rows, &mut ws, &mut g_ref,
            ));
            cpu::adam(
                &mut p_ref,
                &g_ref,
                &mut m_ref,
                &mut v_ref,
                adam.alpha,
                adam.beta1,
                adam.beta2,
                adam.epsilon,
            );
        }
        let (mut p, mut m, mut v, mut g) = (
            params.clone(),
            vec![0.0f32; n],
            vec![0.0f32; n],
            vec![0.0f32; n],
        );
        let mut ws = Workspace::new(&layout, rows);
        let mut out = Vec::new();
        pool.install(|| {
            for _ in 0..2 {
                out.push(cpu::train_step(
                    &layout, &mut p, &mut g, &mut m, &mut v, &x, &labels, rows, &mut ws, adam, None,
                ));
            }
        });
        let what = spec.describe();
        for ((loss, correct), (ref_loss, ref_correct)) in out.iter().zip(&ref_out) {
            assert_eq!(correct, ref_correct, "{what}: correct count");
            assert!(
                (loss - ref_loss).abs() <= 1e-6 + 1e-4 * ref_loss.abs(),
                "{what}: loss {loss} vs reference {ref_loss}"
            );
        }
        for (name, got, want) in [("params", &p, &p_ref), ("m", &m, &m_ref), ("v", &v, &v_ref)] {
            for (i, (a, b)) in got.iter().zip(want.iter()).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-6 + 1e-4 * b.abs(),
                    "{what}: {name}[{i}] {a} vs reference {b} (atol 1e-6 + rtol 1e-4)"
                );
            }
        }
    }
}
