//! The CPU twins of every WGSL kernel, named like the shader entry points, plus the MLP forward/backward
//! built from them. Generic over `Real` so the very same code runs in f64 for the gradient check
//! (tests/cpu_gradcheck.rs) and in f32 for training and as the reference of tests/kernels.rs.
//! Throughput is measured by benches/kernels.rs.

use std::ops::{Add, AddAssign, Div, Mul, Sub};

use crate::model::{LayerOffsets, ParamLayout};

/// The float operations the twins need; implemented for f32 (training) and f64 (gradient checks).
pub trait Real:
    Copy
    + Default
    + PartialOrd
    + Send
    + Sync
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + AddAssign
    + std::fmt::Debug
    + 'static
{
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    /// Adam's update on one core (`adam` splits the vector across cores and calls this per half).
    #[allow(clippy::too_many_arguments)]
    fn adam_slice(
        params: &mut [Self],
        grads: &[Self],
        m: &mut [Self],
        v: &mut [Self],
        alpha: Self,
        beta1: Self,
        beta2: Self,
        epsilon: Self,
    );

    /// `c (m, n) = op(a) (m, k) · op(b) (k, n)` with explicit row/column strides (in elements), so every
    /// transposed layout is a stride swap rather than a copy; `c` has row stride `rsc`, column stride 1.
    ///
    /// # Safety
    /// Every element the strides address must lie inside the allocation behind its pointer.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        c: *mut Self,
        rsc: isize,
    );
}

macro_rules! impl_real {
    ($t:ty, $gemm:path, $adam:path) => {
        impl Real for $t {
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn adam_slice(
                params: &mut [Self],
                grads: &[Self],
                m: &mut [Self],
                v: &mut [Self],
                alpha: Self,
                beta1: Self,
                beta2: Self,
                epsilon: Self,
            ) {
                $adam(params, grads, m, v, alpha, beta1, beta2, epsilon)
            }
            unsafe fn gemm_raw(
                m: usize,
                k: usize,
                n: usize,
                a: *const Self,
                rsa: isize,
                csa: isize,
                b: *const Self,
                rsb: isize,
                csb: isize,
                c: *mut Self,
                rsc: isize,
            ) {
                // SAFETY: forwarded from the caller's contract.
                unsafe { $gemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, 0.0, c, rsc, 1) }
            }
        }
    };
}
impl_real!(f32, matrixmultiply::sgemm, adam_f32);
impl_real!(f64, matrixmultiply::dgemm, adam_loop);

/// Adam in f32 with 8-wide AVX2 when the processor has it (chosen at run time, since the build targets
/// the x86-64 baseline): the square root and divide dominate, and AVX2 halves their count. The result is
/// bit for bit the scalar one (no fused multiply-add: Rust never contracts `a * b + c`).
#[allow(clippy::too_many_arguments)]
fn adam_f32(
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    alpha: f32,
    beta1: f32,
    beta2: f32,
    epsilon: f32,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        #[allow(clippy::too_many_arguments)]
        fn adam_avx2(
            params: &mut [f32],
            grads: &[f32],
            m: &mut [f32],
            v: &mut [f32],
            alpha: f32,
            beta1: f32,
            beta2: f32,
            epsilon: f32,
        ) {
            adam_loop(params, grads, m, v, alpha, beta1, beta2, epsilon)
        }
        // SAFETY: the processor was just checked to have AVX2.
        return unsafe { adam_avx2(params, grads, m, v, alpha, beta1, beta2, epsilon) };
    }
    adam_loop(params, grads, m, v, alpha, beta1, beta2, epsilon)
}

/// Below this many multiply-adds a product runs on one core: splitting costs more than it saves.
const PARALLEL_MIN_MACS: usize = 200_000;

/// A raw output pointer that two threads may hold while they write disjoint blocks.
struct SharedOut<T>(*mut T);
// SAFETY: `product` hands each thread a block of `c` that the other never touches.
unsafe impl<T> Send for SharedOut<T> {}
unsafe impl<T> Sync for SharedOut<T> {}
impl<T> SharedOut<T> {
    fn get(&self) -> *mut T {
        self.0
    }
}

