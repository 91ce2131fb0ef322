//! Printing shared by `evaluate`, `train` and `plot`: the test scores, the per-class accuracy table and
//! the list of figures a command wrote. Checked by eye in the README's sample output; the numbers come
//! from `evaluate` and `per_class`.

use std::path::PathBuf;

use fmnist::data::{ClassNames, NUM_CLASSES};
use fmnist::evaluate::Evaluation;
use fmnist::outln;
use fmnist::per_class::per_class;

/// Keras' `model.evaluate` line for the test set, then the tutorial's `Test accuracy:` line.
pub fn print_test_scores(eval: &Evaluation) {
    let n = eval.len();
    outln!(
        "{n}/{n} - test_loss: {:.4} - test_accuracy: {:.4}",
        eval.loss,
        eval.accuracy
    );
    outln!("Test accuracy: {:.4}", eval.accuracy);
}

/// The per-class accuracy table of `counts[true][predicted]`, the classes named by `names`.
pub fn print_per_class(counts: &[[u32; NUM_CLASSES]; NUM_CLASSES], names: &ClassNames) {
    outln!("Per-class accuracy (test set):");
    outln!(
        "  {:<12} {:>6} {:>6} {:>9}   most often taken for",
        "class",
        "right",
        "total",
        "accuracy"
    );
    for row in per_class(counts) {
        let confused = row
            .confused_with
            .map(|(c, n)| format!("{} ({n})", names.get(c)))
            .unwrap_or_else(|| "-".to_string());
        outln!(
            "  {:<12} {:>6} {:>6} {:>8.1}%   {confused}",
            names.get(row.class),
            row.correct,
            row.total,
            100.0 * row.accuracy
        );
    }
}

/// `Figures:` and one path per line.
pub fn print_figures(paths: &[PathBuf]) {
    outln!("Figures:");
    for p in paths {
        outln!("  {}", p.display());
    }
}
