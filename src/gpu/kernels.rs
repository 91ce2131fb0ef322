//! One compute pipeline per WGSL entry point, built once from `shaders/*.wgsl` (`include_str!`, so wgpu
//! validates them at pipeline creation), with explicit bind-group layouts; each entry point's workgroup
//! size and dispatch size for a shape. The `#[repr(C)]` mirrors of the shaders' uniform structs live in
//! `uniforms` and are re-exported here. Tested by tests/kernels.rs (every entry point against its CPU
//! twin) and tests/shaders.rs (naga validation of every file, workgroup sizes and uniform structs
//! against the WGSL).

pub use crate::gpu::uniforms::*;

pub const MATMUL_WGSL: &str = include_str!("../../shaders/matmul.wgsl");
pub const ADAM_WGSL: &str = include_str!("../../shaders/adam.wgsl");
pub const GATHER_WGSL: &str = include_str!("../../shaders/gather.wgsl");
pub const TAIL_WGSL: &str = include_str!("../../shaders/tail.wgsl");

/// Every shader file, for validation tests.
pub const SHADERS: [(&str, &str); 4] = [
    ("matmul.wgsl", MATMUL_WGSL),
    ("adam.wgsl", ADAM_WGSL),
    ("gather.wgsl", GATHER_WGSL),
    ("tail.wgsl", TAIL_WGSL),
];

/// Invocations per matmul workgroup along x (column quads) and y (row quads); each does a 4x4 block.
pub const MM_WG: u32 = 8;
/// Rows and columns of C one workgroup of the buffer matmuls covers (8x8 invocations of 4x4 blocks).
pub const MM_TILE: usize = (MM_WG * 4) as usize;
/// The same for the texture variants (8x8 invocations of 8x8 blocks).
pub const TEX_TILE: usize = (MM_WG * 8) as usize;
/// Invocations per workgroup of the 1-D kernels.
pub const WG_1D: u32 = 64;
/// Invocations of dense_tail's one workgroup (`WG` in tail.wgsl); it writes one `StepStat` per step.
pub const TAIL_WG: u32 = 256;
/// Invocations of dense_tail_tex's one workgroup (`TT_WG` in tail.wgsl), and the most classes it keeps
/// in registers (`TT_MAX_CLASSES`); the texture path runs dense_tail for wider last layers.
pub const TAIL_TEX_WG: u32 = 32;
pub const TAIL_TEX_MAX_CLASSES: usize = 16;
/// forward_gather's tile of act per workgroup (rows, columns), and the K slices that share it
/// (`FG_SLICES`, `FG_BLOCKS` in gather.wgsl: 4x4 blocks x slices = 128 invocations).
pub const FG_TILE_ROWS: usize = 16;
pub const FG_TILE_COLS: usize = 8;
pub const FG_SLICES: u32 = 16;
/// Storage buffers per stage the context asks for where the adapter offers them (WebGPU's default).
pub const STORAGE_BUFFERS_WANTED: u32 = 8;
/// The most workgroups one dispatch dimension may have (WebGPU's default limit).
pub const MAX_GROUPS_PER_DIM: usize = 65_535;

/// The entry points, for pipelines and the profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kernel {
    MmNn,
    MmNt,
    MmTn,
    /// `mm_nn` with A and B read from textures (group 1).
    MmNnTex,
    /// `mm_tn` with A and B read from textures (group 1).
    MmTnTex,
    /// `mm_nt` with A and B read from textures (group 1).
    MmNtTex,
    /// Adam reading p, g, m and v from texture mirrors (group 1).
    AdamTex,
    /// Adam over a range of the flat storage buffers.
    Adam,
    Gather,
    ForwardGather,
    DenseTail,
    /// `dense_tail` with act and W|b read from textures (group 1).
    DenseTailTex,
    GradAdamGather,
    /// The first layer's weight gradient with Adam fused, operands from textures (group 1).
    GradAdamTex,
}