/// `c (m, n) = op(a) · op(b)`, operands given with strides. Large products are split in two halves, run
/// on both cores: by rows of `c` when it is tall (the weight gradient, 784 x 128), by columns when it is
/// wide (the forward, 32 x 128), so that each thread packs only half of the big operand.
#[allow(clippy::too_many_arguments)]
fn product<T: Real>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    a_strides: (isize, isize),
    b: &[T],
    b_strides: (isize, isize),
    c: &mut [T],
) {
    product_with(true, m, k, n, a, a_strides, b, b_strides, c);
}

/// `product`, split across both cores only when `parallel` (callers already on one half pass false).
#[allow(clippy::too_many_arguments)]
fn product_with<T: Real>(
    parallel: bool,
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    (rsa, csa): (isize, isize),
    b: &[T],
    (rsb, csb): (isize, isize),
    c: &mut [T],
) {
    if m == 0 || n == 0 {
        return;
    }
    // Bounds: the last element each operand touches lies inside its slice, so the unsafe calls below
    // read and write only memory they own.
    let last = |rows: usize, cols: usize, rs: isize, cs: isize| {
        (rows as isize - 1) * rs + (cols as isize - 1) * cs
    };
    if k > 0 {
        assert!(
            (last(m, k, rsa, csa) as usize) < a.len(),
            "product: a is too short for {m}x{k}"
        );
        assert!(
            (last(k, n, rsb, csb) as usize) < b.len(),
            "product: b is too short for {k}x{n}"
        );
    } else {
        c[..m * n].fill(T::default());
        return;
    }
    assert!(m * n <= c.len(), "product: c is too short for {m}x{n}");
    let out = SharedOut(c.as_mut_ptr());
    // SAFETY: each call addresses rows r0..r0+rows and columns c0..c0+cols of operands checked above.
    let block = |r0: usize, rows: usize, c0: usize, cols: usize| unsafe {
        if rows == 0 || cols == 0 {
            return;
        }
        T::gemm_raw(
            rows,
            k,
            cols,
            a.as_ptr().offset(r0 as isize * rsa),
            rsa,
            csa,
            b.as_ptr().offset(c0 as isize * csb),
            rsb,
            csb,
            out.get().add(r0 * n + c0),
            n as isize,
        )
    };
    if !parallel || m * k * n < PARALLEL_MIN_MACS || rayon::current_num_threads() < 2 {
        block(0, m, 0, n);
    } else if m >= n {
        let h = m / 2;
        rayon::join(|| block(0, h, 0, n), || block(h, m - h, 0, n));
    } else {
        let h = (n / 2).next_multiple_of(8).min(n);
        rayon::join(|| block(0, m, 0, h), || block(0, m, h, n - h));
    }
}

/// `c (m, n) = a (m, k) · b (k, n)`. Forward of a dense layer.
pub fn matmul<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize) {
    product(m, k, n, a, (k as isize, 1), b, (n as isize, 1), c);
}

/// `c (m, n) = a (k, m)^T · b (k, n)`. The weight gradient `X^T · dZ`.
pub fn matmul_at_b<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize) {
    product(m, k, n, a, (1, m as isize), b, (n as isize, 1), c);
}

