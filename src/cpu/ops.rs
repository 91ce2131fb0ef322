//! The CPU twins of the WGSL kernels' building blocks, named like the shader entry points and as plain
//! loops: products, bias, ReLU, softmax cross-entropy, Adam. The fused kernels' twins are in
//! `fused.rs`, tested against the composition of these (tests.rs).

use super::Real;
use super::real::adam_loop;

/// `c (m, n) = a (m, k) · b (k, n)`. Forward of a dense layer. Plain loops, i-p-j: each row of `c`
/// accumulates the rows of `b` in order of p (the fast path's products are `fast::Tuned`).
pub fn matmul<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize) {
    for i in 0..m {
        let row = &mut c[i * n..(i + 1) * n];
        row.fill(T::default());
        for p in 0..k {
            let aip = a[i * k + p];
            for (cj, &bj) in row.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                *cj += aip * bj;
            }
        }
    }
}

/// `c (m, n) = a (k, m)^T · b (k, n)`. The weight gradient `X^T · dZ`. Plain loops, as `matmul`.
pub fn matmul_at_b<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize) {
    for i in 0..m {
        let row = &mut c[i * n..(i + 1) * n];
        row.fill(T::default());
        for p in 0..k {
            let api = a[p * m + i];
            for (cj, &bj) in row.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                *cj += api * bj;
            }
        }
    }
}

/// `c (m, n) = a (m, k) · b (n, k)^T`. The input gradient `dZ · W^T`. Plain loops: each element is
/// one dot product in order of p.
pub fn matmul_a_bt<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize) {
    for i in 0..m {
        let ai = &a[i * k..(i + 1) * k];
        for j in 0..n {
            let mut acc = T::default();
            for (&x, &y) in ai.iter().zip(&b[j * k..(j + 1) * k]) {
                acc += x * y;
            }
            c[i * n + j] = acc;
        }
    }
}

/// `y (rows, cols) += bias (cols)`, per row.
pub fn bias_add<T: Real>(y: &mut [T], bias: &[T], rows: usize, cols: usize) {
    for row in y[..rows * cols].chunks_exact_mut(cols) {
        for (v, &b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

/// `y = y if y > 0 else 0` in place: anything not greater than 0, NaN included, becomes 0, exactly as
/// the WGSL twins do (`select(0, v, v > 0)` in matmul.wgsl, the bit-pattern test in gather.wgsl). One
/// rule on every device; a diverging run still shows up in the loss, through the logits.
pub fn relu<T: Real>(y: &mut [T]) {
    let zero = T::default();
    for v in y {
        *v = if *v > zero { *v } else { zero };
    }
}

/// `dy = dy * (y > 0)` in place, where `y` is the ReLU's output. Zero where the unit was off, which is
/// also the (sub)gradient Keras and PyTorch take at exactly 0; zero where `y` is NaN, as in the WGSL
/// masks (`relu` never outputs NaN, so this only matters for inputs that did not come from it).
pub fn relu_backward<T: Real>(dy: &mut [T], y: &[T]) {
    let zero = T::default();
    for (d, &a) in dy.iter_mut().zip(y) {
        *d = if a > zero { *d } else { zero };
    }
}

/// `db (cols) = sum over rows of dy (rows, cols)`: the bias gradient.
pub fn bias_grad<T: Real>(dy: &[T], db: &mut [T], rows: usize, cols: usize) {
    db[..cols].fill(T::default());
    for row in dy[..rows * cols].chunks_exact(cols) {
        for (d, &v) in db.iter_mut().zip(row) {
            *d += v;
        }
    }
}

/// Sparse softmax cross-entropy from logits, over `rows` samples of `cols` classes.
///
/// Writes `dlogits = (softmax - onehot) * grad_scale` (the caller passes `1 / batch` for the mean loss)
/// and returns the summed loss and the number of rows whose argmax (first maximum) equals the label.
/// Subtracting the row maximum before `exp` keeps logits of +-1000 finite; the loss uses the
/// log-sum-exp form `lse - z[label]` rather than `-ln(softmax)` so it never takes `ln(0)`.
pub fn softmax_xent<T: Real>(
    logits: &[T],
    labels: &[u32],
    dlogits: &mut [T],
    rows: usize,
    cols: usize,
    grad_scale: T,
) -> (T, u32) {
    let mut loss = T::default();
    let mut correct = 0;
    for r in 0..rows {
        let z = &logits[r * cols..(r + 1) * cols];
        let label = labels[r] as usize;
        let (mut arg, mut max) = (0, z[0]);
        for (j, &v) in z.iter().enumerate().skip(1) {
            if v > max {
                (arg, max) = (j, v);
            }
        }
        correct += (arg == label) as u32;
        let mut sum = T::default();
        for &v in z {
            sum += (v - max).exp();
        }
        let lse = max + sum.ln();
        loss += lse - z[label];
        let d = &mut dlogits[r * cols..(r + 1) * cols];
        for j in 0..cols {
            let p = (z[j] - lse).exp();
            let onehot = if j == label {
                T::from_f64(1.0)
            } else {
                T::default()
            };
            d[j] = (p - onehot) * grad_scale;
        }
    }
    (loss, correct)
}

/// Row-wise softmax of `logits (rows, cols)` into `probs`, max-subtracted. What `predict` returns.
pub fn softmax<T: Real>(logits: &[T], probs: &mut [T], rows: usize, cols: usize) {
    for (z, p) in logits[..rows * cols]
        .chunks_exact(cols)
        .zip(probs.chunks_exact_mut(cols))
    {
        let max = z
            .iter()
            .copied()
            .fold(z[0], |a, b| if b > a { b } else { a });
        let mut sum = T::default();
        for (pj, &zj) in p.iter_mut().zip(z) {
            *pj = (zj - max).exp();
            sum += *pj;
        }
        for pj in p.iter_mut() {
            *pj = *pj / sum;
        }
    }
}

/// Keras' Adam update over a flat vector. `alpha` is the bias-corrected step from [`adam_alpha`]:
/// `m += (g - m)(1 - b1)`, `v += (g^2 - v)(1 - b2)`, `p -= alpha m / (sqrt(v) + eps)`.
#[allow(clippy::too_many_arguments)]
pub fn adam<T: Real>(
    params: &mut [T],
    grads: &[T],
    m: &mut [T],
    v: &mut [T],
    alpha: T,
    beta1: T,
    beta2: T,
    epsilon: T,
) {
    let n = params.len();
    assert!(
        grads.len() == n && m.len() == n && v.len() == n,
        "adam: params, grads, m and v differ in length"
    );
    adam_loop(params, grads, m, v, alpha, beta1, beta2, epsilon);
}

/// The bias-corrected step size of Adam's step `t` (1-based): `lr sqrt(1 - b2^t) / (1 - b1^t)`.
/// Computed on the host in f64 and handed to both the CPU and the GPU update.
pub fn adam_alpha(lr: f64, beta1: f64, beta2: f64, t: u64) -> f64 {
    let t = t as i32;
    lr * (1.0 - beta2.powi(t)).sqrt() / (1.0 - beta1.powi(t))
}

/// Whether `x` is infinite or NaN. The WGSL twins test the exponent bits, since NaN comparisons are
/// undefined under fast math (Metal); for f32 and f64 both tests agree.
pub(super) fn nonfinite<T: Real>(x: T) -> bool {
    !x.to_f64().is_finite()
}
