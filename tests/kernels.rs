//! Every WGSL entry point (and each op fused into a matmul epilogue) against its CPU twin on the shape
//! ladder 1x1x1, 7x7x7, T-1/T/T+1 around the tile T, 33x785x129, 32x784x128, 32x128x10, in all three
//! layouts, with NaN in every padding lane and in every output before the run. Tolerances
//! `|gpu - cpu| <= atol + rtol |cpu|` are in the test names. The buffer-path kernels (gather,
//! forward_gather, dense_tail, grad_update_gather, the range updates) run on steps drawn from a resident split of u8
//! images through a shuffled order or in split order, with partial batches and odd row lengths. Skips
//! without an adapter unless FMNIST_REQUIRE_GPU=1.

mod common;

use fmnist::check::compare;
use fmnist::gpu::harness::{Harness, Layout};
use fmnist::gpu::kernels::{MM_TILE, TEX_TILE};
use fmnist::gpu::selftest;

fn harness(test: &str) -> Option<Harness> {
    common::gpu_or_skip(test).map(Harness::new)
}

#[test]
fn ladder_covers_the_tile_edges() {
    let ladder = selftest::shape_ladder();
    for n in [
        1,
        7,
        MM_TILE - 1,
        MM_TILE,
        MM_TILE + 1,
        TEX_TILE - 1,
        TEX_TILE,
        TEX_TILE + 1,
    ] {
        assert!(ladder.contains(&(n, n, n)), "missing {n}x{n}x{n}");
    }
    assert!(ladder.contains(&(33, 785, 129)));
    assert!(ladder.contains(&(32, 784, 128)));
    assert!(ladder.contains(&(32, 128, 10)));
}

#[test]
fn matmuls_bias_relu_and_bias_grad_match_cpu_twins_atol1e5_rtol1e4() {
    pollster::block_on(async {
        let Some(h) = harness("matmuls") else { return };
        let mut cases = Vec::new();
        for s in selftest::shape_ladder() {
            cases.extend(selftest::matmul_cases(&h, s, 11).await.unwrap());
        }
        // Seven buffer-kernel checks, four texture-variant checks and mm_nt's dropout mask on both per
        // shape.
        assert_eq!(cases.len(), 13 * selftest::shape_ladder().len());
        common::assert_all_pass("matmul ladder", &cases);
    })
}

#[test]
fn both_tails_stay_finite_and_match_at_logits_of_plus_minus_1000_atol1e5_rtol1e4() {
    pollster::block_on(async {
        let Some(h) = harness("dense_tail spread") else {
            return;
        };
        let mut cases = Vec::new();
        for (inputs, classes, cap, rows, spread) in [(7, 3, 7, 7, 1000.0), (16, 10, 130, 129, 20.0)]
        {
            let case = StepCase::new(inputs, classes, cap, rows, false, 5);
            for kernel in [Kernel::DenseTail, Kernel::DenseTailTex] {
                cases.extend(
                    selftest::dense_tail_spread_case(&h, kernel, &case, classes, spread, 5)
                        .await
                        .unwrap(),
                );
            }
        }
        common::assert_all_pass("dense_tail spread", &cases);
    })
}

fn rand_seed(s: u64) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    rand_chacha::ChaCha8Rng::seed_from_u64(s)
}

#[test]
fn texture_updates_of_every_optimizer_match_cpu_twins_atol1e6_rtol1e5() {
    pollster::block_on(async {
        // adam_tex, sgd_tex and rmsprop_tex, with and without momentum.
        let Some(h) = harness("adam_tex, sgd_tex, rmsprop_tex") else {
            return;
        };
        let mut cases = Vec::new();
        for opt in selftest::ladder_optimizers() {
            for n in [4, 64, 1000, 101_776] {
                cases.extend(selftest::update_tex_case(&h, &opt, n, 3).await.unwrap());
            }
        }
        for entry in ["adam_tex[", "sgd_tex[", "rmsprop_tex["] {
            assert!(cases.iter().any(|c| c.kernel.starts_with(entry)), "{entry}");
        }
        common::assert_all_pass("texture updates", &cases);
    })
}

#[test]
fn a_wrong_result_is_caught_with_its_index_and_values() {
    // The comparison itself must be able to fail: a NaN or an off value is reported with its index.
    let c = compare(&[1.0, f32::NAN, 3.0], &[1.0, 2.0, 3.0], (1e-6, 1e-5));
    assert!(!c.pass());
    assert_eq!(c.worst, 1);
    let c = compare(&[1.0, 2.001, 3.0], &[1.0, 2.0, 3.0], (1e-6, 1e-5));
    assert!(
        !c.pass() && c.worst == 1 && c.gpu == 2.001 && c.cpu == 2.0,
        "{}",
        c.describe()
    );
    assert!(compare(&[1.0, 2.0000005], &[1.0, 2.0], (1e-6, 1e-5)).pass());
}

