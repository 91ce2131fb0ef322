//! The texture path's step, built for software rasterisers (lavapipe), where a texel fetch is several
//! times cheaper than a storage-buffer load (docs/perf.md): the first layer's kernels read the step's
//! samples from the resident images texture through the order texture (`dataset::ImageTexture`), and
//! every other product reads its operands from rgba32float texture mirrors of the buffers the kernels
//! write, refreshed by copies (so passes split there). Every mirrored row stride is a multiple of 64
//! floats, as buffer-to-texture copies need; the flat parameter buffer is mirrored whole into one
//! "atlas" texture whose first rows are W1.
//!   forward_gather_tex (act0 = relu(x W1 + b1)) -> mm_nn_tex+bias+relu per further hidden layer ->
//!   dense_tail_tex (the last layer forward and backward, the loss and stats, and Adam on its layer when
//!   no layer lies between it and the first) -> per hidden layer past the first, last first: dW
//!   mm_tn_tex+colsum, dX mm_nt_tex+relu_mask -> grad_update_gather_tex (the first layer's gradient and
//!   Adam) -> adam_tex over the layers between, if any.
//! A model without hidden layers gathers x into a buffer (`gather`) and mirrors it for the tail.
//! Tested by tests/gpu_train.rs (FMNIST_GPU_OPERANDS=textures runs, vs the CPU path).

use anyhow::Result;

use crate::gpu::buffers::{self as gbuf, TextureMirror, pad_texture_row};
use crate::gpu::dataset::ImageTexture;
use crate::gpu::kernels::{
    self, DropFields, ForwardGatherTexDims, GradUpdateGatherTexDims, Kernel, MatmulDims, TailDims,
    UpdateTexDims,
};
use crate::gpu::params::ParamMirrors;
use crate::gpu::plan::{
    Operands, PlanInputs, Site, Sites, StepPlan, f32_bytes, forward_dims, gather_site,
    input_grad_dims, per_slot, weight_grad_dims,
};

/// The buffers and mirrors only this path's step uses.
struct Scratch {
    /// `(cap, in_ld)`: the step's normalised samples, and their texture, in a model without hidden
    /// layers (whose tail reads them).
    x: Option<(wgpu::Buffer, TextureMirror)>,
    /// `(cap, ld_l)` per hidden layer, each mirrored after its forward (for the next layer's product,
    /// or the tail, and for the weight gradient).
    acts: Vec<wgpu::Buffer>,
    act_mirrors: Vec<TextureMirror>,
    /// Two gradient buffers used in turn: A holds the tail's dlogits then dZ of the last hidden layer.
    dz: [wgpu::Buffer; 2],
}

impl Scratch {
    fn new(p: &PlanInputs<'_>) -> Result<Self> {
        let (d, cap, layout) = (p.device, p.cap, p.layout());
        let last = layout.layers.len() - 1;
        let in_ld = pad_texture_row(p.inputs);
        let buf = |label: &str, floats: usize| gbuf::storage(d, label, f32_bytes(floats));
        let acts: Vec<wgpu::Buffer> = layout.layers[..last]
            .iter()
            .enumerate()
            .map(|(i, l)| buf(&format!("act {i} (cap, ld)"), cap * l.ld))
            .collect();
        let act_mirrors = (0..last)
            .map(|l| {
                let label = format!("act {l} mirror (cap, ld)");
                TextureMirror::new(d, &label, &acts[l], 0, layout.layers[l].ld, cap)
            })
            .collect::<Result<Vec<_>>>()?;
        let widest = layout.layers.iter().map(|l| l.ld).max().unwrap_or(4);
        let out_ld = layout.layers[last].ld;
        let x = if last == 0 {
            let x = buf("x (cap, in_ld)", cap * in_ld);
            let mirror = TextureMirror::new(d, "x mirror (cap, in_ld)", &x, 0, in_ld, cap)?;
            Some((x, mirror))
        } else {
            None
        };
        Ok(Self {
            x,
            acts,
            act_mirrors,
            dz: [
                buf("dz A (cap, out_ld + widest)", cap * (out_ld + widest)),
                buf("dz B (cap, widest)", cap * widest),
            ],
        })
    }

