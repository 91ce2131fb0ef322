//! The buffer path's step, built for hardware GPUs: storage-buffer operands, no copies, every dispatch of
//! a submission in one compute pass. For the tutorial's 784-128-10 model a step is four dispatches:
//!   forward_gather    gather the step's samples from the resident images, act0 = relu(x W1 + b1)
//!   dense_tail        one workgroup: logits, softmax cross-entropy and the step's stats, dW2 and db2
//!                     into grads, dZ0 = (dlogits W2^T) masked by act0 > 0
//!   grad_adam_gather  dW1 = x^T dZ0 and db1 (x gathered again), Adam on W1 and b1 in the epilogue
//!   adam              Adam over the rest of the parameters (the later layers)
//! Deeper models add `mm_nn` forwards and `mm_tn` (weight gradient) + `mm_nt` (masked input gradient)
//! backwards for their middle layers; a model without hidden layers gathers x and runs the tail on it.
//! Tested by tests/gpu_train.rs (vs the CPU path, and D <= 4, C = 0, P <= 1 per step).

use anyhow::{Result, bail};

use crate::gpu::buffers::{self as gbuf, pad4};
use crate::gpu::kernels::{
    self, AdamRangeDims, FLAG_COLSUM, FLAG_MASK, ForwardGatherDims, GatherDims, GradAdamDims,
    Kernel,
};
use crate::gpu::plan::{PlanInputs, Site, StepPlan, f32_bytes, per_slot};

use super::Operands;