/// `c (m, n) = a (m, k) · b (n, k)^T`. The input gradient `dZ · W^T`.
pub fn matmul_a_bt<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize) {
    product(m, k, n, a, (k as isize, 1), b, (1, k as isize), c);
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
    // Memory-bound: both cores share the vector when it is large (the first layer's 100k weights).
    if n >= PARALLEL_MIN_MACS / 4 && rayon::current_num_threads() >= 2 {
        let h = n / 2;
        let (p0, p1) = params.split_at_mut(h);
        let (m0, m1) = m.split_at_mut(h);
        let (v0, v1) = v.split_at_mut(h);
        rayon::join(
            || T::adam_slice(p0, &grads[..h], m0, v0, alpha, beta1, beta2, epsilon),
            || T::adam_slice(p1, &grads[h..], m1, v1, alpha, beta1, beta2, epsilon),
        );
    } else {
        T::adam_slice(params, grads, m, v, alpha, beta1, beta2, epsilon);
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn adam_loop<T: Real>(
    params: &mut [T],
    grads: &[T],
    m: &mut [T],
    v: &mut [T],
    alpha: T,
    beta1: T,
    beta2: T,
    epsilon: T,
) {
    let one = T::from_f64(1.0);
    let (c1, c2) = (one - beta1, one - beta2);
    // Zipped iterators carry no bounds checks, so the loop vectorises (sqrt and divide included).
    for (((p, &g), m), v) in params
        .iter_mut()
        .zip(grads)
        .zip(m.iter_mut())
        .zip(v.iter_mut())
    {
        *m += (g - *m) * c1;
        *v += (g * g - *v) * c2;
        *p = *p - alpha * *m / (v.sqrt() + epsilon);
    }
}

/// The bias-corrected step size of Adam's step `t` (1-based): `lr sqrt(1 - b2^t) / (1 - b1^t)`.
/// Computed on the host in f64 and handed to both the CPU and the GPU update.
pub fn adam_alpha(lr: f64, beta1: f64, beta2: f64, t: u64) -> f64 {
    let t = t as i32;
    lr * (1.0 - beta2.powi(t)).sqrt() / (1.0 - beta1.powi(t))
}

/// The one normalisation every device uses (defined beside the batches it builds).
pub use crate::batches::{PIXEL_SCALE, normalise};

/// Whether `x` is infinite or NaN. The WGSL twins test the exponent bits, since NaN comparisons are
/// undefined under fast math (Metal); for f32 and f64 both tests agree.
fn nonfinite<T: Real>(x: T) -> bool {
    !x.to_f64().is_finite()
}

/// Which samples fill a step's rows, as the kernels read it from `Step` and their dims: row `r < rows` is
/// sample `order[start + r]`, or `start + r` when `direct` (evaluation in split order). Rows from `rows`
/// to the capacity are a partial batch's empty tail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepRows {
    pub rows: usize,
    pub start: usize,
    pub direct: bool,
}

impl StepRows {
    /// The sample index of row `r` (`r < rows`).
    pub fn sample(&self, order: &[u32], r: usize) -> usize {
        if self.direct {
            self.start + r
        } else {
            order[self.start + r] as usize
        }
    }
}

/// What `dense_tail` and `softmax_xent` report for one step: the summed loss, the rows whose first
/// maximum is the label, and the rows whose logits or loss are not finite.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TailStat<T> {
    pub loss: T,
    pub correct: u32,
    pub nonfinite: u32,
}

/// Rows of `logits (rows, cols)` with a non-finite logit or a non-finite loss (`lse - z[label]`, as
/// `softmax_xent` computes it): the `nonfinite` count of softmax_xent.wgsl and dense_tail.
pub fn xent_nonfinite<T: Real>(logits: &[T], labels: &[u32], rows: usize, cols: usize) -> u32 {
    let mut bad = 0;
    for (r, z) in logits[..rows * cols].chunks_exact(cols).enumerate() {
        let max = z
            .iter()
            .copied()
            .fold(z[0], |a, b| if b > a { b } else { a });
        let mut sum = T::default();
        for &v in z {
            sum += (v - max).exp();
        }
        let loss = max + sum.ln() - z[labels[r] as usize];
        bad += (z.iter().any(|&v| nonfinite(v)) || nonfinite(loss)) as u32;
    }
    bad
}

/// `x (capacity, inputs)`: row `r < rows.rows` is sample `rows.sample(order, r)` of `images` (u8,
/// `inputs` bytes per sample) normalised; rows past it are 0. Twin of `gather` (gather.wgsl).
pub fn gather<T: Real>(
    images: &[u8],
    order: &[u32],
    x: &mut [T],
    inputs: usize,
    capacity: usize,
    rows: StepRows,
) {
    for r in 0..capacity {
        let dst = &mut x[r * inputs..(r + 1) * inputs];
        if r >= rows.rows {
            dst.fill(T::default());
            continue;
        }
        let s = rows.sample(order, r);
        for (d, &px) in dst.iter_mut().zip(&images[s * inputs..(s + 1) * inputs]) {
            *d = T::from_f64(normalise(px) as f64);
        }
    }
}

