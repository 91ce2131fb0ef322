// Keras' Adam over flat parameter buffers, one vec4 per invocation:
//   m += (g - m)(1 - beta1);  v += (g^2 - v)(1 - beta2);  p -= alpha m / (sqrt(v) + eps)
// alpha, the bias-corrected step size of this step, is computed on the host in f64 (cpu::adam_alpha) and
// read from the step's record, so many steps can be queued in one submission. Memory-bound: 4 vec4 reads
// and 3 writes per 4 parameters. Two entry points with their own layouts:
//   adam      plain storage buffers over the vec4 range [off4, off4 + len4) (real GPUs)
//   adam_tex  reads from texture mirrors of the four buffers (rgba32float, `row4` texels a row, vec4 i at
//             texel (i % row4, i / row4)): on software Vulkan a storage-buffer load runs lane by lane and
//             costs ~5x a texel fetch, while stores are cheap. The host refreshes the mirrors by copies
//             (g before this kernel, p, m and v after it).
// Twin: cpu::adam. Tested by tests/kernels.rs (through gpu::selftest).

struct AdamRangeDims {
    off4: u32, // first vec4 of the range
    len4: u32, // vec4s in the range
    beta1: f32,
    beta2: f32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// adam_tex's dims.
struct AdamDims {
    len4: u32, // vec4s in each flat buffer
    row4: u32, // texels per row of the texture mirrors
    beta1: f32,
    beta2: f32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// Same record as in gather.wgsl and tail.wgsl (tests/shaders.rs checks); only alpha is read here.
struct Step {
    rows: u32,
    slot: u32,
    stat: u32,
    alpha: f32,
    scale: f32,
    start: u32,
    _pad1: u32,
    _pad2: u32,
}

// p, m, v are shared by both entry points; adam_tex reads g only through its mirror g_tex.
@group(0) @binding(0) var<storage, read_write> p: array<vec4<f32>>; // (len4)
@group(0) @binding(2) var<storage, read_write> m: array<vec4<f32>>; // (len4)
@group(0) @binding(3) var<storage, read_write> v: array<vec4<f32>>; // (len4)
@group(0) @binding(1) var<storage, read> g: array<vec4<f32>>;        // (len4), adam only
@group(0) @binding(4) var<uniform> dims: AdamDims;            // adam_tex
@group(0) @binding(4) var<uniform> range_dims: AdamRangeDims; // adam
@group(0) @binding(5) var<uniform> step: Step;
@group(1) @binding(0) var p_tex: texture_2d<f32>; // (len4 / row4 rows, row4 texels)
@group(1) @binding(1) var g_tex: texture_2d<f32>;
@group(1) @binding(2) var m_tex: texture_2d<f32>;
@group(1) @binding(3) var v_tex: texture_2d<f32>;

// The grid is the mirrors' texel grid (x: texel in the row, y: row), so the texel of vec4 i needs no
// integer division, which a CPU driver runs lane by lane.
@compute @workgroup_size(16, 4)
fn adam_tex(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.y * dims.row4 + gid.x;
    if (gid.x >= dims.row4 || i >= dims.len4) {
        return;
    }
    let t = gid.xy;
    let gi = textureLoad(g_tex, t, 0);
    let m0 = textureLoad(m_tex, t, 0);
    let v0 = textureLoad(v_tex, t, 0);
    let p0 = textureLoad(p_tex, t, 0);
    let mi = m0 + (gi - m0) * (1.0 - dims.beta1);
    let vi = v0 + (gi * gi - v0) * (1.0 - dims.beta2);
    m[i] = mi;
    v[i] = vi;
    p[i] = p0 - step.alpha * mi / (sqrt(vi) + vec4<f32>(dims.eps));
}

// The buffer variant: a 1-D grid of vec4s folded into (x, y) so ranges past 65,535 workgroups fit
// (kernels::adam_range_groups), x running fastest.
@compute @workgroup_size(64)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let j = gid.y * groups.x * 64u + gid.x;
    if (j >= range_dims.len4) {
        return;
    }
    let i = range_dims.off4 + j;
    let gi = g[i];
    let m0 = m[i];
    let v0 = v[i];
    let mi = m0 + (gi - m0) * (1.0 - range_dims.beta1);
    let vi = v0 + (gi * gi - v0) * (1.0 - range_dims.beta2);
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] - step.alpha * mi / (sqrt(vi) + vec4<f32>(range_dims.eps));
}