#[test]
fn matmul_ignores_nan_padding_in_every_layout_atol1e5_rtol1e4() {
    pollster::block_on(async {
        // k = 5 and n = 6 leave 3 and 2 padding lanes per row, all NaN; none may reach a stored element.
        let Some(h) = harness("nan padding") else {
            return;
        };
        let mut r = rand_seed(9);
        let (m, n, k) = (5, 6, 5);
        let a = selftest::random(m * k, -1.0, 1.0, &mut r);
        let b = selftest::random(k * n, -1.0, 1.0, &mut r);
        let mut want = vec![0.0f32; m * n];
        fmnist::cpu::matmul(&a, &b, &mut want, m, k, n);
        let got = h
            .matmul(Layout::Nn, m, n, k, &a, &b, 0, None, None)
            .await
            .unwrap();
        assert!(compare(&got.c, &want, (1e-5, 1e-4)).pass());
        // The same product through the other two layouts, with operands transposed on the host.
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let got = h
            .matmul(Layout::Tn, m, n, k, &at, &b, 0, None, None)
            .await
            .unwrap();
        assert!(compare(&got.c, &want, (1e-5, 1e-4)).pass());
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let got = h
            .matmul(Layout::Nt, m, n, k, &a, &bt, 0, None, None)
            .await
            .unwrap();
        assert!(compare(&got.c, &want, (1e-5, 1e-4)).pass());
    })
}

// ---- The buffer path: gather, forward_gather, dense_tail, grad_update_gather, adam/sgd/rmsprop ----

use fmnist::gpu::harness::{ParamsPacking, StepCase};
use fmnist::gpu::kernels::{self, Kernel};

#[test]
fn pixel_scale_literals_in_the_shaders_have_the_bits_of_cpu_pixel_scale() {
    for (file, src) in [
        ("gather.wgsl", kernels::GATHER_WGSL),
        ("optimizers.wgsl", kernels::OPTIMIZERS_WGSL),
    ] {
        pixel_scale_literal_is_cpu_pixel_scale(file, src);
    }
}

fn pixel_scale_literal_is_cpu_pixel_scale(file: &str, src: &str) {
    // `const PIXEL_SCALE: f32 = 0x<hex digits>.<hex digits>p<exp>f;`: an exact hexadecimal literal.
    let at = src
        .find("const PIXEL_SCALE: f32 = ")
        .unwrap_or_else(|| panic!("PIXEL_SCALE in {file}"));
    let lit = src[at..].split('=').nth(1).unwrap();
    let lit = lit[..lit.find(';').unwrap()].trim();
    let body = lit
        .strip_prefix("0x")
        .and_then(|l| l.strip_suffix('f'))
        .unwrap_or_else(|| panic!("{file}: not a hexadecimal f32 literal: {lit}"));
    let (mantissa, exp) = body.split_once('p').expect("a binary exponent");
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = u64::from_str_radix(&format!("{int}{frac}"), 16).unwrap();
    let exp: i32 = exp.parse().unwrap();
    // digits * 2^(exp - 4 * fraction digits), exact in f64 for a literal this short.
    let value = digits as f64 * 2f64.powi(exp - 4 * frac.len() as i32);
    assert_eq!(
        value as f32 as f64, value,
        "{file}: {lit} is not exactly an f32"
    );
    assert_eq!(
        (value as f32).to_bits(),
        fmnist::cpu::PIXEL_SCALE.to_bits(),
        "{file}: {lit} vs cpu::PIXEL_SCALE"
    );
}

#[test]
fn forward_gather_exposes_at_least_2048_invocations_for_32x784x128() {
    let groups = kernels::forward_gather_groups(32, 128);
    let n = Kernel::ForwardGather.invocations(groups);
    assert!(
        n >= 2048,
        "forward_gather runs {n} invocations ({groups:?} groups)"
    );
    // The first layer's weight gradient is not starved either.
    let n = Kernel::GradUpdateGather.invocations(kernels::grad_update_gather_groups(784, 128));
    assert!(n >= 2048, "grad_update_gather runs {n} invocations");
}

