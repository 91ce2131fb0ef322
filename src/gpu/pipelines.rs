//! One compute pipeline per WGSL entry point, built once per device from `shaders/*.wgsl` (so wgpu
//! validates them at pipeline creation), with explicit bind-group layouts (their parts and the bind
//! groups over them are in `bindings`). Tested by tests/kernels.rs and tests/shaders.rs (through
//! `kernels`, which re-exports this module).

use crate::config::OptimizerConfig;
use crate::gpu::bindings::{
    first_layer_tex_layouts, sample_layouts, storage, storage_heavy_layouts, texture, uniform,
    update_layouts,
};
use crate::gpu::kernels::{
    GATHER_WGSL, Kernel, MATMUL_WGSL, MatmulDims, OPTIMIZERS_WGSL, TAIL_WGSL,
};

/// Pipelines and their bind-group layouts, built once per device.
pub struct Kernels {
    pub matmul_layout: wgpu::BindGroupLayout,
    /// Group 1 of the texture variants: A and B as rgba32float textures.
    pub tex_layout: wgpu::BindGroupLayout,
    /// Group 0 of the texture updates (adam_tex, sgd_tex, rmsprop_tex): p, g (unused), m, v,
    /// UpdateTexDims, step.
    pub update_tex_layout: wgpu::BindGroupLayout,
    /// Group 1 of the texture updates: the texture mirrors of p, g, m and v.
    pub update_mirrors_layout: wgpu::BindGroupLayout,
    /// grad_update_gather_tex: group 0 (p, g unused, m, v, dims, step), group 1 (p, dZ, m, v, images,
    /// order textures).
    pub grad_update_gather_tex_layout: wgpu::BindGroupLayout,
    pub grad_update_gather_tex_tex_layout: wgpu::BindGroupLayout,
    /// forward_gather_tex: group 0 (params, act, dims, step), group 1 (W, images, order textures).
    pub forward_gather_tex_layout: wgpu::BindGroupLayout,
    pub forward_gather_tex_tex_layout: wgpu::BindGroupLayout,
    /// The range updates (adam, sgd, rmsprop): p, g, m, v, UpdateRangeDims, step.
    pub update_range_layout: wgpu::BindGroupLayout,
    pub gather_layout: wgpu::BindGroupLayout,
    /// dropout: act, DropoutDims, step.
    pub dropout_layout: wgpu::BindGroupLayout,
    pub forward_gather_layout: wgpu::BindGroupLayout,
    /// None where the device allows fewer storage buffers per stage than the kernel binds.
    pub dense_tail_layout: Option<wgpu::BindGroupLayout>,
    /// Group 0 of dense_tail_tex (group 1 is `tex_layout`: act, W|b).
    pub dense_tail_tex_layout: Option<wgpu::BindGroupLayout>,
    pub grad_update_gather_layout: Option<wgpu::BindGroupLayout>,
    mm_nn: wgpu::ComputePipeline,
    mm_nt: wgpu::ComputePipeline,
    mm_tn: wgpu::ComputePipeline,
    mm_nn_tex: wgpu::ComputePipeline,
    mm_tn_tex: wgpu::ComputePipeline,
    mm_nt_tex: wgpu::ComputePipeline,
    adam_tex: wgpu::ComputePipeline,
    adam: wgpu::ComputePipeline,
    sgd_tex: wgpu::ComputePipeline,
    sgd: wgpu::ComputePipeline,
    rmsprop_tex: wgpu::ComputePipeline,
    rmsprop: wgpu::ComputePipeline,
    gather: wgpu::ComputePipeline,
    dropout: wgpu::ComputePipeline,
    forward_gather: wgpu::ComputePipeline,
    dense_tail: Option<wgpu::ComputePipeline>,
    dense_tail_tex: Option<wgpu::ComputePipeline>,
    grad_update_gather: Option<wgpu::ComputePipeline>,
    grad_update_gather_tex: wgpu::ComputePipeline,
    forward_gather_tex: wgpu::ComputePipeline,
}

