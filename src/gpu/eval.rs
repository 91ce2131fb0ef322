//! The forward pass of evaluation and prediction, `cap` rows per call: logits of an attached split's
//! samples (read from their resident copy, nothing uploaded per call but one record), or of normalised
//! host inputs (photos). The first layer reads its samples the way the operand path prefers (buffers:
//! `forward_gather` straight from the images; textures: `gather`, a copy into a texture and
//! `mm_nn_tex`); later layers are `mm_nn`. Tested by tests/gpu_train.rs (logits vs the CPU path) and
//! tests/cli_gpu.rs (evaluate on the GPU reproduces training's test accuracy).

use std::sync::Arc;

use anyhow::Result;

use crate::data::Split;
use crate::gpu::buffers::{self as gbuf, GpuLayout, TextureMirror, pad_texture_row};
use crate::gpu::context::GpuContext;
use crate::gpu::dataset::ResidentSplit;
use crate::gpu::kernels::{
    self, ForwardGatherDims, GatherDims, Kernel, Kernels, MatmulDims, StepRecord,
};
use crate::gpu::params::ParamState;
use crate::gpu::plan::forward_dims;
use crate::gpu::plan::{Operands, f32_bytes};

/// Most rows per call.
pub const EVAL_BATCH: usize = 4096;

/// One dispatch of the evaluation.
struct Stage {
    kernel: Kernel,
    bind: wgpu::BindGroup,
    tex_bind: Option<wgpu::BindGroup>,
    /// The dims uniform and its contents; `m` is rewritten per call for products.
    dims: Option<(wgpu::Buffer, MatmulDims)>,
    /// Columns of the output, for the dispatch size of products.
    n: usize,
}

impl Stage {
    /// Workgroups over the call's `rows` only: the products after a stage read no further.
    fn groups(&self, rows: usize) -> (u32, u32, u32) {
        match self.kernel {
            Kernel::ForwardGather => kernels::forward_gather_groups(rows, self.n),
            Kernel::Gather => kernels::gather_groups(rows, self.n),
            k => kernels::matmul_groups(k, rows, self.n),
        }
    }
}

/// The stages that read an attached split.
struct SplitStages {
    split: ResidentSplit,
    first: Vec<Stage>,
    /// The texture path's copy of the gathered rows into the input texture.
    x_mirror: Option<TextureMirror>,
}

pub struct EvalPlan {
    pub cap: usize,
    operands: Operands,
    in_ld: usize,
    outputs: usize,
    out_ld: usize,
    /// `(cap, in_ld)`: host inputs, or the gathered samples on the texture path.
    x: wgpu::Buffer,
    /// `(cap, ld)` per layer; the last holds the logits.
    acts: Vec<wgpu::Buffer>,
    /// `mm_nn` of layer l reading its input from buffers (layer 0 from `x`).
    products: Vec<Stage>,
    record: wgpu::Buffer,
    read: wgpu::Buffer,
    x_host: Vec<f32>,
    logits_host: Vec<f32>,
    data: Option<SplitStages>,
    keep: Vec<wgpu::Buffer>,
}

