//! `GpuBackend`: the MLP trained on a wgpu device. Params, grads and Adam's m/v live on the GPU in the
//! padded `GpuLayout`; every buffer, uniform and bind group is made in `new`, so a training step allocates
//! nothing. `train_step` only copies the batch into a host staging ring and writes the step's record
//! (rows, Adam's alpha, where its stats go); every `slots` steps the ring is uploaded with one
//! `write_buffer` per buffer and all those steps are encoded into one compute pass and one submission, at
//! most two submissions in flight. Loss and correct counts stay on the GPU (one `StepStat` per step)
//! until `take_stats`. A step is 2 dispatches per layer forward-and-backward (minus one) plus softmax and
//! Adam: 6 for the tutorial's 784-128-10 model.
//! Tested by tests/gpu_train.rs (one step and 200 steps vs the CPU, one real epoch) and tests/cli_gpu.rs.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, bail, ensure};

use crate::backend::{Backend, Role, check_order, check_range, check_split};
use crate::batches::{gather_normalise, normalise_range};
use crate::config::AdamConfig;
use crate::cpu;
use crate::data::Split;
use crate::gpu::buffers::{self, GpuLayout, TextureMirror, pad4};
use crate::gpu::context::{GpuContext, Needs};
use crate::gpu::kernels::{
    self, AdamDims, FLAG_BIAS, FLAG_COLSUM, FLAG_MASK, FLAG_RELU, Kernel, Kernels, MatmulDims,
    StepRecord, StepStat, XentDims,
};
use crate::gpu::profile::QueryRing;
use crate::metrics::StepStats;
use crate::metrics::{HostTimes, KernelRow, ProfileReport, Timing};
use crate::model::{MlpSpec, ParamLayout};

/// Steps whose stats the GPU holds before the host must read them.
const STAT_SLOTS: usize = 8192;
/// Most steps encoded into one submission.
const MAX_SLOTS: usize = 32;
/// Upper bound on the bytes of the batch ring (fewer slots for very large batches).
const RING_BYTES: usize = 32 << 20;
/// Most rows per `logits` call.
const EVAL_BATCH: usize = 4096;

/// One dispatch of the training step, with everything it needs bound.
struct Site {
    name: String,
    kernel: Kernel,
    groups: (u32, u32, u32),
    /// One bind group, or one per ring slot (the sites that read the batch).
    binds: Vec<wgpu::BindGroup>,
    /// Group 1 (the texture operands) of a texture variant: one, or one per ring slot.
    tex_binds: Vec<wgpu::BindGroup>,
    /// Texture mirrors to refresh before this dispatch (outside any compute pass).
    copy_before: Vec<TextureMirror>,
    /// Texture mirrors to refresh after this dispatch.
    copy_after: Vec<TextureMirror>,
    flops: f64,
    bytes: f64,
}

/// The forward pass used by `logits`, sized for `EVAL_BATCH` rows.
struct Eval {
    cap: usize,
    /// The input, `(cap, in_ld)` as a texture read by the first layer's `mm_nn_tex`.
    x_tex: wgpu::Texture,
    /// Group 1 of the first layer: the input texture and the parameter atlas.
    tex_bind: wgpu::BindGroup,
    /// `(layer, dims uniform, last output buffer)`.
    dims: Vec<(MatmulDims, wgpu::Buffer)>,
    binds: Vec<wgpu::BindGroup>,
    out: wgpu::Buffer,
    read: wgpu::Buffer,
    /// Padded copy of the input when `inputs` is not a multiple of 4, `(cap, in_ld)`.
    x_host: Vec<f32>,
    logits_host: Vec<f32>,
    _acts: Vec<wgpu::Buffer>,
}

/// The attached splits and the epoch's order, and the host buffers a step is gathered into.
#[derive(Default)]
struct HostData {
    train: Option<Arc<Split>>,
    eval: Option<Arc<Split>>,
    order: Vec<u32>,
    /// `(cap, inputs)`.
    x: Vec<f32>,
    /// `(cap)`.
    labels: Vec<u32>,
    /// `(eval cap, inputs)`.
    eval_x: Vec<f32>,
}

struct Profiling {
    timing: Timing,
    queries: Option<QueryRing>,
    rows: Vec<KernelRow>,
    started: Instant,
    steps: u64,
    host_at_start: HostTimes,
    scratch: Vec<f64>,
}

pub struct GpuBackend {
    ctx: GpuContext,
    kernels: Kernels,
    spec: MlpSpec,
    cpu_layout: ParamLayout,
    layout: GpuLayout,
    adam: AdamConfig,
    /// Rows per training batch.
    cap: usize,
    /// Row stride of the input, `pad4(inputs)`.
    in_ld: usize,
    /// Ring slots = most steps per submission.
    slots: usize,
    /// Floats of one batch in the ring, `cap * in_ld`.
    slot_floats: usize,
    /// Bytes between step records (the uniform offset alignment).
    record_stride: usize,
    params: wgpu::Buffer,
    /// The batch ring: one rgba32float `(cap, in_ld)` texture per slot (separate textures rather than
    /// layers of one array: GL-based adapters cannot view a single layer of an array).
    x_tex: Vec<wgpu::Texture>,
    labels_ring: wgpu::Buffer,
    records: wgpu::Buffer,
    stats: wgpu::Buffer,
    stats_read: wgpu::Buffer,
    params_read: wgpu::Buffer,
    sites: Vec<Site>,
    eval: Eval,
    /// `(slots, slot_floats)`: batches waiting to be uploaded.
    x_host: Vec<f32>,
    /// `(slots, cap)`.
    labels_host: Vec<u32>,
    /// `(slots, record_stride)` bytes.
    records_host: Vec<u8>,
    stats_host: Vec<StepStat>,
    pending: usize,
    /// Stats slots written since the last read.
    stat_count: usize,
    /// Samples and steps of those, known on the host.
    unread: StepStats,
    /// Stats read early because the GPU's slots filled up.
    carried: StepStats,
    steps: u64,
    in_flight: Option<wgpu::SubmissionIndex>,
    host: HostTimes,
    profiling: Option<Profiling>,
    host_data: HostData,
    /// Keeps the activations, gradients, Adam state and uniforms alive.
    _keep: Vec<wgpu::Buffer>,
    /// Adam's m and v `(layout.total)` (also in `_keep`), read and written by checkpoints.
    adam_m: wgpu::Buffer,
    adam_v: wgpu::Buffer,
}

