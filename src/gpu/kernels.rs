//! One compute pipeline per WGSL entry point, built once from `shaders/*.wgsl` (`include_str!`, so wgpu
//! validates them at pipeline creation), with explicit bind-group layouts; and the `#[repr(C)]` mirrors of
//! the shaders' uniform structs. Tested by tests/kernels.rs (every entry point against its CPU twin) and
//! tests/shaders.rs (naga validation of every file).

use bytemuck::{Pod, Zeroable};

pub const MATMUL_WGSL: &str = include_str!("../../shaders/matmul.wgsl");
pub const SOFTMAX_XENT_WGSL: &str = include_str!("../../shaders/softmax_xent.wgsl");
pub const ADAM_WGSL: &str = include_str!("../../shaders/adam.wgsl");

/// Every shader file, for validation tests.
pub const SHADERS: [(&str, &str); 3] = [
    ("matmul.wgsl", MATMUL_WGSL),
    ("softmax_xent.wgsl", SOFTMAX_XENT_WGSL),
    ("adam.wgsl", ADAM_WGSL),
];

/// Invocations per matmul workgroup along x (column quads) and y (row quads); each does a 4x4 block.
pub const MM_WG: u32 = 8;
/// Rows and columns of C one workgroup of the buffer matmuls covers (8x8 invocations of 4x4 blocks).
pub const MM_TILE: usize = (MM_WG * 4) as usize;
/// The same for the texture variants (8x8 invocations of 8x8 blocks).
pub const TEX_TILE: usize = (MM_WG * 8) as usize;
/// Invocations per workgroup of the 1-D kernels.
pub const WG_1D: u32 = 64;
/// Invocations of softmax_xent's one workgroup (`WG` in the shader): each writes its own partial
/// `StepStat`, so a step's stats are this many records that the host adds up.
pub const XENT_WG: usize = 64;

pub const FLAG_BIAS: u32 = 1;
pub const FLAG_RELU: u32 = 2;
pub const FLAG_MASK: u32 = 4;
pub const FLAG_COLSUM: u32 = 8;

/// Mirror of `MatmulDims` in matmul.wgsl. Strides and offsets in floats, all multiples of 4.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
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
}

/// Mirror of `XentDims` in softmax_xent.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct XentDims {
    pub cols: u32,
    pub ld: u32,
    pub capacity: u32,
    pub _pad: u32,
}

/// Mirror of `AdamDims` in adam.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct AdamDims {
    pub len4: u32,
    /// Texels per row of the texture mirrors of p, g, m and v.
    pub row4: u32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub _pad: [u32; 3],
}

/// Mirror of `Step` (softmax_xent.wgsl, adam.wgsl): one record per queued step, each bound at its own
/// offset so many steps fit in one submission.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct StepRecord {
    pub rows: u32,
    pub slot: u32,
    pub stat: u32,
    pub alpha: f32,
    pub scale: f32,
    pub _pad: [u32; 3],
}

/// Mirror of `StepStat` in softmax_xent.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct StepStat {
    pub loss: f32,
    pub correct: u32,
}

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
    SoftmaxXent,
    Adam,
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
            Kernel::SoftmaxXent => "softmax_xent",
            Kernel::Adam => "adam",
        }
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

/// Workgroups of adam over `len4` vec4s held in texture mirrors `row4` texels wide: the texel grid in
/// 16x4 workgroups.
pub fn adam_groups(len4: usize, row4: usize) -> (u32, u32, u32) {
    let rows = len4.div_ceil(row4);
    (row4.div_ceil(16) as u32, rows.div_ceil(4) as u32, 1)
}