/// Step cases over shapes, odd row lengths, partial batches, both row orders.
fn step_cases() -> Vec<(StepCase, usize, bool)> {
    let mut out = Vec::new();
    let mut shapes = selftest::shape_ladder();
    shapes.extend([(8, 7, 5), (32, 785, 128)]);
    for s in shapes {
        for (case, flag) in selftest::step_cases(s, 21) {
            out.push((case, s.2, flag));
        }
    }
    for (inputs, classes, cap, rows, direct) in [
        (7, 5, 8, 5, false),
        (784, 128, 32, 31, false),
        (785, 10, 32, 31, true),
    ] {
        out.push((
            StepCase::new(inputs, classes, cap, rows, direct, 22),
            classes,
            !direct,
        ));
    }
    out
}

#[test]
fn gather_matches_cpu_twin_bit_for_bit() {
    pollster::block_on(async {
        let Some(h) = harness("gather") else { return };
        let mut cases = Vec::new();
        for (case, _, flag) in step_cases() {
            cases.extend(
                selftest::gather_case(&h, &case, if flag { 0 } else { 8 })
                    .await
                    .unwrap(),
            );
        }
        common::assert_all_pass("gather", &cases);
    })
}

#[test]
fn forward_gather_matches_cpu_twin_atol1e5_rtol1e4() {
    forward_gather_kernel_matches_its_twin(Kernel::ForwardGather);
}

#[test]
fn forward_gather_tex_matches_cpu_twin_atol1e5_rtol1e4() {
    forward_gather_kernel_matches_its_twin(Kernel::ForwardGatherTex);
}

fn forward_gather_kernel_matches_its_twin(kernel: Kernel) {
    pollster::block_on(async {
        let name = kernel.entry_point();
        let Some(h) = harness(name) else {
            return;
        };
        let mut cases = Vec::new();
        for (case, fan_out, flag) in step_cases() {
            cases.extend(
                selftest::forward_gather_case(&h, kernel, &case, fan_out, flag, 23)
                    .await
                    .unwrap(),
            );
        }
        assert!(cases.len() >= 10, "{} {name} checks", cases.len());
        common::assert_all_pass(name, &cases);
    })
}

#[test]
fn dense_tail_matches_cpu_twin_atol1e5_rtol1e4() {
    pollster::block_on(async {
        let Some(h) = harness("dense_tail") else {
            return;
        };
        let mut cases = Vec::new();
        for (case, classes, flag) in step_cases() {
            cases.extend(
                selftest::dense_tail_case(&h, Kernel::DenseTail, &case, classes, flag, 24)
                    .await
                    .unwrap(),
            );
        }
        // A capacity past the workgroup (256 rows), so every phase loops.
        let big = StepCase::new(20, 10, 300, 290, false, 25);
        cases.extend(
            selftest::dense_tail_case(&h, Kernel::DenseTail, &big, 10, true, 25)
                .await
                .unwrap(),
        );
        common::assert_all_pass("dense_tail", &cases);
    })
}

/// The texture path's tail on the same step cases up to its 16 classes, a k that is not a multiple of
/// its 16-row dW groups, and capacities past its 32-invocation workgroup (every loop wraps); with and
/// without Adam applied to its layer.
#[test]
fn dense_tail_tex_matches_cpu_twin_atol1e5_rtol1e4() {
    pollster::block_on(async {
        let Some(h) = harness("dense_tail_tex") else {
            return;
        };
        let mut cases = Vec::new();
        for (case, classes, flag) in step_cases() {
            if classes <= kernels::TAIL_TEX_MAX_CLASSES {
                cases.extend(
                    selftest::dense_tail_case(&h, Kernel::DenseTailTex, &case, classes, flag, 24)
                        .await
                        .unwrap(),
                );
            }
        }
        for (k, classes, cap, rows, grad) in [
            (20, 10, 300, 290, true),
            (130, 16, 33, 33, true),
            (61, 13, 70, 40, false),
            (5, 1, 64, 1, true),
        ] {
            let case = StepCase::new(k, classes, cap, rows, false, 25);
            cases.extend(
                selftest::dense_tail_case(&h, Kernel::DenseTailTex, &case, classes, grad, 25)
                    .await
                    .unwrap(),
            );
            // The same tail updating its layer by every optimizer (p, m, v after the step, padding kept).
            for opt in selftest::ladder_optimizers() {
                cases.extend(
                    selftest::dense_tail_tex_update_case(&h, &opt, &case, classes, 26)
                        .await
                        .unwrap(),
                );
            }
        }
        assert!(cases.len() >= 80, "{} dense_tail_tex checks", cases.len());
        common::assert_all_pass("dense_tail_tex", &cases);
    })
}