/// Dimensions of layer `l`'s forward product `act_l = relu(input · W_l + b_l)` over `rows` rows (no ReLU
/// on the last layer), shared by training and evaluation.
fn forward_dims(
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

/// One output buffer `(rows, ld)` per layer.
fn activation_buffers(
    device: &wgpu::Device,
    layout: &GpuLayout,
    label: &str,
    rows: usize,
) -> Vec<wgpu::Buffer> {
    layout
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            buffers::storage(
                device,
                &format!("{label} {i} ({rows}, {})", l.ld),
                f32_bytes(rows * l.ld),
            )
        })
        .collect()
}

fn f32_bytes(n: usize) -> u64 {
    (n * 4) as u64
}

impl GpuBackend {
    /// Opens the adapter that `adapter` names (or the best one) and uploads `params` (flat CPU layout).
    pub fn new(
        adapter: Option<&str>,
        spec: MlpSpec,
        params: Vec<f32>,
        adam: AdamConfig,
        batch_capacity: usize,
    ) -> Result<Self> {
        let needs = Self::needs(&spec, batch_capacity);
        let ctx = GpuContext::open(adapter, needs)?;
        Self::with_context(ctx, spec, params, adam, batch_capacity)
    }

    fn ring_slots(spec: &MlpSpec, cap: usize) -> (usize, usize) {
        let slot_floats = cap * pad4(spec.inputs);
        let slots = (RING_BYTES / (slot_floats * 4)).clamp(1, MAX_SLOTS);
        (slots, slot_floats)
    }