impl EvalPlan {
    pub fn new(
        ctx: &GpuContext,
        kernels: &Kernels,
        state: &ParamState,
        inputs: usize,
        operands: Operands,
    ) -> Result<Self> {
        let d = &ctx.device;
        let layout = &state.layout;
        let in_ld = pad_texture_row(inputs);
        // The texture path's input texture bounds the rows (8192 on most GPUs, 2048 on downlevel ones).
        let cap = match operands {
            Operands::Textures => EVAL_BATCH.min(d.limits().max_texture_dimension_2d as usize),
            Operands::Buffers => EVAL_BATCH,
        };
        let x = gbuf::storage(d, "eval x (cap, in_ld)", f32_bytes(cap * in_ld));
        let acts: Vec<wgpu::Buffer> = layout
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                gbuf::storage(d, &format!("eval act {i} (cap, ld)"), f32_bytes(cap * l.ld))
            })
            .collect();
        let products = (0..layout.layers.len())
            .map(|l| {
                let input = if l == 0 { &x } else { &acts[l - 1] };
                product(
                    d,
                    kernels,
                    state,
                    layout,
                    l,
                    cap,
                    in_ld,
                    input,
                    &acts[l],
                    Kernel::MmNn,
                    None,
                )
            })
            .collect();
        let last = layout.layers.last().expect("an MLP has layers");
        Ok(Self {
            cap,
            operands,
            in_ld,
            outputs: last.fan_out,
            out_ld: last.ld,
            record: gbuf::uniform_init(
                d,
                "eval record",
                bytemuck::bytes_of(&StepRecord::default()),
            ),
            read: gbuf::readback(
                d,
                "eval logits readback (cap, out_ld)",
                f32_bytes(cap * last.ld),
            ),
            x_host: vec![0.0; cap * in_ld],
            logits_host: vec![0.0; cap * last.ld],
            x,
            acts,
            products,
            data: None,
            keep: Vec::new(),
        })
    }

    /// Makes `split` the evaluated data (uploaded once; the same `Arc` again does nothing).
    pub fn attach(
        &mut self,
        ctx: &GpuContext,
        kernels: &Kernels,
        state: &ParamState,
        split: &Arc<Split>,
    ) -> Result<u64> {
        if self.data.as_ref().is_some_and(|s| s.split.holds(split)) {
            return Ok(0);
        }
        let d = &ctx.device;
        let layout = &state.layout;
        let resident = ResidentSplit::upload(d, &ctx.queue, "eval", split, true, false)?;
        let uploaded = resident.bytes();
        let inputs = split.pixels;
        let mut first = Vec::new();
        let mut x_mirror = None;
        // The order binding is never read in direct mode; the labels buffer stands in for it.
        let order = &resident.labels;
        let l0 = layout.layers[0];
        if self.operands == Operands::Buffers && layout.layers.len() > 1 {
            let dims = ForwardGatherDims {
                inputs: inputs as u32,
                fan_out: l0.fan_out as u32,
                capacity: self.cap as u32,
                ldc: l0.ld as u32,
                w_off: l0.weight as u32,
                ldw: l0.ld as u32,
                b_off: l0.bias as u32,
                direct: 1,
                relu: 1,
                // Evaluation never drops.
                drop: Default::default(),
                _pad: [0; 3],
            };
            let u = gbuf::uniform_init(d, "eval forward_gather dims", bytemuck::bytes_of(&dims));
            let bind = kernels::bind_group(
                d,
                "eval forward_gather",
                &kernels.forward_gather_layout,
                &[
                    resident.images(),
                    order,
                    &state.params,
                    &self.acts[0],
                    &u,
                    &self.record,
                ],
                None,
            );
            first.push(Stage {
                kernel: Kernel::ForwardGather,
                bind,
                tex_bind: None,
                dims: None,
                n: l0.fan_out,
            });
            self.keep.push(u);
        } else {
            let dims = GatherDims {
                inputs: inputs as u32,
                ldx: self.in_ld as u32,
                capacity: self.cap as u32,
                direct: 1,
            };
            let u = gbuf::uniform_init(d, "eval gather dims", bytemuck::bytes_of(&dims));
            let bind = kernels::bind_group(
                d,
                "eval gather",
                &kernels.gather_layout,
                &[resident.images(), order, &self.x, &u, &self.record],
                None,
            );
            first.push(Stage {
                kernel: Kernel::Gather,
                bind,
                tex_bind: None,
                dims: None,
                n: self.in_ld,
            });
            self.keep.push(u);
            if self.operands == Operands::Textures {
                let mirror = TextureMirror::new(
                    d,
                    "eval x mirror (cap, in_ld)",
                    &self.x,
                    0,
                    self.in_ld,
                    self.cap,
                )?;
                let atlas = &state
                    .mirrors
                    .as_ref()
                    .expect("the texture path keeps parameter mirrors")
                    .atlas;
                let tex = kernels::tex_bind_group(
                    d,
                    "eval L1 textures",
                    kernels,
                    &mirror.view(),
                    &atlas.view(),
                );
                first.push(product(
                    d,
                    kernels,
                    state,
                    layout,
                    0,
                    self.cap,
                    self.in_ld,
                    &self.x,
                    &self.acts[0],
                    Kernel::MmNnTex,
                    Some(tex),
                ));
                x_mirror = Some(mirror);
            } else {
                first.push(product(
                    d,
                    kernels,
                    state,
                    layout,
                    0,
                    self.cap,
                    self.in_ld,
                    &self.x,
                    &self.acts[0],
                    Kernel::MmNn,
                    None,
                ));
            }
        }
        self.data = Some(SplitStages {
            split: resident,
            first,
            x_mirror,
        });
        Ok(uploaded)
    }

    /// Logits `(rows, outputs)` of the attached split's samples `start..start + rows`.
    pub async fn split_logits(
        &mut self,
        ctx: &GpuContext,
        kernels: &Kernels,
        start: usize,
        rows: usize,
        out: &mut [f32],
    ) -> Result<u64> {
        let record = StepRecord {
            rows: rows as u32,
            start: start as u32,
            ..StepRecord::default()
        };
        ctx.queue
            .write_buffer(&self.record, 0, bytemuck::bytes_of(&record));
        self.run(ctx, kernels, rows, true, out).await
    }

    /// Logits `(rows, outputs)` of normalised host inputs `x (rows, inputs)`.
    pub async fn host_logits(
        &mut self,
        ctx: &GpuContext,
        kernels: &Kernels,
        x: &[f32],
        rows: usize,
        inputs: usize,
        out: &mut [f32],
    ) -> Result<u64> {
        for r in 0..rows {
            self.x_host[r * self.in_ld..r * self.in_ld + inputs]
                .copy_from_slice(&x[r * inputs..(r + 1) * inputs]);
        }
        ctx.queue.write_buffer(
            &self.x,
            0,
            bytemuck::cast_slice(&self.x_host[..rows * self.in_ld]),
        );
        self.run(ctx, kernels, rows, false, out).await
    }

    /// Whether an evaluated split is attached.
    pub fn has_split(&self) -> bool {
        self.data.is_some()
    }

    /// Samples in the attached split.
    pub fn split_len(&self) -> usize {
        self.data.as_ref().map_or(0, |s| s.split.len)
    }

    /// Runs the forward pass over `rows` rows and reads the logits back; returns the bytes read. From a
    /// split, its stages compute the first layer (starting with a gather); from host inputs, layer 0's
    /// product reads `x`. The readback is awaited (see `buffers::read_mapped_async`).
    async fn run(
        &mut self,
        ctx: &GpuContext,
        kernels: &Kernels,
        rows: usize,
        from_split: bool,
        out: &mut [f32],
    ) -> Result<u64> {
        let q = &ctx.queue;
        let data = if from_split { self.data.as_ref() } else { None };
        let (first, later): (&[Stage], &[Stage]) = match data {
            Some(s) => (&s.first, &self.products[1..]),
            None => (&[], &self.products),
        };
        for st in first.iter().chain(later) {
            if let Some((buf, dims)) = &st.dims {
                q.write_buffer(
                    buf,
                    0,
                    bytemuck::bytes_of(&MatmulDims {
                        m: rows as u32,
                        ..*dims
                    }),
                );
            }
        }
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("eval forward"),
            });
        let mut stages = first.iter().chain(later).peekable();
        if let Some(mirror) = data.and_then(|s| s.x_mirror.as_ref()) {
            // The gather's output must reach the texture before the first product reads it.
            let gather = stages.next().expect("a split's stages start with a gather");
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("eval gather"),
                    timestamp_writes: None,
                });
                dispatch(kernels, &mut pass, gather, rows);
            }
            mirror.encode(&mut enc);
        }
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("eval forward"),
                timestamp_writes: None,
            });
            for st in stages {
                dispatch(kernels, &mut pass, st, rows);
            }
        }
        let bytes = f32_bytes(rows * self.out_ld);
        let last = self.acts.last().expect("an MLP has layers");
        enc.copy_buffer_to_buffer(last, 0, &self.read, 0, bytes);
        q.submit([enc.finish()]);
        gbuf::read_mapped_async(
            &ctx.device,
            &self.read,
            bytes,
            bytemuck::cast_slice_mut(&mut self.logits_host[..rows * self.out_ld]),
        )
        .await?;
        for r in 0..rows {
            out[r * self.outputs..(r + 1) * self.outputs].copy_from_slice(
                &self.logits_host[r * self.out_ld..r * self.out_ld + self.outputs],
            );
        }
        Ok(bytes)
    }
}