impl Kernel {
    pub fn entry_point(self) -> &'static str {
        match self {
            Kernel::MmNn => "mm_nn",
            Kernel::MmNt => "mm_nt",
            Kernel::MmTn => "mm_tn",
            Kernel::MmNnTex => "mm_nn_tex",
            Kernel::MmTnTex => "mm_tn_tex",
            Kernel::MmNtTex => "mm_nt_tex",
            Kernel::AdamTex => "adam_tex",
            Kernel::Adam => "adam",
            Kernel::Gather => "gather",
            Kernel::ForwardGather => "forward_gather",
            Kernel::DenseTail => "dense_tail",
            Kernel::DenseTailTex => "dense_tail_tex",
            Kernel::GradAdamGather => "grad_adam_gather",
            Kernel::GradAdamTex => "grad_adam_tex",
        }
    }

    pub const ALL: [Kernel; 14] = [
        Kernel::MmNn,
        Kernel::MmNt,
        Kernel::MmTn,
        Kernel::MmNnTex,
        Kernel::MmTnTex,
        Kernel::MmNtTex,
        Kernel::AdamTex,
        Kernel::Adam,
        Kernel::Gather,
        Kernel::ForwardGather,
        Kernel::DenseTail,
        Kernel::DenseTailTex,
        Kernel::GradAdamGather,
        Kernel::GradAdamTex,
    ];

    /// The shader file holding the entry point, as named in `SHADERS`.
    pub fn file(self) -> &'static str {
        match self {
            Kernel::MmNn
            | Kernel::MmNt
            | Kernel::MmTn
            | Kernel::MmNnTex
            | Kernel::MmTnTex
            | Kernel::MmNtTex => "matmul.wgsl",
            Kernel::AdamTex | Kernel::Adam | Kernel::GradAdamTex => "adam.wgsl",
            Kernel::Gather | Kernel::ForwardGather | Kernel::GradAdamGather => "gather.wgsl",
            Kernel::DenseTail | Kernel::DenseTailTex => "tail.wgsl",
        }
    }

    /// The entry point's `@workgroup_size`, as in its WGSL (tests/shaders.rs checks them against each
    /// other): invocations per dispatch are its product times the groups.
    pub fn workgroup_size(self) -> (u32, u32, u32) {
        match self {
            Kernel::MmNn
            | Kernel::MmNt
            | Kernel::MmTn
            | Kernel::MmNnTex
            | Kernel::MmTnTex
            | Kernel::MmNtTex
            | Kernel::GradAdamTex => (MM_WG, MM_WG, 1),
            Kernel::AdamTex | Kernel::GradAdamGather => (16, 4, 1),
            Kernel::Adam | Kernel::Gather => (WG_1D, 1, 1),
            Kernel::ForwardGather => {
                let blocks = (FG_TILE_ROWS / 4) * (FG_TILE_COLS / 4);
                (FG_SLICES * blocks as u32, 1, 1)
            }
            Kernel::DenseTail => (TAIL_WG, 1, 1),
            Kernel::DenseTailTex => (TAIL_TEX_WG, 1, 1),
        }
    }

    /// Storage buffers the entry point binds: a device with fewer per stage cannot run it (the downlevel
    /// limit is 4; the two tails and grad_adam_gather need more, see `Kernels::supports`).
    pub fn storage_buffers(self) -> u32 {
        match self {
            Kernel::MmNn
            | Kernel::MmNt
            | Kernel::MmTn
            | Kernel::MmNnTex
            | Kernel::MmTnTex
            | Kernel::MmNtTex
            | Kernel::AdamTex
            | Kernel::Adam
            | Kernel::ForwardGather
            | Kernel::GradAdamTex => 4,
            Kernel::Gather => 3,
            Kernel::DenseTail => 7,
            Kernel::GradAdamGather => 6,
            Kernel::DenseTailTex => 5,
        }
    }

    /// Invocations a dispatch of `groups` workgroups runs.
    pub fn invocations(self, groups: (u32, u32, u32)) -> u64 {
        let (x, y, z) = self.workgroup_size();
        (x * y * z) as u64 * groups.0 as u64 * groups.1 as u64 * groups.2 as u64
    }
}