    /// The largest buffer this model and batch need, for the device limits.
    pub fn needs(spec: &MlpSpec, cap: usize) -> Needs {
        let layout = GpuLayout::of(&spec.layout());
        let (slots, slot_floats) = Self::ring_slots(spec, cap);
        let widest = layout.layers.iter().map(|l| l.ld).max().unwrap_or(4);
        let largest = [
            slots * slot_floats,
            layout.total,
            cap.max(EVAL_BATCH) * widest.max(pad4(spec.inputs)),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        Needs {
            largest_buffer: f32_bytes(largest),
        }
    }

    /// Builds the engine on an already open device (tests pass their own).
    pub fn with_context(
        ctx: GpuContext,
        spec: MlpSpec,
        params: Vec<f32>,
        adam: AdamConfig,
        batch_capacity: usize,
    ) -> Result<Self> {
        let cpu_layout = spec.layout();
        ensure!(
            params.len() == cpu_layout.total,
            "the parameter vector has {} floats but the model {} needs {}",
            params.len(),
            spec.describe(),
            cpu_layout.total
        );
        ensure!(batch_capacity >= 1, "the batch size must be at least 1");
        let cap = batch_capacity;
        let layout = GpuLayout::of(&cpu_layout);
        let kernels = Kernels::new(&ctx.device);
        let device = &ctx.device;
        let in_ld = pad4(spec.inputs);
        let (slots, slot_floats) = Self::ring_slots(&spec, cap);
        let limits = device.limits();
        let record_stride = (limits.min_uniform_buffer_offset_alignment as usize)
            .max(std::mem::size_of::<StepRecord>());
        let mut keep = Vec::new();

        // Resident state, all in the padded GpuLayout: (layout.total) floats each.
        let packed = layout.pack(&cpu_layout, &params);
        let params_buf =
            buffers::storage_init(device, "params (GpuLayout)", bytemuck::cast_slice(&packed));
        let grads = buffers::storage(device, "grads (GpuLayout)", f32_bytes(layout.total));
        let m = buffers::storage(device, "adam m (GpuLayout)", f32_bytes(layout.total));
        let v = buffers::storage(device, "adam v (GpuLayout)", f32_bytes(layout.total));
        // The batch ring: (slots) textures of (cap, in_ld) inputs, and (slots, cap) labels.
        let x_tex = (0..slots)
            .map(|_| buffers::float_texture(device, "x ring slot (cap, in_ld)", in_ld, cap))
            .collect::<Result<Vec<_>>>()?;
        let x_views: Vec<wgpu::TextureView> = x_tex
            .iter()
            .map(|t| t.create_view(&Default::default()))
            .collect();
        // The parameter atlas: the whole flat buffer as a texture (refreshed after Adam); its first rows
        // are the first layer's weight.
        let params_mirror = TextureMirror::new(
            device,
            "params atlas (rows, atlas_width)",
            &params_buf,
            0,
            layout.atlas_width(),
            layout.atlas_rows(),
        )?;
        let params_view = params_mirror.view();
        let labels_ring =
            buffers::storage(device, "labels ring (slots, cap)", (slots * cap * 4) as u64);
        let records = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("step records (slots x record_stride)"),
            size: (slots * record_stride) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let stats_bytes = (STAT_SLOTS * kernels::XENT_WG * std::mem::size_of::<StepStat>()) as u64;
        let stats = buffers::storage(
            device,
            "step stats (STAT_SLOTS, XENT_WG partials)",
            stats_bytes,
        );
        let stats_read = buffers::readback(device, "step stats readback", stats_bytes);
        let params_read = buffers::readback(device, "params readback", f32_bytes(layout.total));
        let last = layout.layers.len() - 1;
        // Activations (cap, ld) per layer, and two gradient buffers (cap, widest ld) used in turn.
        let widest = layout.layers.iter().map(|l| l.ld).max().unwrap_or(4);
        let acts = activation_buffers(device, &layout, "act", cap);
        let dz = [
            buffers::storage(device, "dz 0 (cap, widest)", f32_bytes(cap * widest)),
            buffers::storage(device, "dz 1 (cap, widest)", f32_bytes(cap * widest)),
        ];
        // Texture mirrors of what the kernels write and the texture matmuls read: each layer's output
        // (refreshed after its forward product), each layer's dZ (before its weight gradient, which
        // comes before its input gradient), and the weights after the first (after Adam).
        let act_mirrors = (0..last)
            .map(|l| {
                TextureMirror::new(
                    device,
                    &format!("act {l} mirror (cap, ld)"),
                    &acts[l],
                    0,
                    layout.layers[l].ld,
                    cap,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let dz_mirrors = (0..layout.layers.len())
            .map(|l| {
                TextureMirror::new(
                    device,
                    &format!("dz {l} mirror (cap, ld)"),
                    &dz[l % 2],
                    0,
                    layout.layers[l].ld,
                    cap,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let w_mirrors = layout.layers[1..]
            .iter()
            .enumerate()
            .map(|(i, g)| {
                TextureMirror::new(
                    device,
                    &format!("W{} mirror (fan_in, ld)", i + 2),
                    &params_buf,
                    g.weight,
                    g.ld,
                    g.fan_in,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        // The texture holding layer l's input and weight.
        let input_view = |l: usize, slot: usize| {
            if l == 0 {
                x_views[slot].clone()
            } else {
                act_mirrors[l - 1].view()
            }
        };
        let weight_view = |l: usize| {
            if l == 0 {
                params_view.clone()
            } else {
                w_mirrors[l - 1].view()
            }
        };

        let mm_bind = |label: &str,
                       a: &wgpu::BufferBinding,
                       b: &wgpu::Buffer,
                       c: &wgpu::Buffer,
                       e: &wgpu::BufferBinding,
                       dims: &wgpu::Buffer| {
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(label),
                layout: &kernels.matmul_layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::Buffer(a.clone()),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: b.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: c.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: wgpu::BindingResource::Buffer(e.clone()),
                    },
                    wgpu::BindGroupEntry {
                        binding: 4,
                        resource: dims.as_entire_binding(),
                    },
                ],
            })
        };
        fn whole(b: &wgpu::Buffer) -> wgpu::BufferBinding<'_> {
            wgpu::BufferBinding {
                buffer: b,
                offset: 0,
                size: None,
            }
        }

        let mut sites = Vec::new();
        // Forward: act_l = relu(input · W_l + b_l), the last layer without ReLU. Input and weight come
        // from textures; group 0 supplies the bias (in b) and the output.
        for (l, g) in layout.layers.iter().enumerate() {
            let dims = forward_dims(&layout, l, cap, in_ld, true);
            let ubuf = buffers::uniform_init(
                device,
                &format!("L{} forward dims", l + 1),
                bytemuck::bytes_of(&dims),
            );
            let binds = vec![mm_bind(
                "forward",
                &whole(&params_buf),
                &params_buf,
                &acts[l],
                &whole(&params_buf),
                &ubuf,
            )];
            let slots_read = if l == 0 { slots } else { 1 };
            let tex_binds = (0..slots_read)
                .map(|s| {
                    kernels::tex_bind_group(
                        device,
                        "forward textures",
                        &kernels,
                        &input_view(l, s),
                        &weight_view(l),
                    )
                })
                .collect();
            sites.push(Site {
                name: format!(
                    "L{} fwd mm_nn_tex+bias{} {}x{}x{}{}",
                    l + 1,
                    if l == last { "" } else { "+relu" },
                    cap,
                    g.fan_in,
                    g.fan_out,
                    if l == 0 { " (+mirror copies)" } else { "" }
                ),
                kernel: Kernel::MmNnTex,
                tex_binds,
                copy_before: Vec::new(),
                copy_after: if l < last {
                    vec![act_mirrors[l].clone()]
                } else {
                    Vec::new()
                },
                groups: kernels::matmul_groups(Kernel::MmNnTex, cap, g.fan_out),
                binds,
                flops: 2.0 * (cap * g.fan_in * g.fan_out) as f64,
                bytes: 0.0,
            });
            keep.push(ubuf);
        }
        // Softmax cross-entropy: dlogits into dz[last % 2], stats per step.
        let out = layout.layers[last];
        let xdims = XentDims {
            cols: out.fan_out as u32,
            ld: out.ld as u32,
            capacity: cap as u32,
            _pad: 0,
        };
        let xbuf = buffers::uniform_init(device, "softmax_xent dims", bytemuck::bytes_of(&xdims));
        let rec = |s: usize| {
            Some((
                5,
                (s * record_stride) as u64,
                std::mem::size_of::<StepRecord>() as u64,
            ))
        };
        let xent_binds = (0..slots)
            .map(|s| {
                kernels::bind_group(
                    device,
                    "softmax_xent (slot)",
                    &kernels.xent_layout,
                    &[
                        &acts[last],
                        &labels_ring,
                        &dz[last % 2],
                        &stats,
                        &xbuf,
                        &records,
                    ],
                    rec(s),
                )
            })
            .collect();
        sites.push(Site {
            name: format!("softmax_xent {}x{}", cap, out.fan_out),
            kernel: Kernel::SoftmaxXent,
            groups: (1, 1, 1),
            binds: xent_binds,
            tex_binds: Vec::new(),
            copy_before: Vec::new(),
            copy_after: Vec::new(),
            flops: 0.0,
            bytes: f32_bytes(2 * cap * out.fan_out + cap) as f64,
        });
        keep.push(xbuf);
        // Backward, last layer first: dW_l, db_l = input^T · dZ_l, colsum(dZ_l); then dZ_{l-1} = (dZ_l ·
        // W_l^T) masked by act_{l-1} > 0. Adam runs after all of them, so W_l is still the forward's.
        // dZ_l is mirrored into its texture before the weight gradient, which both products then read.
        for (l, g) in layout.layers.iter().enumerate().rev() {
            let dims = MatmulDims {
                m: g.fan_in as u32,
                n: g.fan_out as u32,
                k: cap as u32,
                flags: FLAG_COLSUM,
                lda: 0,
                ldb: 0,
                ldc: g.ld as u32,
                lde: 0,
                a_off: 0,
                b_off: 0,
                c_off: g.weight as u32,
                e_off: g.bias as u32,
            };
            let ubuf = buffers::uniform_init(
                device,
                &format!("L{} weight-grad dims", l + 1),
                bytemuck::bytes_of(&dims),
            );
            let binds = vec![mm_bind(
                "weight grad",
                &whole(&dz[l % 2]),
                &dz[l % 2],
                &grads,
                &whole(&dz[l % 2]),
                &ubuf,
            )];
            let slots_read = if l == 0 { slots } else { 1 };
            let dz_view = dz_mirrors[l].view();
            let tex_binds = (0..slots_read)
                .map(|s| {
                    kernels::tex_bind_group(
                        device,
                        "weight grad textures",
                        &kernels,
                        &input_view(l, s),
                        &dz_view,
                    )
                })
                .collect();
            sites.push(Site {
                name: format!(
                    "L{} dW mm_tn_tex+colsum {}x{}x{} (+dZ copy)",
                    l + 1,
                    g.fan_in,
                    cap,
                    g.fan_out
                ),
                kernel: Kernel::MmTnTex,
                tex_binds,
                copy_before: vec![dz_mirrors[l].clone()],
                copy_after: Vec::new(),
                groups: kernels::matmul_groups(Kernel::MmTnTex, g.fan_in, g.fan_out),
                binds,
                flops: 2.0 * (cap * g.fan_in * g.fan_out) as f64,
                bytes: 0.0,
            });
            keep.push(ubuf);
            if l > 0 {
                let prev = layout.layers[l - 1];
                let dims = MatmulDims {
                    m: cap as u32,
                    n: g.fan_in as u32,
                    k: g.fan_out as u32,
                    flags: FLAG_MASK,
                    lda: 0,
                    ldb: 0,
                    ldc: prev.ld as u32,
                    lde: prev.ld as u32,
                    a_off: 0,
                    b_off: 0,
                    c_off: 0,
                    e_off: 0,
                };
                let ubuf = buffers::uniform_init(
                    device,
                    &format!("L{} input-grad dims", l + 1),
                    bytemuck::bytes_of(&dims),
                );
                let bind = mm_bind(
                    "input grad",
                    &whole(&acts[l - 1]),
                    &params_buf,
                    &dz[(l - 1) % 2],
                    &whole(&acts[l - 1]),
                    &ubuf,
                );
                let tex = kernels::tex_bind_group(
                    device,
                    "input grad textures",
                    &kernels,
                    &dz_view,
                    &weight_view(l),
                );
                sites.push(Site {
                    name: format!(
                        "L{} dX mm_nt_tex+relu_mask {}x{}x{}",
                        l + 1,
                        cap,
                        g.fan_out,
                        g.fan_in
                    ),
                    kernel: Kernel::MmNtTex,
                    tex_binds: vec![tex],
                    copy_before: Vec::new(),
                    copy_after: Vec::new(),
                    groups: kernels::matmul_groups(Kernel::MmNtTex, cap, g.fan_in),
                    binds: vec![bind],
                    flops: 2.0 * (cap * g.fan_in * g.fan_out) as f64,
                    bytes: 0.0,
                });
                keep.push(ubuf);
            }
        }
        // Adam over the whole flat buffer.
        let len4 = layout.total / 4;
        let row4 = layout.atlas_width() / 4;
        let adam_groups = kernels::adam_groups(len4, row4);
        let adims = AdamDims {
            len4: len4 as u32,
            beta1: adam.beta1 as f32,
            beta2: adam.beta2 as f32,
            eps: adam.epsilon as f32,
            row4: row4 as u32,
            _pad: [0; 3],
        };
        let abuf = buffers::uniform_init(device, "adam dims", bytemuck::bytes_of(&adims));
        // Adam reads p, g, m and v through atlas-shaped texture mirrors (see adam.wgsl).
        let mirror = |label: &str, buffer: &wgpu::Buffer| {
            TextureMirror::new(
                device,
                label,
                buffer,
                0,
                layout.atlas_width(),
                layout.atlas_rows(),
            )
        };
        let g_mirror = mirror("grads mirror (atlas)", &grads)?;
        let m_mirror = mirror("adam m mirror (atlas)", &m)?;
        let v_mirror = mirror("adam v mirror (atlas)", &v)?;
        let adam_tex_bind = kernels::views_bind_group(
            device,
            "adam textures: p, g, m, v",
            &kernels.adam_tex_layout,
            &[
                &params_view,
                &g_mirror.view(),
                &m_mirror.view(),
                &v_mirror.view(),
            ],
        );
        let adam_binds = (0..slots)
            .map(|s| {
                kernels::bind_group(
                    device,
                    "adam (slot)",
                    &kernels.adam_layout,
                    &[&params_buf, &grads, &m, &v, &abuf, &records],
                    rec(s),
                )
            })
            .collect();
        sites.push(Site {
            name: format!("adam {} floats (+g copy)", layout.total),
            kernel: Kernel::Adam,
            groups: adam_groups,
            binds: adam_binds,
            tex_binds: vec![adam_tex_bind],
            copy_before: vec![g_mirror],
            copy_after: [params_mirror.clone(), m_mirror, v_mirror]
                .into_iter()
                .chain(w_mirrors.iter().cloned())
                .collect(),
            flops: 0.0,
            bytes: f32_bytes(7 * layout.total) as f64,
        });
        keep.push(abuf);

        // The evaluation forward pass: its own input and activations, dims rewritten per call.
        // The evaluation input is a texture, so its rows are bounded by the adapter's texture size
        // (8192 on most GPUs, 2048 on downlevel ones).
        let ecap = EVAL_BATCH.min(limits.max_texture_dimension_2d as usize);
        let ex_tex = buffers::float_texture(device, "eval x (EVAL_BATCH, in_ld)", in_ld, ecap)?;
        let etex_bind = kernels::tex_bind_group(
            device,
            "eval L1 textures",
            &kernels,
            &ex_tex.create_view(&Default::default()),
            &params_view,
        );
        let eacts = activation_buffers(device, &layout, "eval act", ecap);
        let mut edims = Vec::new();
        let mut ebinds = Vec::new();
        for l in 0..layout.layers.len() {
            // The first layer reads its input and the atlas as textures; the later ones read the
            // evaluation activations from buffers (evaluation runs a few times an epoch).
            let dims = forward_dims(&layout, l, ecap, in_ld, l == 0);
            let ubuf = buffers::uniform_init(
                device,
                &format!("eval L{} dims", l + 1),
                bytemuck::bytes_of(&dims),
            );
            let input = if l == 0 { &params_buf } else { &eacts[l - 1] };
            ebinds.push(mm_bind(
                "eval forward",
                &whole(input),
                &params_buf,
                &eacts[l],
                &whole(input),
                &ubuf,
            ));
            edims.push((dims, ubuf));
        }
        let eread = buffers::readback(device, "eval logits readback", f32_bytes(ecap * out.ld));
        let eval = Eval {
            cap: ecap,
            x_tex: ex_tex,
            tex_bind: etex_bind,
            dims: edims,
            binds: ebinds,
            out: eacts[last].clone(),
            read: eread,
            x_host: if in_ld == spec.inputs {
                Vec::new()
            } else {
                vec![0.0; ecap * in_ld]
            },
            logits_host: vec![0.0; ecap * out.ld],
            _acts: eacts,
        };

        let (adam_m, adam_v) = (m.clone(), v.clone());
        keep.extend([grads, m, v]);
        keep.extend(acts);
        keep.extend(dz);
        // The atlas starts as a copy of the initial parameters; Adam's site refreshes it every step.
        let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("initial atlas"),
        });
        params_mirror.encode(&mut enc);
        for w in &w_mirrors {
            w.encode(&mut enc);
        }
        ctx.queue.submit([enc.finish()]);
        Ok(Self {
            kernels,
            cap,
            in_ld,
            slots,
            slot_floats,
            record_stride,
            params: params_buf,
            x_tex,
            labels_ring,
            records,
            stats,
            stats_read,
            params_read,
            sites,
            eval,
            x_host: vec![0.0; slots * slot_floats],
            labels_host: vec![0; slots * cap],
            records_host: vec![0; slots * record_stride],
            stats_host: vec![StepStat::default(); STAT_SLOTS * kernels::XENT_WG],
            pending: 0,
            stat_count: 0,
            unread: StepStats::default(),
            carried: StepStats::default(),
            steps: 0,
            in_flight: None,
            host: HostTimes::default(),
            profiling: None,
            host_data: HostData {
                x: vec![0.0; cap * spec.inputs],
                labels: vec![0; cap],
                eval_x: vec![0.0; ecap * spec.inputs],
                ..HostData::default()
            },
            _keep: keep,
            adam_m,
            adam_v,
            ctx,
            spec,
            cpu_layout,
            layout,
            adam,
        })
    }

    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Steps encoded into one submission.
    pub fn steps_per_submission(&self) -> usize {
        self.slots
    }

    /// Starts timing every kernel (see `profile::Timing` for how); `profile_report` reads the result.
    pub fn begin_profile(&mut self) -> Result<()> {
        self.flush()?;
        let per_submission = (self.slots * self.sites.len()) as u32;
        let (timing, queries) = if self.ctx.timestamps_inside_passes {
            (
                Timing::TimestampsInPass,
                Some(QueryRing::new(
                    &self.ctx.device,
                    &self.ctx.queue,
                    per_submission + 1,
                )),
            )
        } else if self.ctx.timestamps {
            (
                Timing::TimestampsPerPass,
                Some(QueryRing::new(
                    &self.ctx.device,
                    &self.ctx.queue,
                    2 * per_submission,
                )),
            )
        } else {
            (Timing::WallClock, None)
        };
        if let Some(q) = &queries
            && q.capacity < per_submission + 1
            && timing == Timing::TimestampsInPass
        {
            bail!(
                "the profile needs {} timestamp queries per submission",
                per_submission + 1
            );
        }
        self.profiling = Some(Profiling {
            timing,
            queries,
            rows: self
                .sites
                .iter()
                .map(|s| KernelRow {
                    name: s.name.clone(),
                    dispatches: 0,
                    total_ns: 0.0,
                    flops: s.flops,
                    bytes: s.bytes,
                })
                .collect(),
            started: Instant::now(),
            steps: 0,
            host_at_start: self.host,
            scratch: Vec::new(),
        });
        Ok(())
    }

    /// The profile since `begin_profile` (waits for queued steps).
    pub fn report(&mut self) -> Result<Option<ProfileReport>> {
        self.flush()?;
        self.wait_all()?;
        let Some(p) = &self.profiling else {
            return Ok(None);
        };
        let h0 = p.host_at_start;
        let h = self.host;
        Ok(Some(ProfileReport {
            timing: p.timing,
            rows: p.rows.clone(),
            host: HostTimes {
                upload: h.upload.saturating_sub(h0.upload),
                encode: h.encode.saturating_sub(h0.encode),
                submit: h.submit.saturating_sub(h0.submit),
                wait: h.wait.saturating_sub(h0.wait),
            },
            steps: p.steps,
            wall: p.started.elapsed(),
        }))
    }

    fn wait_all(&mut self) -> Result<()> {
        let t = Instant::now();
        self.ctx.wait()?;
        self.in_flight = None;
        self.host.wait += t.elapsed();
        Ok(())
    }

    /// Uploads the staged batches and encodes and submits their steps.
    fn flush(&mut self) -> Result<()> {
        let n = self.pending;
        if n == 0 {
            return Ok(());
        }
        let t0 = Instant::now();
        let q = &self.ctx.queue;
        for (s, tex) in self.x_tex[..n].iter().enumerate() {
            let slot = &self.x_host[s * self.slot_floats..(s + 1) * self.slot_floats];
            buffers::write_texture(q, tex, self.in_ld, self.cap, slot);
        }
        q.write_buffer(
            &self.labels_ring,
            0,
            bytemuck::cast_slice(&self.labels_host[..n * self.cap]),
        );
        q.write_buffer(
            &self.records,
            0,
            &self.records_host[..n * self.record_stride],
        );
        let t1 = Instant::now();
        self.host.upload += t1 - t0;
        self.pending = 0;
        self.stat_count += n;
        if self
            .profiling
            .as_ref()
            .is_some_and(|p| p.timing == Timing::WallClock)
        {
            return self.run_wall_clock(n);
        }
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("train steps"),
            });
        let mut used = 0u32;
        let timing = self.profiling.as_ref().map(|p| p.timing);
        let queries = self.profiling.as_ref().and_then(|p| p.queries.as_ref());
        match timing {
            Some(Timing::TimestampsPerPass) => {
                let qs = &queries.expect("per-pass timing has queries").set;
                for s in 0..n {
                    for site in &self.sites {
                        for c in &site.copy_before {
                            c.encode(&mut enc);
                        }
                        {
                            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                                label: Some(&site.name),
                                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                                    query_set: qs,
                                    beginning_of_pass_write_index: Some(used),
                                    end_of_pass_write_index: Some(used + 1),
                                }),
                            });
                            used += 2;
                            self.dispatch(&mut pass, site, s);
                        }
                        for c in &site.copy_after {
                            c.encode(&mut enc);
                        }
                    }
                }
            }
            _ => {
                // The sites run in passes split where a texture mirror must be refreshed (copies cannot
                // sit inside a compute pass). With timestamps, one is written before every dispatch and
                // one after the last, so a copy's time counts towards the dispatch after it.
                let k = self.sites.len();
                for s in 0..n {
                    let mut start = 0;
                    while start < k {
                        let mut end = start + 1;
                        while end < k
                            && self.sites[end].copy_before.is_empty()
                            && self.sites[end - 1].copy_after.is_empty()
                        {
                            end += 1;
                        }
                        for c in &self.sites[start].copy_before {
                            c.encode(&mut enc);
                        }
                        {
                            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                                label: Some("train steps"),
                                timestamp_writes: None,
                            });
                            for site in &self.sites[start..end] {
                                if let Some(qr) = queries {
                                    pass.write_timestamp(&qr.set, used);
                                    used += 1;
                                }
                                self.dispatch(&mut pass, site, s);
                            }
                            if let Some(qr) = queries
                                && s + 1 == n
                                && end == k
                            {
                                pass.write_timestamp(&qr.set, used);
                                used += 1;
                            }
                        }
                        for c in &self.sites[end - 1].copy_after {
                            c.encode(&mut enc);
                        }
                        start = end;
                    }
                }
            }
        }
        if let Some(qr) = queries {
            qr.resolve(&mut enc, used);
        }
        let cmd = enc.finish();
        let t2 = Instant::now();
        self.host.encode += t2 - t1;
        let index = self.ctx.queue.submit([cmd]);
        let t3 = Instant::now();
        self.host.submit += t3 - t2;
        // Pacing: at most two submissions in flight, so the host runs one batch window ahead.
        if let Some(prev) = self.in_flight.replace(index) {
            self.ctx.wait_for(prev)?;
        }
        self.host.wait += t3.elapsed();
        if timing.is_some() {
            self.collect_timestamps(n, used)?;
        }
        Ok(())
    }

    fn dispatch(&self, pass: &mut wgpu::ComputePass<'_>, site: &Site, slot: usize) {
        pass.set_pipeline(self.kernels.pipeline(site.kernel));
        let bind = &site.binds[if site.binds.len() > 1 { slot } else { 0 }];
        pass.set_bind_group(0, bind, &[]);
        if !site.tex_binds.is_empty() {
            let tex = &site.tex_binds[if site.tex_binds.len() > 1 { slot } else { 0 }];
            pass.set_bind_group(1, tex, &[]);
        }
        let (x, y, z) = site.groups;
        pass.dispatch_workgroups(x, y, z);
    }

    fn collect_timestamps(&mut self, steps: usize, used: u32) -> Result<()> {
        let t = Instant::now();
        let p = self.profiling.as_mut().expect("profiling");
        let qr = p.queries.as_ref().expect("timestamp timing has queries");
        qr.read(&self.ctx.device, used, &mut p.scratch)?;
        self.in_flight = None;
        let sites = self.sites.len();
        for i in 0..steps * sites {
            let d = match p.timing {
                Timing::TimestampsInPass => p.scratch[i + 1] - p.scratch[i],
                _ => p.scratch[2 * i + 1] - p.scratch[2 * i],
            };
            let row = &mut p.rows[i % sites];
            row.dispatches += 1;
            row.total_ns += d.max(0.0);
        }
        p.steps += steps as u64;
        self.host.wait += t.elapsed();
        Ok(())
    }

    /// Profile without timestamps: each dispatch submitted alone and timed by the host.
    fn run_wall_clock(&mut self, n: usize) -> Result<()> {
        self.wait_all()?;
        for s in 0..n {
            for (i, site) in self.sites.iter().enumerate() {
                let t = Instant::now();
                let mut enc =
                    self.ctx
                        .device
                        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                            label: Some(&site.name),
                        });
                for c in &site.copy_before {
                    c.encode(&mut enc);
                }
                {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some(&site.name),
                        timestamp_writes: None,
                    });
                    self.dispatch(&mut pass, site, s);
                }
                for c in &site.copy_after {
                    c.encode(&mut enc);
                }
                self.ctx.queue.submit([enc.finish()]);
                self.ctx.wait()?;
                let p = self.profiling.as_mut().expect("profiling");
                p.rows[i].dispatches += 1;
                p.rows[i].total_ns += t.elapsed().as_nanos() as f64;
            }
        }
        if let Some(p) = self.profiling.as_mut() {
            p.steps += n as u64;
        }
        Ok(())
    }

    /// Reads the GPU's per-step stats into `carried` and frees their slots.
    fn read_stats(&mut self) -> Result<()> {
        self.flush()?;
        let n = self.stat_count;
        if n == 0 {
            return Ok(());
        }
        let t = Instant::now();
        let records = n * kernels::XENT_WG;
        let bytes = (records * std::mem::size_of::<StepStat>()) as u64;
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("read stats"),
            });
        enc.copy_buffer_to_buffer(&self.stats, 0, &self.stats_read, 0, bytes);
        self.ctx.queue.submit([enc.finish()]);
        buffers::read_mapped(
            &self.ctx.device,
            &self.stats_read,
            bytes,
            bytemuck::cast_slice_mut(&mut self.stats_host[..records]),
        )?;
        self.in_flight = None;
        self.host.wait += t.elapsed();
        let mut got = std::mem::take(&mut self.unread);
        for s in &self.stats_host[..records] {
            got.loss_sum += s.loss as f64;
            got.correct += s.correct as u64;
        }
        self.carried.add(got);
        self.stat_count = 0;
        Ok(())
    }

    /// Queues one step on normalised host samples `x (rows, inputs)` with `labels (rows)`.
    fn queue_step(&mut self, x: &[f32], labels: &[u32], rows: usize) -> Result<()> {
        let inputs = self.spec.inputs;
        ensure!(
            rows >= 1 && rows <= self.cap,
            "a batch of {rows} rows does not fit the GPU batch capacity {}",
            self.cap
        );
        ensure!(
            x.len() >= rows * inputs && labels.len() >= rows,
            "the batch holds fewer than {rows} samples"
        );
        if let Some(&bad) = labels[..rows]
            .iter()
            .find(|&&l| l as usize >= self.spec.outputs)
        {
            bail!(
                "label {bad} is out of range for {} classes",
                self.spec.outputs
            );
        }
        if self.stat_count + self.pending >= STAT_SLOTS {
            self.read_stats()?;
        }
        let t = Instant::now();
        let s = self.pending;
        let slot = &mut self.x_host[s * self.slot_floats..(s + 1) * self.slot_floats];
        if self.in_ld == inputs {
            slot[..rows * inputs].copy_from_slice(&x[..rows * inputs]);
        } else {
            for r in 0..rows {
                slot[r * self.in_ld..r * self.in_ld + inputs]
                    .copy_from_slice(&x[r * inputs..(r + 1) * inputs]);
            }
        }
        self.labels_host[s * self.cap..s * self.cap + rows].copy_from_slice(&labels[..rows]);
        self.steps += 1;
        let a = &self.adam;
        let record = StepRecord {
            rows: rows as u32,
            slot: s as u32,
            stat: (self.stat_count + s) as u32,
            alpha: cpu::adam_alpha(a.learning_rate, a.beta1, a.beta2, self.steps) as f32,
            scale: (1.0 / rows as f64) as f32,
            _pad: [0; 3],
        };
        let at = s * self.record_stride;
        self.records_host[at..at + std::mem::size_of::<StepRecord>()]
            .copy_from_slice(bytemuck::bytes_of(&record));
        self.unread.add(StepStats {
            loss_sum: 0.0,
            correct: 0,
            samples: rows as u64,
            steps: 1,
        });
        self.host.upload += t.elapsed();
        self.pending += 1;
        if self.pending == self.slots {
            self.flush()?;
        }
        Ok(())
    }

    fn forward_logits(&mut self, x: &[f32], rows: usize, out: &mut [f32]) -> Result<()> {
        let inputs = self.spec.inputs;
        let outputs = self.spec.outputs;
        ensure!(
            rows <= self.eval.cap,
            "logits of {rows} rows exceed the GPU's {}",
            self.eval.cap
        );
        ensure!(
            x.len() >= rows * inputs && out.len() >= rows * outputs,
            "logits: buffers too short"
        );
        if rows == 0 {
            return Ok(());
        }
        self.flush()?;
        let q = &self.ctx.queue;
        if self.in_ld == inputs {
            buffers::write_texture(q, &self.eval.x_tex, self.in_ld, rows, &x[..rows * inputs]);
        } else {
            for r in 0..rows {
                self.eval.x_host[r * self.in_ld..r * self.in_ld + inputs]
                    .copy_from_slice(&x[r * inputs..(r + 1) * inputs]);
            }
            buffers::write_texture(
                q,
                &self.eval.x_tex,
                self.in_ld,
                rows,
                &self.eval.x_host[..rows * self.in_ld],
            );
        }
        for (dims, buf) in &self.eval.dims {
            let d = MatmulDims {
                m: rows as u32,
                ..*dims
            };
            q.write_buffer(buf, 0, bytemuck::bytes_of(&d));
        }
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("eval forward"),
            });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("eval forward"),
                timestamp_writes: None,
            });
            for (l, g) in self.layout.layers.iter().enumerate() {
                let kernel = if l == 0 {
                    Kernel::MmNnTex
                } else {
                    Kernel::MmNn
                };
                pass.set_pipeline(self.kernels.pipeline(kernel));
                pass.set_bind_group(0, &self.eval.binds[l], &[]);
                if l == 0 {
                    pass.set_bind_group(1, &self.eval.tex_bind, &[]);
                }
                let (gx, gy, gz) = kernels::matmul_groups(kernel, rows, g.fan_out);
                pass.dispatch_workgroups(gx, gy, gz);
            }
        }
        let ld = self.layout.layers.last().expect("an MLP has layers").ld;
        let bytes = f32_bytes(rows * ld);
        enc.copy_buffer_to_buffer(&self.eval.out, 0, &self.eval.read, 0, bytes);
        self.ctx.queue.submit([enc.finish()]);
        let t = Instant::now();
        buffers::read_mapped(
            &self.ctx.device,
            &self.eval.read,
            bytes,
            bytemuck::cast_slice_mut(&mut self.eval.logits_host[..rows * ld]),
        )?;
        self.in_flight = None;
        self.host.wait += t.elapsed();
        for r in 0..rows {
            out[r * outputs..(r + 1) * outputs]
                .copy_from_slice(&self.eval.logits_host[r * ld..r * ld + outputs]);
        }
        Ok(())
    }
}

