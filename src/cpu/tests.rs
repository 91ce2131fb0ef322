use super::*;
use crate::config::{OptimizerConfig, RmspropConfig, SgdConfig};
use crate::model::LayerOffsets;

/// The textbook triple loop, `c[i][j] = sum_p a(i, p) b(p, j)` with element accessors.
fn naive(
    m: usize,
    k: usize,
    n: usize,
    a: impl Fn(usize, usize) -> f64,
    b: impl Fn(usize, usize) -> f64,
) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|p| a(i, p) * b(p, j)).sum();
        }
    }
    c
}

/// A split of `samples` random images of `inputs` pixels, an order with repeats and out-of-order
/// indices, labels, and f64 parameters of one layer in the CPU layout.
fn fused_data(
    samples: usize,
    inputs: usize,
    fan_out: usize,
    order_len: usize,
    seed: u64,
) -> (Vec<u8>, Vec<u32>, Vec<u32>, Vec<f64>, LayerOffsets) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let images = (0..samples * inputs).map(|_| rng.random()).collect();
    let order = (0..order_len)
        .map(|_| rng.random_range(0..samples as u32))
        .collect();
    let labels = (0..samples)
        .map(|_| rng.random_range(0..fan_out as u32))
        .collect();
    let spec = crate::model::MlpSpec::new(inputs, &[], fan_out).unwrap();
    let layout = spec.layout();
    let params = (0..layout.total)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    (images, order, labels, params, layout.layers[0])
}

/// `|a - b|_max <= 1e-12 |b|_max`, with the sizes equal.
fn assert_close_1e_12(what: &str, a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    let err = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        err <= 1e-12 * scale,
        "{what}: max error {err:e} vs scale {scale:e}"
    );
}

/// The cases the fused twins are checked on: (samples, inputs, fan_out, capacity, rows).
const FUSED_CASES: [(usize, usize, usize, usize, usize); 5] = [
    (50, 7, 5, 8, 5),
    (50, 785, 129, 33, 33),
    (50, 784, 128, 32, 31),
    (3, 1, 1, 1, 1),
    (40, 128, 10, 32, 32),
];

#[test]
fn relu_maps_nan_and_everything_not_positive_to_zero() {
    let mut y = [
        f32::NAN,
        -1.0,
        -0.0,
        0.0,
        2.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ];
    relu(&mut y);
    assert_eq!(
        y.map(f32::to_bits),
        [0.0, 0.0, 0.0, 0.0, 2.0, f32::INFINITY, 0.0].map(f32::to_bits)
    );
    let mut y = [f64::NAN, -1.0, 3.0];
    relu(&mut y);
    assert_eq!(y, [0.0, 0.0, 3.0]);
    let mut dy = [1.0f32, 2.0, 3.0, 4.0];
    relu_backward(&mut dy, &[f32::NAN, 0.0, -1.0, 0.5]);
    assert_eq!(dy, [0.0, 0.0, 0.0, 4.0]);
}

/// The reference `adam` over one layer's weight and bias (which the CPU layout may not keep adjacent).

