//! The buffer path's step, built for hardware GPUs: storage-buffer operands, no copies, every dispatch of
//! a submission in one compute pass. For the tutorial's 784-128-10 model a step is four dispatches:
//!   forward_gather    gather the step's samples from the resident images, act0 = relu(x W1 + b1)
//!   dense_tail        one workgroup: logits, softmax cross-entropy and the step's stats, dW2 and db2
//!                     into grads, dZ0 = (dlogits W2^T) masked by act0 > 0
//!   grad_update_gather  dW1 = x^T dZ0 and db1 (x gathered again), Adam on W1 and b1 in the epilogue
//!   adam              Adam over the rest of the parameters (the later layers)
//! Deeper models add `mm_nn` forwards and `mm_tn` (weight gradient) + `mm_nt` (masked input gradient)
//! backwards for their middle layers; a model without hidden layers gathers x and runs the tail on it.
//! Tested by tests/gpu_train.rs (vs the CPU path, and D <= 4, C = 0, P <= 1 per step).

use anyhow::{Result, bail};

use crate::gpu::buffers::{self as gbuf, pad4};
use crate::gpu::kernels::{
    self, DropFields, ForwardGatherDims, GradUpdateDims, Kernel, MatmulDims, UpdateRangeDims,
};
use crate::gpu::plan::{
    PlanInputs, Site, Sites, StepPlan, f32_bytes, forward_dims, gather_site, input_grad_dims,
    per_slot, weight_grad_dims,
};

use super::Operands;

/// The buffers only this path's step uses.
struct Scratch {
    /// `(cap, ld_l)` per hidden layer.
    acts: Vec<wgpu::Buffer>,
    /// `(cap, pad4(inputs))`: the gathered input of a model without hidden layers.
    x: Option<wgpu::Buffer>,
    /// Two gradient buffers used in turn (a product cannot read and write one buffer): A holds the
    /// tail's dlogits `(cap, out_ld)` then dZ of the last hidden layer; deeper layers alternate.
    dz: [wgpu::Buffer; 2],
}

impl Scratch {
    fn new(p: &PlanInputs<'_>) -> Self {
        let (d, cap, layout) = (p.device, p.cap, p.layout());
        let last = layout.layers.len() - 1;
        let widest = layout.layers.iter().map(|l| l.ld).max().unwrap_or(4);
        let out_ld = layout.layers[last].ld;
        let buf = |label: &str, floats: usize| gbuf::storage(d, label, f32_bytes(floats));
        Self {
            acts: layout.layers[..last]
                .iter()
                .enumerate()
                .map(|(i, l)| buf(&format!("act {i} (cap, ld)"), cap * l.ld))
                .collect(),
            x: (last == 0).then(|| buf("x (cap, ldx)", cap * pad4(p.inputs))),
            dz: [
                buf("dz A (cap, out_ld + widest)", cap * (out_ld + widest)),
                buf("dz B (cap, widest)", cap * widest),
            ],
        }
    }
}

pub fn build(p: &PlanInputs<'_>) -> Result<StepPlan> {
    for kernel in [Kernel::DenseTail, Kernel::GradUpdateGather] {
        if !p.kernels.supports(kernel) {
            bail!(
                "{} binds {} storage buffers, more than this device allows per shader stage ({}); \
                 {}=textures trains without it",
                kernel.entry_point(),
                kernel.storage_buffers(),
                p.device.limits().max_storage_buffers_per_shader_stage,
                Operands::ENV
            );
        }
    }
    let layout = p.layout();
    let (cap, last) = (p.cap, layout.layers.len() - 1);
    let sc = Scratch::new(p);
    let mut sites = Sites::default();
    match &sc.x {
        Some(x) => sites.push(gather_site(p, x, pad4(p.inputs))),
        None => sites.push(first_forward(p, &sc.acts[0])),
    }
    for l in 1..last {
        sites.push(hidden_forward(p, l, &sc.acts[l - 1], &sc.acts[l]));
        if let Some(site) = super::dropout_site(p, l, &sc.acts[l]) {
            sites.push(site);
        }
    }
    let (tail_input, lda) = match &sc.x {
        Some(x) => (x, pad4(p.inputs)),
        None => (&sc.acts[last - 1], layout.layers[last - 1].ld),
    };
    sites.push(super::tail_site(p, tail_input, lda, &sc.dz[0])?);
    // Hidden layers backward, last first; dZ_l sits in `dz[side]` at float `off`.
    let (mut side, mut off) = (0usize, cap * layout.layers[last].ld);
    for l in (1..last).rev() {
        sites.push(hidden_weight_grad(p, l, &sc.acts[l - 1], &sc.dz[side], off));
        sites.push(hidden_input_grad(
            p,
            l,
            &sc.acts[l - 1],
            &sc.dz[side],
            off,
            &sc.dz[1 - side],
        ));
        (side, off) = (1 - side, 0);
    }
    if last > 0 {
        sites.push(first_grad_update(p, &sc.dz[side], off));
    }
    sites.push(update_rest(p));
    let Sites { sites, mut keep } = sites;
    keep.extend(sc.acts);
    keep.extend(sc.x);
    keep.extend(sc.dz);
    Ok(StepPlan {
        operands: Operands::Buffers,
        sites,
        keep,
    })
}

