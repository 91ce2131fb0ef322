//! Per-class accuracy from a confusion matrix: how many of each class were right, and what the class was
//! most often taken for (the tutorial's reader wonders why a shirt is taken for a T-shirt). The CLI prints
//! it as a table after `evaluate`, `train` and `plot`. Tested in tests/plots.rs against the evaluation.

use crate::data::NUM_CLASSES;

/// One row of the table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassAccuracy {
    pub class: usize,
    /// Test images of this class.
    pub total: u32,
    /// Of those, predicted as this class.
    pub correct: u32,
    /// `correct / total` (0 when the class has no images).
    pub accuracy: f64,
    /// The class it was most often wrongly predicted as, and how often (None when never wrong).
    pub confused_with: Option<(usize, u32)>,
}

/// Rows for every class of `counts[true][predicted]`.
pub fn per_class(counts: &[[u32; NUM_CLASSES]; NUM_CLASSES]) -> Vec<ClassAccuracy> {
    counts
        .iter()
        .enumerate()
        .map(|(class, row)| {
            let total: u32 = row.iter().sum();
            let correct = row[class];
            let confused_with = row
                .iter()
                .enumerate()
                .filter(|&(p, &n)| p != class && n > 0)
                // The first of equal counts, so the table is stable.
                .fold(None, |best: Option<(usize, u32)>, (p, &n)| match best {
                    Some((_, m)) if m >= n => best,
                    _ => Some((p, n)),
                });
            ClassAccuracy {
                class,
                total,
                correct,
                accuracy: if total == 0 {
                    0.0
                } else {
                    correct as f64 / total as f64
                },
                confused_with,
            }
        })
        .collect()
}
