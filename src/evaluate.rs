//! `evaluate` and `predict` over any `Backend`, and `evaluate_gpu_async` over a GPU engine's awaited
//! readbacks (a browser's): the device computes logits in large batches, the host turns them into
//! probabilities, loss and accuracy with the CPU twins (so both devices report the same numbers from
//! the same logits). Tested by tests/train_cpu.rs and tests/gpu_train.rs.

use std::sync::Arc;

use anyhow::{Result, ensure};

use crate::error::Hinted;

use crate::backend::{Backend, Role};
use crate::cpu;
use crate::data::{NUM_CLASSES, PIXELS, Split};
use crate::gpu::GpuBackend;

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
    let mut scoring = Scoring::new(split, backend.eval_batch(), backend.spec().outputs);
    for start in (0..split.len()).step_by(scoring.chunk) {
        let n = scoring.rows_at(start);
        backend.eval_logits(start, n, &mut scoring.logits)?;
        if let Err(row) = scoring.score(start, n) {
            let largest = backend.params().ok().as_deref().and_then(largest);
            return Err(not_finite(largest, row, "test image"));
        }
    }
    Ok(scoring.finish())
}

/// [`evaluate`] on a GPU engine through its awaited readbacks: what a browser (wasm32, WebGPU), where
/// nothing may block, runs. The same numbers (tests/gpu_train.rs).
pub async fn evaluate_gpu_async(gpu: &mut GpuBackend, split: &Arc<Split>) -> Result<Evaluation> {
    ensure!(!split.is_empty(), "nothing to evaluate: the split is empty");
    gpu.attach(Role::Eval, split)?;
    let mut scoring = Scoring::new(split, gpu.eval_batch(), gpu.spec().outputs);
    for start in (0..split.len()).step_by(scoring.chunk) {
        let n = scoring.rows_at(start);
        gpu.eval_logits_async(start, n, &mut scoring.logits).await?;
        if let Err(row) = scoring.score(start, n) {
            let largest = gpu.params_async().await.ok().as_deref().and_then(largest);
            return Err(not_finite(largest, row, "test image"));
        }
    }
    Ok(scoring.finish())
}

/// An evaluation being summed chunk by chunk: the chunk's logits in, the loss, the correct count and
/// the probabilities out (computed on the host by the CPU twins, so every device reports the same
/// numbers from the same logits).
struct Scoring<'a> {
    split: &'a Split,
    chunk: usize,
    outputs: usize,
    /// `(chunk, outputs)`: where the device writes a chunk's logits.
    logits: Vec<f32>,
    dlogits: Vec<f32>,
    labels: Vec<u32>,
    probs: Vec<f32>,
    loss: f64,
    correct: u64,
}

impl<'a> Scoring<'a> {
    fn new(split: &'a Split, chunk: usize, outputs: usize) -> Self {
        let chunk = chunk.max(1);
        Self {
            split,
            chunk,
            outputs,
            logits: vec![0.0; chunk * outputs],
            dlogits: vec![0.0; chunk * outputs],
            labels: vec![0; chunk],
            probs: vec![0.0; split.len() * outputs],
            loss: 0.0,
            correct: 0,
        }
    }

    /// Rows of the chunk starting at sample `start`.
    fn rows_at(&self, start: usize) -> usize {
        self.chunk.min(self.split.len() - start)
    }

    /// Scores the `n` logits rows of samples `start..start + n`; a non-finite logit is `Err(sample)`.
    fn score(&mut self, start: usize, n: usize) -> std::result::Result<(), usize> {
        let outputs = self.outputs;
        for (l, &s) in self
            .labels
            .iter_mut()
            .zip(&self.split.labels[start..start + n])
        {
            *l = s as u32;
        }
        if let Some(bad) = self.logits[..n * outputs]
            .iter()
            .position(|v| !v.is_finite())
        {
            return Err(start + bad / outputs);
        }
        let (batch_loss, batch_correct) = cpu::softmax_xent(
            &self.logits,
            &self.labels,
            &mut self.dlogits,
            n,
            outputs,
            1.0,
        );
        self.loss += batch_loss as f64;
        self.correct += batch_correct as u64;
        cpu::softmax(
            &self.logits,
            &mut self.probs[start * outputs..(start + n) * outputs],
            n,
            outputs,
        );
        Ok(())
    }

    fn finish(self) -> Evaluation {
        let n = self.split.len() as f64;
        Evaluation {
            loss: self.loss / n,
            accuracy: self.correct as f64 / n,
            probs: self.probs,
            labels: self.split.labels.clone(),
        }
    }
}

/// The largest weight magnitude, which says whether non-finite outputs come from overflowing weights.
fn largest(params: &[f32]) -> Option<f32> {
    params.iter().map(|w| w.abs()).reduce(f32::max)
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
            let largest = backend.params().ok().as_deref().and_then(largest);
            return Err(not_finite(largest, start + bad / outputs, "input"));
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
/// largest weight, when the weights are large enough to overflow f32 sums; `None` when they could not
/// be read).
fn not_finite(largest: Option<f32>, row: usize, what: &str) -> anyhow::Error {
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
