//! Checkpoints as safetensors: tensors `layers.{i}.weight` (F32, `[in, out]`) and `layers.{i}.bias`
//! (F32, `[out]`), metadata with the hidden sizes, class names, epochs trained and seed. Saved atomically;
//! loading checks names, dtypes and shapes and says which is wrong. Tested by tests/checkpoint.rs.

use std::path::Path;

use anyhow::{Context, Result, bail};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::atomic::write_atomic;
use crate::data::{ClassNames, NUM_CLASSES, PIXELS};
use crate::model::MlpSpec;
use crate::tensorfile::{self, Tensor};

/// What a checkpoint says about how it was made (all optional when loading foreign files).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckpointMeta {
    pub epochs: Option<usize>,
    pub seed: Option<u64>,
    pub steps: Option<u64>,
    /// The names of the classes the model was trained on (Fashion-MNIST's when the file has none).
    pub class_names: ClassNames,
}

/// A loaded model: its shape and its parameters in the flat `spec.layout()` order.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub spec: MlpSpec,
    pub params: Vec<f32>,
    pub meta: CheckpointMeta,
}

fn weight_name(i: usize) -> String {
    format!("layers.{i}.weight")
}
fn bias_name(i: usize) -> String {
    format!("layers.{i}.bias")
}

/// `format` in the metadata of a model file.
pub const MODEL_FORMAT: &str = "fmnist-mlp";
/// `format` of a run checkpoint (`resume`): a model file plus tensors named `optimizer.*` (and
/// `best.*`, the best epoch's weights, under early stopping).
pub const RUN_CHECKPOINT_FORMAT: &str = "fmnist-checkpoint";

/// The model's tensors in file order: `layers.{i}.weight` then `layers.{i}.bias`, layer by layer.
pub fn model_tensors<'a>(spec: &MlpSpec, params: &'a [f32]) -> Vec<Tensor<'a>> {
    let layout = spec.layout();
    let mut tensors = Vec::new();
    for (i, l) in layout.layers.iter().enumerate() {
        tensors.push(Tensor {
            name: weight_name(i),
            shape: vec![l.fan_in, l.fan_out],
            data: &params[l.weight_range()],
        });
        tensors.push(Tensor {
            name: bias_name(i),
            shape: vec![l.fan_out],
            data: &params[l.bias_range()],
        });
    }
    tensors
}

/// A model file's metadata, always in this order (so the same model gives the same bytes).
pub fn model_metadata(
    format: &str,
    spec: &MlpSpec,
    meta: &CheckpointMeta,
) -> Vec<(&'static str, String)> {
    let hidden: Vec<String> = spec.hidden.iter().map(|h| h.to_string()).collect();
    let mut info = vec![
        ("format", format.to_string()),
        ("hidden", hidden.join(",")),
        (
            "class_names",
            serde_json::to_string(&meta.class_names).expect("names serialise"),
        ),
    ];
    let numbers = [
        ("epochs", meta.epochs.map(|e| e as u64)),
        ("seed", meta.seed),
        ("steps", meta.steps),
    ];
    info.extend(
        numbers
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v.to_string()))),
    );
    info
}

/// Saves `params` (flat, `spec.layout()` order) to `path` as safetensors, atomically. The same input
/// gives the same bytes.
pub fn save(path: &Path, spec: &MlpSpec, params: &[f32], meta: &CheckpointMeta) -> Result<()> {
    write_atomic(path, &to_bytes(spec, params, meta))
}

/// The bytes `save` writes: what a browser offers as a download.
pub fn to_bytes(spec: &MlpSpec, params: &[f32], meta: &CheckpointMeta) -> Vec<u8> {
    tensorfile::serialize(
        &model_tensors(spec, params),
        &model_metadata(MODEL_FORMAT, spec, meta),
    )
}

