//! The pieces both operand paths build their steps from: per-slot bind groups, the gather and tail
//! sites, and the dims of the three products of a dense layer. Tested through tests/gpu_train.rs (both
//! paths) and tests/kernels.rs.

use anyhow::{Result, bail};

use super::{PlanInputs, Site};
use crate::gpu::buffers::GpuLayout;
use crate::gpu::kernels::{
    self, DropFields, DropoutDims, FLAG_BIAS, FLAG_COLSUM, FLAG_DROPOUT, FLAG_MASK, FLAG_RELU,
    GatherDims, Kernel, MatmulDims, TailDims,
};

/// The per-slot bind groups of a kernel whose binding `record` is the step's record: `buffers` in
/// binding order, then the record.
pub fn per_slot(
    p: &PlanInputs<'_>,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    buffers: &[&wgpu::Buffer],
    record: u32,
) -> Vec<wgpu::BindGroup> {
    let mut all: Vec<&wgpu::Buffer> = buffers.to_vec();
    all.push(&p.ring.buffer);
    (0..p.ring.slots)
        .map(|s| kernels::bind_group(p.device, label, layout, &all, p.ring.record(record, s)))
        .collect()
}

/// A step's sites in order, and the uniforms they bind (kept alive with the plan).
#[derive(Default)]
pub struct Sites {
    pub sites: Vec<Site>,
    pub keep: Vec<wgpu::Buffer>,
}

impl Sites {
    pub fn push(&mut self, (site, uniform): (Site, wgpu::Buffer)) {
        self.sites.push(site);
        self.keep.push(uniform);
    }
}

/// `gather`: the step's samples from the resident images, normalised, into `x (cap, ldx)` (zeros in
/// the padding lanes and past a partial batch).
pub fn gather_site(p: &PlanInputs<'_>, x: &wgpu::Buffer, ldx: usize) -> (Site, wgpu::Buffer) {
    let cap = p.cap;
    let dims = GatherDims {
        inputs: p.inputs as u32,
        ldx: ldx as u32,
        capacity: cap as u32,
        direct: 0,
    };
    let u = crate::gpu::buffers::uniform_init(p.device, "gather dims", bytemuck::bytes_of(&dims));
    let binds = per_slot(
        p,
        "gather (slot)",
        &p.kernels.gather_layout,
        &[p.train.images(), p.order, x, &u],
        4,
    );
    let mut site = Site::plain(
        format!("gather {cap}x{}", p.inputs),
        Kernel::Gather,
        kernels::gather_groups(cap, ldx),
        binds,
    );
    site.bytes = (cap * p.inputs * 5) as f64;
    (site, u)
}

/// `dropout` over hidden layer `l`'s output `act (cap, ld)` in place (layers past the first; the
/// first layer's dropout is its forward kernel's epilogue), or `None` when the layer drops nothing.
pub fn dropout_site(
    p: &PlanInputs<'_>,
    l: usize,
    act: &wgpu::Buffer,
) -> Option<(Site, wgpu::Buffer)> {
    let drop = DropFields::of(p.dropout, l);
    if l == 0 || drop.threshold == 0 {
        return None;
    }
    let g = p.layout().layers[l];
    let dims = DropoutDims {
        cols: g.fan_out as u32,
        ld: g.ld as u32,
        layer: l as u32,
        threshold: drop.threshold,
        scale: drop.scale,
        key0: drop.key0,
        key1: drop.key1,
        _pad: 0,
    };
    let u = crate::gpu::buffers::uniform_init(p.device, "dropout dims", bytemuck::bytes_of(&dims));
    let binds = per_slot(
        p,
        "dropout (slot)",
        &p.kernels.dropout_layout,
        &[act, &u],
        2,
    );
    let mut site = Site::plain(
        format!("L{} dropout {}x{}", l + 1, p.cap, g.fan_out),
        Kernel::Dropout,
        kernels::dropout_groups(p.cap, g.fan_out),
        binds,
    );
    site.bytes = (2 * 4 * p.cap * g.fan_out) as f64;
    Some((site, u))
}

/// The `dense_tail` site both paths end their forward with: the last layer's forward and backward from
/// `input (cap, lda)` (the last hidden layer's output, or the gathered x of a model without hidden
/// layers), the loss and the step's stats. dlogits go to `dz` at 0 and dZ of the layer below at
/// `cap * out.ld`. Returns the site and its dims uniform (to keep alive).
pub fn tail_site(
    p: &PlanInputs<'_>,
    input: &wgpu::Buffer,
    lda: usize,
    dz: &wgpu::Buffer,
) -> Result<(Site, wgpu::Buffer)> {
    let k = p.kernels;
    if !k.supports(Kernel::DenseTail) {
        bail!(
            "dense_tail binds {} storage buffers, more than this device allows per shader stage ({})",
            Kernel::DenseTail.storage_buffers(),
            p.device.limits().max_storage_buffers_per_shader_stage
        );
    }
    let dims = tail_dims(p, lda);
    let u =
        crate::gpu::buffers::uniform_init(p.device, "dense_tail dims", bytemuck::bytes_of(&dims));
    let st = p.state;
    let binds = per_slot(
        p,
        "dense_tail (slot)",
        k.layout(Kernel::DenseTail),
        &[
            input,
            &st.params,
            &p.train.labels,
            p.order,
            &st.grads,
            dz,
            p.stats,
            &u,
        ],
        8,
    );
    Ok((tail_plain_site(p, Kernel::DenseTail, binds), u))
}