#[test]
fn fused_twins_equal_the_composition_of_the_reference_twins_f64_rel_1e_12() {
    for (i, &(samples, inputs, fan_out, capacity, live)) in FUSED_CASES.iter().enumerate() {
        for direct in [false, true] {
            let start = if direct { samples - live } else { 2 };
            let rows = StepRows {
                rows: live,
                start,
                direct,
            };
            let (images, order, labels, params, layer) =
                fused_data(samples, inputs, fan_out, start + capacity, i as u64);
            let what = format!("{samples}x{inputs}x{fan_out} {live}/{capacity} direct {direct}");
            // The composition: gather, then the reference twins on the live rows.
            let mut x = vec![f64::NAN; capacity * inputs];
            gather(&images, &order, &mut x, inputs, capacity, rows);
            for r in 0..capacity {
                let want: Vec<f64> = if r < live {
                    let s = rows.sample(&order, r);
                    images[s * inputs..(s + 1) * inputs]
                        .iter()
                        .map(|&p| normalise(p) as f64)
                        .collect()
                } else {
                    vec![0.0; inputs]
                };
                assert_eq!(x[r * inputs..(r + 1) * inputs], want[..], "gather row {r}");
            }
            let xl = &x[..live * inputs];
            let (w, b) = (&params[layer.weight_range()], &params[layer.bias_range()]);
            let mut pre = vec![0.0f64; capacity * fan_out];
            matmul(xl, w, &mut pre[..live * fan_out], live, inputs, fan_out);
            bias_add(&mut pre, b, live, fan_out);
            for relu_on in [false, true] {
                let mut want = pre.clone();
                if relu_on {
                    relu(&mut want);
                }
                let mut act = vec![f64::NAN; capacity * fan_out];
                forward_gather(
                    &images, &order, &params, &mut act, &layer, capacity, rows, relu_on, None,
                );
                assert_close_1e_12(
                    &format!("forward_gather relu {relu_on} {what}"),
                    &act,
                    &want,
                );
            }
            // With dropout: the same, then `dropout` over the live rows.
            let run_dropout = Dropout::new(&[0.5], 9);
            let drop = run_dropout.step(4).unwrap();
            let mut want = pre.clone();
            relu(&mut want);
            dropout(
                &mut want,
                live,
                fan_out,
                0,
                drop.key,
                drop.step,
                drop.layer(0),
            );
            let mut act = vec![f64::NAN; capacity * fan_out];
            forward_gather(
                &images,
                &order,
                &params,
                &mut act,
                &layer,
                capacity,
                rows,
                true,
                Some(&drop),
            );
            assert_close_1e_12(&format!("forward_gather+dropout {what}"), &act, &want);

            // dense_tail on the gathered x as the layer's input (k = inputs).
            let mut act = x.clone();
            relu(&mut act); // a ReLU output, with zeros for the mask
            let al = &act[..live * inputs];
            let row_labels: Vec<u32> = (0..live).map(|r| labels[rows.sample(&order, r)]).collect();
            let scale = 1.0 / live as f64;
            let mut logits = vec![0.0f64; live * fan_out];
            matmul(al, w, &mut logits, live, inputs, fan_out);
            bias_add(&mut logits, b, live, fan_out);
            let mut want_dl = vec![0.0f64; capacity * fan_out];
            let (loss, correct) =
                softmax_xent(&logits, &row_labels, &mut want_dl, live, fan_out, scale);
            let bad = xent_nonfinite(&logits, &row_labels, live, fan_out);
            let dl = &want_dl[..live * fan_out];
            let mut want_dw = vec![0.0f64; inputs * fan_out];
            matmul_at_b(al, dl, &mut want_dw, inputs, live, fan_out);
            let mut want_db = vec![0.0f64; fan_out];
            bias_grad(dl, &mut want_db, live, fan_out);
            let mut want_dx = vec![0.0f64; capacity * inputs];
            matmul_a_bt(dl, w, &mut want_dx[..live * inputs], live, fan_out, inputs);
            relu_backward(&mut want_dx[..live * inputs], al);
            let mut grads = vec![f64::NAN; params.len()];
            let mut dlogits = vec![f64::NAN; capacity * fan_out];
            let mut dx = vec![f64::NAN; capacity * inputs];
            let stat = dense_tail(
                &act,
                &params,
                &labels,
                &order,
                &mut grads,
                &mut dlogits,
                Some(&mut dx),
                &layer,
                capacity,
                rows,
                scale,
                0.0,
            );
            assert_close_1e_12(&format!("dense_tail dlogits {what}"), &dlogits, &want_dl);
            assert_close_1e_12(
                &format!("dense_tail dW {what}"),
                &grads[layer.weight_range()],
                &want_dw,
            );
            assert_close_1e_12(
                &format!("dense_tail db {what}"),
                &grads[layer.bias_range()],
                &want_db,
            );
            assert_close_1e_12(&format!("dense_tail dx {what}"), &dx, &want_dx);
            assert_close_1e_12(&format!("dense_tail loss {what}"), &[stat.loss], &[loss]);
            assert_eq!((stat.correct, stat.nonfinite), (correct, bad), "{what}");

            // grad_update_gather with dz = dlogits-shaped values over the layer's outputs.
            let dz: Vec<f64> = (0..capacity * fan_out)
                .map(|i| ((i * 7919) % 201) as f64 / 1000.0 - 0.1)
                .collect();
            check_grad_update(&images, &order, &params, &layer, rows, xl, &dz, &what);
        }
    }
}

