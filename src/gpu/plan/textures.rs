//! The texture path's step, built for software rasterisers (lavapipe), where a texel fetch is several
//! times cheaper than a storage-buffer load (docs/perf.md): `gather` normalises the step's samples from
//! the resident images into a buffer, and every product reads its operands from rgba32float texture
//! mirrors of the buffers the kernels write, refreshed by copies (so passes split there). Every mirrored
//! row stride is a multiple of 64 floats, as buffer-to-texture copies need; the flat parameter buffer is
//! mirrored whole into one "atlas" texture whose first rows are W1.
//!   gather -> mm_nn_tex+bias+relu per hidden layer -> dense_tail (the last layer forward and
//!   backward, the loss and stats, from buffers: a texture gains nothing on 10 columns) -> per hidden
//!   layer, last first: dW mm_tn_tex+colsum, dX mm_nt_tex+relu_mask -> adam_tex over everything.
//! Tested by tests/gpu_train.rs (FMNIST_GPU_OPERANDS=textures runs, vs the CPU path).

use anyhow::Result;

use crate::gpu::buffers::{self as gbuf, GpuLayout, TextureMirror, pad_texture_row};
use crate::gpu::kernels::{
    self, AdamDims, FLAG_BIAS, FLAG_COLSUM, FLAG_MASK, FLAG_RELU, GatherDims, Kernel, MatmulDims,
};
use crate::gpu::plan::{Operands, PlanInputs, Site, StepPlan, f32_bytes, per_slot};

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
    }
}