#[test]
fn grad_update_gather_tex_matches_cpu_twin_and_keeps_padding_atol1e5_rtol1e4() {
    pollster::block_on(async {
        let Some(h) = harness("grad_update_gather_tex") else {
            return;
        };
        let mut cases = Vec::new();
        for opt in selftest::ladder_optimizers() {
            for (case, fan_out, _) in step_cases() {
                cases.extend(
                    selftest::grad_update_gather_tex_case(&h, &opt, &case, fan_out, 27)
                        .await
                        .unwrap(),
                );
            }
        }
        assert!(
            cases.len() >= 100,
            "{} grad_update_gather_tex checks",
            cases.len()
        );
        common::assert_all_pass("grad_update_gather_tex", &cases);
    })
}

#[test]
fn grad_update_gather_matches_cpu_twin_atol1e5_rtol1e4() {
    pollster::block_on(async {
        let Some(h) = harness("grad_update_gather") else {
            return;
        };
        let mut cases = Vec::new();
        for opt in selftest::ladder_optimizers() {
            for (case, fan_out, _) in step_cases() {
                cases.extend(
                    selftest::grad_update_gather_case(&h, &opt, &case, fan_out, 26)
                        .await
                        .unwrap(),
                );
            }
        }
        common::assert_all_pass("grad_update_gather", &cases);
    })
}

#[test]
fn range_updates_of_every_optimizer_match_cpu_twins_atol1e6_rtol1e5() {
    pollster::block_on(async {
        // adam, sgd and rmsprop over a range of the storage buffers, the rest left as it was.
        let Some(h) = harness("adam, sgd, rmsprop (buffer)") else {
            return;
        };
        let mut cases = Vec::new();
        for (n, off4, len4) in [
            (4, 0, 1),
            (64, 0, 16),
            (1000, 3, 200),
            (101_776, 23_000, 2_064),
        ] {
            for opt in selftest::ladder_optimizers() {
                cases.extend(
                    selftest::update_range_case(&h, &opt, n, off4, len4, 27)
                        .await
                        .unwrap(),
                );
            }
        }
        common::assert_all_pass("range updates", &cases);
    })
}

#[test]
fn dense_tail_counts_non_finite_logits() {
    pollster::block_on(async {
        let Some(h) = harness("dense_tail non-finite") else {
            return;
        };
        let (k, classes) = (12, 10);
        let case = StepCase::new(k, classes, 8, 6, false, 28);
        let mut r = rand_seed(28);
        let act = selftest::random(8 * k, 0.1, 1.0, &mut r);
        let b = selftest::random(classes, -0.5, 0.5, &mut r);
        for (bad, want) in [(None, 0), (Some(f32::INFINITY), 6), (Some(f32::NAN), 6)] {
            let mut w = selftest::random(k * classes, -0.3, 0.3, &mut r);
            if let Some(x) = bad {
                w[3 * classes + 4] = x; // column 4: every live row's logit 4
            }
            let out = h
                .dense_tail(&case, &act, &w, &b, k, classes, true)
                .await
                .unwrap();
            assert_eq!(out.stat.nonfinite, want, "weight {bad:?}: {:?}", out.stat);
            let mut params = w.clone();
            params.extend(&b);
            let layer = ParamsPacking::new(k, classes).cpu_layer();
            let (mut grads, mut dl) = (vec![0.0; params.len()], vec![0.0; 8 * classes]);
            let twin = fmnist::cpu::dense_tail(
                &act,
                &params,
                &case.labels,
                &case.order,
                &mut grads,
                &mut dl,
                None,
                &layer,
                8,
                case.rows,
                1.0 / 6.0,
                0.0,
            );
            assert_eq!(twin.nonfinite, want, "cpu::dense_tail, weight {bad:?}");
        }
    })
}