/// A shader module from our WGSL. Bounds checks stay on (an index bug reads zeros instead of memory it
/// does not own), but naga's forced loop bounding is off: it adds a 64-bit trip counter to every loop,
/// which made a softmax kernel 3-7x slower on lavapipe (examples measured in docs/perf.md). Every loop in
/// shaders/ is bounded by a uniform dimension, so the guard protects against nothing here.
fn shader_module(device: &wgpu::Device, label: &str, src: &str) -> wgpu::ShaderModule {
    let desc = wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(src.into()),
    };
    let checks = wgpu::ShaderRuntimeChecks {
        bounds_checks: true,
        force_loop_bounding: false,
        ..wgpu::ShaderRuntimeChecks::checked()
    };
    // SAFETY: the shaders are our own, validated by naga at creation, and keep bounds checks; only the
    // infinite-loop guard is dropped, and every loop's trip count is a uniform dimension.
    unsafe { device.create_shader_module_trusted(desc, checks) }
}

/// The values of the update's pipeline-overridable constants (the block shared by optimizers.wgsl,
/// gather.wgsl and tail.wgsl) for `opt`: which rule, and its hyper-parameters (the others keep their
/// defaults, which the rule does not read).
pub fn update_constants(opt: &OptimizerConfig) -> Vec<(&'static str, f64)> {
    match opt {
        OptimizerConfig::Adam(a) => vec![
            ("OPTIMIZER", 0.0),
            ("BETA1", a.beta1),
            ("BETA2", a.beta2),
            ("EPSILON", a.epsilon),
        ],
        OptimizerConfig::Sgd(s) => vec![
            ("OPTIMIZER", 1.0),
            ("MOMENTUM", s.momentum),
            ("NESTEROV", f64::from(u8::from(s.nesterov))),
        ],
        OptimizerConfig::Rmsprop(r) => vec![
            ("OPTIMIZER", 2.0),
            ("RHO", r.rho),
            ("MOMENTUM", r.momentum),
            ("EPSILON", r.epsilon),
        ],
    }
}

/// The pipeline of `kernel`'s entry point in `module`, with explicit bind-group layouts and the
/// module's overridable constants.
fn compute_pipeline(
    device: &wgpu::Device,
    layouts: &[Option<&wgpu::BindGroupLayout>],
    module: &wgpu::ShaderModule,
    constants: &[(&str, f64)],
    kernel: Kernel,
) -> wgpu::ComputePipeline {
    let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(kernel.entry_point()),
        bind_group_layouts: layouts,
        immediate_size: 0,
    });
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(kernel.entry_point()),
        layout: Some(&pl),
        module,
        entry_point: Some(kernel.entry_point()),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants,
            ..Default::default()
        },
        cache: None,
    })
}

