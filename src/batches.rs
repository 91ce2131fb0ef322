//! Minibatches: the seeded shuffle of each epoch, and the one normalisation of a pixel (u8 -> f32 in
//! [0, 1]) that training, evaluation and photos use on every device (the WGSL kernels multiply by the
//! same constant, written as its bit pattern). Tested in this file, by tests/kernels.rs (the shader's
//! constant) and through tests/train_cpu.rs.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::data::Split;

/// `1 / 255` rounded to f32 (bits 0x3b808081; gather.wgsl holds the same bits as an exact hexadecimal
/// literal, checked by tests/kernels.rs). A multiply by it is correctly rounded on every device and
/// unaffected by fast math, where a division may not be (WGSL allows 2.5 ULP for `/`), so CPU and GPU
/// inputs agree bit for bit.
pub const PIXEL_SCALE: f32 = 1.0 / 255.0;

/// A pixel as the model sees it: `px / 255` as a multiply by [`PIXEL_SCALE`].
#[inline]
pub fn normalise(px: u8) -> f32 {
    px as f32 * PIXEL_SCALE
}

/// Steps in one epoch over `n` samples; the last batch may be partial.
pub fn steps_per_epoch(n: usize, batch_size: usize) -> usize {
    n.div_ceil(batch_size)
}

/// The sample order of one epoch: identity without shuffle, else a permutation seeded by (seed, epoch),
/// so epoch `e` of a run is reproducible on its own. Every device trains in this order.
pub fn epoch_order(n: usize, seed: u64, epoch: usize, shuffle: bool) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    if shuffle {
        let mut rng = ChaCha8Rng::seed_from_u64(
            seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
                .wrapping_add(epoch as u64),
        );
        order.shuffle(&mut rng);
    }
    order
}

/// Gathers the samples `indices` of `split` into `x (indices.len(), pixels)`, normalised, and `labels`.
pub fn gather_normalise(split: &Split, indices: &[u32], x: &mut [f32], labels: &mut [u32]) {
    let w = split.pixels;
    for (r, &i) in indices.iter().enumerate() {
        let i = i as usize;
        for (dst, &px) in x[r * w..(r + 1) * w].iter_mut().zip(split.image(i)) {
            *dst = normalise(px);
        }
        labels[r] = split.labels[i] as u32;
    }
}

/// Normalises a whole run of samples (evaluation, prediction): `x (n, pixels)`.
pub fn normalise_range(split: &Split, start: usize, n: usize, x: &mut [f32]) {
    let w = split.pixels;
    for (dst, &px) in x[..n * w]
        .iter_mut()
        .zip(&split.images[start * w..(start + n) * w])
    {
        *dst = normalise(px);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::PIXELS;

    #[test]
    fn shuffle_is_a_seeded_permutation_that_changes_per_epoch() {
        let a = epoch_order(1000, 5, 0, true);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(a, epoch_order(1000, 5, 0, true));
        assert_ne!(a, epoch_order(1000, 5, 1, true));
        assert_ne!(a, epoch_order(1000, 6, 0, true));
        assert_eq!(epoch_order(10, 5, 3, false), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn normalise_is_exact_at_the_ends_and_one_multiply_everywhere() {
        assert_eq!(PIXEL_SCALE.to_bits(), 0x3b80_8081);
        assert_eq!(normalise(0), 0.0);
        assert_eq!(normalise(255), 1.0);
        for px in 0..=255u8 {
            assert_eq!(normalise(px).to_bits(), (px as f32 * PIXEL_SCALE).to_bits());
            assert!((normalise(px) as f64 - px as f64 / 255.0).abs() < 1e-7);
        }
    }

    #[test]
    fn gather_and_range_agree_on_the_same_samples() {
        let n = 5;
        let split = Split {
            images: (0..n * PIXELS).map(|i| (i * 7 % 256) as u8).collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
            pixels: PIXELS,
        };
        let (mut x, mut labels) = (vec![f32::NAN; 2 * PIXELS], vec![99; 2]);
        gather_normalise(&split, &[3, 1], &mut x, &mut labels);
        assert_eq!(labels, [3, 1]);
        let mut y = vec![f32::NAN; PIXELS];
        normalise_range(&split, 3, 1, &mut y);
        assert_eq!(x[..PIXELS], y[..]);
        normalise_range(&split, 1, 1, &mut y);
        assert_eq!(x[PIXELS..], y[..]);
    }
}