/// `act (capacity, fan_out) = relu(x · W + b)` for the gathered `x` (see [`gather`]) of `layer`'s
/// `fan_in` pixels, W and b at `layer`'s offsets in `params`; without ReLU when `relu` is false. Rows
/// past `rows.rows` are 0. Twin of `forward_gather` (gather.wgsl); equal to `gather`, `matmul`,
/// `bias_add`, `relu` in turn (unit test below).
#[allow(clippy::too_many_arguments)]
pub fn forward_gather<T: Real>(
    images: &[u8],
    order: &[u32],
    params: &[T],
    act: &mut [T],
    layer: &LayerOffsets,
    capacity: usize,
    rows: StepRows,
    relu: bool,
) {
    let (k, n) = (layer.fan_in, layer.fan_out);
    let w = &params[layer.weight_range()];
    let b = &params[layer.bias_range()];
    let zero = T::default();
    for r in 0..capacity {
        let out = &mut act[r * n..(r + 1) * n];
        if r >= rows.rows {
            out.fill(zero);
            continue;
        }
        let s = rows.sample(order, r);
        let px = &images[s * k..(s + 1) * k];
        for (j, o) in out.iter_mut().enumerate() {
            let mut acc = zero;
            for (p, &v) in px.iter().enumerate() {
                acc += T::from_f64(normalise(v) as f64) * w[p * n + j];
            }
            let z = acc + b[j];
            *o = if !relu || z > zero { z } else { zero };
        }
    }
}

/// The last dense layer of a training step, from its input `act (capacity, k)` (the last hidden
/// layer's ReLU output, or the gathered inputs): logits `act · W + b`, sparse softmax cross-entropy
/// against `labels[sample]`, `dlogits (capacity, classes) = (softmax - onehot) * scale`, the gradients
/// `dW (k, classes) = act^T · dlogits` and `db = colsum(dlogits)` written into `grads` at `layer`'s
/// offsets, and, when `dx` is given, the masked input gradient `dx (capacity, k) = (dlogits · W^T) *
/// (act > 0)`. Only rows below `rows.rows` count; dlogits and dx are 0 past them. Twin of `dense_tail`
/// (tail.wgsl); equal to `matmul`, `bias_add`, `softmax_xent`, `matmul_at_b`, `bias_grad`,
/// `matmul_a_bt`, `relu_backward` in turn (unit test below).
#[allow(clippy::too_many_arguments)]
pub fn dense_tail<T: Real>(
    act: &[T],
    params: &[T],
    labels: &[u32],
    order: &[u32],
    grads: &mut [T],
    dlogits: &mut [T],
    dx: Option<&mut [T]>,
    layer: &LayerOffsets,
    capacity: usize,
    rows: StepRows,
    scale: T,
) -> TailStat<T> {
    let (k, c) = (layer.fan_in, layer.fan_out);
    let w = &params[layer.weight_range()];
    let b = &params[layer.bias_range()];
    let zero = T::default();
    let live = rows.rows;
    let mut stat = TailStat {
        loss: zero,
        correct: 0,
        nonfinite: 0,
    };
    dlogits[live * c..capacity * c].fill(zero);
    let mut z = vec![zero; c];
    for r in 0..live {
        let a = &act[r * k..(r + 1) * k];
        for (j, zj) in z.iter_mut().enumerate() {
            let mut acc = zero;
            for (p, &ap) in a.iter().enumerate() {
                acc += ap * w[p * c + j];
            }
            *zj = acc + b[j];
        }
        let label = labels[rows.sample(order, r)] as usize;
        let (mut arg, mut max) = (0, z[0]);
        for (j, &v) in z.iter().enumerate().skip(1) {
            if v > max {
                (arg, max) = (j, v);
            }
        }
        let mut sum = zero;
        for &v in &z {
            sum += (v - max).exp();
        }
        let lse = max + sum.ln();
        let loss = lse - z[label];
        stat.loss += loss;
        stat.correct += (arg == label) as u32;
        stat.nonfinite += (z.iter().any(|&v| nonfinite(v)) || nonfinite(loss)) as u32;
        for (j, d) in dlogits[r * c..(r + 1) * c].iter_mut().enumerate() {
            let onehot = if j == label { T::from_f64(1.0) } else { zero };
            *d = ((z[j] - lse).exp() - onehot) * scale;
        }
    }
    let (gw, gb) = (layer.weight, layer.bias);
    for p in 0..k {
        for j in 0..c {
            let mut acc = zero;
            for r in 0..live {
                acc += act[r * k + p] * dlogits[r * c + j];
            }
            grads[gw + p * c + j] = acc;
        }
    }
    for j in 0..c {
        let mut acc = zero;
        for r in 0..live {
            acc += dlogits[r * c + j];
        }
        grads[gb + j] = acc;
    }
    if let Some(dx) = dx {
        dx[live * k..capacity * k].fill(zero);
        for r in 0..live {
            for p in 0..k {
                let mut acc = zero;
                for j in 0..c {
                    acc += dlogits[r * c + j] * w[p * c + j];
                }
                dx[r * k + p] = if act[r * k + p] > zero { acc } else { zero };
            }
        }
    }
    stat
}