pub fn build(p: &PlanInputs<'_>) -> Result<StepPlan> {
    let d = p.device;
    let k = p.kernels;
    for kernel in [Kernel::DenseTail, Kernel::GradAdamGather] {
        if !k.supports(kernel) {
            bail!(
                "{} binds {} storage buffers, more than this device allows per shader stage ({}); \
                 {}=textures trains without it",
                kernel.entry_point(),
                kernel.storage_buffers(),
                d.limits().max_storage_buffers_per_shader_stage,
                Operands::ENV
            );
        }
    }
    let layout = p.layout().clone();
    let st = p.state;
    let cap = p.cap;
    let n_layers = layout.layers.len();
    let last = n_layers - 1;
    let mut keep = Vec::new();
    let mut sites = Vec::new();
    let uniform = |label: &str, bytes: &[u8]| gbuf::uniform_init(d, label, bytes);
    // Hidden activations (cap, ld_l); the gathered input too when there is no hidden layer.
    let acts: Vec<wgpu::Buffer> = layout.layers[..last]
        .iter()
        .enumerate()
        .map(|(i, l)| gbuf::storage(d, &format!("act {i} (cap, ld)"), f32_bytes(cap * l.ld)))
        .collect();
    let ldx = pad4(p.inputs);
    let x = (n_layers == 1).then(|| gbuf::storage(d, "x (cap, ldx)", f32_bytes(cap * ldx)));
    // Two gradient buffers used in turn (a product cannot read and write one buffer): A holds the
    // tail's dlogits then dZ of the last hidden layer; deeper layers alternate.
    let widest = layout.layers.iter().map(|l| l.ld).max().unwrap_or(4);
    let out_ld = layout.layers[last].ld;
    let dz = [
        gbuf::storage(
            d,
            "dz A (cap, out_ld + widest)",
            f32_bytes(cap * (out_ld + widest)),
        ),
        gbuf::storage(d, "dz B (cap, widest)", f32_bytes(cap * widest)),
    ];
    // Forward of the first layer (or the plain gather).
    if let Some(x) = &x {
        let dims = GatherDims {
            inputs: p.inputs as u32,
            ldx: ldx as u32,
            capacity: cap as u32,
            direct: 0,
        };
        let u = uniform("gather dims", bytemuck::bytes_of(&dims));
        let binds = per_slot(
            p,
            "gather (slot)",
            &k.gather_layout,
            &[&p.train.images, p.order, x, &u],
            4,
        );
        let mut site = Site::plain(
            format!("gather {cap}x{}", p.inputs),
            Kernel::Gather,
            kernels::gather_groups(cap, ldx),
            binds,
        );
        site.bytes = (cap * p.inputs * 5) as f64;
        sites.push(site);
        keep.push(u);
    } else {
        let l0 = layout.layers[0];
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
            _pad: [0; 3],
        };
        let u = uniform("forward_gather dims", bytemuck::bytes_of(&dims));
        let binds = per_slot(
            p,
            "forward_gather (slot)",
            &k.forward_gather_layout,
            &[&p.train.images, p.order, &st.params, &acts[0], &u],
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
        sites.push(site);
        keep.push(u);
    }
    // Middle layers forward: act_l = relu(act_{l-1} W_l + b_l).
    for l in 1..last {
        let g = layout.layers[l];
        let dims = super::textures::forward_dims(&layout, l, cap, 0, false);
        let u = uniform(
            &format!("L{} forward dims", l + 1),
            bytemuck::bytes_of(&dims),
        );
        let bind = kernels::bind_group(
            d,
            "forward",
            &k.matmul_layout,
            &[&acts[l - 1], &st.params, &acts[l], &st.params, &u],
            None,
        );
        let mut site = Site::plain(
            format!(
                "L{} fwd mm_nn+bias+relu {cap}x{}x{}",
                l + 1,
                g.fan_in,
                g.fan_out
            ),
            Kernel::MmNn,
            kernels::matmul_groups(Kernel::MmNn, cap, g.fan_out),
            vec![bind],
        );
        site.flops = 2.0 * (cap * g.fan_in * g.fan_out) as f64;
        sites.push(site);
        keep.push(u);
    }
    // The tail: the last layer forward and backward, the loss and the step's stats.
    let out = layout.layers[last];
    let below_ld = if last > 0 {
        layout.layers[last - 1].ld
    } else {
        ldx
    };
    let tail_input = if last > 0 {
        &acts[last - 1]
    } else {
        x.as_ref().expect("gathered x")
    };
    let (site, tu) = super::tail_site(p, tail_input, below_ld, &dz[0])?;
    sites.push(site);
    keep.push(tu);
    // Middle layers backward, last hidden first. dZ_l sits in `dz[side]` at `off`.
    let (mut side, mut off) = (0usize, cap * out.ld);
    for l in (1..last).rev() {
        let g = layout.layers[l];
        let wdims = kernels::MatmulDims {
            m: g.fan_in as u32,
            n: g.fan_out as u32,
            k: cap as u32,
            flags: FLAG_COLSUM,
            lda: layout.layers[l - 1].ld as u32,
            ldb: g.ld as u32,
            ldc: g.ld as u32,
            lde: 0,
            a_off: 0,
            b_off: off as u32,
            c_off: g.weight as u32,
            e_off: g.bias as u32,
        };
        let u = uniform(
            &format!("L{} weight-grad dims", l + 1),
            bytemuck::bytes_of(&wdims),
        );
        let bind = kernels::bind_group(
            d,
            "weight grad",
            &k.matmul_layout,
            &[&acts[l - 1], &dz[side], &st.grads, &dz[side], &u],
            None,
        );
        let mut site = Site::plain(
            format!(
                "L{} dW mm_tn+colsum {}x{cap}x{}",
                l + 1,
                g.fan_in,
                g.fan_out
            ),
            Kernel::MmTn,
            kernels::matmul_groups(Kernel::MmTn, g.fan_in, g.fan_out),
            vec![bind],
        );
        site.flops = 2.0 * (cap * g.fan_in * g.fan_out) as f64;
        sites.push(site);
        keep.push(u);
        let prev = layout.layers[l - 1];
        let xdims = kernels::MatmulDims {
            m: cap as u32,
            n: g.fan_in as u32,
            k: g.fan_out as u32,
            flags: FLAG_MASK,
            lda: g.ld as u32,
            ldb: g.ld as u32,
            ldc: prev.ld as u32,
            lde: prev.ld as u32,
            a_off: off as u32,
            b_off: g.weight as u32,
            c_off: 0,
            e_off: 0,
        };
        let u = uniform(
            &format!("L{} input-grad dims", l + 1),
            bytemuck::bytes_of(&xdims),
        );
        let bind = kernels::bind_group(
            d,
            "input grad",
            &k.matmul_layout,
            &[&dz[side], &st.params, &dz[1 - side], &acts[l - 1], &u],
            None,
        );
        let mut site = Site::plain(
            format!(
                "L{} dX mm_nt+relu_mask {cap}x{}x{}",
                l + 1,
                g.fan_out,
                g.fan_in
            ),
            Kernel::MmNt,
            kernels::matmul_groups(Kernel::MmNt, cap, g.fan_in),
            vec![bind],
        );
        site.flops = 2.0 * (cap * g.fan_in * g.fan_out) as f64;
        sites.push(site);
        keep.push(u);
        (side, off) = (1 - side, 0);
    }
    // The first layer's gradient with Adam fused (when the tail is not the first layer).
    let a = p.adam;
    if last > 0 {
        let l0 = layout.layers[0];
        let dims = GradAdamDims {
            inputs: p.inputs as u32,
            fan_out: l0.fan_out as u32,
            ld: l0.ld as u32,
            ldz: l0.ld as u32,
            w_off: l0.weight as u32,
            b_off: l0.bias as u32,
            dz_off: off as u32,
            direct: 0,
            beta1: a.beta1 as f32,
            beta2: a.beta2 as f32,
            eps: a.epsilon as f32,
            _pad: 0,
        };
        let u = uniform("grad_adam_gather dims", bytemuck::bytes_of(&dims));
        let binds = per_slot(
            p,
            "grad_adam_gather (slot)",
            k.layout(Kernel::GradAdamGather),
            &[
                &p.train.images,
                p.order,
                &dz[side],
                &st.params,
                &st.m,
                &st.v,
                &u,
            ],
            7,
        );
        let mut site = Site::plain(
            format!(
                "L1 dW+adam grad_adam_gather {}x{cap}x{}",
                l0.fan_in, l0.fan_out
            ),
            Kernel::GradAdamGather,
            kernels::grad_adam_gather_groups(l0.fan_in, l0.fan_out),
            binds,
        );
        site.flops = 2.0 * (cap * l0.fan_in * l0.fan_out) as f64;
        sites.push(site);
        keep.push(u);
    }
    // Adam over every parameter the fused epilogue did not update.
    let from = if last > 0 { layout.layers[1].weight } else { 0 };
    let len4 = (layout.total - from) / 4;
    let adims = AdamRangeDims {
        off4: (from / 4) as u32,
        len4: len4 as u32,
        beta1: a.beta1 as f32,
        beta2: a.beta2 as f32,
        eps: a.epsilon as f32,
        _pad: [0; 3],
    };
    let au = uniform("adam range dims", bytemuck::bytes_of(&adims));
    let binds = per_slot(
        p,
        "adam (slot)",
        &k.adam_range_layout,
        &[&st.params, &st.grads, &st.m, &st.v, &au],
        5,
    );
    let mut site = Site::plain(
        format!("adam {} floats", len4 * 4),
        Kernel::Adam,
        kernels::adam_range_groups(len4),
        binds,
    );
    site.bytes = f32_bytes(7 * len4 * 4) as f64;
    sites.push(site);
    keep.push(au);
    keep.extend(acts);
    keep.extend(x);
    keep.extend(dz);
    Ok(StepPlan {
        operands: Operands::Buffers,
        sites,
        keep,
    })
}
