//! Bind-group layouts and bind groups: the layout entries every kernel's layout is made of, the layouts
//! built apart from `Kernels::new` (those of kernels some devices cannot run, and the texture path's
//! first layer), and the bind groups the plans and the harness make over them. Tested through
//! tests/kernels.rs and tests/gpu_train.rs (every kernel runs with them).

use crate::gpu::kernels::{
    DropoutDims, ForwardGatherDims, ForwardGatherTexDims, GatherDims, GradUpdateDims,
    GradUpdateGatherTexDims, Kernel, Kernels, StepRecord, TailDims, UpdateRangeDims, UpdateTexDims,
};

/// The optimizers' updates' layouts: group 0 of the texture updates (p, g, m, v, dims, step), their
/// group 1 (the texture mirrors of p, g, m and v), and the range updates' (p, g, m, v, dims, step).
pub(super) fn update_layouts(device: &wgpu::Device) -> [wgpu::BindGroupLayout; 3] {
    let update_mirrors_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("update mirrors layout: p_tex, g_tex, m_tex, v_tex"),
        entries: &[texture(0), texture(1), texture(2), texture(3)],
    });
    let update_tex_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("update_tex layout: p, g, m, v, dims, step"),
        entries: &[
            storage(0, false),
            storage(1, true),
            storage(2, false),
            storage(3, false),
            uniform::<UpdateTexDims>(4, false),
            uniform::<StepRecord>(5, false),
        ],
    });
    let update_range_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("update range layout: p, g, m, v, range dims, step"),
        entries: &[
            storage(0, false),
            storage(1, true),
            storage(2, false),
            storage(3, false),
            uniform::<UpdateRangeDims>(4, false),
            uniform::<StepRecord>(5, false),
        ],
    });
    [
        update_tex_layout,
        update_mirrors_layout,
        update_range_layout,
    ]
}

/// The layouts of the kernels that read a step's samples or write a layer's output by step record:
/// gather, dropout and forward_gather.
pub(super) fn sample_layouts(device: &wgpu::Device) -> [wgpu::BindGroupLayout; 3] {
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
    let dropout_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("dropout layout: act, dims, step"),
        entries: &[
            storage(0, false),
            uniform::<DropoutDims>(1, false),
            uniform::<StepRecord>(2, false),
        ],
    });
    let forward_gather_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
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
    [gather_layout, dropout_layout, forward_gather_layout]
}

pub(super) fn storage(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
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

pub(super) fn texture(binding: u32) -> wgpu::BindGroupLayoutEntry {
    texture_of(
        binding,
        wgpu::TextureSampleType::Float { filterable: false },
    )
}

/// A texture of u32 texels (the resident images and the order).
pub(super) fn uint_texture(binding: u32) -> wgpu::BindGroupLayoutEntry {
    texture_of(binding, wgpu::TextureSampleType::Uint)
}

fn texture_of(binding: u32, sample_type: wgpu::TextureSampleType) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Texture {
            sample_type,
            view_dimension: wgpu::TextureViewDimension::D2,
            multisampled: false,
        },
        count: None,
    }
}

pub(super) fn uniform<T>(binding: u32, dynamic: bool) -> wgpu::BindGroupLayoutEntry {
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

/// The group-0 layouts of the kernels that bind more storage buffers than the downlevel limit of 4
/// (dense_tail, dense_tail_tex, grad_update_gather): None where the device allows fewer than they bind.
pub(super) fn storage_heavy_layouts(device: &wgpu::Device) -> [Option<wgpu::BindGroupLayout>; 3] {
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
            label: Some(
                "dense_tail_tex layout: labels, order, grads, dz, stats, p, m, v, dims, step",
            ),
            entries: &[
                storage(0, true),
                storage(1, true),
                storage(2, false),
                storage(3, false),
                storage(4, false),
                storage(5, false),
                storage(6, false),
                storage(7, false),
                uniform::<TailDims>(8, false),
                uniform::<StepRecord>(9, false),
            ],
        })
    });
    let grad_update_gather_layout = fits(Kernel::GradUpdateGather).then(|| {
        device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("grad_update_gather layout: images, order, dz, params, m, v, dims, step"),
            entries: &[
                storage(0, true),
                storage(1, true),
                storage(2, true),
                storage(3, false),
                storage(4, false),
                storage(5, false),
                uniform::<GradUpdateDims>(6, false),
                uniform::<StepRecord>(7, false),
            ],
        })
    });
    [
        dense_tail_layout,
        dense_tail_tex_layout,
        grad_update_gather_layout,
    ]
}

/// The group-0 and group-1 layouts of the texture path's first-layer kernels: grad_update_gather_tex's,
/// then forward_gather_tex's.
pub(super) fn first_layer_tex_layouts(device: &wgpu::Device) -> [wgpu::BindGroupLayout; 4] {
    let grad_update_gather_tex_layout =
        device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("grad_update_gather_tex layout: p, g (unused), m, v, dims, step"),
            entries: &[
                storage(0, false),
                storage(1, true),
                storage(2, false),
                storage(3, false),
                uniform::<GradUpdateGatherTexDims>(4, false),
                uniform::<StepRecord>(5, false),
            ],
        });
    let grad_update_gather_tex_tex_layout =
        device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(
                "grad_update_gather_tex texture layout: p_tex, dz_tex, m_tex, v_tex, images, order",
            ),
            entries: &[
                texture(0),
                texture(1),
                texture(2),
                texture(3),
                uint_texture(4),
                uint_texture(5),
            ],
        });
    let forward_gather_tex_layout =
        device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("forward_gather_tex layout: params, act, dims, step"),
            entries: &[
                storage(0, true),
                storage(1, false),
                uniform::<ForwardGatherTexDims>(2, false),
                uniform::<StepRecord>(3, false),
            ],
        });
    let forward_gather_tex_tex_layout =
        device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("forward_gather_tex texture layout: W, images, order"),
            entries: &[texture(0), uint_texture(1), uint_texture(2)],
        });
    [
        grad_update_gather_tex_layout,
        grad_update_gather_tex_tex_layout,
        forward_gather_tex_layout,
        forward_gather_tex_tex_layout,
    ]
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