    /// The texture holding layer `l`'s input: the mirror of x or of the layer below's output.
    fn input_view(&self, l: usize) -> wgpu::TextureView {
        match (l, &self.x) {
            (0, Some((_, mirror))) => mirror.view(),
            (0, None) => unreachable!("the first layer reads the images texture"),
            _ => self.act_mirrors[l - 1].view(),
        }
    }
}

fn mirrors<'a>(p: &PlanInputs<'a>) -> &'a ParamMirrors {
    p.state
        .mirrors
        .as_ref()
        .expect("the texture path keeps parameter mirrors")
}

pub fn build(p: &PlanInputs<'_>) -> Result<StepPlan> {
    let layout = p.layout();
    let (cap, last) = (p.cap, layout.layers.len() - 1);
    let in_ld = pad_texture_row(p.inputs);
    let sc = Scratch::new(p)?;
    let mut sites = Sites::default();
    if let Some((x, mirror)) = &sc.x {
        let (mut gather, u) = gather_site(p, x, in_ld);
        gather.name.push_str(" (+x copy)");
        gather.copy_after = vec![mirror.clone()];
        sites.push((gather, u));
    }
    for l in 0..last {
        sites.push(if l == 0 {
            first_forward(p, &sc)
        } else {
            hidden_forward(p, l, &sc)
        });
        if let Some((mut drop, u)) = super::dropout_site(p, l, &sc.acts[l]) {
            // The act mirror is refreshed after the dropout, not after the product.
            let product = sites.sites.last_mut().expect("the forward was just pushed");
            drop.copy_after = std::mem::take(&mut product.copy_after);
            sites.push((drop, u));
        }
    }
    let (tail_site, tail_adam) = tail(p, &sc)?;
    sites.push(tail_site);
    // Hidden layers backward, last first; dZ_l (in `dz[side]` at float `off`) is mirrored before the
    // weight gradient, which both products then read. Adam runs after all of them, so W_l is still the
    // forward's.
    let (mut side, mut off) = (0usize, cap * layout.layers[last].ld);
    for l in (0..last).rev() {
        let g = layout.layers[l];
        let label = format!("dz {l} mirror (cap, ld)");
        let dz_mirror = TextureMirror::new(p.device, &label, &sc.dz[side], off, g.ld, cap)?;
        sites.push(if l == 0 {
            first_grad_update(p, &dz_mirror)
        } else {
            weight_grad(p, l, &sc, &sc.dz[side], &dz_mirror)
        });
        if l > 0 {
            sites.push(input_grad(p, l, &sc, &dz_mirror, &sc.dz[1 - side]));
        }
        (side, off) = (1 - side, 0);
    }
    if tail_adam {
        // Adam ran inside the tail and grad_update_gather_tex: the mirrors of p, m and v follow the last site.
        let last_site = sites.sites.last_mut().expect("a step has sites");
        last_site.copy_after = mirrors(p).after_adam();
    } else {
        sites.push(update_rest(p));
    }
    let Sites { sites, mut keep } = sites;
    keep.extend(sc.acts);
    keep.extend(sc.dz);
    keep.extend(sc.x.map(|(x, _)| x));
    Ok(StepPlan {
        operands: Operands::Textures,
        sites,
        keep,
    })
}

