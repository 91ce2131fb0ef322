//! What the trainer hands the page, as JSON: a progress event, a finished run, a test evaluation, a
//! photo's prediction and a model's description. Plain numbers, so the page only draws.

use serde::Serialize;

use fmnist::data::NUM_CLASSES;
use fmnist::evaluate::Evaluation;
use fmnist::train::{EpochRecord, Scores};

/// How many test images the predictions figure shows with their probabilities (the tutorial's 5x3).
pub const SHOWN_PREDICTIONS: usize = 15;

/// One progress event of a running `train`.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    EpochStart {
        epoch: usize,
        epochs: usize,
        steps: usize,
    },
    Tick {
        step: usize,
        steps: usize,
        loss: f64,
        accuracy: f64,
    },
    EpochEnd {
        record: EpochRow,
        /// Keras' epoch line, as the CLI prints it.
        line: String,
    },
}

/// One epoch of the history, as history.csv holds it.
#[derive(Clone, Serialize)]
pub struct EpochRow {
    pub epoch: usize,
    pub loss: f64,
    pub accuracy: f64,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    pub seconds: f64,
}

impl From<&EpochRecord> for EpochRow {
    fn from(r: &EpochRecord) -> Self {
        Self {
            epoch: r.epoch,
            loss: r.loss,
            accuracy: r.accuracy,
            val_loss: r.val.map(|s: Scores| s.loss),
            val_accuracy: r.val.map(|s: Scores| s.accuracy),
            seconds: r.seconds,
        }
    }
}

/// A finished (or stopped) `train`.
#[derive(Serialize)]
pub struct TrainReport {
    pub history: Vec<EpochRow>,
    /// `finished`, `stopped early` (early stopping) or `stopped` (the Stop button).
    pub end: &'static str,
    pub steps: u64,
    pub model: ModelReport,
    pub adapter: String,
}

/// A model's shape and origin.
#[derive(Serialize)]
pub struct ModelReport {
    /// "784-128-10".
    pub layers: String,
    pub parameters: usize,
    pub epochs: Option<usize>,
    pub steps: Option<u64>,
    pub class_names: Vec<String>,
}

/// The model on the test split.
#[derive(Serialize)]
pub struct TestReport {
    pub loss: f64,
    pub accuracy: f64,
    /// `confusion[true][predicted]`.
    pub confusion: [[u32; NUM_CLASSES]; NUM_CLASSES],
    /// The predicted class of every test image.
    pub predicted: Vec<u8>,
    /// The probabilities of the first `SHOWN_PREDICTIONS` test images.
    pub probabilities: Vec<Vec<f32>>,
    pub seconds: f64,
}

impl TestReport {
    pub fn of(eval: &Evaluation, seconds: f64) -> Self {
        Self {
            loss: eval.loss,
            accuracy: eval.accuracy,
            confusion: eval.confusion(),
            predicted: (0..eval.len()).map(|i| eval.predicted(i) as u8).collect(),
            probabilities: (0..eval.len().min(SHOWN_PREDICTIONS))
                .map(|i| eval.probs_of(i).to_vec())
                .collect(),
            seconds,
        }
    }
}

/// A picture's prediction: what the model saw and what it thinks.
#[derive(Serialize)]
pub struct PhotoReport {
    /// The 28x28 grey bytes the model read.
    pub pixels: Vec<u8>,
    pub probabilities: Vec<f32>,
    pub predicted: usize,
    pub inverted: bool,
    pub warnings: Vec<String>,
}

/// The adapter WebGPU granted.
#[derive(Serialize)]
pub struct AdapterReport {
    pub adapter: String,
}
