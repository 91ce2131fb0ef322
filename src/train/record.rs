//! What a fit remembers of each epoch: the training metrics, the validation and test scores where
//! they were evaluated, and the seconds. Written to history.csv (`run::history`), the run checkpoint
//! (`resume`), the epoch line (`progress`) and history.png (`plot::history`).

/// Loss and accuracy of one evaluated split.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scores {
    /// Mean sparse categorical cross-entropy.
    pub loss: f64,
    pub accuracy: f64,
}

/// One row of history.csv.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRecord {
    /// Counted from 1.
    pub epoch: usize,
    /// The running means over the epoch's steps, as Keras reports them.
    pub loss: f64,
    pub accuracy: f64,
    /// The held-out validation split after the epoch (`--validation-split`).
    pub val: Option<Scores>,
    /// The test set after the epoch (`--test-every-epoch`).
    pub test: Option<Scores>,
    /// Training time of the epoch, evaluations excluded.
    pub seconds: f64,
}

impl EpochRecord {
    /// The loss early stopping and `--save-best` watch: `val_loss` when there is a validation split
    /// (Keras' default monitor), else the training `loss`.
    pub fn monitored(&self) -> (&'static str, f64) {
        match self.val {
            Some(v) => ("val_loss", v.loss),
            None => ("loss", self.loss),
        }
    }
}