/// Workgroups of the matmul `kernel` producing C (m, n): one per tile of C.
pub fn matmul_groups(kernel: Kernel, m: usize, n: usize) -> (u32, u32, u32) {
    let tile = match kernel {
        Kernel::MmNnTex | Kernel::MmTnTex => TEX_TILE,
        _ => MM_TILE,
    };
    (n.div_ceil(tile) as u32, m.div_ceil(tile) as u32, 1)
}

/// Workgroups of adam_tex over the vec4s from texel row `row0` to `len4`, held in texture mirrors `row4`
/// texels wide: that part of the texel grid in 16x4 workgroups.
pub fn adam_groups(len4: usize, row4: usize, row0: usize) -> (u32, u32, u32) {
    let rows = len4.div_ceil(row4).saturating_sub(row0).max(1);
    (row4.div_ceil(16) as u32, rows.div_ceil(4) as u32, 1)
}

/// Workgroups of grad_adam_tex over W (inputs, fan_out): an 8x8 block of W per invocation, 8x8
/// invocations a workgroup (the grid of mm_tn_tex producing the same W).
pub fn grad_adam_tex_groups(inputs: usize, fan_out: usize) -> (u32, u32, u32) {
    matmul_groups(Kernel::MmTnTex, inputs, fan_out)
}

/// Workgroups of the buffer adam over `len4` vec4s: one vec4 per invocation, 64 a workgroup, folded
/// into rows of at most `MAX_GROUPS_PER_DIM` workgroups (the shader unfolds them with num_workgroups).
pub fn adam_range_groups(len4: usize) -> (u32, u32, u32) {
    let groups = len4.div_ceil(WG_1D as usize).max(1);
    let x = groups.min(MAX_GROUPS_PER_DIM);
    (x as u32, groups.div_ceil(x) as u32, 1)
}

/// Workgroups of gather into x (capacity, ldx): one invocation per vec4 of x, rows along y.
pub fn gather_groups(capacity: usize, ldx: usize) -> (u32, u32, u32) {
    (
        (ldx / 4).div_ceil(WG_1D as usize) as u32,
        capacity as u32,
        1,
    )
}

/// Workgroups of forward_gather producing act (capacity, fan_out): one per 16 x 8 tile.
pub fn forward_gather_groups(capacity: usize, fan_out: usize) -> (u32, u32, u32) {
    (
        fan_out.div_ceil(FG_TILE_COLS) as u32,
        capacity.div_ceil(FG_TILE_ROWS) as u32,
        1,
    )
}

/// Workgroups of dense_tail: always one, whatever the shape (it loops over its work).
pub fn dense_tail_groups() -> (u32, u32, u32) {
    (1, 1, 1)
}

/// Workgroups of grad_adam_gather over W (inputs, fan_out): one invocation per 4x4 block, 16x4 blocks a
/// workgroup.
pub fn grad_adam_gather_groups(inputs: usize, fan_out: usize) -> (u32, u32, u32) {
    (
        fan_out.div_ceil(4).div_ceil(16) as u32,
        inputs.div_ceil(4).div_ceil(4) as u32,
        1,
    )
}

