//! The best epoch so far, as Keras' `EarlyStopping(restore_best_weights=True)` and
//! `ModelCheckpoint(save_best_only=True)` see it: the lowest monitored loss
//! (`EpochRecord::monitored`), improved on only by more than `min_delta`. Patience counts the epochs
//! since the best one, so a resumed run continues the count from its checkpoint. Tested below and by
//! tests/early_stopping.rs.

use crate::config::EarlyStopping;

/// The epoch with the lowest monitored loss so far.
#[derive(Clone, Debug, PartialEq)]
pub struct BestEpoch {
    /// Counted from 1.
    pub epoch: usize,
    /// Its monitored loss.
    pub value: f64,
    /// Optimizer steps taken by its end.
    pub steps: u64,
    /// Its weights (flat, `ParamLayout` order), kept where early stopping will restore them.
    pub params: Option<Vec<f32>>,
}

/// Whether an epoch whose monitored loss is `value` improves on `best` by more than `min_delta`
/// (Keras: `value + min_delta < best`); the first epoch always does.
pub fn improves(value: f64, best: Option<&BestEpoch>, min_delta: f64) -> bool {
    best.is_none_or(|b| value + min_delta < b.value)
}

/// Whether training stops after epoch `epoch` (counted from 1): `patience` epochs have passed since
/// the best one without improving on it (Keras counts the same `wait`).
pub fn patience_spent(rule: &EarlyStopping, best: &BestEpoch, epoch: usize) -> bool {
    let wait = epoch.saturating_sub(best.epoch);
    wait > 0 && wait >= rule.patience
}

#[cfg(test)]
mod tests {
    use super::*;

    fn best(epoch: usize, value: f64) -> BestEpoch {
        BestEpoch {
            epoch,
            value,
            steps: 0,
            params: None,
        }
    }

    #[test]
    fn an_improvement_must_beat_the_best_by_more_than_min_delta() {
        assert!(improves(5.0, None, 0.0));
        let b = best(2, 0.40);
        assert!(improves(0.39, Some(&b), 0.0));
        assert!(!improves(0.40, Some(&b), 0.0), "equal is no improvement");
        assert!(!improves(0.395, Some(&b), 0.01));
        assert!(improves(0.389, Some(&b), 0.01));
    }

    #[test]
    fn patience_counts_epochs_since_the_best_as_keras_wait_does() {
        let rule = |patience| EarlyStopping {
            patience,
            min_delta: 0.0,
        };
        let b = best(3, 0.4);
        assert!(!patience_spent(&rule(2), &b, 3), "the best epoch itself");
        assert!(!patience_spent(&rule(2), &b, 4));
        assert!(patience_spent(&rule(2), &b, 5));
        // Patience 0 stops at the first epoch that does not improve, as Keras does.
        assert!(!patience_spent(&rule(0), &b, 3));
        assert!(patience_spent(&rule(0), &b, 4));
    }
}