impl Backend for GpuBackend {
    fn device_name(&self) -> String {
        format!("gpu: {}", self.ctx.adapter.describe())
    }

    fn spec(&self) -> &MlpSpec {
        &self.spec
    }

    fn attach(&mut self, role: Role, split: &Arc<Split>) -> Result<()> {
        check_split(split, &self.spec)?;
        match role {
            Role::Train => self.host_data.train = Some(split.clone()),
            Role::Eval => self.host_data.eval = Some(split.clone()),
        }
        Ok(())
    }

    fn set_order(&mut self, order: &[u32]) -> Result<()> {
        check_order(order, self.host_data.train.as_ref())?;
        self.host_data.order.clear();
        self.host_data.order.extend_from_slice(order);
        Ok(())
    }

    fn train_step(&mut self, start: usize, rows: usize) -> Result<()> {
        check_range(start, rows, self.host_data.order.len(), self.cap)?;
        let mut d = std::mem::take(&mut self.host_data);
        let train = d.train.clone().expect("set_order checked the split");
        gather_normalise(
            &train,
            &d.order[start..start + rows],
            &mut d.x,
            &mut d.labels,
        );
        let result = self.queue_step(&d.x, &d.labels, rows);
        self.host_data = d;
        result
    }

    fn eval_logits(&mut self, start: usize, rows: usize, out: &mut [f32]) -> Result<()> {
        let mut d = std::mem::take(&mut self.host_data);
        let Some(split) = d.eval.clone() else {
            bail!("eval_logits before an evaluation split was attached")
        };
        check_range(start, rows, split.len(), self.eval.cap)?;
        normalise_range(&split, start, rows, &mut d.eval_x);
        let result = self.logits(&d.eval_x, rows, out);
        self.host_data = d;
        result
    }

