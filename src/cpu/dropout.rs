//! Dropout as Keras applies it in training (`layers.Dropout(rate)`: kept activations scaled by
//! `1 / (1 - rate)`, the rest zeroed), with masks from a counter-based generator so the CPU and the
//! GPU draw the same ones: Philox4x32-10 (Salmon et al., SC'11, as in Random123, TensorFlow and
//! PyTorch) keyed by the run's seed, its counter being (column quad, row, optimizer step, layer).
//! Column `4q + i` of row `r` at step `t` in hidden layer `l` is kept when word `i` of
//! `philox4x32_10(key, [q, r, t, l])` is at least the layer's threshold `round(rate * 2^32)`: integer
//! arithmetic only, so both devices agree bit for bit. Twins of gather.wgsl's `philox4`, the dropout
//! epilogue of `forward_gather`/`forward_gather_tex` and the `dropout` entry point. Tested below
//! (Random123's known answers) and by tests/kernels.rs and tests/dropout.rs.

use super::Real;

/// Philox's round multipliers and key increments (Random123's PHILOX_M4x32_0/1, PHILOX_W32_0/1).
const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// The high and low words of the 64-bit product `a * b`.
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

/// Philox4x32 with 10 rounds: four random words from a 128-bit counter and a 64-bit key.
pub fn philox4x32_10(key: [u32; 2], ctr: [u32; 4]) -> [u32; 4] {
    let (mut k, mut c) = (key, ctr);
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// The generator's key for a run's seed.
pub fn dropout_key(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// One hidden layer's dropout, as the kernels receive it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DropLayer {
    /// A column is kept when its random word is at least this; 0 keeps everything (no dropout).
    pub threshold: u32,
    /// `1 / (1 - rate)` in f32, as Keras computes it; kept activations are multiplied by it.
    pub scale: f32,
}

impl DropLayer {
    /// The layer dropping `rate` (in [0, 1)) of its activations.
    pub fn of(rate: f64) -> Self {
        let threshold = (rate * 4_294_967_296.0).round().min(u32::MAX as f64) as u32;
        Self {
            threshold,
            scale: 1.0 / (1.0 - rate as f32),
        }
    }

    pub fn active(&self) -> bool {
        self.threshold != 0
    }

    /// The factor the backward pass applies to a kept (positive) activation's gradient: `scale`, or
    /// 1 without dropout.
    pub fn backward_scale(&self) -> f32 {
        if self.active() { self.scale } else { 1.0 }
    }
}

/// A run's dropout: the generator's key and each hidden layer's rate.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dropout {
    pub key: [u32; 2],
    /// One per hidden layer (all inactive, or empty, for none).
    pub layers: Vec<DropLayer>,
}

impl Dropout {
    /// `rates` (one per hidden layer, each in [0, 1)) drawn from the masks of `seed`.
    pub fn new(rates: &[f64], seed: u64) -> Self {
        Self {
            key: dropout_key(seed),
            layers: rates.iter().map(|&r| DropLayer::of(r)).collect(),
        }
    }

    /// Whether any layer drops anything.
    pub fn active(&self) -> bool {
        self.layers.iter().any(DropLayer::active)
    }

    /// Hidden layer `l`'s dropout (none past the list).
    pub fn layer(&self, l: usize) -> DropLayer {
        self.layers.get(l).copied().unwrap_or_default()
    }

    /// The dropout of optimizer step `step` (from 1; its low 32 bits are the counter's), or `None`
    /// when nothing is dropped.
    pub fn step(&self, step: u64) -> Option<DropoutStep<'_>> {
        self.active().then(|| DropoutStep {
            key: self.key,
            step: step as u32,
            layers: &self.layers,
        })
    }
}

/// One training step's dropout: the key, the step's number (the optimizer step it belongs to, from 1)
/// and each hidden layer's rate, borrowed from the run's `Dropout` (a step allocates nothing).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropoutStep<'a> {
    pub key: [u32; 2],
    pub step: u32,
    /// One per hidden layer.
    pub layers: &'a [DropLayer],
}

impl DropoutStep<'_> {
    /// Hidden layer `l`'s dropout (none past the list).
    pub fn layer(&self, l: usize) -> DropLayer {
        self.layers.get(l).copied().unwrap_or_default()
    }
}

/// Twin of the `dropout` entry point (gather.wgsl) and of the forward kernels' dropout epilogue:
/// `act (rows, cols)` of hidden layer `layer` in place, each kept value times `scale`, the rest 0.
#[allow(clippy::too_many_arguments)]
pub fn dropout<T: Real>(
    act: &mut [T],
    rows: usize,
    cols: usize,
    layer: u32,
    key: [u32; 2],
    step: u32,
    d: DropLayer,
) {
    if !d.active() {
        return;
    }
    let scale = T::from_f64(d.scale as f64);
    for r in 0..rows {
        let row = &mut act[r * cols..(r + 1) * cols];
        // One Philox call draws the four columns of a quad.
        for (q, quad) in row.chunks_mut(4).enumerate() {
            let words = philox4x32_10(key, [q as u32, r as u32, step, layer]);
            for (v, &w) in quad.iter_mut().zip(&words) {
                *v = if w >= d.threshold {
                    *v * scale
                } else {
                    T::default()
                };
            }
        }
    }
}

/// ReLU's and dropout's backward in one: `dy *= scale` where `y > 0` (the activation after dropout:
/// positive only where ReLU passed and dropout kept), else 0. Twin of the scaled ReLU mask of
/// `dense_tail`, `dense_tail_tex` and `mm_nt`; with `scale` 1 it is `relu_backward`.
pub fn relu_dropout_backward<T: Real>(dy: &mut [T], y: &[T], scale: T) {
    let zero = T::default();
    for (d, &a) in dy.iter_mut().zip(y) {
        *d = if a > zero { *d * scale } else { zero };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_gives_random123s_known_answers() {
        // kat_vectors of Random123 for philox4x32_10.
        assert_eq!(
            philox4x32_10([0, 0], [0, 0, 0, 0]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 2], [u32::MAX; 4]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox4x32_10(
                [0xa409_3822, 0x299f_31d0],
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344]
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    #[test]
    fn a_rate_keeps_about_one_minus_rate_and_scales_what_it_keeps() {
        let d = DropLayer::of(0.2);
        assert_eq!(d.scale, 1.25);
        let mut act = vec![1.0f32; 100 * 128];
        dropout(&mut act, 100, 128, 0, dropout_key(42), 7, d);
        let kept = act.iter().filter(|&&v| v == 1.25).count();
        assert_eq!(kept + act.iter().filter(|&&v| v == 0.0).count(), act.len());
        let share = kept as f64 / act.len() as f64;
        assert!((share - 0.8).abs() < 0.02, "kept {share}");
        // Another step, layer or seed draws another mask; the same ones draw the same.
        let mask = |layer, step, seed| {
            let mut a = vec![1.0f32; 4 * 16];
            dropout(&mut a, 4, 16, layer, dropout_key(seed), step, d);
            a
        };
        assert_eq!(mask(0, 7, 42), mask(0, 7, 42));
        assert_ne!(mask(0, 7, 42), mask(0, 8, 42));
        assert_ne!(mask(0, 7, 42), mask(1, 7, 42));
        assert_ne!(mask(0, 7, 42), mask(0, 7, 43));
        let none = DropLayer::of(0.0);
        assert!(!none.active());
        let mut a = vec![3.0f32; 8];
        dropout(&mut a, 2, 4, 0, [1, 2], 3, none);
        assert_eq!(a, vec![3.0; 8]);
    }
}
