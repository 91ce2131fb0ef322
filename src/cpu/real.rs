//! The float type the CPU code is generic over (`Real`: f32 for training, f64 for the gradient check),
//! with each type's matrix product (matrixmultiply) and Adam loop (8-wide AVX2 for f32 where the
//! processor has it).

use std::ops::{Add, AddAssign, Div, Mul, Sub};

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

/// Adam in f32 with the widest vectors the processor has, chosen at run time (the build targets the
/// x86-64 baseline): 16-wide AVX-512, else 8-wide AVX2. The square root and divide dominate, and each
/// doubling of the width halves their count. The result is bit for bit the scalar one (no fused
/// multiply-add: Rust never contracts `a * b + c`; tested in cpu/tests.rs).
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
    // One wrapper per instruction set: `adam_loop` inlined under that target feature, so the compiler
    // vectorises it at that width.
    #[cfg(target_arch = "x86_64")]
    macro_rules! adam_with {
        ($feature:tt, $name:ident) => {
            if std::arch::is_x86_feature_detected!($feature) {
                #[target_feature(enable = $feature)]
                #[allow(clippy::too_many_arguments)]
                fn $name(
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
                // SAFETY: the processor was just checked to have the feature.
                return unsafe { $name(params, grads, m, v, alpha, beta1, beta2, epsilon) };
            }
        };
    }
    #[cfg(target_arch = "x86_64")]
    {
        adam_with!("avx512f", adam_avx512);
        adam_with!("avx2", adam_avx2);
    }
    adam_loop(params, grads, m, v, alpha, beta1, beta2, epsilon)
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn adam_loop<T: Real>(
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