/// Pipelines and their bind-group layouts, built once per device.
pub struct Kernels {
    pub matmul_layout: wgpu::BindGroupLayout,
    /// Group 1 of the texture variants: A and B as rgba32float textures.
    pub tex_layout: wgpu::BindGroupLayout,
    /// Group 0 of adam_tex: p, g (unused), m, v, AdamDims, step.
    pub adam_layout: wgpu::BindGroupLayout,
    /// Group 1 of adam_tex: the texture mirrors of p, g, m and v.
    pub adam_tex_layout: wgpu::BindGroupLayout,
    /// grad_adam_tex: group 0 (p, g unused, m, v, dims, step), group 1 (p, dZ, m, v, x textures).
    pub grad_adam_tex_layout: wgpu::BindGroupLayout,
    pub grad_adam_tex_tex_layout: wgpu::BindGroupLayout,
    /// The buffer adam: p, g, m, v, AdamRangeDims, step.
    pub adam_range_layout: wgpu::BindGroupLayout,
    pub gather_layout: wgpu::BindGroupLayout,
    pub forward_gather_layout: wgpu::BindGroupLayout,
    /// None where the device allows fewer storage buffers per stage than the kernel binds.
    pub dense_tail_layout: Option<wgpu::BindGroupLayout>,
    /// Group 0 of dense_tail_tex (group 1 is `tex_layout`: act, W|b).
    pub dense_tail_tex_layout: Option<wgpu::BindGroupLayout>,
    pub grad_adam_gather_layout: Option<wgpu::BindGroupLayout>,
    mm_nn: wgpu::ComputePipeline,
    mm_nt: wgpu::ComputePipeline,
    mm_tn: wgpu::ComputePipeline,
    mm_nn_tex: wgpu::ComputePipeline,
    mm_tn_tex: wgpu::ComputePipeline,
    mm_nt_tex: wgpu::ComputePipeline,
    adam_tex: wgpu::ComputePipeline,
    adam: wgpu::ComputePipeline,
    gather: wgpu::ComputePipeline,
    forward_gather: wgpu::ComputePipeline,
    dense_tail: Option<wgpu::ComputePipeline>,
    dense_tail_tex: Option<wgpu::ComputePipeline>,
    grad_adam_gather: Option<wgpu::ComputePipeline>,
    grad_adam_tex: wgpu::ComputePipeline,
}

fn storage(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn texture(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Texture {
            sample_type: wgpu::TextureSampleType::Float { filterable: false },
            view_dimension: wgpu::TextureViewDimension::D2,
            multisampled: false,
        },
        count: None,
    }
}

fn uniform<T>(binding: u32, dynamic: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: dynamic,
            min_binding_size: wgpu::BufferSize::new(std::mem::size_of::<T>() as u64),
        },
        count: None,
    }
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

/// The pipeline of `kernel`'s entry point in `module`, with explicit bind-group layouts.
fn compute_pipeline(
    device: &wgpu::Device,
    layouts: &[Option<&wgpu::BindGroupLayout>],
    module: &wgpu::ShaderModule,
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
        compilation_options: Default::default(),
        cache: None,
    })
}

/// The group-0 layouts of the kernels that bind more storage buffers than the downlevel limit of 4
/// (dense_tail, dense_tail_tex, grad_adam_gather): None where the device allows fewer than they bind.
fn storage_heavy_layouts(device: &wgpu::Device) -> [Option<wgpu::BindGroupLayout>; 3] {
    let storage_limit = device.limits().max_storage_buffers_per_shader_stage;
    let fits = |k: Kernel| k.storage_buffers() <= storage_limit;
    let dense_tail_layout = fits(Kernel::DenseTail).then(|| {
        device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(
                "dense_tail layout: act, params, labels, order, grads, dz, stats, dims, step",
            ),
            entries: &[
                storage(0, true),
                storage(1, true),
                storage(2, true),
                storage(3, true),
                storage(4, false),
                storage(5, false),
                storage(6, false),
                uniform::<TailDims>(7, false),
                uniform::<StepRecord>(8, false),
            ],
        })
    });
    let dense_tail_tex_layout = fits(Kernel::DenseTailTex).then(|| {
        device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("dense_tail_tex layout: labels, order, grads, dz, stats, dims, step"),
            entries: &[
                storage(0, true),
                storage(1, true),
                storage(2, false),
                storage(3, false),
                storage(4, false),
                uniform::<TailDims>(5, false),
                uniform::<StepRecord>(6, false),
            ],
        })
    });
    let grad_adam_gather_layout = fits(Kernel::GradAdamGather).then(|| {
        device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("grad_adam_gather layout: images, order, dz, params, m, v, dims, step"),
            entries: &[
                storage(0, true),
                storage(1, true),
                storage(2, true),
                storage(3, false),
                storage(4, false),
                storage(5, false),
                uniform::<GradAdamDims>(6, false),
                uniform::<StepRecord>(7, false),
            ],
        })
    });
    [
        dense_tail_layout,
        dense_tail_tex_layout,
        grad_adam_gather_layout,
    ]
}