/// The dims of either tail over an input of row stride `lda`: dlogits at 0 of the dz buffer, dZ after
/// them.
pub fn tail_dims(p: &PlanInputs<'_>, lda: usize) -> TailDims {
    let layout = p.layout();
    let last = layout.layers.len() - 1;
    let out = layout.layers[last];
    TailDims {
        k: out.fan_in as u32,
        classes: out.fan_out as u32,
        capacity: p.cap as u32,
        lda: lda as u32,
        ldw: out.ld as u32,
        ldo: out.ld as u32,
        w_off: out.weight as u32,
        b_off: out.bias as u32,
        dl_off: 0,
        dx_off: (p.cap * out.ld) as u32,
        direct: 0,
        input_grad: u32::from(last > 0),
        update: 0,
        // dZ flows into the last hidden layer, whose output went through its dropout.
        mask_scale: match last {
            0 => 0.0,
            _ => DropFields::of(p.dropout, last - 1).scale,
        },
        _pad: [0; 2],
    }
}

/// A tail site (named and counted like the profile shows it) over its group-0 bind groups.
pub fn tail_plain_site(p: &PlanInputs<'_>, kernel: Kernel, binds: Vec<wgpu::BindGroup>) -> Site {
    let layout = p.layout();
    let last = layout.layers.len() - 1;
    let out = layout.layers[last];
    let mut site = Site::plain(
        format!(
            "L{} {} {}x{}x{}",
            last + 1,
            kernel.entry_point(),
            p.cap,
            out.fan_in,
            out.fan_out
        ),
        kernel,
        kernels::dense_tail_groups(),
        binds,
    );
    site.flops = 6.0 * (p.cap * out.fan_in * out.fan_out) as f64;
    site
}

/// Dimensions of layer `l`'s forward product `act_l = relu(input · W_l + b_l)` over `rows` rows (no ReLU
/// on the last layer), shared by training and evaluation on both paths. `in_ld` is the input's row
/// stride for the first layer.
pub fn forward_dims(
    layout: &GpuLayout,
    l: usize,
    rows: usize,
    in_ld: usize,
    textures: bool,
) -> MatmulDims {
    let g = layout.layers[l];
    let last = l + 1 == layout.layers.len();
    MatmulDims {
        m: rows as u32,
        n: g.fan_out as u32,
        k: g.fan_in as u32,
        flags: FLAG_BIAS | if last { 0 } else { FLAG_RELU },
        lda: if l == 0 {
            in_ld
        } else {
            layout.layers[l - 1].ld
        } as u32,
        ldb: g.ld as u32,
        ldc: g.ld as u32,
        lde: 0,
        a_off: 0,
        // The texture variant reads the weight from its own texture (the first layer's: the atlas,
        // where it comes first) and takes row offsets; the buffer variant takes a float offset.
        b_off: if textures { 0 } else { g.weight as u32 },
        c_off: 0,
        e_off: g.bias as u32,
        mask_scale: 0.0,
        _pad: [0; 3],
    }
}

/// Dimensions of layer `l`'s weight gradient `dW_l = input^T dZ_l` with `db_l = colsum(dZ_l)` into the
/// gradients, over `cap` rows; dZ_l sits at float `dz_off` of its buffer. The texture variant reads both
/// operands from their own textures, so it takes no strides or offsets for them.
pub fn weight_grad_dims(
    layout: &GpuLayout,
    l: usize,
    cap: usize,
    dz_off: usize,
    textures: bool,
) -> MatmulDims {
    let g = layout.layers[l];
    let operand = |v: usize| if textures { 0 } else { v as u32 };
    MatmulDims {
        m: g.fan_in as u32,
        n: g.fan_out as u32,
        k: cap as u32,
        flags: FLAG_COLSUM,
        lda: operand(if l == 0 { 0 } else { layout.layers[l - 1].ld }),
        ldb: operand(g.ld),
        ldc: g.ld as u32,
        lde: 0,
        a_off: 0,
        b_off: operand(dz_off),
        c_off: g.weight as u32,
        e_off: g.bias as u32,
        mask_scale: 0.0,
        _pad: [0; 3],
    }
}

/// Dimensions of dZ of the layer below `l`: `(dZ_l W_l^T)` masked by `act_{l-1} > 0` (and scaled by
/// that layer's dropout `drop`, if any), over `cap` rows, written at float 0 of its buffer; dZ_l sits
/// at float `dz_off` of its own.
pub fn input_grad_dims(
    layout: &GpuLayout,
    l: usize,
    cap: usize,
    dz_off: usize,
    textures: bool,
    drop: DropFields,
) -> MatmulDims {
    let (g, prev) = (layout.layers[l], layout.layers[l - 1]);
    let operand = |v: usize| if textures { 0 } else { v as u32 };
    MatmulDims {
        m: cap as u32,
        n: g.fan_in as u32,
        k: g.fan_out as u32,
        flags: FLAG_MASK | if drop.threshold != 0 { FLAG_DROPOUT } else { 0 },
        lda: operand(g.ld),
        ldb: operand(g.ld),
        ldc: prev.ld as u32,
        lde: prev.ld as u32,
        a_off: operand(dz_off),
        b_off: operand(g.weight),
        c_off: 0,
        e_off: 0,
        mask_scale: drop.scale,
        _pad: [0; 3],
    }
}

/// `n` floats as bytes.
pub fn f32_bytes(n: usize) -> u64 {
    (n * 4) as u64
}