/// `forward_gather`: the step's samples gathered from the resident images, `act0 = relu(x W1 + b1)`.
fn first_forward(p: &PlanInputs<'_>, act: &wgpu::Buffer) -> (Site, wgpu::Buffer) {
    let (cap, l0) = (p.cap, p.layout().layers[0]);
    let dims = ForwardGatherDims {
        inputs: p.inputs as u32,
        fan_out: l0.fan_out as u32,
        capacity: cap as u32,
        ldc: l0.ld as u32,
        w_off: l0.weight as u32,
        ldw: l0.ld as u32,
        b_off: l0.bias as u32,
        direct: 0,
        relu: 1,
        drop: DropFields::of(p.dropout, 0),
        _pad: [0; 3],
    };
    let u = gbuf::uniform_init(p.device, "forward_gather dims", bytemuck::bytes_of(&dims));
    let binds = per_slot(
        p,
        "forward_gather (slot)",
        &p.kernels.forward_gather_layout,
        &[p.train.images(), p.order, &p.state.params, act, &u],
        5,
    );
    let mut site = Site::plain(
        format!(
            "L1 fwd forward_gather+bias+relu {cap}x{}x{}",
            l0.fan_in, l0.fan_out
        ),
        Kernel::ForwardGather,
        kernels::forward_gather_groups(cap, l0.fan_out),
        binds,
    );
    site.flops = 2.0 * (cap * l0.fan_in * l0.fan_out) as f64;
    (site, u)
}

/// A product site reading only buffers (no record): one bind group of the matmul layout.
fn product_site(
    p: &PlanInputs<'_>,
    name: String,
    kernel: Kernel,
    dims: MatmulDims,
    operands: [&wgpu::Buffer; 4],
) -> (Site, wgpu::Buffer) {
    let u = gbuf::uniform_init(p.device, &name, bytemuck::bytes_of(&dims));
    let [a, b, c, e] = operands;
    let bind = kernels::bind_group(
        p.device,
        &name,
        &p.kernels.matmul_layout,
        &[a, b, c, e, &u],
        None,
    );
    let mut site = Site::plain(
        name,
        kernel,
        kernels::matmul_groups(kernel, dims.m as usize, dims.n as usize),
        vec![bind],
    );
    site.flops = 2.0 * dims.m as f64 * dims.n as f64 * dims.k as f64;
    (site, u)
}

