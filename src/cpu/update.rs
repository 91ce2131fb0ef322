//! The optimizers' updates, as the update kernels compute them: Keras 3's Adam, SGD (momentum,
//! Nesterov) and RMSprop, element by element in the operation order of the WGSL (`update4` in
//! optimizers.wgsl, gather.wgsl and tail.wgsl), so both devices round alike. [`UpdateStep`] carries
//! one step's optimizer and hyper-parameters to every twin that updates parameters. Adam keeps its
//! vectorised loop (`Real::adam_slice`); tested against the formulas by tests/cpu_gradcheck.rs and
//! tests/optimizer_parity.rs.

use super::Real;
use super::ops::adam;
use crate::config::{OptimizerConfig, OptimizerKind};

/// One optimizer step's rule and hyper-parameters, in the precision of the update.
#[derive(Clone, Copy, Debug)]
pub struct UpdateStep<T> {
    pub kind: OptimizerKind,
    /// The step size the step's record carries: Adam's bias-corrected step (`adam_alpha`), else the
    /// learning rate.
    pub alpha: T,
    pub beta1: T,
    pub beta2: T,
    /// Adam's and RMSprop's.
    pub epsilon: T,
    /// SGD's and RMSprop's; 0 keeps no momentum (Keras then keeps no momentum variable: `m` is left
    /// as it is).
    pub momentum: T,
    pub rho: T,
    pub nesterov: bool,
}

impl<T: Real> UpdateStep<T> {
    /// Step `t` (1-based) of `opt`.
    pub fn new(opt: &OptimizerConfig, t: u64) -> Self {
        let f = T::from_f64;
        let mut s = Self {
            kind: opt.kind(),
            alpha: f(opt.alpha(t)),
            beta1: f(0.0),
            beta2: f(0.0),
            epsilon: f(0.0),
            momentum: f(0.0),
            rho: f(0.0),
            nesterov: false,
        };
        match opt {
            OptimizerConfig::Adam(a) => {
                (s.beta1, s.beta2, s.epsilon) = (f(a.beta1), f(a.beta2), f(a.epsilon));
            }
            OptimizerConfig::Sgd(o) => {
                (s.momentum, s.nesterov) = (f(o.momentum), o.nesterov);
            }
            OptimizerConfig::Rmsprop(r) => {
                (s.rho, s.momentum, s.epsilon) = (f(r.rho), f(r.momentum), f(r.epsilon));
            }
        }
        s
    }

    /// The update of one parameter `p` with gradient `g` and the optimizer's slots `m`, `v`.
    #[inline(always)]
    pub fn apply(&self, p: &mut T, g: T, m: &mut T, v: &mut T) {
        let one = T::from_f64(1.0);
        let zero = T::default();
        match self.kind {
            OptimizerKind::Adam => {
                *m += (g - *m) * (one - self.beta1);
                *v += (g * g - *v) * (one - self.beta2);
                *p = *p - self.alpha * *m / (v.sqrt() + self.epsilon);
            }
            OptimizerKind::Sgd if self.momentum == zero => *p = *p - g * self.alpha,
            OptimizerKind::Sgd => {
                *m = *m * self.momentum - g * self.alpha;
                *p = if self.nesterov {
                    *p + (*m * self.momentum - g * self.alpha)
                } else {
                    *p + *m
                };
            }
            OptimizerKind::Rmsprop => {
                *v = self.rho * *v + (one - self.rho) * (g * g);
                let increment = self.alpha * g / (*v + self.epsilon).sqrt();
                if self.momentum == zero {
                    *p = *p - increment;
                } else {
                    *m = self.momentum * *m + increment;
                    *p = *p - *m;
                }
            }
        }
    }
}

/// The step's update over flat vectors of equal length (Adam through its vectorised loop).
pub fn update_slice<T: Real>(
    params: &mut [T],
    grads: &[T],
    m: &mut [T],
    v: &mut [T],
    step: &UpdateStep<T>,
) {
    let n = params.len();
    assert!(
        grads.len() == n && m.len() == n && v.len() == n,
        "update: params, grads, m and v differ in length"
    );
    if step.kind == OptimizerKind::Adam {
        let s = step;
        return T::adam_slice(params, grads, m, v, s.alpha, s.beta1, s.beta2, s.epsilon);
    }
    for (((p, &g), m), v) in params
        .iter_mut()
        .zip(grads)
        .zip(m.iter_mut())
        .zip(v.iter_mut())
    {
        step.apply(p, g, m, v);
    }
}

/// Twin of `adam_tex` (optimizers.wgsl), which reads p, g, m and v from texture mirrors: [`adam`].
#[allow(clippy::too_many_arguments)]
pub fn adam_tex<T: Real>(
    params: &mut [T],
    grads: &[T],
    m: &mut [T],
    v: &mut [T],
    alpha: T,
    beta1: T,
    beta2: T,
    epsilon: T,
) {
    adam(params, grads, m, v, alpha, beta1, beta2, epsilon);
}

/// Keras 3's SGD over flat vectors (`step.kind` must be SGD): `p -= lr g`, or with momentum
/// `m = momentum m - lr g` then `p += m` (Nesterov: `p += momentum m - lr g`). Twin of `sgd`
/// (optimizers.wgsl).
pub fn sgd<T: Real>(params: &mut [T], grads: &[T], m: &mut [T], step: &UpdateStep<T>) {
    assert_eq!(step.kind, OptimizerKind::Sgd, "sgd: the step is not SGD's");
    let mut unused = T::default();
    for ((p, &g), m) in params.iter_mut().zip(grads).zip(m.iter_mut()) {
        step.apply(p, g, m, &mut unused);
    }
}

/// Twin of `sgd_tex` (optimizers.wgsl), the texture-mirror variant: [`sgd`].
pub fn sgd_tex<T: Real>(params: &mut [T], grads: &[T], m: &mut [T], step: &UpdateStep<T>) {
    sgd(params, grads, m, step);
}

/// Keras 3's RMSprop (not centered) over flat vectors (`step.kind` must be RMSprop):
/// `v = rho v + (1 - rho) g^2`, `inc = lr g / sqrt(v + eps)`, `p -= inc`, or with momentum
/// `m = momentum m + inc` then `p -= m`. Twin of `rmsprop` (optimizers.wgsl).
pub fn rmsprop<T: Real>(
    params: &mut [T],
    grads: &[T],
    m: &mut [T],
    v: &mut [T],
    step: &UpdateStep<T>,
) {
    assert_eq!(
        step.kind,
        OptimizerKind::Rmsprop,
        "rmsprop: the step is not RMSprop's"
    );
    update_slice(params, grads, m, v, step);
}

/// Twin of `rmsprop_tex` (optimizers.wgsl), the texture-mirror variant: [`rmsprop`].
pub fn rmsprop_tex<T: Real>(
    params: &mut [T],
    grads: &[T],
    m: &mut [T],
    v: &mut [T],
    step: &UpdateStep<T>,
) {
    rmsprop(params, grads, m, v, step);
}
