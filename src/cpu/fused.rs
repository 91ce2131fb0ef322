//! The CPU twins of the fused WGSL kernels, named like their entry points: gather, forward_gather,
//! forward_gather_tex, dense_tail, dense_tail_tex, grad_update_gather, grad_update_gather_tex, each tested
//! against the composition of the plain twins in `ops.rs` (tests.rs).

use super::Real;
use super::dropout::{DropoutStep, dropout};
use super::ops::nonfinite;
use super::update::{UpdateStep, update_slice};
use crate::batches::normalise;
use crate::model::LayerOffsets;

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
/// `fan_in` pixels, W and b at `layer`'s offsets in `params`; without ReLU when `relu` is false; then
/// `drop`'s dropout of hidden layer 0, if given. Rows past `rows.rows` are 0. Twin of
/// `forward_gather` (gather.wgsl); equal to `gather`, `matmul`, `bias_add`, `relu`, `dropout` in turn
/// (unit test in tests.rs).
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
    drop: Option<&DropoutStep>,
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
    if let Some(d) = drop {
        dropout(act, rows.rows, n, 0, d.key, d.step, d.layer(0));
    }
}

/// Twin of `forward_gather_tex` (gather.wgsl), the texture path's first layer forward, which reads the
/// same samples and W through textures: the same arithmetic as [`forward_gather`].
#[allow(clippy::too_many_arguments)]
pub fn forward_gather_tex<T: Real>(
    images: &[u8],
    order: &[u32],
    params: &[T],
    act: &mut [T],
    layer: &LayerOffsets,
    capacity: usize,
    rows: StepRows,
    relu: bool,
    drop: Option<&DropoutStep>,
) {
    forward_gather(
        images, order, params, act, layer, capacity, rows, relu, drop,
    );
}

/// The last dense layer of a training step, from its input `act (capacity, k)` (the last hidden
/// layer's ReLU output, or the gathered inputs): logits `act · W + b`, sparse softmax cross-entropy
/// against `labels[sample]`, `dlogits (capacity, classes) = (softmax - onehot) * scale`, the gradients
/// `dW (k, classes) = act^T · dlogits` and `db = colsum(dlogits)` written into `grads` at `layer`'s
/// offsets, and, when `dx` is given, the masked input gradient `dx (capacity, k) = (dlogits · W^T) *
/// (act > 0)`, times `mask_scale` where act > 0 when it is not 0 (act being a layer's output after
/// dropout). Only rows below `rows.rows` count; dlogits and dx are 0 past them. Twin of `dense_tail`
/// (tail.wgsl); equal to `matmul`, `bias_add`, `softmax_xent`, `matmul_at_b`, `bias_grad`,
/// `matmul_a_bt`, `relu_dropout_backward` in turn (unit test in tests.rs).
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
    mask_scale: T,
) -> TailStat<T> {
    let (k, c) = (layer.fan_in, layer.fan_out);
    let dx_scale = if mask_scale == T::default() {
        T::from_f64(1.0)
    } else {
        mask_scale
    };
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
                dx[r * k + p] = if act[r * k + p] > zero {
                    acc * dx_scale
                } else {
                    zero
                };
            }
        }
    }
    stat
}

/// The step's optimizer over one layer's weight and bias at `layer`'s offsets (the rest of the flat
/// vectors untouched), with the gradient `g` at the same offsets.
pub fn update_on_layer<T: Real>(
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    layer: &LayerOffsets,
    step: UpdateStep<T>,
) {
    for r in [layer.weight_range(), layer.bias_range()] {
        update_slice(
            &mut p[r.clone()],
            &g[r.clone()],
            &mut m[r.clone()],
            &mut v[r],
            &step,
        );
    }
}

/// Where dense_tail_tex also updates its layer: the parameters after the update (equal to `params`
/// before it), the optimizer's slots m and v, and the step.
pub struct TailUpdate<'a, T> {
    pub p: &'a mut [T],
    pub m: &'a mut [T],
    pub v: &'a mut [T],
    pub step: UpdateStep<T>,
}

/// Twin of `dense_tail_tex` (tail.wgsl), the texture path's tail: [`dense_tail`] (the kernel reads act
/// and W|b from textures and keeps a row's logits in registers, at most 16 classes), then, with
/// `update`, [`update_on_layer`] with the gradients it wrote.
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
    mask_scale: T,
    update: Option<TailUpdate<'_, T>>,
) -> TailStat<T> {
    let stat = dense_tail(
        act, params, labels, order, grads, dlogits, dx, layer, capacity, rows, scale, mask_scale,
    );
    if let Some(u) = update {
        update_on_layer(u.p, grads, u.m, u.v, layer, u.step);
    }
    stat
}

/// The first layer's backward and update in one: `dW = x^T · dz` over the gathered `x` (see
/// [`gather`]) and `db = colsum(dz)`, summed over rows below `rows.rows` of `dz (>= rows, fan_out)`,
/// each applied at once by the step's optimizer to `params`, `m` and `v` at `layer`'s offsets (the
/// gradient is never stored). Twin of `grad_update_gather` (gather.wgsl); equal to `gather`,
/// `matmul_at_b`, `bias_grad`, `update_slice` in turn (unit test in tests.rs).
#[allow(clippy::too_many_arguments)]
pub fn grad_update_gather<T: Real>(
    images: &[u8],
    order: &[u32],
    dz: &[T],
    params: &mut [T],
    m: &mut [T],
    v: &mut [T],
    layer: &LayerOffsets,
    rows: StepRows,
    step: UpdateStep<T>,
) {
    let k = layer.fan_in;
    let mut x = vec![T::default(); rows.rows * k];
    gather(images, order, &mut x, k, rows.rows, rows);
    grad_update_gathered(&x, dz, params, m, v, layer, rows, step);
}

/// Twin of `grad_update_gather_tex` (optimizers.wgsl), the texture path's first layer backward and
/// update, which reads the same samples through textures: the same arithmetic as
/// [`grad_update_gather`].
#[allow(clippy::too_many_arguments)]
pub fn grad_update_gather_tex<T: Real>(
    images: &[u8],
    order: &[u32],
    dz: &[T],
    params: &mut [T],
    m: &mut [T],
    v: &mut [T],
    layer: &LayerOffsets,
    rows: StepRows,
    step: UpdateStep<T>,
) {
    grad_update_gather(images, order, dz, params, m, v, layer, rows, step);
}

/// [`grad_update_gather`] from the gathered inputs `x (>= rows, fan_in)` (normalised, as [`gather`]
/// writes them): `dW = x^T · dz`, `db = colsum(dz)` over the rows below `rows.rows`, each applied at
/// once by the step's optimizer; equal to `matmul_at_b`, `bias_grad`, `update_slice` in turn.
#[allow(clippy::too_many_arguments)]
pub fn grad_update_gathered<T: Real>(
    x: &[T],
    dz: &[T],
    params: &mut [T],
    m: &mut [T],
    v: &mut [T],
    layer: &LayerOffsets,
    rows: StepRows,
    step: UpdateStep<T>,
) {
    let (k, n) = (layer.fan_in, layer.fan_out);
    let zero = T::default();
    let mut update = |i: usize, g: T| step.apply(&mut params[i], g, &mut m[i], &mut v[i]);
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
