//! The `#[repr(C)]` mirrors of the shaders' uniform structs (the dimensions of each dispatch, the
//! per-step record) and of the stats record dense_tail writes, with matmul's epilogue flags; `kernels`
//! re-exports them. Tested by tests/shaders.rs, which checks their sizes against the WGSL structs they
//! mirror.

use bytemuck::{Pod, Zeroable};

/// Bits of `MatmulDims::flags`, the fused epilogues of matmul.wgsl: + bias, ReLU, the ReLU mask of an
/// operand, column sums of B.
pub const FLAG_BIAS: u32 = 1;
pub const FLAG_RELU: u32 = 2;
pub const FLAG_MASK: u32 = 4;
pub const FLAG_COLSUM: u32 = 8;
/// With FLAG_MASK: the kept values are also multiplied by `MatmulDims::mask_scale` (dropout's
/// backward; the mask source is the layer's output after dropout).
pub const FLAG_DROPOUT: u32 = 16;

/// Mirror of `MatmulDims` in matmul.wgsl. Strides and offsets in floats, all multiples of 4.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct MatmulDims {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub flags: u32,
    pub lda: u32,
    pub ldb: u32,
    pub ldc: u32,
    pub lde: u32,
    pub a_off: u32,
    pub b_off: u32,
    pub c_off: u32,
    pub e_off: u32,
    /// With FLAG_DROPOUT: the masked layer's dropout scale.
    pub mask_scale: f32,
    pub _pad: [u32; 3],
}

/// Mirror of `UpdateTexDims` in optimizers.wgsl (adam_tex, sgd_tex, rmsprop_tex). The optimizer's
/// hyper-parameters are the pipeline's overridable constants (`pipelines::update_constants`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct UpdateTexDims {
    pub len4: u32,
    /// Texels per row of the texture mirrors of p, g, m and v.
    pub row4: u32,
    /// The first texel row updated (the rows before it belong to a layer grad_update_gather_tex updates).
    pub row0: u32,
    pub _pad: u32,
}

/// Mirror of `UpdateRangeDims` in optimizers.wgsl (adam, sgd, rmsprop over storage buffers): the
/// update of the vec4s `[off4, off4 + len4)` of the flat buffers.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct UpdateRangeDims {
    pub off4: u32,
    pub len4: u32,
    pub _pad: [u32; 2],
}

/// Mirror of `GatherDims` in gather.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct GatherDims {
    /// Pixels per sample.
    pub inputs: u32,
    /// Row stride of x in floats (a multiple of 4, at least `inputs`).
    pub ldx: u32,
    /// Rows of x.
    pub capacity: u32,
    /// Non-zero: row r is sample `start + r` (evaluation), else `order[start + r]`.
    pub direct: u32,
}

/// Mirror of `ForwardGatherDims` in gather.wgsl. Offsets and strides in floats, multiples of 4.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct ForwardGatherDims {
    pub inputs: u32,
    pub fan_out: u32,
    pub capacity: u32,
    /// Row stride of act.
    pub ldc: u32,
    /// W (inputs, ldw) in params.
    pub w_off: u32,
    pub ldw: u32,
    /// b (fan_out) in params.
    pub b_off: u32,
    pub direct: u32,
    /// Non-zero: ReLU on the output.
    pub relu: u32,
    /// The first layer's dropout after ReLU (zeros: none).
    pub drop: DropFields,
    pub _pad: [u32; 3],
}

/// A hidden layer's dropout in a kernel's dims: `drop_threshold`, `drop_scale`, `drop_key0`,
/// `drop_key1` in the WGSL (all 0: none).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct DropFields {
    pub threshold: u32,
    pub scale: f32,
    pub key0: u32,
    pub key1: u32,
}

impl DropFields {
    /// Hidden layer `l`'s dropout in `dropout` (none when it drops nothing).
    pub fn of(dropout: &crate::cpu::Dropout, l: usize) -> Self {
        let d = dropout.layer(l);
        if !d.active() {
            return Self::default();
        }
        Self {
            threshold: d.threshold,
            scale: d.scale,
            key0: dropout.key[0],
            key1: dropout.key[1],
        }
    }
}