#[test]
fn dense_tail_counts_rows_with_non_finite_logits() {
    let (images, order, labels, mut params, layer) = fused_data(10, 6, 4, 8, 3);
    let rows = StepRows {
        rows: 5,
        start: 0,
        direct: false,
    };
    let mut x = vec![0.0f64; 8 * 6];
    gather(&images, &order, &mut x, 6, 8, rows);
    let run = |params: &[f64]| {
        let mut grads = vec![0.0; params.len()];
        let mut dl = vec![0.0; 8 * 4];
        dense_tail(
            &x, params, &labels, &order, &mut grads, &mut dl, None, &layer, 8, rows, 0.2, 0.0,
        )
    };
    assert_eq!(run(&params).nonfinite, 0);
    // One infinite weight reaches every row whose pixel 0 is not 0 (as +inf) or is 0 (as NaN).
    params[layer.weight + 2] = f64::INFINITY;
    assert_eq!(run(&params).nonfinite, 5);
}

#[test]
fn reference_and_tuned_products_match_the_triple_loop_rel_1e_12() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    // Tall (row split), wide (column split) and odd shapes, all above the parallel threshold.
    for (m, k, n) in [
        (784, 32, 128),
        (32, 784, 128),
        (33, 785, 129),
        (3, 70_001, 5),
    ] {
        let a: Vec<f64> = (0..m * k)
            .map(|i| ((i * 7919) % 1000) as f64 / 1000.0 - 0.5)
            .collect();
        let b: Vec<f64> = (0..k * n)
            .map(|i| ((i * 104_729) % 1000) as f64 / 1000.0 - 0.5)
            .collect();
        let at: Vec<f64> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect(); // (k, m)
        let bt: Vec<f64> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect(); // (n, k)
        let reference = naive(m, k, n, |i, p| a[i * k + p], |p, j| b[p * n + j]);
        let mut c = vec![f64::NAN; m * n];
        let check = |c: &[f64], what: &str| {
            let err: f64 = c
                .iter()
                .zip(&reference)
                .map(|(x, y)| (x - y).powi(2))
                .sum::<f64>()
                .sqrt();
            let norm: f64 = reference.iter().map(|y| y * y).sum::<f64>().sqrt();
            assert!(
                err / norm < 1e-12,
                "{what} {m}x{k}x{n}: relative error {:e} >= 1e-12",
                err / norm
            );
        };
        matmul(&a, &b, &mut c, m, k, n);
        check(&c, "reference matmul");
        c.fill(f64::NAN);
        matmul_at_b(&at, &b, &mut c, m, k, n);
        check(&c, "reference matmul_at_b");
        c.fill(f64::NAN);
        matmul_a_bt(&a, &bt, &mut c, m, k, n);
        check(&c, "reference matmul_a_bt");
        c.fill(f64::NAN);
        // The tuned products split across the two threads of the pool.
        pool.install(|| Tuned::matmul(&a, &b, &mut c, m, k, n));
        check(&c, "tuned matmul");
        c.fill(f64::NAN);
        pool.install(|| Tuned::matmul_at_b(&at, &b, &mut c, m, k, n));
        check(&c, "tuned matmul_at_b");
        c.fill(f64::NAN);
        pool.install(|| Tuned::matmul_a_bt(&a, &bt, &mut c, m, k, n));
        check(&c, "tuned matmul_a_bt");
    }
}

#[test]
fn transposed_matmuls_agree_with_the_plain_one() {
    // a (2, 3), b (3, 2)
    let a = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0];
    let b = [7.0f64, 8.0, 9.0, 10.0, 11.0, 12.0];
    let mut c = [0.0; 4];
    matmul(&a, &b, &mut c, 2, 3, 2);
    assert_eq!(c, [58.0, 64.0, 139.0, 154.0]);
    let at = [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0]; // a^T, (3, 2)
    let mut c2 = [0.0; 4];
    matmul_at_b(&at, &b, &mut c2, 2, 3, 2);
    assert_eq!(c2, c);
    let bt = [7.0f64, 9.0, 11.0, 8.0, 10.0, 12.0]; // b^T, (2, 3)
    let mut c3 = [0.0; 4];
    matmul_a_bt(&a, &bt, &mut c3, 2, 3, 2);
    assert_eq!(c3, c);
}