fn dispatch(kernels: &Kernels, pass: &mut wgpu::ComputePass<'_>, st: &Stage, rows: usize) {
    pass.set_pipeline(kernels.pipeline(st.kernel));
    pass.set_bind_group(0, &st.bind, &[]);
    if let Some(t) = &st.tex_bind {
        pass.set_bind_group(1, t, &[]);
    }
    let (x, y, z) = st.groups(rows);
    pass.dispatch_workgroups(x, y, z);
}

/// Layer `l`'s forward product from `input` into `output`.
#[allow(clippy::too_many_arguments)]
fn product(
    d: &wgpu::Device,
    kernels: &Kernels,
    state: &ParamState,
    layout: &GpuLayout,
    l: usize,
    cap: usize,
    in_ld: usize,
    input: &wgpu::Buffer,
    output: &wgpu::Buffer,
    kernel: Kernel,
    tex_bind: Option<wgpu::BindGroup>,
) -> Stage {
    let dims = forward_dims(layout, l, cap, in_ld, kernel == Kernel::MmNnTex);
    let u = gbuf::uniform_init(
        d,
        &format!("eval L{} dims", l + 1),
        bytemuck::bytes_of(&dims),
    );
    let bind = kernels::bind_group(
        d,
        "eval forward",
        &kernels.matmul_layout,
        &[input, &state.params, output, &state.params, &u],
        None,
    );
    Stage {
        kernel,
        bind,
        tex_bind,
        dims: Some((u, dims)),
        n: layout.layers[l].fan_out,
    }
}