/// The last layer: `dense_tail_tex` from the mirrors of its input and of its W|b where it can run it
/// (at most `TAIL_TEX_MAX_CLASSES` classes), else `dense_tail` from the buffers. Returns whether the
/// tail also applied Adam to its layer: it does when no layer lies between the first and the last
/// (every other layer's update is then grad_update_gather_tex's), so the step needs no adam_tex.
fn tail(p: &PlanInputs<'_>, sc: &Scratch) -> Result<((Site, wgpu::Buffer), bool)> {
    let (layout, k, st) = (p.layout(), p.kernels, p.state);
    let last = layout.layers.len() - 1;
    let (input, lda) = match &sc.x {
        None => (&sc.acts[last - 1], layout.layers[last - 1].ld),
        Some((x, _)) => (x, pad_texture_row(p.inputs)),
    };
    let wb = mirrors(p).tail_view(layout);
    let Some(wb) = wb.filter(|_| k.supports(Kernel::DenseTailTex)) else {
        return Ok((super::tail_site(p, input, lda, &sc.dz[0])?, false));
    };
    let update = last <= 1;
    let dims = TailDims {
        update: u32::from(update),
        ..super::tail_dims(p, lda)
    };
    let u = gbuf::uniform_init(p.device, "dense_tail_tex dims", bytemuck::bytes_of(&dims));
    let binds = per_slot(
        p,
        "dense_tail_tex (slot)",
        k.layout(Kernel::DenseTailTex),
        &[
            &p.train.labels,
            p.order,
            &st.grads,
            &sc.dz[0],
            p.stats,
            &st.params,
            &st.m,
            &st.v,
            &u,
        ],
        9,
    );
    let mut site = super::tail_plain_site(p, Kernel::DenseTailTex, binds);
    if update {
        let fused = format!("dense_tail_tex+{}", p.optimizer.kind().name());
        site.name = site.name.replacen("dense_tail_tex", &fused, 1);
    }
    let tex = kernels::tex_bind_group(
        p.device,
        "dense_tail_tex textures: act, W|b",
        k,
        &sc.input_view(last),
        &wb,
    );
    site.tex_binds = vec![tex];
    Ok(((site, u), update))
}

/// A product site reading its operands from textures (group 1) and its bias, output and mask through
/// group 0.
fn tex_product(
    p: &PlanInputs<'_>,
    name: String,
    kernel: Kernel,
    dims: MatmulDims,
    buffers: [&wgpu::Buffer; 4],
    textures: [&wgpu::TextureView; 2],
) -> (Site, wgpu::Buffer) {
    let (d, k) = (p.device, p.kernels);
    let u = gbuf::uniform_init(d, &name, bytemuck::bytes_of(&dims));
    let [a, b, c, e] = buffers;
    let bind = kernels::bind_group(d, &name, &k.matmul_layout, &[a, b, c, e, &u], None);
    let tex = kernels::tex_bind_group(d, &name, k, textures[0], textures[1]);
    let groups = kernels::matmul_groups(kernel, dims.m as usize, dims.n as usize);
    let mut site = Site::plain(name, kernel, groups, vec![bind]);
    site.tex_binds = vec![tex];
    site.flops = 2.0 * dims.m as f64 * dims.n as f64 * dims.k as f64;
    (site, u)
}

/// `mm_nn_tex`: hidden layer `l`'s forward, input and weight from textures, its output mirrored when a
/// later texture product reads it.
fn hidden_forward(p: &PlanInputs<'_>, l: usize, sc: &Scratch) -> (Site, wgpu::Buffer) {
    let (cap, layout, params) = (p.cap, p.layout(), &p.state.params);
    let g = layout.layers[l];
    let in_ld = pad_texture_row(p.inputs);
    let (mut site, u) = tex_product(
        p,
        format!(
            "L{} fwd mm_nn_tex+bias+relu {cap}x{}x{}",
            l + 1,
            g.fan_in,
            g.fan_out
        ),
        Kernel::MmNnTex,
        forward_dims(layout, l, cap, in_ld, true),
        [params, params, &sc.acts[l], params],
        [&sc.input_view(l), &mirrors(p).weight_view(l)],
    );
    site.copy_after = sc.act_mirrors.get(l).cloned().into_iter().collect();
    (site, u)
}

/// `mm_tn_tex`: layer `l`'s weight and bias gradients from its input's and dZ's textures (dZ's mirror
/// refreshed first).
fn weight_grad(
    p: &PlanInputs<'_>,
    l: usize,
    sc: &Scratch,
    dz: &wgpu::Buffer,
    dz_mirror: &TextureMirror,
) -> (Site, wgpu::Buffer) {
    let (cap, g) = (p.cap, p.layout().layers[l]);
    let dims = weight_grad_dims(p.layout(), l, cap, 0, true);
    let (mut site, u) = tex_product(
        p,
        format!(
            "L{} dW mm_tn_tex+colsum {}x{cap}x{} (+dZ copy)",
            l + 1,
            g.fan_in,
            g.fan_out
        ),
        Kernel::MmTnTex,
        dims,
        [dz, dz, &p.state.grads, dz],
        [&sc.input_view(l), &dz_mirror.view()],
    );
    site.copy_before = vec![dz_mirror.clone()];
    (site, u)
}