/// Keras' Adam over one layer's weight and bias at `layer`'s offsets (the rest of the flat vectors
/// untouched), with the gradient `g` at the same offsets.
pub fn adam_on_layer<T: Real>(
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    layer: &LayerOffsets,
    step: AdamStep<T>,
) {
    for r in [layer.weight_range(), layer.bias_range()] {
        let (a, b1, b2, e) = (step.alpha, step.beta1, step.beta2, step.epsilon);
        adam(
            &mut p[r.clone()],
            &g[r.clone()],
            &mut m[r.clone()],
            &mut v[r],
            a,
            b1,
            b2,
            e,
        );
    }
}

/// Where dense_tail_tex also applies Adam to its layer: the parameters after the update (equal to
/// `params` before it), m, v and the step.
pub struct TailAdam<'a, T> {
    pub p: &'a mut [T],
    pub m: &'a mut [T],
    pub v: &'a mut [T],
    pub step: AdamStep<T>,
}

/// Twin of `dense_tail_tex` (tail.wgsl), the texture path's tail: [`dense_tail`] (the kernel reads act
/// and W|b from textures and keeps a row's logits in registers, at most 16 classes), then, with `adam`,
/// [`adam_on_layer`] with the gradients it wrote.
#[allow(clippy::too_many_arguments)]
pub fn dense_tail_tex<T: Real>(
    act: &[T],
    params: &[T],
    labels: &[u32],
    order: &[u32],
    grads: &mut [T],
    dlogits: &mut [T],
    dx: Option<&mut [T]>,
    layer: &LayerOffsets,
    capacity: usize,
    rows: StepRows,
    scale: T,
    adam: Option<TailAdam<'_, T>>,
) -> TailStat<T> {
    let stat = dense_tail(
        act, params, labels, order, grads, dlogits, dx, layer, capacity, rows, scale,
    );
    if let Some(a) = adam {
        adam_on_layer(a.p, grads, a.m, a.v, layer, a.step);
    }
    stat
}

/// The first layer's backward and update in one: `dW = x^T · dz` over the gathered `x` (see
/// [`gather`]) and `db = colsum(dz)`, summed over rows below `rows.rows` of `dz (>= rows, fan_out)`,
/// each applied at once by Keras' Adam to `params`, `m` and `v` at `layer`'s offsets (the gradient is
/// never stored). Twin of `grad_adam_gather` (gather.wgsl); equal to `gather`, `matmul_at_b`,
/// `bias_grad`, `adam` in turn (unit test below).
#[allow(clippy::too_many_arguments)]
pub fn grad_adam_gather<T: Real>(
    images: &[u8],
    order: &[u32],
    dz: &[T],
    params: &mut [T],
    m: &mut [T],
    v: &mut [T],
    layer: &LayerOffsets,
    rows: StepRows,
    adam: AdamStep<T>,
) {
    let k = layer.fan_in;
    let mut x = vec![T::default(); rows.rows * k];
    gather(images, order, &mut x, k, rows.rows, rows);
    grad_adam_tex(&x, dz, params, m, v, layer, rows, adam);
}