/// `mm_nn`: a hidden layer's forward, `act_l = relu(act_{l-1} W_l + b_l)`.
fn hidden_forward(
    p: &PlanInputs<'_>,
    l: usize,
    input: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> (Site, wgpu::Buffer) {
    let (cap, g, params) = (p.cap, p.layout().layers[l], &p.state.params);
    product_site(
        p,
        format!(
            "L{} fwd mm_nn+bias+relu {cap}x{}x{}",
            l + 1,
            g.fan_in,
            g.fan_out
        ),
        Kernel::MmNn,
        forward_dims(p.layout(), l, cap, 0, false),
        [input, params, out, params],
    )
}

/// `mm_tn`: a hidden layer's weight gradient `input^T dZ_l` and bias gradient `colsum(dZ_l)` into grads;
/// dZ_l is in `dz` at float `off`.
fn hidden_weight_grad(
    p: &PlanInputs<'_>,
    l: usize,
    input: &wgpu::Buffer,
    dz: &wgpu::Buffer,
    off: usize,
) -> (Site, wgpu::Buffer) {
    let (cap, layout) = (p.cap, p.layout());
    let g = layout.layers[l];
    let dims = weight_grad_dims(layout, l, cap, off, false);
    product_site(
        p,
        format!(
            "L{} dW mm_tn+colsum {}x{cap}x{}",
            l + 1,
            g.fan_in,
            g.fan_out
        ),
        Kernel::MmTn,
        dims,
        [input, dz, &p.state.grads, dz],
    )
}

/// `mm_nt`: dZ of the layer below, `(dZ_l W_l^T)` masked by `act_{l-1} > 0`, into `out` at 0.
fn hidden_input_grad(
    p: &PlanInputs<'_>,
    l: usize,
    act_below: &wgpu::Buffer,
    dz: &wgpu::Buffer,
    off: usize,
    out: &wgpu::Buffer,
) -> (Site, wgpu::Buffer) {
    let (cap, layout) = (p.cap, p.layout());
    let g = layout.layers[l];
    let dims = input_grad_dims(layout, l, cap, off, false, DropFields::of(p.dropout, l - 1));
    product_site(
        p,
        format!(
            "L{} dX mm_nt+relu_mask {cap}x{}x{}",
            l + 1,
            g.fan_out,
            g.fan_in
        ),
        Kernel::MmNt,
        dims,
        [dz, &p.state.params, out, act_below],
    )
}

/// `grad_update_gather`: the first layer's gradients (x gathered again) with the optimizer's update
/// fused in the epilogue; dZ0 is in `dz` at float `off`.
fn first_grad_update(p: &PlanInputs<'_>, dz: &wgpu::Buffer, off: usize) -> (Site, wgpu::Buffer) {
    let (cap, l0, st) = (p.cap, p.layout().layers[0], p.state);
    let dims = GradUpdateDims {
        inputs: p.inputs as u32,
        fan_out: l0.fan_out as u32,
        ld: l0.ld as u32,
        ldz: l0.ld as u32,
        w_off: l0.weight as u32,
        b_off: l0.bias as u32,
        dz_off: off as u32,
        direct: 0,
    };
    let u = gbuf::uniform_init(
        p.device,
        "grad_update_gather dims",
        bytemuck::bytes_of(&dims),
    );
    let binds = per_slot(
        p,
        "grad_update_gather (slot)",
        p.kernels.layout(Kernel::GradUpdateGather),
        &[p.train.images(), p.order, dz, &st.params, &st.m, &st.v, &u],
        7,
    );
    let mut site = Site::plain(
        format!(
            "L1 dW+{} grad_update_gather {}x{cap}x{}",
            p.optimizer.kind().name(),
            l0.fan_in,
            l0.fan_out
        ),
        Kernel::GradUpdateGather,
        kernels::grad_update_gather_groups(l0.fan_in, l0.fan_out),
        binds,
    );
    site.flops = 2.0 * (cap * l0.fan_in * l0.fan_out) as f64;
    (site, u)
}

/// The optimizer's range update (`adam`, `sgd` or `rmsprop`) over every parameter the fused epilogue
/// did not update (all of them without hidden layers).
fn update_rest(p: &PlanInputs<'_>) -> (Site, wgpu::Buffer) {
    let (layout, st) = (p.layout(), p.state);
    let kernel = Kernel::update_range(p.optimizer.kind());
    let from = if layout.layers.len() > 1 {
        layout.layers[1].weight
    } else {
        0
    };
    let len4 = (layout.total - from) / 4;
    let dims = UpdateRangeDims {
        off4: (from / 4) as u32,
        len4: len4 as u32,
        _pad: [0; 2],
    };
    let u = gbuf::uniform_init(p.device, "update range dims", bytemuck::bytes_of(&dims));
    let binds = per_slot(
        p,
        "update range (slot)",
        &p.kernels.update_range_layout,
        &[&st.params, &st.grads, &st.m, &st.v, &u],
        5,
    );
    let mut site = Site::plain(
        format!("{} {} floats", kernel.entry_point(), len4 * 4),
        kernel,
        kernels::update_range_groups(len4),
        binds,
    );
    site.bytes = f32_bytes(7 * len4 * 4) as f64;
    (site, u)
}