    fn take_stats(&mut self) -> Result<StepStats> {
        self.read_stats()?;
        Ok(std::mem::take(&mut self.carried))
    }

    fn logits(&mut self, x: &[f32], rows: usize, out: &mut [f32]) -> Result<()> {
        self.forward_logits(x, rows, out)
    }

    fn eval_batch(&self) -> usize {
        self.eval.cap
    }

    fn params(&mut self) -> Result<Vec<f32>> {
        self.flush()?;
        let mut gpu = vec![0.0f32; self.layout.total];
        buffers::download_f32(
            &self.ctx.device,
            &self.ctx.queue,
            &self.params,
            0,
            &self.params_read,
            &mut gpu,
        )?;
        self.in_flight = None;
        Ok(self.layout.unpack(&self.cpu_layout, &gpu))
    }

    fn steps_done(&self) -> u64 {
        self.steps
    }

    fn start_profile(&mut self) -> Result<bool> {
        self.begin_profile()?;
        Ok(true)
    }

    fn profile_report(&mut self) -> Result<Option<ProfileReport>> {
        self.report()
    }

    // ---- Optimizer state for run checkpoints and `train --resume` ----
    // m and v live in the padded GpuLayout like the parameters and cross the trait in the flat
    // ParamLayout order, as `params()` does. Adam reads p, g, m and v through texture mirrors that are
    // otherwise refreshed only after Adam runs, so replacing m and v refreshes every mirror at once.