/// [`grad_adam_gather`] from the gathered inputs `x (>= rows, fan_in)` (normalised, as [`gather`]
/// writes them): `dW = x^T · dz`, `db = colsum(dz)` over the rows below `rows.rows`, each applied at
/// once by Keras' Adam. Twin of `grad_adam_tex` (adam.wgsl), the texture path's first layer; equal to
/// `matmul_at_b`, `bias_grad`, `adam` in turn (unit test below).
#[allow(clippy::too_many_arguments)]
pub fn grad_adam_tex<T: Real>(
    x: &[T],
    dz: &[T],
    params: &mut [T],
    m: &mut [T],
    v: &mut [T],
    layer: &LayerOffsets,
    rows: StepRows,
    adam: AdamStep<T>,
) {
    let (k, n) = (layer.fan_in, layer.fan_out);
    let zero = T::default();
    let one = T::from_f64(1.0);
    let (c1, c2) = (one - adam.beta1, one - adam.beta2);
    let mut update = |i: usize, g: T| {
        m[i] += (g - m[i]) * c1;
        v[i] += (g * g - v[i]) * c2;
        params[i] = params[i] - adam.alpha * m[i] / (v[i].sqrt() + adam.epsilon);
    };
    for p in 0..k {
        for j in 0..n {
            let mut g = zero;
            for r in 0..rows.rows {
                g += x[r * k + p] * dz[r * n + j];
            }
            update(layer.weight + p * n + j, g);
        }
    }
    for j in 0..n {
        let mut g = zero;
        for r in 0..rows.rows {
            g += dz[r * n + j];
        }
        update(layer.bias + j, g);
    }
}

/// Preallocated activations and gradients of one MLP for batches up to `capacity` rows, so the training
/// loop allocates nothing.
pub struct Workspace<T> {
    pub capacity: usize,
    /// Output of each layer after its activation: `(capacity, fan_out)`; the last one holds the logits.
    pub acts: Vec<Vec<T>>,
    /// Gradient flowing into the current layer's pre-activation, `(capacity, widest)`.
    dz: Vec<T>,
    /// Gradient with respect to the current layer's input, `(capacity, widest)`.
    da: Vec<T>,
}

impl<T: Real> Workspace<T> {
    pub fn new(layout: &ParamLayout, capacity: usize) -> Self {
        let widest = layout
            .layers
            .iter()
            .map(|l| l.fan_out.max(l.fan_in))
            .max()
            .unwrap_or(0);
        Self {
            capacity,
            acts: layout
                .layers
                .iter()
                .map(|l| vec![T::default(); capacity * l.fan_out])
                .collect(),
            dz: vec![T::default(); capacity * widest],
            da: vec![T::default(); capacity * widest],
        }
    }

    /// The logits of the last forward pass, `(rows, outputs)`.
    pub fn logits(&self, rows: usize) -> &[T] {
        let last = self.acts.last().expect("an MLP has at least one layer");
        &last[..rows * (last.len() / self.capacity)]
    }
}

/// Forward pass of `rows` samples `x (rows, inputs)`: every layer `relu(a · W + b)`, the last without ReLU.
pub fn forward<T: Real>(
    layout: &ParamLayout,
    params: &[T],
    x: &[T],
    rows: usize,
    ws: &mut Workspace<T>,
) {
    assert!(
        rows <= ws.capacity,
        "batch of {rows} exceeds the workspace's {}",
        ws.capacity
    );
    let last = layout.layers.len() - 1;
    for (i, l) in layout.layers.iter().enumerate() {
        let (before, after) = ws.acts.split_at_mut(i);
        let input: &[T] = if i == 0 { x } else { &before[i - 1] };
        let out = &mut after[0][..rows * l.fan_out];
        matmul(
            &input[..rows * l.fan_in],
            &params[l.weight_range()],
            out,
            rows,
            l.fan_in,
            l.fan_out,
        );
        bias_add(out, &params[l.bias_range()], rows, l.fan_out);
        if i != last {
            relu(out);
        }
    }
}