/// Loads a checkpoint, checking that it is a Fashion-MNIST MLP: consecutive `layers.{i}` pairs of F32
/// tensors whose shapes chain from 784 inputs to 10 outputs, and no other tensors.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = read_file(path)?;
    parse(&bytes).with_context(|| format!("{}: not a usable fmnist checkpoint", path.display()))
}

/// The bytes of a checkpoint file: a regular file no larger than a header and a model within the
/// memory budget can be, whose header length is checked before the rest is read.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let limit = 8 + crate::limits::MAX_HEADER_BYTES + crate::limits::memory_budget()?;
    let fail = |e: crate::files::FileError| anyhow::anyhow!("{}: {e}", path.display());
    let (file, size) = crate::files::open_regular(path).map_err(fail)?;
    if size > limit {
        return Err(fail(crate::files::FileError::TooLarge {
            size,
            limit,
            what: "a checkpoint",
        }));
    }
    let mut bytes = Vec::with_capacity(8);
    let mut file = file.take(limit + 1);
    let io = |e| fail(crate::files::FileError::Io(e));
    (&mut file).take(8).read_to_end(&mut bytes).map_err(io)?;
    check_header(&bytes)
        .with_context(|| format!("{}: not a usable fmnist checkpoint", path.display()))?;
    bytes.reserve_exact(size.saturating_sub(8) as usize);
    file.read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        // The file grew while it was read.
        return Err(fail(crate::files::FileError::TooLarge {
            size: bytes.len() as u64,
            limit,
            what: "a checkpoint",
        }));
    }
    Ok(bytes)
}

/// Refuses a safetensors header longer than `MAX_HEADER_BYTES` or listing more than `MAX_TENSORS`
/// tensors before the crate parses it (it would build a map of every entry).
pub fn check_header(bytes: &[u8]) -> Result<()> {
    use crate::limits::{MAX_HEADER_BYTES, MAX_TENSORS};
    let Some(len) = bytes.get(..8) else {
        bail!(
            "not a safetensors file ({} bytes, shorter than the 8-byte header length)",
            bytes.len()
        )
    };
    let len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
    if len > MAX_HEADER_BYTES {
        bail!(
            "the header says it is {len} bytes long; fmnist reads headers up to {MAX_HEADER_BYTES} bytes"
        );
    }
    let header = &bytes[8..bytes.len().min(8 + len as usize)];
    // Every tensor entry has exactly one `data_offsets`; a count of the key bounds the entries.
    let key = b"data_offsets";
    let tensors = header.windows(key.len()).filter(|w| w == key).count();
    if tensors > MAX_TENSORS {
        bail!("the header lists {tensors} tensors; an fmnist checkpoint has at most {MAX_TENSORS}");
    }
    Ok(())
}