    fn optimizer_state(&mut self) -> Result<crate::backend::OptimizerState> {
        self.flush()?;
        let mut flat = [Vec::new(), Vec::new()];
        for (buffer, out) in [&self.adam_m, &self.adam_v].into_iter().zip(&mut flat) {
            let mut gpu = vec![0.0f32; self.layout.total];
            buffers::download_f32(
                &self.ctx.device,
                &self.ctx.queue,
                buffer,
                0,
                &self.params_read,
                &mut gpu,
            )?;
            *out = self.layout.unpack(&self.cpu_layout, &gpu);
        }
        self.in_flight = None;
        let [m, v] = flat;
        Ok(crate::backend::OptimizerState {
            m,
            v,
            steps: self.steps,
        })
    }

    fn set_optimizer_state(&mut self, state: &crate::backend::OptimizerState) -> Result<()> {
        state.check(self.cpu_layout.total)?;
        self.flush()?;
        self.wait_all()?;
        let q = &self.ctx.queue;
        for (buffer, flat) in [(&self.adam_m, &state.m), (&self.adam_v, &state.v)] {
            let packed = self.layout.pack(&self.cpu_layout, flat);
            q.write_buffer(buffer, 0, bytemuck::cast_slice(&packed));
        }
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("refresh mirrors after set_optimizer_state"),
            });
        for site in &self.sites {
            for mirror in site.copy_before.iter().chain(&site.copy_after) {
                mirror.encode(&mut enc);
            }
        }
        q.submit([enc.finish()]);
        self.steps = state.steps;
        Ok(())
    }
}