#[test]
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn flush_denormals_flushes_on_its_thread_only() {
    let flushed = std::thread::spawn(|| {
        let before = flushes_denormals();
        flush_denormals();
        (before, flushes_denormals())
    })
    .join()
    .unwrap();
    assert_eq!(
        flushed,
        (false, true),
        "(before, after) on the flushing thread"
    );
    assert!(
        !std::thread::spawn(flushes_denormals).join().unwrap(),
        "a fresh thread keeps denormals"
    );
}

#[test]
fn the_vectorised_adam_is_bit_for_bit_the_scalar_loop() {
    // f32::adam_slice takes the widest vectors this processor has; the reference is the plain loop.
    let n = 1037;
    let g: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 2001) as f32 * 1e-4 - 0.1)
        .collect();
    let start = |scale: f32| -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 104_729) % 997) as f32 * scale)
            .collect()
    };
    let (mut p1, mut m1, mut v1) = (start(1e-3), start(1e-5), start(1e-9));
    let (mut p2, mut m2, mut v2) = (p1.clone(), m1.clone(), v1.clone());
    for _ in 0..3 {
        f32::adam_slice(&mut p1, &g, &mut m1, &mut v1, 1e-3, 0.9, 0.999, 1e-7);
        adam(&mut p2, &g, &mut m2, &mut v2, 1e-3, 0.9, 0.999, 1e-7);
    }
    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&p1), bits(&p2), "params");
    assert_eq!(bits(&m1), bits(&m2), "m");
    assert_eq!(bits(&v1), bits(&v2), "v");
}

/// `grad_update_gather` and `grad_update_gathered` against `matmul_at_b`, `bias_grad` and
/// `update_on_layer` in turn, with every optimizer's update as the fused kernels apply it.
#[allow(clippy::too_many_arguments)]
fn check_grad_update(
    images: &[u8],
    order: &[u32],
    params: &[f64],
    layer: &LayerOffsets,
    rows: StepRows,
    xl: &[f64],
    dz: &[f64],
    what: &str,
) {
    let (inputs, fan_out, live) = (layer.fan_in, layer.fan_out, rows.rows);
    let optimizers = [
        OptimizerConfig::default(),
        OptimizerConfig::Sgd(SgdConfig {
            momentum: 0.9,
            nesterov: true,
            ..SgdConfig::default()
        }),
        OptimizerConfig::Rmsprop(RmspropConfig {
            momentum: 0.5,
            ..RmspropConfig::default()
        }),
    ];
    for opt in &optimizers {
        let step = UpdateStep::<f64>::new(opt, 3);
        let what = format!("{what} {}", opt.kind().name());
        let m0: Vec<f64> = params.iter().map(|p| p * 0.01).collect();
        let v0: Vec<f64> = params.iter().map(|p| p * p * 1e-4).collect();
        let mut g = vec![0.0f64; params.len()];
        matmul_at_b(
            xl,
            &dz[..live * fan_out],
            &mut g[layer.weight_range()],
            inputs,
            live,
            fan_out,
        );
        bias_grad(
            &dz[..live * fan_out],
            &mut g[layer.bias_range()],
            live,
            fan_out,
        );
        let (mut wp, mut wm, mut wv) = (params.to_vec(), m0.clone(), v0.clone());
        update_on_layer(&mut wp, &g, &mut wm, &mut wv, layer, step);
        let (m0_tex, v0_tex) = (m0.clone(), v0.clone());
        let (mut p, mut m, mut v) = (params.to_vec(), m0, v0);
        grad_update_gather(images, order, dz, &mut p, &mut m, &mut v, layer, rows, step);
        assert_close_1e_12(&format!("grad_update_gather params {what}"), &p, &wp);
        assert_close_1e_12(&format!("grad_update_gather m {what}"), &m, &wm);
        assert_close_1e_12(&format!("grad_update_gather v {what}"), &v, &wv);
        let (mut p, mut m, mut v) = (params.to_vec(), m0_tex.clone(), v0_tex.clone());
        grad_update_gathered(xl, dz, &mut p, &mut m, &mut v, layer, rows, step);
        assert_close_1e_12(&format!("grad_update_gathered params {what}"), &p, &wp);
        assert_close_1e_12(&format!("grad_update_gathered m {what}"), &m, &wm);
        assert_close_1e_12(&format!("grad_update_gathered v {what}"), &v, &wv);
    }
}