/// Forward and backward over one batch: fills `grads` (same layout as `params`) with the gradient of
/// the mean loss and returns `(summed loss, correct count)`.
pub fn loss_and_grad<T: Real>(
    layout: &ParamLayout,
    params: &[T],
    x: &[T],
    labels: &[u32],
    rows: usize,
    ws: &mut Workspace<T>,
    grads: &mut [T],
) -> (T, u32) {
    backward(layout, params, x, labels, rows, ws, grads, true)
}

/// `loss_and_grad`, leaving out the first layer's weight gradient when `first_weight` is false; the
/// first layer's dZ is then in `ws.dz` for the caller to finish with.
#[allow(clippy::too_many_arguments)]
fn backward<T: Real>(
    layout: &ParamLayout,
    params: &[T],
    x: &[T],
    labels: &[u32],
    rows: usize,
    ws: &mut Workspace<T>,
    grads: &mut [T],
    first_weight: bool,
) -> (T, u32) {
    forward(layout, params, x, rows, ws);
    let last = layout.layers.len() - 1;
    let classes = layout.layers[last].fan_out;
    let scale = T::from_f64(1.0 / rows as f64);
    let (loss, correct) = softmax_xent(
        &ws.acts[last][..rows * classes],
        labels,
        &mut ws.dz,
        rows,
        classes,
        scale,
    );
    for (i, l) in layout.layers.iter().enumerate().rev() {
        let input: &[T] = if i == 0 { x } else { &ws.acts[i - 1] };
        let dz = &ws.dz[..rows * l.fan_out];
        if i > 0 || first_weight {
            matmul_at_b(
                &input[..rows * l.fan_in],
                dz,
                &mut grads[l.weight_range()],
                l.fan_in,
                rows,
                l.fan_out,
            );
        }
        bias_grad(dz, &mut grads[l.bias_range()], rows, l.fan_out);
        if i > 0 {
            let da = &mut ws.da[..rows * l.fan_in];
            matmul_a_bt(dz, &params[l.weight_range()], da, rows, l.fan_out, l.fan_in);
            relu_backward(da, &input[..rows * l.fan_in]);
            std::mem::swap(&mut ws.dz, &mut ws.da);
        }
    }
    (loss, correct)
}

/// Adam's hyper-parameters for one step, `alpha` already bias-corrected (`adam_alpha`).
#[derive(Clone, Copy, Debug)]
pub struct AdamStep<T> {
    pub alpha: T,
    pub beta1: T,
    pub beta2: T,
    pub epsilon: T,
}

