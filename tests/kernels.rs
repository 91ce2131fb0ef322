//! Every WGSL entry point (and each op fused into a matmul epilogue) against its CPU twin on the shape
//! ladder 1x1x1, 7x7x7, T-1/T/T+1 around the tile T, 33x785x129, 32x784x128, 32x128x10, in all three
//! layouts, with NaN in every padding lane and in every output before the run. Tolerances
//! `|gpu - cpu| <= atol + rtol |cpu|` are in the test names. Skips without an adapter unless
//! FMNIST_REQUIRE_GPU=1.

mod common;

use fmnist::gpu::kernels::{MM_TILE, TEX_TILE};
use fmnist::gpu::selftest::{self, Harness, Layout, compare};

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
    let Some(h) = harness("matmuls") else { return };
    let mut cases = Vec::new();
    for s in selftest::shape_ladder() {
        cases.extend(selftest::matmul_cases(&h, s, 11).unwrap());
    }
    // Seven buffer-kernel checks and four texture-variant checks per shape.
    assert_eq!(cases.len(), 11 * selftest::shape_ladder().len());
    common::assert_all_pass("matmul ladder", &cases);
}

#[test]
fn softmax_xent_matches_cpu_twin_atol1e6_rtol1e5() {
    let Some(h) = harness("softmax_xent") else {
        return;
    };
    let mut cases = Vec::new();
    for (rows, cap, cols, spread) in [
        (1, 1, 1, 1.0),
        (1, 1, 10, 5.0),
        (32, 32, 10, 5.0),
        (33, 40, 10, 5.0),
        (7, 7, 3, 1000.0),
        (130, 130, 10, 20.0),
    ] {
        cases.extend(selftest::softmax_case(&h, rows, cap, cols, spread, 5).unwrap());
    }
    common::assert_all_pass("softmax_xent", &cases);
}

#[test]
fn softmax_xent_zeroes_the_rows_past_a_partial_batch() {
    let Some(h) = harness("softmax_xent partial") else {
        return;
    };
    let (rows, cap, cols) = (3, 8, 10);
    let logits = selftest::random(cap * cols, -3.0, 3.0, &mut rand_seed(1));
    let labels = vec![1u32; cap];
    let (dz, _, _) = h.softmax_xent(&logits, &labels, rows, cap, cols).unwrap();
    assert!(
        dz[rows * cols..].iter().all(|&v| v == 0.0),
        "rows past {rows} must be 0: {:?}",
        &dz[rows * cols..]
    );
    assert!(dz[..rows * cols].iter().all(|v| v.is_finite() && *v != 0.0));
}

fn rand_seed(s: u64) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    rand_chacha::ChaCha8Rng::seed_from_u64(s)
}

#[test]
fn adam_matches_cpu_twin_atol1e6_rtol1e5() {
    let Some(h) = harness("adam") else { return };
    let mut cases = Vec::new();
    for n in [4, 64, 1000, 101_776] {
        cases.extend(selftest::adam_case(&h, n, 3).unwrap());
    }
    common::assert_all_pass("adam", &cases);
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
        .unwrap();
    assert!(compare(&got.c, &want, (1e-5, 1e-4)).pass());
    // The same product through the other two layouts, with operands transposed on the host.
    let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
    let got = h
        .matmul(Layout::Tn, m, n, k, &at, &b, 0, None, None)
        .unwrap();
    assert!(compare(&got.c, &want, (1e-5, 1e-4)).pass());
    let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
    let got = h
        .matmul(Layout::Nt, m, n, k, &a, &bt, 0, None, None)
        .unwrap();
    assert!(compare(&got.c, &want, (1e-5, 1e-4)).pass());
}
