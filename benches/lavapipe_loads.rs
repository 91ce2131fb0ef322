//! `cargo bench --bench lavapipe_loads`: the facts about software Vulkan (lavapipe) that shaped the GPU
//! kernels, measured side by side in one run: the same 4x4-per-invocation matmul (32x784x128) reading its
//! operands from storage buffers and from rgba32float textures, and softmax_xent.wgsl with and without
//! naga's forced loop bounding, the fixed cost of a pass boundary and of a mirror copy, and the cost of
//! a branch inside a loop that no lane takes. On a hardware GPU the ratios differ; the point is to re-check them when
//! the driver changes. Skips (exit 0) without an adapter.

use std::time::Instant;

/// The softmax cross-entropy kernel the engine ran before `dense_tail` took over the last layer, kept
/// here for the loop-bounding measurement.
const SOFTMAX_XENT_WGSL: &str = include_str!("kernels/softmax_xent.wgsl");
use wgpu::util::DeviceExt;

/// A 4x4 block per invocation of C (32, 128) = A (32, 784) · B (784, 128), vec4 loads. `LOAD_A(q, r)`
/// and `LOAD_B(q, r)` read texel q of row r from buffers or textures.
const MATMUL: &str = r#"
@group(0) @binding(0) var<storage, read_write> c: array<vec4<f32>>;
DECLS
@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n4 = gid.x;
    let m0 = gid.y * 4u;
    if (n4 >= 32u || m0 >= 32u) { return; }
    var acc0 = vec4<f32>(0.0); var acc1 = vec4<f32>(0.0); var acc2 = vec4<f32>(0.0); var acc3 = vec4<f32>(0.0);
    for (var q = 0u; q < 196u; q++) {
        let b0 = LOAD_B(n4, 4u * q); let b1 = LOAD_B(n4, 4u * q + 1u); let b2 = LOAD_B(n4, 4u * q + 2u); let b3 = LOAD_B(n4, 4u * q + 3u);
        let x0 = LOAD_A(q, m0); let x1 = LOAD_A(q, m0 + 1u); let x2 = LOAD_A(q, m0 + 2u); let x3 = LOAD_A(q, m0 + 3u);
        acc0 += x0.x * b0 + x0.y * b1 + x0.z * b2 + x0.w * b3;
        acc1 += x1.x * b0 + x1.y * b1 + x1.z * b2 + x1.w * b3;
        acc2 += x2.x * b0 + x2.y * b1 + x2.z * b2 + x2.w * b3;
        acc3 += x3.x * b0 + x3.y * b1 + x3.z * b2 + x3.w * b3;
    }
    c[m0 * 32u + n4] = acc0; c[(m0 + 1u) * 32u + n4] = acc1; c[(m0 + 2u) * 32u + n4] = acc2; c[(m0 + 3u) * 32u + n4] = acc3;
}
"#;

const BUFFERS: &str = "@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
fn LOAD_A(q: u32, r: u32) -> vec4<f32> { return a[r * 196u + q]; }
fn LOAD_B(q: u32, r: u32) -> vec4<f32> { return b[r * 32u + q]; }";

const TEXTURES: &str = "@group(0) @binding(1) var a: texture_2d<f32>;
@group(0) @binding(2) var b: texture_2d<f32>;
fn LOAD_A(q: u32, r: u32) -> vec4<f32> { return textureLoad(a, vec2<u32>(q, r), 0); }
fn LOAD_B(q: u32, r: u32) -> vec4<f32> { return textureLoad(b, vec2<u32>(q, r), 0); }";

fn entry(binding: u32, resource: wgpu::BindingResource<'_>) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry { binding, resource }
}

struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
}

impl Gpu {
    /// Microseconds per dispatch: best of 3 submissions of `n` dispatches each, after a warm-up.
    fn time(
        &self,
        pipe: &wgpu::ComputePipeline,
        bind: &wgpu::BindGroup,
        groups: (u32, u32),
        n: usize,
    ) -> f64 {
        let mut best = f64::MAX;
        for _ in 0..4 {
            let t = Instant::now();
            let mut enc = self.device.create_command_encoder(&Default::default());
            {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(pipe);
                pass.set_bind_group(0, bind, &[]);
                for _ in 0..n {
                    pass.dispatch_workgroups(groups.0, groups.1, 1);
                }
            }
            self.queue.submit([enc.finish()]);
            self.device
                .poll(wgpu::PollType::wait_indefinitely())
                .expect("the device answers");
            best = best.min(t.elapsed().as_secs_f64() * 1e6 / n as f64);
        }
        best
    }