/// One training step of the CPU path: `loss_and_grad` then `adam`, computing the same numbers, but with
/// the first layer's weight gradient (the 784 x 128 product) split into two row halves, one per core,
/// each half updated by Adam right after its gradient is computed, while it is still in that core's
/// cache. One fork-join instead of two, and the gradient never travels to the shared cache and back.
/// Checked against `loss_and_grad` + `adam` by tests/cpu_gradcheck.rs.
#[allow(clippy::too_many_arguments)]
pub fn train_step<T: Real>(
    layout: &ParamLayout,
    params: &mut [T],
    grads: &mut [T],
    m: &mut [T],
    v: &mut [T],
    x: &[T],
    labels: &[u32],
    rows: usize,
    ws: &mut Workspace<T>,
    adam: AdamStep<T>,
) -> (T, u32) {
    let out = backward(layout, params, x, labels, rows, ws, grads, false);
    let l0 = layout.layers[0];
    assert_eq!(
        l0.weight, 0,
        "the first layer's weight starts the flat vector"
    );
    let (fan_in, fan_out) = (l0.fan_in, l0.fan_out);
    let (x0, dz0) = (&x[..rows * fan_in], &ws.dz[..rows * fan_out]);
    // Rows r0..r1 of dW0 = X^T · dZ0, then Adam over those rows of W0 (plus `rest` after W0, if any).
    let half = |r0: usize, p: &mut [T], g: &mut [T], m: &mut [T], v: &mut [T], w_len: usize| {
        let r = w_len / fan_out;
        product_with(
            false,
            r,
            rows,
            fan_out,
            &x0[r0..],
            (1, fan_in as isize),
            dz0,
            (fan_out as isize, 1),
            &mut g[..w_len],
        );
        T::adam_slice(p, g, m, v, adam.alpha, adam.beta1, adam.beta2, adam.epsilon);
    };
    let split = if fan_in * rows * fan_out >= PARALLEL_MIN_MACS && rayon::current_num_threads() >= 2
    {
        fan_in / 2
    } else {
        0
    };
    let at = split * fan_out;
    let (p0, p1) = params.split_at_mut(at);
    let (g0, g1) = grads.split_at_mut(at);
    let (m0, m1) = m.split_at_mut(at);
    let (v0, v1) = v.split_at_mut(at);
    let rest_w = (fan_in - split) * fan_out;
    rayon::join(
        || half(0, p0, g0, m0, v0, at),
        || half(split, p1, g1, m1, v1, rest_w),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
                let what =
                    format!("{samples}x{inputs}x{fan_out} {live}/{capacity} direct {direct}");
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
                        &images, &order, &params, &mut act, &layer, capacity, rows, relu_on,
                    );
                    assert_close_1e_12(
                        &format!("forward_gather relu {relu_on} {what}"),
                        &act,
                        &want,
                    );
                }

                // dense_tail on the gathered x as the layer's input (k = inputs).
                let mut act = x.clone();
                relu(&mut act); // a ReLU output, with zeros for the mask
                let al = &act[..live * inputs];
                let row_labels: Vec<u32> =
                    (0..live).map(|r| labels[rows.sample(&order, r)]).collect();
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

                // grad_adam_gather with dz = dlogits-shaped values over the layer's outputs.
                let dz: Vec<f64> = (0..capacity * fan_out)
                    .map(|i| ((i * 7919) % 201) as f64 / 1000.0 - 0.1)
                    .collect();
                let step = AdamStep {
                    alpha: 1e-3,
                    beta1: 0.9,
                    beta2: 0.999,
                    epsilon: 1e-7,
                };
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
                let (mut wp, mut wm, mut wv) = (params.clone(), m0.clone(), v0.clone());
                adam_on_layer(&mut wp, &g, &mut wm, &mut wv, &layer, step);
                let (m0_tex, v0_tex) = (m0.clone(), v0.clone());
                let (mut p, mut m, mut v) = (params.clone(), m0, v0);
                grad_adam_gather(
                    &images, &order, &dz, &mut p, &mut m, &mut v, &layer, rows, step,
                );
                assert_close_1e_12(&format!("grad_adam_gather params {what}"), &p, &wp);
                assert_close_1e_12(&format!("grad_adam_gather m {what}"), &m, &wm);
                assert_close_1e_12(&format!("grad_adam_gather v {what}"), &v, &wv);
                let (mut p, mut m, mut v) = (params.clone(), m0_tex.clone(), v0_tex.clone());
                grad_adam_tex(xl, &dz, &mut p, &mut m, &mut v, &layer, rows, step);
                assert_close_1e_12(&format!("grad_adam_tex params {what}"), &p, &wp);
                assert_close_1e_12(&format!("grad_adam_tex m {what}"), &m, &wm);
                assert_close_1e_12(&format!("grad_adam_tex v {what}"), &v, &wv);
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
                &x, params, &labels, &order, &mut grads, &mut dl, None, &layer, 8, rows, 0.2,
            )
        };
        assert_eq!(run(&params).nonfinite, 0);
        // One infinite weight reaches every row whose pixel 0 is not 0 (as +inf) or is 0 (as NaN).
        params[layer.weight + 2] = f64::INFINITY;
        assert_eq!(run(&params).nonfinite, 5);
    }

    #[test]
    fn products_split_across_two_threads_match_the_triple_loop_rel_1e_12() {
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
            pool.install(|| matmul(&a, &b, &mut c, m, k, n));
            check(&c, "matmul");
            c.fill(f64::NAN);
            pool.install(|| matmul_at_b(&at, &b, &mut c, m, k, n));
            check(&c, "matmul_at_b");
            c.fill(f64::NAN);
            pool.install(|| matmul_a_bt(&a, &bt, &mut c, m, k, n));
            check(&c, "matmul_a_bt");
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
}