pub fn build(p: &PlanInputs<'_>) -> Result<StepPlan> {
    let d = p.device;
    let k = p.kernels;
    let layout = p.layout().clone();
    let st = p.state;
    let cap = p.cap;
    let last = layout.layers.len() - 1;
    let in_ld = pad_texture_row(p.inputs);
    let mut keep = Vec::new();
    let mut sites = Vec::new();
    let uniform = |label: &str, bytes: &[u8]| gbuf::uniform_init(d, label, bytes);
    let mirrors = st
        .mirrors
        .as_ref()
        .expect("the texture path keeps parameter mirrors");
    // The step's normalised samples (cap, in_ld) and their texture.
    let x = gbuf::storage(d, "x (cap, in_ld)", f32_bytes(cap * in_ld));
    let x_mirror = TextureMirror::new(d, "x mirror (cap, in_ld)", &x, 0, in_ld, cap)?;
    // Hidden activations (cap, ld); those a later texture product reads are mirrored after their
    // forward (the last hidden one is read by the tail from its buffer).
    let acts: Vec<wgpu::Buffer> = layout.layers[..last]
        .iter()
        .enumerate()
        .map(|(i, l)| gbuf::storage(d, &format!("act {i} (cap, ld)"), f32_bytes(cap * l.ld)))
        .collect();
    let act_mirrors = (0..last.saturating_sub(1))
        .map(|l| {
            let ld = layout.layers[l].ld;
            TextureMirror::new(
                d,
                &format!("act {l} mirror (cap, ld)"),
                &acts[l],
                0,
                ld,
                cap,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let input_view = |l: usize| {
        if l == 0 {
            x_mirror.view()
        } else {
            act_mirrors[l - 1].view()
        }
    };
    // Two gradient buffers used in turn: A holds the tail's dlogits then dZ of the last hidden layer.
    let widest = layout.layers.iter().map(|l| l.ld).max().unwrap_or(4);
    let out = layout.layers[last];
    let dz = [
        gbuf::storage(
            d,
            "dz A (cap, out_ld + widest)",
            f32_bytes(cap * (out.ld + widest)),
        ),
        gbuf::storage(d, "dz B (cap, widest)", f32_bytes(cap * widest)),
    ];

    // gather -> x, mirrored into its texture.
    let gdims = GatherDims {
        inputs: p.inputs as u32,
        ldx: in_ld as u32,
        capacity: cap as u32,
        direct: 0,
    };
    let gu = uniform("gather dims", bytemuck::bytes_of(&gdims));
    let binds = per_slot(
        p,
        "gather (slot)",
        &k.gather_layout,
        &[&p.train.images, p.order, &x, &gu],
        4,
    );
    let mut site = Site::plain(
        format!("gather {cap}x{} (+x copy)", p.inputs),
        Kernel::Gather,
        kernels::gather_groups(cap, in_ld),
        binds,
    );
    site.copy_after = vec![x_mirror.clone()];
    site.bytes = (cap * p.inputs * 5) as f64;
    sites.push(site);
    keep.push(gu);

    // Hidden layers forward: input and weight from textures; group 0 supplies the bias and the output.
    for (l, g) in layout.layers[..last].iter().enumerate() {
        let dims = forward_dims(&layout, l, cap, in_ld, true);
        let u = uniform(
            &format!("L{} forward dims", l + 1),
            bytemuck::bytes_of(&dims),
        );
        let bind = kernels::bind_group(
            d,
            "forward",
            &k.matmul_layout,
            &[&st.params, &st.params, &acts[l], &st.params, &u],
            None,
        );
        let tex = kernels::tex_bind_group(
            d,
            "forward textures",
            k,
            &input_view(l),
            &mirrors.weight_view(l),
        );
        let mut site = Site::plain(
            format!(
                "L{} fwd mm_nn_tex+bias+relu {cap}x{}x{}",
                l + 1,
                g.fan_in,
                g.fan_out
            ),
            Kernel::MmNnTex,
            kernels::matmul_groups(Kernel::MmNnTex, cap, g.fan_out),
            vec![bind],
        );
        site.tex_binds = vec![tex];
        site.copy_after = act_mirrors.get(l).cloned().into_iter().collect();
        site.flops = 2.0 * (cap * g.fan_in * g.fan_out) as f64;
        sites.push(site);
        keep.push(u);
    }
    // The tail, from buffers: the last layer forward and backward, the loss and the step's stats.
    let (tail_input, lda) = if last > 0 {
        (&acts[last - 1], layout.layers[last - 1].ld)
    } else {
        (&x, in_ld)
    };
    let (site, tu) = super::tail_site(p, tail_input, lda, &dz[0])?;
    sites.push(site);
    keep.push(tu);
    // Hidden layers backward, last first: dW_l, db_l = input^T · dZ_l, colsum(dZ_l); then dZ_{l-1} =
    // (dZ_l · W_l^T) masked by act_{l-1} > 0. Adam runs after all of them, so W_l is still the
    // forward's. dZ_l (in `dz[side]` at `off`) is mirrored before the weight gradient, which both
    // products then read.
    let (mut side, mut off) = (0usize, cap * out.ld);
    for l in (0..last).rev() {
        let g = layout.layers[l];
        let dz_mirror = TextureMirror::new(
            d,
            &format!("dz {l} mirror (cap, ld)"),
            &dz[side],
            off,
            g.ld,
            cap,
        )?;
        let dims = MatmulDims {
            m: g.fan_in as u32,
            n: g.fan_out as u32,
            k: cap as u32,
            flags: FLAG_COLSUM,
            ldc: g.ld as u32,
            c_off: g.weight as u32,
            e_off: g.bias as u32,
            ..MatmulDims::default()
        };
        let u = uniform(
            &format!("L{} weight-grad dims", l + 1),
            bytemuck::bytes_of(&dims),
        );
        let bind = kernels::bind_group(
            d,
            "weight grad",
            &k.matmul_layout,
            &[&dz[side], &dz[side], &st.grads, &dz[side], &u],
            None,
        );
        let dz_view = dz_mirror.view();
        let tex = kernels::tex_bind_group(d, "weight grad textures", k, &input_view(l), &dz_view);
        let mut site = Site::plain(
            format!(
                "L{} dW mm_tn_tex+colsum {}x{cap}x{} (+dZ copy)",
                l + 1,
                g.fan_in,
                g.fan_out
            ),
            Kernel::MmTnTex,
            kernels::matmul_groups(Kernel::MmTnTex, g.fan_in, g.fan_out),
            vec![bind],
        );
        site.tex_binds = vec![tex];
        site.copy_before = vec![dz_mirror];
        site.flops = 2.0 * (cap * g.fan_in * g.fan_out) as f64;
        sites.push(site);
        keep.push(u);
        if l == 0 {
            continue;
        }
        let prev = layout.layers[l - 1];
        let dims = MatmulDims {
            m: cap as u32,
            n: g.fan_in as u32,
            k: g.fan_out as u32,
            flags: FLAG_MASK,
            ldc: prev.ld as u32,
            lde: prev.ld as u32,
            ..MatmulDims::default()
        };
        let u = uniform(
            &format!("L{} input-grad dims", l + 1),
            bytemuck::bytes_of(&dims),
        );
        let bind = kernels::bind_group(
            d,
            "input grad",
            &k.matmul_layout,
            &[&acts[l - 1], &st.params, &dz[1 - side], &acts[l - 1], &u],
            None,
        );
        let tex = kernels::tex_bind_group(
            d,
            "input grad textures",
            k,
            &dz_view,
            &mirrors.weight_view(l),
        );
        let mut site = Site::plain(
            format!(
                "L{} dX mm_nt_tex+relu_mask {cap}x{}x{}",
                l + 1,
                g.fan_out,
                g.fan_in
            ),
            Kernel::MmNtTex,
            kernels::matmul_groups(Kernel::MmNtTex, cap, g.fan_in),
            vec![bind],
        );
        site.tex_binds = vec![tex];
        site.flops = 2.0 * (cap * g.fan_in * g.fan_out) as f64;
        sites.push(site);
        keep.push(u);
        (side, off) = (1 - side, 0);
    }
    // Adam over the whole flat buffer, reading p, g, m and v through the atlas-shaped mirrors.
    let len4 = layout.total / 4;
    let row4 = layout.atlas_width() / 4;
    let a = p.adam;
    let adims = AdamDims {
        len4: len4 as u32,
        row4: row4 as u32,
        beta1: a.beta1 as f32,
        beta2: a.beta2 as f32,
        eps: a.epsilon as f32,
        _pad: [0; 3],
    };
    let au = uniform("adam dims", bytemuck::bytes_of(&adims));
    let tex = kernels::views_bind_group(
        d,
        "adam textures: p, g, m, v",
        &k.adam_tex_layout,
        &[
            &mirrors.atlas.view(),
            &mirrors.g.view(),
            &mirrors.m.view(),
            &mirrors.v.view(),
        ],
    );
    let binds = per_slot(
        p,
        "adam_tex (slot)",
        &k.adam_layout,
        &[&st.params, &st.grads, &st.m, &st.v, &au],
        5,
    );
    let mut site = Site::plain(
        format!("adam_tex {} floats (+g copy)", layout.total),
        Kernel::AdamTex,
        kernels::adam_groups(len4, row4),
        binds,
    );
    site.tex_binds = vec![tex];
    site.copy_before = vec![mirrors.g.clone()];
    site.copy_after = mirrors.after_adam();
    site.bytes = f32_bytes(7 * layout.total) as f64;
    sites.push(site);
    keep.push(au);
    keep.extend(acts);
    keep.extend(dz);
    keep.push(x);
    Ok(StepPlan {
        operands: Operands::Textures,
        sites,
        keep,
    })
}