impl Kernels {
    pub fn new(device: &wgpu::Device) -> Self {
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
        let adam_tex_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("adam texture layout: p_tex, g_tex, m_tex, v_tex"),
            entries: &[texture(0), texture(1), texture(2), texture(3)],
        });
        let adam_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("adam_tex layout: p, g, m, v, dims, step"),
            entries: &[
                storage(0, false),
                storage(1, true),
                storage(2, false),
                storage(3, false),
                uniform::<AdamDims>(4, false),
                uniform::<StepRecord>(5, false),
            ],
        });
        let grad_adam_tex_layout =
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("grad_adam_tex layout: p, g (unused), m, v, dims, step"),
                entries: &[
                    storage(0, false),
                    storage(1, true),
                    storage(2, false),
                    storage(3, false),
                    uniform::<GradAdamTexDims>(4, false),
                    uniform::<StepRecord>(5, false),
                ],
            });
        let grad_adam_tex_tex_layout =
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("grad_adam_tex texture layout: p_tex, dz_tex, m_tex, v_tex, x_tex"),
                entries: &[texture(0), texture(1), texture(2), texture(3), texture(4)],
            });
        let adam_range_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("adam layout: p, g, m, v, range dims, step"),
            entries: &[
                storage(0, false),
                storage(1, true),
                storage(2, false),
                storage(3, false),
                uniform::<AdamRangeDims>(4, false),
                uniform::<StepRecord>(5, false),
            ],
        });
        let gather_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("gather layout: images, order, x, dims, step"),
            entries: &[
                storage(0, true),
                storage(1, true),
                storage(2, false),
                uniform::<GatherDims>(3, false),
                uniform::<StepRecord>(4, false),
            ],
        });
        let forward_gather_layout =
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("forward_gather layout: images, order, params, act, dims, step"),
                entries: &[
                    storage(0, true),
                    storage(1, true),
                    storage(2, true),
                    storage(3, false),
                    uniform::<ForwardGatherDims>(4, false),
                    uniform::<StepRecord>(5, false),
                ],
            });
        let [
            dense_tail_layout,
            dense_tail_tex_layout,
            grad_adam_gather_layout,
        ] = storage_heavy_layouts(device);
        let matmul = shader_module(device, "matmul.wgsl", MATMUL_WGSL);
        let adam = shader_module(device, "adam.wgsl", ADAM_WGSL);
        let gather = shader_module(device, "gather.wgsl", GATHER_WGSL);
        let tail = shader_module(device, "tail.wgsl", TAIL_WGSL);
        let pipeline_with =
            |layouts: &[Option<&wgpu::BindGroupLayout>],
             module: &wgpu::ShaderModule,
             kernel: Kernel| { compute_pipeline(device, layouts, module, kernel) };
        let pipeline =
            |layout: &wgpu::BindGroupLayout, module: &wgpu::ShaderModule, kernel: Kernel| {
                pipeline_with(&[Some(layout)], module, kernel)
            };
        let tex_layouts = [Some(&matmul_layout), Some(&tex_layout)];
        Self {
            mm_nn_tex: pipeline_with(&tex_layouts, &matmul, Kernel::MmNnTex),
            mm_tn_tex: pipeline_with(&tex_layouts, &matmul, Kernel::MmTnTex),
            mm_nt_tex: pipeline_with(&tex_layouts, &matmul, Kernel::MmNtTex),
            mm_nn: pipeline(&matmul_layout, &matmul, Kernel::MmNn),
            mm_nt: pipeline(&matmul_layout, &matmul, Kernel::MmNt),
            mm_tn: pipeline(&matmul_layout, &matmul, Kernel::MmTn),
            adam_tex: pipeline_with(
                &[Some(&adam_layout), Some(&adam_tex_layout)],
                &adam,
                Kernel::AdamTex,
            ),
            adam: pipeline(&adam_range_layout, &adam, Kernel::Adam),
            grad_adam_tex: pipeline_with(
                &[Some(&grad_adam_tex_layout), Some(&grad_adam_tex_tex_layout)],
                &adam,
                Kernel::GradAdamTex,
            ),
            gather: pipeline(&gather_layout, &gather, Kernel::Gather),
            forward_gather: pipeline(&forward_gather_layout, &gather, Kernel::ForwardGather),
            dense_tail: dense_tail_layout
                .as_ref()
                .map(|l| pipeline(l, &tail, Kernel::DenseTail)),
            dense_tail_tex: dense_tail_tex_layout
                .as_ref()
                .map(|l| pipeline_with(&[Some(l), Some(&tex_layout)], &tail, Kernel::DenseTailTex)),
            grad_adam_gather: grad_adam_gather_layout
                .as_ref()
                .map(|l| pipeline(l, &gather, Kernel::GradAdamGather)),
            matmul_layout,
            tex_layout,
            adam_layout,
            adam_tex_layout,
            grad_adam_tex_layout,
            grad_adam_tex_tex_layout,
            adam_range_layout,
            gather_layout,
            forward_gather_layout,
            dense_tail_layout,
            dense_tail_tex_layout,
            grad_adam_gather_layout,
        }
    }

    /// Whether this device runs `kernel` (it binds no more storage buffers than the device allows).
    pub fn supports(&self, kernel: Kernel) -> bool {
        match kernel {
            Kernel::DenseTail => self.dense_tail.is_some(),
            Kernel::DenseTailTex => self.dense_tail_tex.is_some(),
            Kernel::GradAdamGather => self.grad_adam_gather.is_some(),
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
            Kernel::GradAdamTex => &self.grad_adam_tex,
            Kernel::Gather => &self.gather,
            Kernel::ForwardGather => &self.forward_gather,
            Kernel::DenseTail => unsupported(kernel, self.dense_tail.as_ref()),
            Kernel::DenseTailTex => unsupported(kernel, self.dense_tail_tex.as_ref()),
            Kernel::GradAdamGather => unsupported(kernel, self.grad_adam_gather.as_ref()),
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
            Kernel::AdamTex => &self.adam_layout,
            Kernel::Adam => &self.adam_range_layout,
            Kernel::GradAdamTex => &self.grad_adam_tex_layout,
            Kernel::Gather => &self.gather_layout,
            Kernel::ForwardGather => &self.forward_gather_layout,
            Kernel::DenseTail => unsupported(kernel, self.dense_tail_layout.as_ref()),
            Kernel::DenseTailTex => unsupported(kernel, self.dense_tail_tex_layout.as_ref()),
            Kernel::GradAdamGather => unsupported(kernel, self.grad_adam_gather_layout.as_ref()),
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

/// The group-1 bind group of a texture variant: A and B as views of rgba32float textures.
pub fn tex_bind_group(
    device: &wgpu::Device,
    label: &str,
    kernels: &Kernels,
    a: &wgpu::TextureView,
    b: &wgpu::TextureView,
) -> wgpu::BindGroup {
    views_bind_group(device, label, &kernels.tex_layout, &[a, b])
}

/// A bind group of texture views, in binding order.
pub fn views_bind_group(
    device: &wgpu::Device,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    views: &[&wgpu::TextureView],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = views
        .iter()
        .enumerate()
        .map(|(i, v)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: wgpu::BindingResource::TextureView(v),
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout,
        entries: &entries,
    })
}

/// A bind group over whole buffers, in binding order; `record` names the binding (if any) that is bound
/// as one `size`-byte window at `offset` (one step's record: each slot of the ring gets its own bind group
/// rather than a dynamic offset, which measured no faster and complicates the layouts).
pub fn bind_group(
    device: &wgpu::Device,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    buffers: &[&wgpu::Buffer],
    record: Option<(u32, u64, u64)>,
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let binding = i as u32;
            let resource = match record {
                Some((d, offset, size)) if d == binding => {
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: b,
                        offset,
                        size: wgpu::BufferSize::new(size),
                    })
                }
                _ => b.as_entire_binding(),
            };
            wgpu::BindGroupEntry { binding, resource }
        })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout,
        entries: &entries,
    })
}