/// Parses a model file (or a run checkpoint, whose `optimizer.*` and `best.*` tensors are left to
/// `resume`).
pub fn parse(bytes: &[u8]) -> Result<Checkpoint> {
    check_header(bytes)?;
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| anyhow::anyhow!("not a safetensors file ({e})"))?;
    let (_, header) = SafeTensors::read_metadata(bytes)?;
    let run_checkpoint = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get("format"))
        .is_some_and(|f| f == RUN_CHECKPOINT_FORMAT);
    let n_layers = (0..)
        .take_while(|&i| st.tensor(&weight_name(i)).is_ok())
        .count();
    if n_layers == 0 {
        bail!(
            "no tensor named layers.0.weight (found: {})",
            st.names().join(", ")
        );
    }
    let expected: Vec<String> = (0..n_layers)
        .flat_map(|i| [weight_name(i), bias_name(i)])
        .collect();
    if let Some(extra) = st.names().into_iter().find(|n| {
        let known = expected.iter().any(|e| e == n);
        let run_state = run_checkpoint && (n.starts_with("optimizer.") || n.starts_with("best."));
        !(known || run_state)
    }) {
        bail!(
            "unexpected tensor {extra} (a model with {n_layers} layers has only layers.0-{}.weight/bias)",
            n_layers - 1
        );
    }
    let mut dims = Vec::new();
    for i in 0..n_layers {
        let w = st.tensor(&weight_name(i))?;
        let b = st
            .tensor(&bias_name(i))
            .map_err(|_| anyhow::anyhow!("missing tensor {}", bias_name(i)))?;
        for (name, t) in [(weight_name(i), &w), (bias_name(i), &b)] {
            if t.dtype() != Dtype::F32 {
                bail!("tensor {name} is {:?}, expected F32", t.dtype());
            }
        }
        let &[fan_in, fan_out] = w.shape() else {
            bail!(
                "tensor {} has shape {:?}, expected [in, out]",
                weight_name(i),
                w.shape()
            )
        };
        let inputs = dims.last().map_or(PIXELS, |&(_, prev_out)| prev_out);
        if fan_in != inputs && fan_out == inputs {
            bail!(
                "tensor {} has shape [{fan_in}, {fan_out}]: it is stored transposed; fmnist expects [in, out] = [{fan_out}, {fan_in}] (Keras' kernel layout; transpose PyTorch's [out, in])",
                weight_name(i)
            );
        }
        if i > 0 && fan_in != inputs {
            bail!(
                "tensor {} takes {fan_in} inputs but layer {} gives {inputs}",
                weight_name(i),
                i - 1
            );
        }
        if b.shape() != [fan_out] {
            bail!(
                "tensor {} has shape {:?}, expected [{fan_out}] to match {}",
                bias_name(i),
                b.shape(),
                weight_name(i)
            );
        }
        dims.push((fan_in, fan_out));
    }
    let (inputs, outputs) = (dims[0].0, dims[n_layers - 1].1);
    if inputs != PIXELS || outputs != NUM_CLASSES {
        bail!(
            "the model maps {inputs} inputs to {outputs} outputs; Fashion-MNIST needs {PIXELS} -> {NUM_CLASSES}"
        );
    }
    let hidden: Vec<usize> = dims[..n_layers - 1].iter().map(|d| d.1).collect();
    let spec = MlpSpec::fashion(&hidden)?;
    spec.check_memory(1, "")?;
    let layout = spec.layout();
    let mut params = vec![0.0f32; layout.total];
    for (i, l) in layout.layers.iter().enumerate() {
        copy_f32(&st.tensor(&weight_name(i))?, &mut params[l.weight_range()]);
        copy_f32(&st.tensor(&bias_name(i))?, &mut params[l.bias_range()]);
    }
    if let Some(bad) = params.iter().position(|p| !p.is_finite()) {
        bail!(
            "parameter {bad} is {} (the model diverged before it was saved?)",
            params[bad]
        );
    }
    let meta = st_metadata(bytes)?;
    Ok(Checkpoint { spec, params, meta })
}

/// Copies an F32 tensor's data into `out`.
pub fn copy_f32(t: &TensorView<'_>, out: &mut [f32]) {
    // The data may be unaligned inside the file, so decode bytewise rather than cast.
    for (o, chunk) in out.iter_mut().zip(t.data().chunks_exact(4)) {
        *o = f32::from_le_bytes(chunk.try_into().expect("4 bytes"));
    }
}

fn st_metadata(bytes: &[u8]) -> Result<CheckpointMeta> {
    let (_, header) = SafeTensors::read_metadata(bytes)?;
    let info = header.metadata().clone().unwrap_or_default();
    let number = |key: &str| info.get(key).and_then(|v| v.parse::<u64>().ok());
    let class_names = match info.get("class_names") {
        None => ClassNames::default(),
        Some(json) => serde_json::from_str(json)
            .map_err(|e| anyhow::anyhow!("its class_names metadata is not 10 names: {e}"))?,
    };
    Ok(CheckpointMeta {
        epochs: number("epochs").map(|e| e as usize),
        seed: number("seed"),
        steps: number("steps"),
        class_names,
    })
}