    fn pipeline(
        &self,
        src: &str,
        entry: &str,
        checks: wgpu::ShaderRuntimeChecks,
    ) -> wgpu::ComputePipeline {
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(entry),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        };
        // SAFETY: the shaders here are validated by naga; only the runtime checks named vary.
        let module = unsafe { self.device.create_shader_module_trusted(desc, checks) };
        self.device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
    }

    fn storage(&self, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    }

    fn texture(&self, texels_wide: u32, rows: u32) -> wgpu::TextureView {
        let t = self.device.create_texture(&wgpu::TextureDescriptor {
            label: None,
            size: wgpu::Extent3d {
                width: texels_wide,
                height: rows,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba32Float,
            usage: wgpu::TextureUsages::TEXTURE_BINDING,
            view_formats: &[],
        });
        t.create_view(&Default::default())
    }
}

fn main() {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let Ok(adapter) =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
    else {
        println!("bench lavapipe_loads: skipped: no adapter");
        return;
    };
    let mut limits = wgpu::Limits::downlevel_defaults();
    limits.max_texture_dimension_2d = adapter.limits().max_texture_dimension_2d;
    // softmax_xent binds five storage buffers (the downlevel limit is four; the engine asks for eight).
    limits.max_storage_buffers_per_shader_stage =
        adapter.limits().max_storage_buffers_per_shader_stage;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: limits,
        ..Default::default()
    }))
    .expect("a device");
    let gpu = Gpu { device, queue };
    println!("adapter: {}", adapter.get_info().name);
    let checked = wgpu::ShaderRuntimeChecks::checked();

    // Storage buffers vs textures, same arithmetic and access pattern.
    let c = gpu.storage(32 * 128 * 4);
    let (a_buf, b_buf) = (gpu.storage(32 * 784 * 4), gpu.storage(784 * 128 * 4));
    let (a_tex, b_tex) = (gpu.texture(196, 32), gpu.texture(32, 784));
    let flops = 2.0 * 32.0 * 784.0 * 128.0;
    let mut rows = Vec::new();
    for (what, decls) in [("storage buffers", BUFFERS), ("textures", TEXTURES)] {
        let src = MATMUL.replace("DECLS", decls);
        let pipe = gpu.pipeline(&src, "main", checked);
        let layout = pipe.get_bind_group_layout(0);
        let entries = if what == "textures" {
            vec![
                entry(0, c.as_entire_binding()),
                entry(1, wgpu::BindingResource::TextureView(&a_tex)),
                entry(2, wgpu::BindingResource::TextureView(&b_tex)),
            ]
        } else {
            vec![
                entry(0, c.as_entire_binding()),
                entry(1, a_buf.as_entire_binding()),
                entry(2, b_buf.as_entire_binding()),
            ]
        };
        let bind = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &entries,
        });
        let us = gpu.time(&pipe, &bind, (4, 1), 20);
        rows.push((
            format!("matmul 32x784x128, 4x4 blocks, operands in {what}"),
            us,
            format!("{:.2} GFLOP/s", flops / us / 1e3),
        ));
    }

    // softmax_xent.wgsl with naga's loop bounding (the default) and without it.
    let buf = |bytes: u64| gpu.storage(bytes);
    let uniform = |data: &[u32]| {
        gpu.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytemuck::cast_slice(data),
                usage: wgpu::BufferUsages::UNIFORM,
            })
    };
    let (logits, labels, order, dlogits, stats) = (
        buf(32 * 12 * 4),
        buf(32 * 4),
        buf(32 * 4),
        buf(32 * 12 * 4),
        buf(64 * 16),
    );
    let (dims, step) = (
        uniform(&[10, 12, 32, 0]),
        uniform(&[32, 0, 0, 0, 0, 0, 0, 0]),
    );
    for (what, checks) in [
        ("loop bounding on (default)", checked),
        (
            "loop bounding off",
            wgpu::ShaderRuntimeChecks {
                force_loop_bounding: false,
                ..checked
            },
        ),
    ] {
        let pipe = gpu.pipeline(SOFTMAX_XENT_WGSL, "softmax_xent", checks);
        let layout = pipe.get_bind_group_layout(0);
        let bind = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &[
                entry(0, logits.as_entire_binding()),
                entry(1, labels.as_entire_binding()),
                entry(2, order.as_entire_binding()),
                entry(3, dlogits.as_entire_binding()),
                entry(4, stats.as_entire_binding()),
                entry(5, dims.as_entire_binding()),
                entry(6, step.as_entire_binding()),
            ],
        });
        let us = gpu.time(&pipe, &bind, (1, 1), 50);
        rows.push((format!("softmax_xent 32x10, {what}"), us, String::new()));
    }
    // The fixed costs the engine's step pays around its kernels: a compute pass per dispatch instead
    // of one for all, and the 400 KB buffer-to-texture copy that refreshes a mirror of W1.
    let trivial = gpu.pipeline(
        "@group(0) @binding(0) var<storage, read_write> o: array<f32>;\n@compute @workgroup_size(64) fn main(@builtin(local_invocation_index) l: u32) { o[l] = f32(l); }",
        "main",
        checked,
    );
    let w1 = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 784 * 128 * 4,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let w1_tex = gpu.device.create_texture(&wgpu::TextureDescriptor {
        label: None,
        size: wgpu::Extent3d {
            width: 32,
            height: 784,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba32Float,
        usage: wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    let tbind = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &trivial.get_bind_group_layout(0),
        entries: &[entry(0, w1.as_entire_binding())],
    });
    for what in [
        "one pass for all dispatches",
        "a pass per dispatch",
        "a pass and a 400 KB copy per dispatch",
    ] {
        let n = 100;
        let mut best = f64::MAX;
        for _ in 0..4 {
            let t = Instant::now();
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            if what.starts_with("one pass") {
                let mut pass = enc.begin_compute_pass(&Default::default());
                pass.set_pipeline(&trivial);
                pass.set_bind_group(0, &tbind, &[]);
                for _ in 0..n {
                    pass.dispatch_workgroups(1, 1, 1);
                }
            } else {
                for _ in 0..n {
                    {
                        let mut pass = enc.begin_compute_pass(&Default::default());
                        pass.set_pipeline(&trivial);
                        pass.set_bind_group(0, &tbind, &[]);
                        pass.dispatch_workgroups(1, 1, 1);
                    }
                    if what.contains("copy") {
                        enc.copy_buffer_to_texture(
                            wgpu::TexelCopyBufferInfo {
                                buffer: &w1,
                                layout: wgpu::TexelCopyBufferLayout {
                                    offset: 0,
                                    bytes_per_row: Some(512),
                                    rows_per_image: Some(784),
                                },
                            },
                            w1_tex.as_image_copy(),
                            wgpu::Extent3d {
                                width: 32,
                                height: 784,
                                depth_or_array_layers: 1,
                            },
                        );
                    }
                }
            }
            gpu.queue.submit([enc.finish()]);
            gpu.device
                .poll(wgpu::PollType::wait_indefinitely())
                .expect("the device answers");
            best = best.min(t.elapsed().as_secs_f64() * 1e6 / n as f64);
        }
        rows.push((format!("trivial dispatch, {what}"), best, String::new()));
    }
    // A branch inside a loop that no lane takes (the zero-fill of rows past a partial batch, as the first
    // dense_tail_tex had it) against the same work filtered by the loop's bound (as it has it now): 32
    // invocations, 32 rows, `rows` from a uniform equal to 32, so neither fill ever runs.
    let out = gpu.storage(32 * 64 * 16);
    let rows_u = uniform(&[32, 0, 0, 0]);
    for (what, body) in [
        (
            "zero-fill in an untaken branch",
            "for (var r = l; r < 32u; r += 32u) { if (r >= u.x) { for (var q = 0u; q < 32u; q++) { o[r * 64u + q] = vec4<f32>(0.0); } continue; } o[r * 64u + 40u] = vec4<f32>(f32(r)); }",
        ),
        (
            "zero-fill filtered by the loop bound",
            "for (var r = l; r < u.x; r += 32u) { o[r * 64u + 40u] = vec4<f32>(f32(r)); } for (var r = u.x + l; r < 32u; r += 32u) { for (var q = 0u; q < 32u; q++) { o[r * 64u + q] = vec4<f32>(0.0); } }",
        ),
    ] {
        let src = format!(
            "@group(0) @binding(0) var<storage, read_write> o: array<vec4<f32>>;\n@group(0) @binding(1) var<uniform> u: vec4<u32>;\n@compute @workgroup_size(32) fn main(@builtin(local_invocation_index) l: u32) {{ {body} }}"
        );
        let pipe = gpu.pipeline(&src, "main", checked);
        let bind = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipe.get_bind_group_layout(0),
            entries: &[
                entry(0, out.as_entire_binding()),
                entry(1, rows_u.as_entire_binding()),
            ],
        });
        let us = gpu.time(&pipe, &bind, (1, 1), 100);
        rows.push((format!("32 rows, {what}"), us, String::new()));
    }
    println!("{:<62} {:>10} {:>14}", "kernel", "us", "rate");
    for (name, us, rate) in &rows {
        println!("{name:<62} {us:>10.1} {rate:>14}");
    }
    println!(
        "textures vs storage buffers: {:.1}x faster; loop bounding off vs on: {:.1}x faster",
        rows[0].1 / rows[1].1,
        rows[2].1 / rows[3].1
    );
}
