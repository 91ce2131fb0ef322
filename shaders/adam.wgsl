// Keras' Adam over the flat parameter buffer, one vec4 per invocation:
//   m += (g - m)(1 - beta1);  v += (g^2 - v)(1 - beta2);  p -= alpha m / (sqrt(v) + eps)
// alpha, the bias-corrected step size of this step, is computed on the host in f64 (cpu::adam_alpha) and
// read from the step's record, so many steps can be queued in one submission. Memory-bound: 7 vec4
// accesses per 4 parameters. Twin: cpu::adam. Tested by tests/kernels.rs.

struct AdamDims {
    len4: u32,  // vec4s in each flat buffer
    span: u32,  // invocations per row of the 2-D dispatch (groups_x * 64), for buffers past 65535 groups
    beta1: f32,
    beta2: f32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// Same record as in softmax_xent.wgsl; only alpha is read here.
struct Step {
    rows: u32,
    slot: u32,
    stat: u32,
    alpha: f32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> p: array<vec4<f32>>; // (len4)
@group(0) @binding(1) var<storage, read> g: array<vec4<f32>>;       // (len4)
@group(0) @binding(2) var<storage, read_write> m: array<vec4<f32>>; // (len4)
@group(0) @binding(3) var<storage, read_write> v: array<vec4<f32>>; // (len4)
@group(0) @binding(4) var<uniform> dims: AdamDims;
@group(0) @binding(5) var<uniform> step: Step;

@compute @workgroup_size(64)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.y * dims.span + gid.x;
    if (i >= dims.len4) {
        return;
    }
    // Each operand is loaded once into a local: storage loads are the expensive part on software
    // Vulkan, stores are cheap (docs/perf.md).
    let gi = g[i];
    let m0 = m[i];
    let v0 = v[i];
    let p0 = p[i];
    let mi = m0 + (gi - m0) * (1.0 - dims.beta1);
    let vi = v0 + (gi * gi - v0) * (1.0 - dims.beta2);
    m[i] = mi;
    v[i] = vi;
    p[i] = p0 - step.alpha * mi / (sqrt(vi) + vec4<f32>(dims.eps));
}