#[test]
fn rows_past_a_partial_batch_are_zero() {
    pollster::block_on(async {
        let Some(h) = harness("partial batch") else {
            return;
        };
        let (inputs, hidden, classes, cap, rows) = (13, 9, 10, 8, 5);
        let case = StepCase::new(inputs, classes, cap, rows, false, 30);
        let mut r = rand_seed(30);
        let zero_past = |what: &str, v: &[f32], cols: usize| {
            assert!(
                v[rows * cols..].iter().all(|&x| x == 0.0),
                "{what}: rows past {rows} must be 0: {:?}",
                &v[rows * cols..]
            );
            assert!(
                v[..rows * cols].iter().all(|x| x.is_finite()),
                "{what}: live rows"
            );
        };
        let x = h.gather(&case, 16).await.unwrap();
        zero_past("gather", &x, 16);
        let w = selftest::random(inputs * hidden, -1.0, 1.0, &mut r);
        let b = selftest::random(hidden, -1.0, 1.0, &mut r);
        let act = h
            .forward_gather(&case, &w, &b, hidden, true, Default::default())
            .await
            .unwrap();
        zero_past("forward_gather", &act, hidden);
        let tail_case = StepCase::new(hidden, classes, cap, rows, false, 31);
        let w2 = selftest::random(hidden * classes, -0.5, 0.5, &mut r);
        let b2 = selftest::random(classes, -0.5, 0.5, &mut r);
        let out = h
            .dense_tail(&tail_case, &act, &w2, &b2, hidden, classes, true)
            .await
            .unwrap();
        zero_past("dense_tail dlogits", &out.dlogits, classes);
        assert!(
            out.dx[rows * hidden..].iter().all(|&x| x == 0.0),
            "dense_tail dZ"
        );
        assert_eq!(out.stat.nonfinite, 0, "{:?}", out.stat);
    })
}

#[test]
fn relu_maps_nan_to_zero_on_the_gpu_as_on_the_cpu() {
    pollster::block_on(async {
        let Some(h) = harness("relu NaN") else { return };
        // forward_gather: a NaN weight makes a whole column's pre-activation NaN.
        let (inputs, fan_out, cap) = (9, 6, 4);
        let case = StepCase::new(inputs, 2, cap, cap, false, 32);
        let mut r = rand_seed(32);
        let mut w = selftest::random(inputs * fan_out, -1.0, 1.0, &mut r);
        w[2 * fan_out + 1] = f32::NAN;
        let b = selftest::random(fan_out, -1.0, 1.0, &mut r);
        let act = h
            .forward_gather(&case, &w, &b, fan_out, true, Default::default())
            .await
            .unwrap();
        for row in 0..cap {
            assert_eq!(
                act[row * fan_out + 1].to_bits(),
                0,
                "forward_gather row {row}"
            );
        }
        let mut params = w.clone();
        params.extend(&b);
        let layer = ParamsPacking::new(inputs, fan_out).cpu_layer();
        let mut want = vec![f32::NAN; cap * fan_out];
        fmnist::cpu::forward_gather(
            &case.images,
            &case.order,
            &params,
            &mut want,
            &layer,
            cap,
            case.rows,
            true,
            None,
        );
        assert_eq!(want[fan_out + 1].to_bits(), 0, "cpu::forward_gather");
        // matmul's ReLU epilogue: a NaN bias.
        let x = selftest::random(cap * inputs, -1.0, 1.0, &mut r);
        let w = selftest::random(inputs * fan_out, -1.0, 1.0, &mut r);
        let mut bias = selftest::random(fan_out, -1.0, 1.0, &mut r);
        bias[3] = f32::NAN;
        use fmnist::gpu::kernels::{FLAG_BIAS, FLAG_RELU};
        let got = h
            .matmul(
                Layout::Nn,
                cap,
                fan_out,
                inputs,
                &x,
                &w,
                FLAG_BIAS | FLAG_RELU,
                Some(&bias),
                None,
            )
            .await
            .unwrap();
        let mut want = vec![0.0f32; cap * fan_out];
        fmnist::cpu::matmul(&x, &w, &mut want, cap, inputs, fan_out);
        fmnist::cpu::bias_add(&mut want, &bias, cap, fan_out);
        fmnist::cpu::relu(&mut want);
        for row in 0..cap {
            assert_eq!(
                got.c[row * fan_out + 3].to_bits(),
                0,
                "mm_nn+relu row {row}"
            );
            assert_eq!(want[row * fan_out + 3].to_bits(), 0, "cpu::relu row {row}");
        }
    })
}

#[test]
fn dropout_in_the_forward_epilogues_the_dropout_kernel_and_the_backward_scale_match_twins_atol1e5_rtol1e4()
 {
    pollster::block_on(async {
        // The same Philox masks on both devices: forward_gather(_tex)'s epilogue, `dropout` on deeper
        // layers (full and partial batches, rows past the step untouched) and dZ's dropout scale in both
        // tails and mm_nt(_tex).
        let Some(h) = harness("dropout") else {
            return;
        };
        let cases = selftest::dropout_ladder(&h, 31).await.unwrap();
        for kernel in [
            "forward_gather+relu+dropout",
            "forward_gather_tex+relu+dropout",
            "dropout",
        ] {
            assert!(
                cases.iter().any(|c| c.kernel.starts_with(kernel)),
                "{kernel}"
            );
        }
        common::assert_all_pass("dropout", &cases);
    })
}
