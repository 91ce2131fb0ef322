//! The MLP built from the twins: a preallocated workspace, the forward pass, and the loss with its
//! gradients, over either set of products (`Products`): the plain reference loops, which the gradient
//! check and the fast step are checked against, or the fast path's (`fast::Tuned`).

use super::Real;
use super::dropout::{DropoutStep, dropout, relu_dropout_backward};
use super::ops::{bias_add, bias_grad, relu, softmax_xent};
use crate::model::ParamLayout;

/// The three products of a dense MLP, each taking `(a, b, c, m, k, n)` as the twins do.
pub trait Products {
    /// `c (m, n) = a (m, k) · b (k, n)`.
    fn matmul<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize);
    /// `c (m, n) = a (k, m)^T · b (k, n)`.
    fn matmul_at_b<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize);
    /// `c (m, n) = a (m, k) · b (n, k)^T`.
    fn matmul_a_bt<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize);
}

/// The reference products: the plain loops of the twins (`ops::matmul` and the transposed two).
pub struct Reference;

impl Products for Reference {
    fn matmul<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize) {
        super::ops::matmul(a, b, c, m, k, n)
    }
    fn matmul_at_b<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize) {
        super::ops::matmul_at_b(a, b, c, m, k, n)
    }
    fn matmul_a_bt<T: Real>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize) {
        super::ops::matmul_a_bt(a, b, c, m, k, n)
    }
}

/// Preallocated activations and gradients of one MLP for batches up to `capacity` rows, so the training
/// loop allocates nothing.
pub struct Workspace<T> {
    pub capacity: usize,
    /// Output of each layer after its activation: `(capacity, fan_out)`; the last one holds the logits.
    pub acts: Vec<Vec<T>>,
    /// Gradient flowing into the current layer's pre-activation, `(capacity, widest)`.
    pub(super) dz: Vec<T>,
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

/// Forward pass of `rows` samples `x (rows, inputs)`: every layer `relu(a · W + b)`, the last without
/// ReLU. The reference: plain products.
pub fn forward<T: Real>(
    layout: &ParamLayout,
    params: &[T],
    x: &[T],
    rows: usize,
    ws: &mut Workspace<T>,
) {
    forward_with::<Reference, T>(layout, params, x, rows, ws, None)
}

/// [`forward`] over the products `P`, with a training step's dropout after each hidden layer's ReLU
/// when `drop` is given.
pub fn forward_with<P: Products, T: Real>(
    layout: &ParamLayout,
    params: &[T],
    x: &[T],
    rows: usize,
    ws: &mut Workspace<T>,
    drop: Option<&DropoutStep>,
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
        P::matmul(
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
            if let Some(d) = drop {
                dropout(out, rows, l.fan_out, i as u32, d.key, d.step, d.layer(i));
            }
        }
    }
}

/// Forward and backward over one batch: fills `grads` (same layout as `params`) with the gradient of
/// the mean loss and returns `(summed loss, correct count)`. The reference: plain products.
pub fn loss_and_grad<T: Real>(
    layout: &ParamLayout,
    params: &[T],
    x: &[T],
    labels: &[u32],
    rows: usize,
    ws: &mut Workspace<T>,
    grads: &mut [T],
) -> (T, u32) {
    backward::<Reference, T>(layout, params, x, labels, rows, ws, grads, true, None)
}

/// [`loss_and_grad`] of a training step with dropout: the reference of the dropout step.
#[allow(clippy::too_many_arguments)]
pub fn loss_and_grad_dropout<T: Real>(
    layout: &ParamLayout,
    params: &[T],
    x: &[T],
    labels: &[u32],
    rows: usize,
    ws: &mut Workspace<T>,
    grads: &mut [T],
    drop: &DropoutStep,
) -> (T, u32) {
    backward::<Reference, T>(layout, params, x, labels, rows, ws, grads, true, Some(drop))
}

/// `loss_and_grad` over the products `P`, leaving out the first layer's weight gradient when
/// `first_weight` is false (the first layer's dZ is then in `ws.dz` for the caller to finish with),
/// with `drop`'s dropout in the forward pass and its scale in ReLU's backward.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward<P: Products, T: Real>(
    layout: &ParamLayout,
    params: &[T],
    x: &[T],
    labels: &[u32],
    rows: usize,
    ws: &mut Workspace<T>,
    grads: &mut [T],
    first_weight: bool,
    drop: Option<&DropoutStep>,
) -> (T, u32) {
    forward_with::<P, T>(layout, params, x, rows, ws, drop);
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
            P::matmul_at_b(
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
            P::matmul_a_bt(dz, &params[l.weight_range()], da, rows, l.fan_out, l.fan_in);
            // The input is hidden layer i - 1's output, after its dropout.
            let scale = drop.map_or(1.0, |d| d.layer(i - 1).backward_scale());
            relu_dropout_backward(da, &input[..rows * l.fan_in], T::from_f64(scale as f64));
            std::mem::swap(&mut ws.dz, &mut ws.da);
        }
    }
    (loss, correct)
}