/// The training split's images texture and the order texture, which the texture path uploads.
fn sample_textures<'a>(p: &PlanInputs<'a>) -> (&'a ImageTexture, wgpu::TextureView) {
    let images = p
        .train
        .texture
        .as_ref()
        .expect("the texture path uploads the images as a texture");
    let order = p
        .order_tex
        .expect("the texture path keeps the order as a texture");
    (images, order.view())
}

/// `forward_gather_tex`: the first hidden layer's forward straight from the images texture, its
/// output mirrored for the next product (or the tail) and the weight gradient.
fn first_forward(p: &PlanInputs<'_>, sc: &Scratch) -> (Site, wgpu::Buffer) {
    let (d, k, cap) = (p.device, p.kernels, p.cap);
    let g = p.layout().layers[0];
    let (images, order) = sample_textures(p);
    let dims = ForwardGatherTexDims {
        inputs: g.fan_in as u32,
        fan_out: g.fan_out as u32,
        capacity: cap as u32,
        ldc: g.ld as u32,
        w_row: (g.weight / g.ld) as u32,
        b_off: g.bias as u32,
        texels: images.shape.texels as u32,
        row_shift: images.shape.row_shift,
        direct: 0,
        relu: 1,
        drop: DropFields::of(p.dropout, 0),
        _pad: [0; 2],
    };
    let name = format!(
        "L1 fwd forward_gather_tex+bias+relu {cap}x{}x{}",
        g.fan_in, g.fan_out
    );
    let u = gbuf::uniform_init(d, &name, bytemuck::bytes_of(&dims));
    let binds = per_slot(
        p,
        "forward_gather_tex (slot)",
        k.layout(Kernel::ForwardGatherTex),
        &[&p.state.params, &sc.acts[0], &u],
        3,
    );
    let views = [mirrors(p).weight_view(0), images.view(), order];
    let tex = kernels::views_bind_group(
        d,
        "forward_gather_tex textures: W, images, order",
        &k.forward_gather_tex_tex_layout,
        &views.iter().collect::<Vec<_>>(),
    );
    let mut site = Site::plain(
        name,
        Kernel::ForwardGatherTex,
        kernels::matmul_groups(Kernel::ForwardGatherTex, cap, g.fan_out),
        binds,
    );
    site.tex_binds = vec![tex];
    site.copy_after = sc.act_mirrors.first().cloned().into_iter().collect();
    site.flops = 2.0 * (cap * g.fan_in * g.fan_out) as f64;
    (site, u)
}

/// `grad_update_gather_tex`: the first layer's weight and bias gradients from the images texture and
/// dZ's mirror (refreshed first), applied by Adam at once to W1 and b1 (p, m, v read from their atlas
/// mirrors).
fn first_grad_update(p: &PlanInputs<'_>, dz_mirror: &TextureMirror) -> (Site, wgpu::Buffer) {
    let (d, k, layout, st) = (p.device, p.kernels, p.layout(), p.state);
    let (cap, g) = (p.cap, layout.layers[0]);
    let (images, order) = sample_textures(p);
    let dims = GradUpdateGatherTexDims {
        inputs: g.fan_in as u32,
        fan_out: g.fan_out as u32,
        ld: g.ld as u32,
        w_row: (g.weight / g.ld) as u32,
        b_row: (g.bias / g.ld) as u32,
        texels: images.shape.texels as u32,
        row_shift: images.shape.row_shift,
        _pad: 0,
    };
    let name = format!(
        "L1 dW+{} grad_update_gather_tex {}x{cap}x{} (+dZ copy)",
        p.optimizer.kind().name(),
        g.fan_in,
        g.fan_out
    );
    let u = gbuf::uniform_init(d, &name, bytemuck::bytes_of(&dims));
    let m = mirrors(p);
    let views = [
        m.atlas.view(),
        dz_mirror.view(),
        m.m.view(),
        m.v.view(),
        images.view(),
        order,
    ];
    let tex = kernels::views_bind_group(
        d,
        "grad_update_gather_tex textures: p, dZ, m, v, images, order",
        &k.grad_update_gather_tex_tex_layout,
        &views.iter().collect::<Vec<_>>(),
    );
    let binds = per_slot(
        p,
        "grad_update_gather_tex (slot)",
        k.layout(Kernel::GradUpdateGatherTex),
        &[&st.params, &st.grads, &st.m, &st.v, &u],
        5,
    );
    let mut site = Site::plain(
        name,
        Kernel::GradUpdateGatherTex,
        kernels::grad_update_gather_tex_groups(g.fan_in, g.fan_out),
        binds,
    );
    site.tex_binds = vec![tex];
    site.copy_before = vec![dz_mirror.clone()];
    site.flops = 2.0 * (cap * g.fan_in * g.fan_out) as f64;
    (site, u)
}

