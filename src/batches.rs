//! Minibatches: a seeded shuffle per epoch, gather + normalise (u8 / 255 -> f32) into reusable buffers,
//! and a producer thread that runs ahead of the device through a bounded queue. The buffers circulate
//! between the two threads (ready queue, spare queue), so nothing is allocated per step.
//! Tested in this file and through tests/train_cpu.rs.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{Scope, ScopedJoinHandle};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::data::{PIXELS, Split};

/// One minibatch: `x (rows, 784)` in [0, 1] and `labels (rows)`; buffers are sized for the full batch.
pub struct Batch {
    pub x: Vec<f32>,
    pub labels: Vec<u32>,
    pub rows: usize,
    /// 0-based epoch this batch belongs to.
    pub epoch: usize,
    /// 0-based step within the epoch.
    pub step: usize,
}

/// What the producer walks through.
#[derive(Clone, Copy, Debug)]
pub struct BatchPlan {
    pub batch_size: usize,
    pub epochs: usize,
    pub seed: u64,
    pub shuffle: bool,
    /// Stop after this many batches in total.
    pub max_steps: Option<usize>,
}

/// Steps in one epoch over `n` samples; the last batch may be partial.
pub fn steps_per_epoch(n: usize, batch_size: usize) -> usize {
    n.div_ceil(batch_size)
}

/// The sample order of one epoch: identity without shuffle, else a permutation seeded by (seed, epoch),
/// so epoch `e` of a run is reproducible on its own.
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

/// Gathers the samples `indices` of `split` into `x (indices.len(), 784)` scaled to [0, 1] and `labels`.
pub fn gather_normalise(split: &Split, indices: &[u32], x: &mut [f32], labels: &mut [u32]) {
    const SCALE: f32 = 1.0 / 255.0;
    for (r, &i) in indices.iter().enumerate() {
        let i = i as usize;
        for (dst, &px) in x[r * PIXELS..(r + 1) * PIXELS]
            .iter_mut()
            .zip(split.image(i))
        {
            *dst = px as f32 * SCALE;
        }
        labels[r] = split.labels[i] as u32;
    }
}

/// Normalises a whole run of samples (evaluation, prediction): `x (n, 784)`.
pub fn normalise_range(split: &Split, start: usize, n: usize, x: &mut [f32]) {
    for (dst, &px) in x[..n * PIXELS]
        .iter_mut()
        .zip(&split.images[start * PIXELS..(start + n) * PIXELS])
    {
        *dst = px as f32 / 255.0;
    }
}

/// The consumer's end of a producer thread. Batches come out of `next` in order; hand each back with
/// `recycle` once the device has copied it, or the producer stops after `depth + 1` batches.
pub struct BatchProducer<'scope> {
    ready: Receiver<Batch>,
    spare: SyncSender<Batch>,
    _thread: ScopedJoinHandle<'scope, ()>,
}

impl<'scope> BatchProducer<'scope> {
    /// Starts a producer on `scope` that keeps up to `depth` batches ready ahead of the consumer.
    pub fn spawn<'env>(
        scope: &'scope Scope<'scope, 'env>,
        split: &'env Split,
        plan: BatchPlan,
        depth: usize,
    ) -> Self {
        let depth = depth.max(1);
        let (ready_tx, ready) = sync_channel::<Batch>(depth);
        let (spare, spare_rx) = sync_channel::<Batch>(depth + 1);
        for _ in 0..=depth {
            let b = Batch {
                x: vec![0.0; plan.batch_size * PIXELS],
                labels: vec![0; plan.batch_size],
                rows: 0,
                epoch: 0,
                step: 0,
            };
            spare
                .send(b)
                .expect("the spare queue holds depth + 1 batches");
        }
        let thread = scope.spawn(move || {
            let n = split.len();
            let mut produced = 0;
            for epoch in 0..plan.epochs {
                let order = epoch_order(n, plan.seed, epoch, plan.shuffle);
                for (step, indices) in order.chunks(plan.batch_size).enumerate() {
                    if plan.max_steps.is_some_and(|max| produced >= max) {
                        return;
                    }
                    // Both receives fail only when the consumer is gone: then stop quietly.
                    let Ok(mut b) = spare_rx.recv() else { return };
                    gather_normalise(split, indices, &mut b.x, &mut b.labels);
                    (b.rows, b.epoch, b.step) = (indices.len(), epoch, step);
                    if ready_tx.send(b).is_err() {
                        return;
                    }
                    produced += 1;
                }
            }
        });
        Self {
            ready,
            spare,
            _thread: thread,
        }
    }

    /// The next batch, or `None` when the plan is done.
    pub fn next_batch(&self) -> Option<Batch> {
        self.ready.recv().ok()
    }

    /// Returns a batch's buffers to the producer.
    pub fn recycle(&self, batch: Batch) {
        // Fails only when the producer has finished, and then the buffer is simply dropped.
        let _ = self.spare.try_send(batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy_split(n: usize) -> Split {
        let images = (0..n * PIXELS).map(|i| (i / PIXELS) as u8).collect();
        let labels = (0..n).map(|i| (i % 10) as u8).collect();
        Split { images, labels }
    }

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
    fn producer_covers_every_sample_once_per_epoch_with_a_partial_last_batch() {
        let split = toy_split(70);
        let plan = BatchPlan {
            batch_size: 32,
            epochs: 2,
            seed: 1,
            shuffle: true,
            max_steps: None,
        };
        let mut seen = vec![0u32; 70];
        let mut rows = Vec::new();
        std::thread::scope(|s| {
            let producer = BatchProducer::spawn(s, &split, plan, 2);
            while let Some(b) = producer.next_batch() {
                rows.push((b.epoch, b.step, b.rows));
                for r in 0..b.rows {
                    // Each toy image is filled with its own index, so the pixel says which sample it is.
                    let index = (b.x[r * PIXELS] * 255.0).round() as usize;
                    assert_eq!(b.labels[r] as usize, index % 10);
                    seen[index] += 1;
                }
                producer.recycle(b);
            }
        });
        assert_eq!(
            rows,
            vec![
                (0, 0, 32),
                (0, 1, 32),
                (0, 2, 6),
                (1, 0, 32),
                (1, 1, 32),
                (1, 2, 6)
            ]
        );
        assert!(seen.iter().all(|&c| c == 2));
    }

    #[test]
    fn producer_stops_at_max_steps_and_when_the_consumer_leaves() {
        let split = toy_split(100);
        let plan = BatchPlan {
            batch_size: 10,
            epochs: 5,
            seed: 1,
            shuffle: false,
            max_steps: Some(13),
        };
        let mut count = 0;
        std::thread::scope(|s| {
            let producer = BatchProducer::spawn(s, &split, plan, 3);
            while let Some(b) = producer.next_batch() {
                count += 1;
                producer.recycle(b);
            }
        });
        assert_eq!(count, 13);
        // Dropping the consumer early must not hang the scope.
        std::thread::scope(|s| {
            let producer = BatchProducer::spawn(
                s,
                &split,
                BatchPlan {
                    max_steps: None,
                    ..plan
                },
                2,
            );
            let b = producer.next_batch().unwrap();
            assert_eq!(b.x[PIXELS], 1.0 / 255.0);
        });
    }
}