impl Kernels {
    /// Every pipeline, the updating ones built for `optimizer` (its rule and hyper-parameters are
    /// compiled in: `update_constants`).
    pub fn new(device: &wgpu::Device, optimizer: &OptimizerConfig) -> Self {
        let matmul_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("matmul layout: a, b, c, e, dims"),
            entries: &[
                storage(0, true),
                storage(1, true),
                storage(2, false),
                storage(3, true),
                uniform::<MatmulDims>(4, false),
            ],
        });
        let tex_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("matmul texture layout: a_tex, b_tex"),
            entries: &[texture(0), texture(1)],
        });
        let [
            update_tex_layout,
            update_mirrors_layout,
            update_range_layout,
        ] = update_layouts(device);
        let [gather_layout, dropout_layout, forward_gather_layout] = sample_layouts(device);
        let [
            grad_update_gather_tex_layout,
            grad_update_gather_tex_tex_layout,
            forward_gather_tex_layout,
            forward_gather_tex_tex_layout,
        ] = first_layer_tex_layouts(device);
        let [
            dense_tail_layout,
            dense_tail_tex_layout,
            grad_update_gather_layout,
        ] = storage_heavy_layouts(device);
        let matmul = shader_module(device, "matmul.wgsl", MATMUL_WGSL);
        let optimizers = shader_module(device, "optimizers.wgsl", OPTIMIZERS_WGSL);
        let gather = shader_module(device, "gather.wgsl", GATHER_WGSL);
        let tail = shader_module(device, "tail.wgsl", TAIL_WGSL);
        let update = update_constants(optimizer);
        let pipeline_with = |layouts: &[Option<&wgpu::BindGroupLayout>],
                             module: &wgpu::ShaderModule,
                             kernel: Kernel| {
            // matmul.wgsl holds no update, hence no overridable constant to set.
            let constants = if kernel.file() == "matmul.wgsl" {
                &[][..]
            } else {
                &update[..]
            };
            compute_pipeline(device, layouts, module, constants, kernel)
        };
        let pipeline =
            |layout: &wgpu::BindGroupLayout, module: &wgpu::ShaderModule, kernel: Kernel| {
                pipeline_with(&[Some(layout)], module, kernel)
            };
        let tex_layouts = [Some(&matmul_layout), Some(&tex_layout)];
        let update_tex_layouts = [Some(&update_tex_layout), Some(&update_mirrors_layout)];
        Self {
            mm_nn_tex: pipeline_with(&tex_layouts, &matmul, Kernel::MmNnTex),
            mm_tn_tex: pipeline_with(&tex_layouts, &matmul, Kernel::MmTnTex),
            mm_nt_tex: pipeline_with(&tex_layouts, &matmul, Kernel::MmNtTex),
            mm_nn: pipeline(&matmul_layout, &matmul, Kernel::MmNn),
            mm_nt: pipeline(&matmul_layout, &matmul, Kernel::MmNt),
            mm_tn: pipeline(&matmul_layout, &matmul, Kernel::MmTn),
            adam_tex: pipeline_with(&update_tex_layouts, &optimizers, Kernel::AdamTex),
            adam: pipeline(&update_range_layout, &optimizers, Kernel::Adam),
            sgd_tex: pipeline_with(&update_tex_layouts, &optimizers, Kernel::SgdTex),
            sgd: pipeline(&update_range_layout, &optimizers, Kernel::Sgd),
            rmsprop_tex: pipeline_with(&update_tex_layouts, &optimizers, Kernel::RmspropTex),
            rmsprop: pipeline(&update_range_layout, &optimizers, Kernel::Rmsprop),
            grad_update_gather_tex: pipeline_with(
                &[
                    Some(&grad_update_gather_tex_layout),
                    Some(&grad_update_gather_tex_tex_layout),
                ],
                &optimizers,
                Kernel::GradUpdateGatherTex,
            ),
            forward_gather_tex: pipeline_with(
                &[
                    Some(&forward_gather_tex_layout),
                    Some(&forward_gather_tex_tex_layout),
                ],
                &gather,
                Kernel::ForwardGatherTex,
            ),
            gather: pipeline(&gather_layout, &gather, Kernel::Gather),
            dropout: pipeline(&dropout_layout, &gather, Kernel::Dropout),
            forward_gather: pipeline(&forward_gather_layout, &gather, Kernel::ForwardGather),
            dense_tail: dense_tail_layout
                .as_ref()
                .map(|l| pipeline(l, &tail, Kernel::DenseTail)),
            dense_tail_tex: dense_tail_tex_layout
                .as_ref()
                .map(|l| pipeline_with(&[Some(l), Some(&tex_layout)], &tail, Kernel::DenseTailTex)),
            grad_update_gather: grad_update_gather_layout
                .as_ref()
                .map(|l| pipeline(l, &gather, Kernel::GradUpdateGather)),
            matmul_layout,
            tex_layout,
            update_tex_layout,
            update_mirrors_layout,
            grad_update_gather_tex_layout,
            grad_update_gather_tex_tex_layout,
            forward_gather_tex_layout,
            forward_gather_tex_tex_layout,
            update_range_layout,
            gather_layout,
            dropout_layout,
            forward_gather_layout,
            dense_tail_layout,
            dense_tail_tex_layout,
            grad_update_gather_layout,
        }
    }

    /// Whether this device runs `kernel` (it binds no more storage buffers than the device allows).
    pub fn supports(&self, kernel: Kernel) -> bool {
        match kernel {
            Kernel::DenseTail => self.dense_tail.is_some(),
            Kernel::DenseTailTex => self.dense_tail_tex.is_some(),
            Kernel::GradUpdateGather => self.grad_update_gather.is_some(),
            _ => true,
        }
    }

    /// The pipeline of `kernel`. Panics for a kernel the device does not support (`supports`).
    pub fn pipeline(&self, kernel: Kernel) -> &wgpu::ComputePipeline {
        match kernel {
            Kernel::MmNn => &self.mm_nn,
            Kernel::MmNt => &self.mm_nt,
            Kernel::MmTn => &self.mm_tn,
            Kernel::MmNnTex => &self.mm_nn_tex,
            Kernel::MmTnTex => &self.mm_tn_tex,
            Kernel::MmNtTex => &self.mm_nt_tex,
            Kernel::AdamTex => &self.adam_tex,
            Kernel::Adam => &self.adam,
            Kernel::SgdTex => &self.sgd_tex,
            Kernel::Sgd => &self.sgd,
            Kernel::RmspropTex => &self.rmsprop_tex,
            Kernel::Rmsprop => &self.rmsprop,
            Kernel::GradUpdateGatherTex => &self.grad_update_gather_tex,
            Kernel::ForwardGatherTex => &self.forward_gather_tex,
            Kernel::Gather => &self.gather,
            Kernel::Dropout => &self.dropout,
            Kernel::ForwardGather => &self.forward_gather,
            Kernel::DenseTail => unsupported(kernel, self.dense_tail.as_ref()),
            Kernel::DenseTailTex => unsupported(kernel, self.dense_tail_tex.as_ref()),
            Kernel::GradUpdateGather => unsupported(kernel, self.grad_update_gather.as_ref()),
        }
    }

    /// The group-0 layout of `kernel`. Panics for a kernel the device does not support (`supports`).
    pub fn layout(&self, kernel: Kernel) -> &wgpu::BindGroupLayout {
        match kernel {
            Kernel::MmNn
            | Kernel::MmNt
            | Kernel::MmTn
            | Kernel::MmNnTex
            | Kernel::MmTnTex
            | Kernel::MmNtTex => &self.matmul_layout,
            Kernel::AdamTex | Kernel::SgdTex | Kernel::RmspropTex => &self.update_tex_layout,
            Kernel::Adam | Kernel::Sgd | Kernel::Rmsprop => &self.update_range_layout,
            Kernel::GradUpdateGatherTex => &self.grad_update_gather_tex_layout,
            Kernel::ForwardGatherTex => &self.forward_gather_tex_layout,
            Kernel::Gather => &self.gather_layout,
            Kernel::Dropout => &self.dropout_layout,
            Kernel::ForwardGather => &self.forward_gather_layout,
            Kernel::DenseTail => unsupported(kernel, self.dense_tail_layout.as_ref()),
            Kernel::DenseTailTex => unsupported(kernel, self.dense_tail_tex_layout.as_ref()),
            Kernel::GradUpdateGather => {
                unsupported(kernel, self.grad_update_gather_layout.as_ref())
            }
        }
    }
}

fn unsupported<T>(kernel: Kernel, x: Option<&T>) -> &T {
    x.unwrap_or_else(|| {
        panic!(
            "{} binds {} storage buffers, more than this device allows per stage (check Kernels::supports)",
            kernel.entry_point(),
            kernel.storage_buffers()
        )
    })
}