/// `mm_nt_tex`: dZ of the layer below, `(dZ_l W_l^T)` masked by `act_{l-1} > 0`, into `out`.
fn input_grad(
    p: &PlanInputs<'_>,
    l: usize,
    sc: &Scratch,
    dz_mirror: &TextureMirror,
    out: &wgpu::Buffer,
) -> (Site, wgpu::Buffer) {
    let (cap, layout) = (p.cap, p.layout());
    let g = layout.layers[l];
    let dims = input_grad_dims(layout, l, cap, 0, true, DropFields::of(p.dropout, l - 1));
    let act = &sc.acts[l - 1];
    tex_product(
        p,
        format!(
            "L{} dX mm_nt_tex+relu_mask {cap}x{}x{}",
            l + 1,
            g.fan_out,
            g.fan_in
        ),
        Kernel::MmNtTex,
        dims,
        [act, &p.state.params, out, act],
        [&dz_mirror.view(), &mirrors(p).weight_view(l)],
    )
}

/// The optimizer's texture update (`adam_tex`, `sgd_tex` or `rmsprop_tex`) over the flat buffer past
/// the first layer (whose W1 and b1 grad_update_gather_tex updates), reading p, g, m and v through the
/// atlas-shaped mirrors: the gradients' mirror is refreshed before, the parameters', m's and v's after.
fn update_rest(p: &PlanInputs<'_>) -> (Site, wgpu::Buffer) {
    let (d, k, layout, st) = (p.device, p.kernels, p.layout(), p.state);
    let kernel = Kernel::update_tex(p.optimizer.kind());
    let m = mirrors(p);
    let len4 = layout.total / 4;
    let row4 = layout.atlas_width() / 4;
    let row0 = layout.adam_tex_row0();
    let dims = UpdateTexDims {
        len4: len4 as u32,
        row4: row4 as u32,
        row0: row0 as u32,
        _pad: 0,
    };
    let u = gbuf::uniform_init(d, "update_tex dims", bytemuck::bytes_of(&dims));
    let views = [m.atlas.view(), m.g.view(), m.m.view(), m.v.view()];
    let tex = kernels::views_bind_group(
        d,
        "update textures: p, g, m, v",
        &k.update_mirrors_layout,
        &views.iter().collect::<Vec<_>>(),
    );
    let binds = per_slot(
        p,
        "update_tex (slot)",
        &k.update_tex_layout,
        &[&st.params, &st.grads, &st.m, &st.v, &u],
        5,
    );
    let mut site = Site::plain(
        format!(
            "{} {} floats (+g copy)",
            kernel.entry_point(),
            layout.total - row0 * layout.atlas_width()
        ),
        kernel,
        kernels::update_tex_groups(len4, row4, row0),
        binds,
    );
    site.tex_binds = vec![tex];
    site.copy_before = vec![m.g.clone()];
    site.copy_after = m.after_adam();
    site.bytes = f32_bytes(7 * (layout.total - row0 * layout.atlas_width())) as f64;
    (site, u)
}