/// Mirror of `DropoutDims` in gather.wgsl: the `dropout` entry point over act (capacity, ld) of
/// hidden layer `layer`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct DropoutDims {
    pub cols: u32,
    pub ld: u32,
    pub layer: u32,
    pub threshold: u32,
    pub scale: f32,
    pub key0: u32,
    pub key1: u32,
    pub _pad: u32,
}

/// Mirror of `TailDims` in tail.wgsl. Offsets and strides in floats, multiples of 4.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct TailDims {
    /// The last layer's fan_in: columns of act and dZ.
    pub k: u32,
    /// The last layer's fan_out.
    pub classes: u32,
    pub capacity: u32,
    /// Row stride of act and of dZ.
    pub lda: u32,
    /// Row stride of W (params) and dW (grads).
    pub ldw: u32,
    /// Row stride of dlogits.
    pub ldo: u32,
    /// W in params and dW in grads.
    pub w_off: u32,
    /// b in params and db in grads.
    pub b_off: u32,
    /// dlogits (capacity, ldo) in the dz buffer.
    pub dl_off: u32,
    /// dZ (capacity, lda) in the dz buffer.
    pub dx_off: u32,
    pub direct: u32,
    /// Non-zero: write dZ (the layer below has weights).
    pub input_grad: u32,
    /// dense_tail_tex only: non-zero also applies the pipeline's optimizer to W and b.
    pub update: u32,
    /// Non-zero: act is a hidden layer's output after dropout, whose scale multiplies dZ's kept lanes.
    pub mask_scale: f32,
    pub _pad: [u32; 2],
}

/// Mirror of `GradUpdateDims` in gather.wgsl. Offsets and strides in floats, multiples of 4.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct GradUpdateDims {
    pub inputs: u32,
    pub fan_out: u32,
    /// Row stride of W in params, m and v.
    pub ld: u32,
    /// Row stride of dZ.
    pub ldz: u32,
    /// W (inputs, ld) in params, m and v.
    pub w_off: u32,
    /// b (fan_out) in params, m and v.
    pub b_off: u32,
    /// dZ in the dz buffer.
    pub dz_off: u32,
    pub direct: u32,
}

/// Mirror of `GradUpdateGatherTexDims` in optimizers.wgsl: grad_update_gather_tex over W (inputs, fan_out) and
/// b, which sit at atlas rows `w_row..` and `b_row` of the mirrors and of the flat buffers (row stride
/// `ld`), its samples read from an image texture of `texels` texels a sample and `1 << row_shift`
/// samples a row (`dataset::ImageTextureShape`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct GradUpdateGatherTexDims {
    pub inputs: u32,
    pub fan_out: u32,
    pub ld: u32,
    pub w_row: u32,
    pub b_row: u32,
    pub texels: u32,
    pub row_shift: u32,
    pub _pad: u32,
}

/// Mirror of `ForwardGatherTexDims` in gather.wgsl: forward_gather_tex's act (capacity, ldc) from an
/// image texture (`texels`, `row_shift` as in `GradUpdateGatherTexDims`), W at texel row `w_row` of its
/// texture, b at float `b_off` of the params buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct ForwardGatherTexDims {
    pub inputs: u32,
    pub fan_out: u32,
    pub capacity: u32,
    pub ldc: u32,
    pub w_row: u32,
    pub b_off: u32,
    pub texels: u32,
    pub row_shift: u32,
    pub direct: u32,
    pub relu: u32,
    pub drop: DropFields,
    pub _pad: [u32; 2],
}

/// Mirror of `Step` (every shader that reads it: adam, gather, tail): one record per
/// queued step, each bound at its own offset so many steps fit in one submission.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct StepRecord {
    /// Samples in this step (at most the capacity).
    pub rows: u32,
    /// Ring slot of this step's batch (texture path).
    pub slot: u32,
    /// Index of this step's stats record.
    pub stat: u32,
    /// Adam's bias-corrected step size (`cpu::adam_alpha`).
    pub alpha: f32,
    /// Gradient scale, 1 / rows.
    pub scale: f32,
    /// First index into the epoch's order (buffer path).
    pub start: u32,
    /// The optimizer step (from 1, low 32 bits): dropout's Philox counter.
    pub counter: u32,
    pub _pad: u32,
}

/// Mirror of `StepStat` (tail.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct StepStat {
    pub loss: f32,
    pub correct: u32,
    /// Rows whose logits or loss are infinite or NaN.
    pub nonfinite: u32,
    pub _pad: u32,
}
