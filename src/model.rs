//! The MLP: its shape (`MlpSpec`), the flat parameter layout shared by every backend (`ParamLayout`),
//! and Keras' initialisation (Glorot-uniform weights, zero biases).
//!
//! Weights are stored `[in, out]` row-major, as Keras stores them, in one flat `f32` vector; the offsets
//! table says where each tensor starts. Gradients and Adam's m/v use the same layout, so the optimizer is
//! one pass over one vector. Tested by tests/cpu_gradcheck.rs and tests/checkpoint.rs.

use anyhow::{Result, bail};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::{NUM_CLASSES, PIXELS};

/// Rows of the largest evaluation batch any device uses (the GPU engine's), for `memory_needed`.
pub const EVAL_ROWS: u64 = 4096;

/// Every tensor starts at a multiple of this many floats, so a GPU can read any tensor as `vec4<f32>`.
pub const TENSOR_ALIGN: usize = 4;

/// Layer sizes of a Flatten -> Dense(h, ReLU)... -> Dense(10) network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MlpSpec {
    pub inputs: usize,
    pub hidden: Vec<usize>,
    pub outputs: usize,
}

impl MlpSpec {
    /// The Fashion-MNIST network: 784 inputs, the given hidden layers, 10 classes.
    pub fn fashion(hidden: &[usize]) -> Result<Self> {
        Self::new(PIXELS, hidden, NUM_CLASSES)
    }

    pub fn new(inputs: usize, hidden: &[usize], outputs: usize) -> Result<Self> {
        if inputs == 0 || outputs == 0 || hidden.contains(&0) {
            bail!(
                "every layer needs at least one unit (inputs {inputs}, hidden {hidden:?}, outputs {outputs})"
            );
        }
        crate::limits::check_layers(hidden)?;
        Ok(Self {
            inputs,
            hidden: hidden.to_vec(),
            outputs,
        })
    }

    /// `(fan_in, fan_out)` of each dense layer, input to output.
    pub fn layer_dims(&self) -> Vec<(usize, usize)> {
        let mut sizes = vec![self.inputs];
        sizes.extend(&self.hidden);
        sizes.push(self.outputs);
        sizes.windows(2).map(|w| (w[0], w[1])).collect()
    }

    /// The widest activation, which sizes the backends' scratch buffers.
    pub fn widest(&self) -> usize {
        self.hidden
            .iter()
            .copied()
            .chain([self.inputs, self.outputs])
            .max()
            .unwrap_or(0)
    }

    pub fn layout(&self) -> ParamLayout {
        let mut layers = Vec::new();
        let mut at = 0;
        for (fan_in, fan_out) in self.layer_dims() {
            let weight = at;
            at = align(at + fan_in * fan_out);
            let bias = at;
            at = align(at + fan_out);
            layers.push(LayerOffsets {
                weight,
                bias,
                fan_in,
                fan_out,
            });
        }
        ParamLayout { layers, total: at }
    }

    /// Number of trainable parameters (without alignment padding), as Keras' `model.summary()` counts.
    pub fn parameter_count(&self) -> usize {
        self.layer_dims().iter().map(|(i, o)| i * o + o).sum()
    }

    /// Bytes a device needs for this model with training batches of `batch` rows (1 to evaluate): the
    /// parameters, their gradients and Adam's two moments, and for both the training batch and an
    /// evaluation batch of `EVAL_ROWS` the inputs, every layer's activations and two gradient buffers
    /// of the widest layer. An upper bound of what the CPU path and the GPU engine allocate.
    pub fn memory_needed(&self, batch: usize) -> u64 {
        let params = self.layout().total as u64;
        let widest = self.widest() as u64;
        let outs: u64 = self.layer_dims().iter().map(|&(_, o)| o as u64).sum();
        let rows = batch as u64 + EVAL_ROWS;
        let per_row = self.inputs as u64 + outs + 2 * widest;
        4 * (4 * params + rows * per_row)
    }

    /// Refuses a model whose memory for batches of `batch` rows exceeds the budget
    /// (`limits::memory_budget`); `origin` starts the message, e.g. `--hidden 65536,65536: `.
    pub fn check_memory(&self, batch: usize, origin: &str) -> Result<()> {
        crate::limits::check_budget(
            self.memory_needed(batch),
            &format!(
                "{origin}the model {} ({} parameters)",
                self.describe(),
                self.parameter_count()
            ),
            "use smaller hidden layers (--hidden)",
        )
    }

    /// "784-128-10".
    pub fn describe(&self) -> String {
        let mut sizes = vec![self.inputs];
        sizes.extend(&self.hidden);
        sizes.push(self.outputs);
        sizes
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("-")
    }
}

fn align(n: usize) -> usize {
    n.div_ceil(TENSOR_ALIGN) * TENSOR_ALIGN
}

/// Where one dense layer's tensors sit in the flat parameter vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerOffsets {
    /// Start of the weight, shape `(fan_in, fan_out)` row-major.
    pub weight: usize,
    /// Start of the bias, shape `(fan_out)`.
    pub bias: usize,
    pub fan_in: usize,
    pub fan_out: usize,
}

impl LayerOffsets {
    pub fn weight_range(&self) -> std::ops::Range<usize> {
        self.weight..self.weight + self.fan_in * self.fan_out
    }
    pub fn bias_range(&self) -> std::ops::Range<usize> {
        self.bias..self.bias + self.fan_out
    }
}

/// The offsets table of the flat parameter (and gradient, m, v) vectors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamLayout {
    pub layers: Vec<LayerOffsets>,
    /// Length of the flat vector, padding included.
    pub total: usize,
}

/// Keras' defaults for Dense layers: Glorot-uniform weights in `+-sqrt(6 / (fan_in + fan_out))`, zero
/// biases. Seeded, so a run is reproducible from its printed seed.
pub fn glorot_init(spec: &MlpSpec, seed: u64) -> Vec<f32> {
    let layout = spec.layout();
    let mut params = vec![0.0f32; layout.total];
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    for layer in &layout.layers {
        let limit = (6.0 / (layer.fan_in + layer.fan_out) as f64).sqrt() as f32;
        for w in &mut params[layer.weight_range()] {
            *w = rng.random_range(-limit..limit);
        }
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_of_the_tutorial_model() {
        let spec = MlpSpec::fashion(&[128]).unwrap();
        assert_eq!(spec.parameter_count(), 101_770);
        let layout = spec.layout();
        assert_eq!(layout.layers.len(), 2);
        assert_eq!(layout.layers[0].bias, 784 * 128);
        assert!(
            layout
                .layers
                .iter()
                .all(|l| l.weight % TENSOR_ALIGN == 0 && l.bias % TENSOR_ALIGN == 0)
        );
        assert_eq!(layout.total % TENSOR_ALIGN, 0);
    }

    #[test]
    fn glorot_respects_its_limit_and_zeroes_biases() {
        let spec = MlpSpec::fashion(&[128]).unwrap();
        let p = glorot_init(&spec, 7);
        let l0 = spec.layout().layers[0];
        let limit = (6.0f32 / (784.0 + 128.0)).sqrt();
        assert!(p[l0.weight_range()].iter().all(|w| w.abs() <= limit));
        assert!(p[l0.bias_range()].iter().all(|&b| b == 0.0));
        assert_eq!(p, glorot_init(&spec, 7));
        assert_ne!(p, glorot_init(&spec, 8));
    }
}
