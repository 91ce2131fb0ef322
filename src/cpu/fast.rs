//! The fast path of the CPU: products split across both cores (`product`, the `Tuned` products of the
//! MLP), the forward pass over them (`fast_forward`), and the training step that fuses the first
//! layer's weight gradient with its Adam update per core (`train_step`). Checked against the reference
//! (plain loops) by tests/cpu_gradcheck.rs and the unit tests in tests.rs.

use super::Real;
use super::dropout::DropoutStep;
use super::mlp::{Products, Workspace, backward, forward_with};
use super::update::{UpdateStep, update_slice};
use crate::model::ParamLayout;

/// Sets flush-to-zero and denormals-are-zero for the calling thread's float unit (x86-64: MXCSR bits 15
/// and 6; AArch64: FPCR.FZ), so results below the normal range become 0 instead of taking the slow
/// denormal path. The CPU path's compute threads call it when they start: Adam's m and v decay into
/// that range during training, where an Intel Xeon spent ~40% of an epoch (docs/perf.md). Elsewhere a
/// no-op.
pub fn flush_denormals() {
    #[cfg(target_arch = "x86_64")]
    {
        let mut csr: u32 = 0;
        // SAFETY: stmxcsr/ldmxcsr read and write this thread's SSE control register through a valid
        // pointer to a local; setting FTZ and DAZ changes only how this thread rounds tiny results.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr as *mut u32, options(nostack, preserves_flags));
            csr |= (1 << 15) | (1 << 6);
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr as *const u32, options(nostack, preserves_flags, readonly));
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        let mut fpcr: u64;
        // SAFETY: reads and writes this thread's floating-point control register; FZ changes only how
        // this thread treats tiny values.
        unsafe {
            std::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack, preserves_flags));
            fpcr |= 1 << 24;
            std::arch::asm!("msr fpcr, {}", in(reg) fpcr, options(nomem, nostack, preserves_flags));
        }
    }
}

/// Whether the calling thread flushes denormals (a denormal input times 1 gives 0).
pub fn flushes_denormals() -> bool {
    let tiny = std::hint::black_box(f32::MIN_POSITIVE / 4.0);
    tiny * std::hint::black_box(1.0f32) == 0.0
}

/// The fast path's products: matrixmultiply's kernels, split across both cores when large.
pub struct Tuned;

impl Products for Tuned {
    fn matmul<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize) {
        product(m, k, n, a, (k as isize, 1), b, (n as isize, 1), c);
    }
    fn matmul_at_b<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize) {
        product(m, k, n, a, (1, m as isize), b, (n as isize, 1), c);
    }
    fn matmul_a_bt<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize) {
        product(m, k, n, a, (k as isize, 1), b, (1, k as isize), c);
    }
}

/// The forward pass on the fast path (evaluation and prediction).
pub fn fast_forward<T: Real>(
    layout: &ParamLayout,
    params: &[T],
    x: &[T],
    rows: usize,
    ws: &mut Workspace<T>,
) {
    forward_with::<Tuned, T>(layout, params, x, rows, ws, None)
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
pub(super) fn product<T: Real>(
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
pub(super) fn product_with<T: Real>(
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

/// One training step of the CPU path: `loss_and_grad` then `adam` on the `Tuned` products, with
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
    step: UpdateStep<T>,
    drop: Option<&DropoutStep>,
) -> (T, u32) {
    let out = backward::<Tuned, T>(layout, params, x, labels, rows, ws, grads, false, drop);
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
        update_slice(p, g, m, v, &step);
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