/// Pipelines and their bind-group layouts, built once per device.
pub struct Kernels {
    pub matmul_layout: wgpu::BindGroupLayout,
    /// Group 1 of the texture variants: A and B as rgba32float textures.
    pub tex_layout: wgpu::BindGroupLayout,
    pub xent_layout: wgpu::BindGroupLayout,
    pub adam_layout: wgpu::BindGroupLayout,
    /// Group 1 of adam: the texture mirrors of p, g, m and v.
    pub adam_tex_layout: wgpu::BindGroupLayout,
    mm_nn: wgpu::ComputePipeline,
    mm_nt: wgpu::ComputePipeline,
    mm_tn: wgpu::ComputePipeline,
    mm_nn_tex: wgpu::ComputePipeline,
    mm_tn_tex: wgpu::ComputePipeline,
    mm_nt_tex: wgpu::ComputePipeline,
    softmax_xent: wgpu::ComputePipeline,
    adam: wgpu::ComputePipeline,
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
        let xent_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("softmax_xent layout: logits, labels, dlogits, stats, dims, step"),
            entries: &[
                storage(0, true),
                storage(1, true),
                storage(2, false),
                storage(3, false),
                uniform::<XentDims>(4, false),
                uniform::<StepRecord>(5, false),
            ],
        });
        let adam_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("adam layout: p, g, m, v, dims, step"),
            entries: &[
                storage(0, false),
                storage(1, true),
                storage(2, false),
                storage(3, false),
                uniform::<AdamDims>(4, false),
                uniform::<StepRecord>(5, false),
            ],
        });
        // Bounds checks stay on (an index bug reads zeros instead of memory it does not own), but
        // naga's forced loop bounding is off: it adds a 64-bit trip counter to every loop, which made
        // softmax_xent 3x slower on lavapipe (examples measured in docs/perf.md). Every loop in
        // shaders/ is bounded by a uniform dimension, so the guard protects against nothing here.
        let module = |label: &str, src: &str| {
            let desc = wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            };
            let checks = wgpu::ShaderRuntimeChecks {
                bounds_checks: true,
                force_loop_bounding: false,
                ..wgpu::ShaderRuntimeChecks::checked()
            };
            // SAFETY: the shaders are our own, validated by naga at creation, and keep bounds checks;
            // only the infinite-loop guard is dropped, and every loop's trip count is a uniform dimension.
            unsafe { device.create_shader_module_trusted(desc, checks) }
        };
        let matmul = module("matmul.wgsl", MATMUL_WGSL);
        let xent = module("softmax_xent.wgsl", SOFTMAX_XENT_WGSL);
        let adam = module("adam.wgsl", ADAM_WGSL);
        let pipeline_with = |layouts: &[Option<&wgpu::BindGroupLayout>],
                             module: &wgpu::ShaderModule,
                             kernel: Kernel| {
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
        };
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
            softmax_xent: pipeline(&xent_layout, &xent, Kernel::SoftmaxXent),
            adam: pipeline_with(
                &[Some(&adam_layout), Some(&adam_tex_layout)],
                &adam,
                Kernel::Adam,
            ),
            matmul_layout,
            tex_layout,
            xent_layout,
            adam_layout,
            adam_tex_layout,
        }
    }

    pub fn pipeline(&self, kernel: Kernel) -> &wgpu::ComputePipeline {
        match kernel {
            Kernel::MmNn => &self.mm_nn,
            Kernel::MmNt => &self.mm_nt,
            Kernel::MmTn => &self.mm_tn,
            Kernel::MmNnTex => &self.mm_nn_tex,
            Kernel::MmTnTex => &self.mm_tn_tex,
            Kernel::MmNtTex => &self.mm_nt_tex,
            Kernel::SoftmaxXent => &self.softmax_xent,
            Kernel::Adam => &self.adam,
        }
    }

    pub fn layout(&self, kernel: Kernel) -> &wgpu::BindGroupLayout {
        match kernel {
            Kernel::MmNn
            | Kernel::MmNt
            | Kernel::MmTn
            | Kernel::MmNnTex
            | Kernel::MmTnTex
            | Kernel::MmNtTex => &self.matmul_layout,
            Kernel::SoftmaxXent => &self.xent_layout,
            Kernel::Adam => &self.adam_layout,
        }
    }
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
