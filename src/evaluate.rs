//! `evaluate` and `predict` over any `Backend`: the device computes logits in large batches, the host
//! turns them into probabilities, loss and accuracy with the CPU twins (so both devices report the
//! same numbers from the same logits). Tested by tests/train_cpu.rs and tests/gpu_train.rs.

use std::sync::Arc;

use anyhow::{Result, ensure};

use crate::error::Hinted;

use crate::backend::{Backend, Role};
use crate::cpu;
use crate::data::{NUM_CLASSES, PIXELS, Split};

/// Everything a person may ask of a model on one split.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// Mean sparse categorical cross-entropy.
    pub loss: f64,
    pub accuracy: f64,
    /// Class probabilities, `(n, 10)`.
    pub probs: Vec<f32>,
    /// True labels, `(n)`.
    pub labels: Vec<u8>,
}

impl Evaluation {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// The loss and accuracy, as an epoch's record keeps them.
    pub fn scores(&self) -> crate::train::Scores {
        crate::train::Scores {
            loss: self.loss,
            accuracy: self.accuracy,
        }
    }
    /// The probabilities of sample `i`.
    pub fn probs_of(&self, i: usize) -> &[f32] {
        &self.probs[i * NUM_CLASSES..(i + 1) * NUM_CLASSES]
    }
    /// The predicted class (the first maximum) of sample `i`.
    pub fn predicted(&self, i: usize) -> usize {
        argmax(self.probs_of(i))
    }
    /// `counts[true][predicted]`.
    pub fn confusion(&self) -> [[u32; NUM_CLASSES]; NUM_CLASSES] {
        let mut m = [[0; NUM_CLASSES]; NUM_CLASSES];
        for i in 0..self.len() {
            m[self.labels[i] as usize][self.predicted(i)] += 1;
        }
        m
    }
}

/// Index of the first maximum.
pub fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(0, |best, (i, &x)| if x > v[best] { i } else { best })
}

/// Loss, accuracy and probabilities of `split` under the backend's current parameters. The backend
/// reads the samples itself (a GPU keeps the split resident across calls).
pub fn evaluate(backend: &mut dyn Backend, split: &Arc<Split>) -> Result<Evaluation> {
    ensure!(!split.is_empty(), "nothing to evaluate: the split is empty");
    backend.attach(Role::Eval, split)?;
    let chunk = backend.eval_batch().max(1);
    let outputs = backend.spec().outputs;
    let mut logits = vec![0.0f32; chunk * outputs];
    let mut dlogits = vec![0.0f32; chunk * outputs];
    let mut labels = vec![0u32; chunk];
    let mut probs = vec![0.0f32; split.len() * outputs];
    let (mut loss, mut correct) = (0.0f64, 0u64);
    for start in (0..split.len()).step_by(chunk) {
        let n = chunk.min(split.len() - start);
        backend.eval_logits(start, n, &mut logits)?;
        for (l, &s) in labels.iter_mut().zip(&split.labels[start..start + n]) {
            *l = s as u32;
        }
        if let Some(bad) = logits[..n * outputs].iter().position(|v| !v.is_finite()) {
            return Err(not_finite(backend, start + bad / outputs, "test image"));
        }
        let (batch_loss, batch_correct) =
            cpu::softmax_xent(&logits, &labels, &mut dlogits, n, outputs, 1.0);
        loss += batch_loss as f64;
        correct += batch_correct as u64;
        cpu::softmax(
            &logits,
            &mut probs[start * outputs..(start + n) * outputs],
            n,
            outputs,
        );
    }
    let n = split.len() as f64;
    Ok(Evaluation {
        loss: loss / n,
        accuracy: correct as f64 / n,
        probs,
        labels: split.labels.clone(),
    })
}

/// Class probabilities `(n, 10)` of already normalised inputs `x (n, 784)`.
pub fn predict(backend: &mut dyn Backend, x: &[f32], n: usize) -> Result<Vec<f32>> {
    let chunk = backend.eval_batch().max(1);
    let outputs = backend.spec().outputs;
    let mut logits = vec![0.0f32; chunk * outputs];
    let mut probs = vec![0.0f32; n * outputs];
    for start in (0..n).step_by(chunk) {
        let rows = chunk.min(n - start);
        backend.logits(
            &x[start * PIXELS..(start + rows) * PIXELS],
            rows,
            &mut logits,
        )?;
        if let Some(bad) = logits[..rows * outputs].iter().position(|v| !v.is_finite()) {
            return Err(not_finite(backend, start + bad / outputs, "input"));
        }
        cpu::softmax(
            &logits,
            &mut probs[start * outputs..(start + rows) * outputs],
            rows,
            outputs,
        );
    }
    Ok(probs)
}

/// The error for a model whose outputs are not finite numbers: which input, and the likely cause (the
/// largest weight, when the weights are large enough to overflow f32 sums).
fn not_finite(backend: &mut dyn Backend, row: usize, what: &str) -> anyhow::Error {
    let largest = backend
        .params()
        .ok()
        .and_then(|p| p.iter().map(|w| w.abs()).reduce(f32::max));
    let cause = match largest {
        Some(w) if w > 1e18 => format!(
            "its weights overflow float arithmetic (the largest is {w:.1e}; a trained model's are below 100)"
        ),
        Some(w) => {
            format!("its weights look ordinary (the largest is {w:.3}), so the input may hold NaN")
        }
        None => "its weights could not be read back".to_string(),
    };
    anyhow::Error::new(Hinted::new(
        anyhow::anyhow!("the model's outputs for {what} {row} are not finite numbers: {cause}"),
        "this model cannot give probabilities; retrain it, or check how it was exported",
    ))
}
