// The optimizers' updates over flat parameter buffers, one vec4 per invocation, each read p, g, m, v
// and write p, m, v (the two optimizer slots: Adam's moments, SGD's momentum, RMSprop's mean square and
// momentum). Memory-bound. The entry points, each with its own layout:
//   adam, sgd, rmsprop              plain storage buffers over the vec4 range [off4, off4 + len4) (real
//                                   GPUs)
//   adam_tex, sgd_tex, rmsprop_tex  read from texture mirrors of the four buffers (rgba32float, `row4`
//                  texels a row, vec4 i at texel (i % row4, i / row4), from texel row row0 on; g's mirror
//                  holds only those rows): on software Vulkan a storage-buffer load runs lane by lane and
//                  costs ~5x a texel fetch. The host refreshes the mirrors by copies (g before this
//                  kernel, p, m and v after it).
//   grad_update_gather_tex  the texture path's first layer: its gradient and the update in one (below).
// Twins: cpu::adam, cpu::sgd, cpu::rmsprop, cpu::adam_tex, cpu::sgd_tex, cpu::rmsprop_tex,
// cpu::grad_update_gather_tex. Tested by tests/kernels.rs (through gpu::selftest).

// ---- The optimizer's update: this block is the same text in optimizers.wgsl, gather.wgsl and
// tail.wgsl (tests/shaders.rs checks). The optimizer and its hyper-parameters are pipeline-overridable
// constants set from the run's OptimizerConfig when the pipelines are built (gpu::pipelines), so a
// pipeline holds only its own rule: no branch on the optimizer runs per element. Keras 3's formulas,
// in the operation order of their twin cpu::UpdateStep::apply; `alpha` is the step record's (Adam's
// bias-corrected step, else the learning rate). ----
override OPTIMIZER: u32 = 0u; // 0 Adam, 1 SGD, 2 RMSprop
override BETA1: f32 = 0.9;
override BETA2: f32 = 0.999;
override EPSILON: f32 = 1e-7;
override MOMENTUM: f32 = 0.0;
override RHO: f32 = 0.9;
override NESTEROV: bool = false;

// A parameter vec4 and its two optimizer slots after an update.
struct Updated {
    p: vec4<f32>,
    m: vec4<f32>,
    v: vec4<f32>,
}

// Adam: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); p -= alpha m / (sqrt(v) + eps).
fn adam4(p0: vec4<f32>, g: vec4<f32>, m0: vec4<f32>, v0: vec4<f32>, alpha: f32) -> Updated {
    let m1 = m0 + (g - m0) * (1.0 - BETA1);
    let v1 = v0 + (g * g - v0) * (1.0 - BETA2);
    return Updated(p0 - alpha * m1 / (sqrt(v1) + vec4<f32>(EPSILON)), m1, v1);
}

// SGD: p -= lr g; with momentum m = momentum m - lr g, p += m (Nesterov: p += momentum m - lr g).
fn sgd4(p0: vec4<f32>, g: vec4<f32>, m0: vec4<f32>, v0: vec4<f32>, alpha: f32) -> Updated {
    if (MOMENTUM == 0.0) {
        return Updated(p0 - g * alpha, m0, v0);
    }
    let m1 = m0 * MOMENTUM - g * alpha;
    let p1 = select(p0 + m1, p0 + (m1 * MOMENTUM - g * alpha), NESTEROV);
    return Updated(p1, m1, v0);
}

// RMSprop (not centered): v = rho v + (1 - rho) g^2; inc = lr g / sqrt(v + eps); p -= inc, or with
// momentum m = momentum m + inc, p -= m.
fn rmsprop4(p0: vec4<f32>, g: vec4<f32>, m0: vec4<f32>, v0: vec4<f32>, alpha: f32) -> Updated {
    let v1 = RHO * v0 + (1.0 - RHO) * (g * g);
    let inc = alpha * g / sqrt(v1 + vec4<f32>(EPSILON));
    if (MOMENTUM == 0.0) {
        return Updated(p0 - inc, m0, v1);
    }
    let m1 = MOMENTUM * m0 + inc;
    return Updated(p0 - m1, m1, v1);
}

// The pipeline's optimizer.
fn update4(p0: vec4<f32>, g: vec4<f32>, m0: vec4<f32>, v0: vec4<f32>, alpha: f32) -> Updated {
    if (OPTIMIZER == 1u) {
        return sgd4(p0, g, m0, v0, alpha);
    }
    if (OPTIMIZER == 2u) {
        return rmsprop4(p0, g, m0, v0, alpha);
    }
    return adam4(p0, g, m0, v0, alpha);
}
// ---- end of the optimizer's update ----

// The range entry points' dims.
struct UpdateRangeDims {
    off4: u32, // first vec4 of the range
    len4: u32, // vec4s in the range
    _pad0: u32,
    _pad1: u32,
}

// The texture entry points' dims.
struct UpdateTexDims {
    len4: u32, // vec4s in each flat buffer
    row4: u32, // texels per row of the texture mirrors
    row0: u32, // first texel row updated: the rows before it are grad_update_gather_tex's
    _pad0: u32,
}

// Same record as in gather.wgsl and tail.wgsl (tests/shaders.rs checks); only alpha is read here.
struct Step {
    rows: u32,
    slot: u32,
    stat: u32,
    alpha: f32,
    scale: f32,
    start: u32,
    counter: u32, // the optimizer step (from 1, low 32 bits): dropout's Philox counter
    _pad2: u32,
}

// p, m, v are shared by every entry point; the texture ones read g only through its mirror g_tex.
@group(0) @binding(0) var<storage, read_write> p: array<vec4<f32>>; // (len4)
@group(0) @binding(2) var<storage, read_write> m: array<vec4<f32>>; // (len4)
@group(0) @binding(3) var<storage, read_write> v: array<vec4<f32>>; // (len4)
@group(0) @binding(1) var<storage, read> g: array<vec4<f32>>;        // (len4), range entry points only
@group(0) @binding(4) var<uniform> dims: UpdateTexDims;          // texture entry points
@group(0) @binding(4) var<uniform> range_dims: UpdateRangeDims;  // range entry points
@group(0) @binding(5) var<uniform> step: Step;
@group(1) @binding(0) var p_tex: texture_2d<f32>; // (len4 / row4 rows, row4 texels)
@group(1) @binding(1) var g_tex: texture_2d<f32>;
@group(1) @binding(2) var m_tex: texture_2d<f32>;
@group(1) @binding(3) var v_tex: texture_2d<f32>;

// The texture entry points' grid is the mirrors' texel grid from row `row0` on (x: texel in the row,
// y: row - row0), so the texel of vec4 i needs no integer division, which a CPU driver runs lane by
// lane. Returns vec4 i, or len4 (nothing to do) past the buffers.
fn tex_index(gid: vec3<u32>) -> u32 {
    let i = (dims.row0 + gid.y) * dims.row4 + gid.x;
    return select(dims.len4, i, gid.x < dims.row4 && i < dims.len4);
}

// Writes an update's p, m and v at vec4 i of the buffers. (In the texture entry points g's mirror holds
// only the rows from row0 on, so g is read at gid.xy.)
fn store_updated(i: u32, u: Updated) {
    p[i] = u.p;
    m[i] = u.m;
    v[i] = u.v;
}

@compute @workgroup_size(16, 4)
fn adam_tex(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = tex_index(gid);
    if (i >= dims.len4) {
        return;
    }
    let t = vec2<u32>(gid.x, dims.row0 + gid.y);
    store_updated(i, adam4(textureLoad(p_tex, t, 0), textureLoad(g_tex, gid.xy, 0), textureLoad(m_tex, t, 0), textureLoad(v_tex, t, 0), step.alpha));
}

@compute @workgroup_size(16, 4)
fn sgd_tex(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = tex_index(gid);
    if (i >= dims.len4) {
        return;
    }
    let t = vec2<u32>(gid.x, dims.row0 + gid.y);
    store_updated(i, sgd4(textureLoad(p_tex, t, 0), textureLoad(g_tex, gid.xy, 0), textureLoad(m_tex, t, 0), textureLoad(v_tex, t, 0), step.alpha));
}

@compute @workgroup_size(16, 4)
fn rmsprop_tex(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = tex_index(gid);
    if (i >= dims.len4) {
        return;
    }
    let t = vec2<u32>(gid.x, dims.row0 + gid.y);
    store_updated(i, rmsprop4(textureLoad(p_tex, t, 0), textureLoad(g_tex, gid.xy, 0), textureLoad(m_tex, t, 0), textureLoad(v_tex, t, 0), step.alpha));
}

// The range entry points: a 1-D grid of vec4s folded into (x, y) so ranges past 65,535 workgroups fit
// (kernels::update_range_groups), x running fastest. Returns vec4 i, or past the range: u32 max.
fn range_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    let j = gid.y * groups.x * 64u + gid.x;
    return select(0xffffffffu, range_dims.off4 + j, j < range_dims.len4);
}

@compute @workgroup_size(64)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = range_index(gid, groups);
    if (i == 0xffffffffu) {
        return;
    }
    store_updated(i, adam4(p[i], g[i], m[i], v[i], step.alpha));
}

@compute @workgroup_size(64)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = range_index(gid, groups);
    if (i == 0xffffffffu) {
        return;
    }
    store_updated(i, sgd4(p[i], g[i], m[i], v[i], step.alpha));
}

@compute @workgroup_size(64)
fn rmsprop(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = range_index(gid, groups);
    if (i == 0xffffffffu) {
        return;
    }
    store_updated(i, rmsprop4(p[i], g[i], m[i], v[i], step.alpha));
}

// grad_update_gather_tex: the texture path's first layer backward and update in one (the buffer path's
// grad_update_gather): dW = x^T · dZ over the step's live rows, x being the step's samples read from the
// resident images texture through the order texture and normalised (gather.wgsl's layout and
// expression), and db = colsum(dZ), each applied at once by the pipeline's optimizer (update4) to p, m and v, which are read from
// their atlas mirrors (W's row i is atlas row w_row + i, b is row b_row) and written to the buffers;
// the gradient is never stored. An 8x8 block of W per invocation as in mm_tn_tex (pixels m0..m0+7 are
// two components of one image texel, dZ's texels qa/qb), one invocation per 8x8 instead of adam_tex's
// one per vec4 (on lavapipe an invocation costs about a vec4 store). Padding lanes (columns past
// fan_out) keep their values bit for bit; rows past `inputs` are not written.
// Twin: cpu::grad_update_gather_tex. Tested by tests/kernels.rs (through gpu::selftest).

struct GradUpdateGatherTexDims {
    inputs: u32,    // W's rows (fan_in, pixels per sample)
    fan_out: u32,   // W's columns
    ld: u32,        // floats per row of W, b and the atlas mirrors (a multiple of 4)
    w_row: u32,     // atlas row of W's row 0
    b_row: u32,     // atlas row of b
    texels: u32,    // texels a sample takes in images_tex
    row_shift: u32, // images_tex holds 2^row_shift samples a row
    _pad0: u32,
}

@group(0) @binding(4) var<uniform> ga_dims: GradUpdateGatherTexDims; // grad_update_gather_tex
// grad_update_gather_tex's operands in group 1 beside p_tex, m_tex, v_tex: dZ (rows, fan_out) in g_tex's
// slot, and the resident images and the epoch's order (gather.wgsl's layouts, gpu::dataset).
@group(1) @binding(1) var dz_tex: texture_2d<f32>;
@group(1) @binding(4) var images_tex: texture_2d<u32>;
@group(1) @binding(5) var order_tex: texture_2d<u32>;

// As gather.wgsl's (tests/kernels.rs checks both literals): 1 / 255 as Rust's `1.0f32 / 255.0`.
const PIXEL_SCALE: f32 = 0x1.010102p-8f;
const ORDER_TEX_WIDTH: u32 = 4096u;

fn unpack_pixels(w: u32) -> vec4<f32> {
    return vec4<f32>(vec4<u32>(w, w >> 8u, w >> 16u, w >> 24u) & vec4<u32>(0xffu)) * PIXEL_SCALE;
}

fn lanes_of(q: u32, n: u32) -> vec4<bool> {
    let i0 = q * 4u;
    return vec4<u32>(i0, i0 + 1u, i0 + 2u, i0 + 3u) < vec4<u32>(n);
}

// The update of the vec4 at atlas texel (q, row) with gradient g; lanes outside `keep` keep their
// values.
fn update_at(q: u32, row: u32, g: vec4<f32>, keep: vec4<bool>) {
    let t = vec2<u32>(q, row);
    let p0 = textureLoad(p_tex, t, 0);
    let m0 = textureLoad(m_tex, t, 0);
    let v0 = textureLoad(v_tex, t, 0);
    let u = update4(p0, g, m0, v0, step.alpha);
    let i = row * (ga_dims.ld / 4u) + q;
    m[i] = select(m0, u.m, keep);
    v[i] = select(v0, u.v, keep);
    p[i] = select(p0, u.p, keep);
}

// Accumulator i of eight, by selects (the accumulators stay named variables, as in mm_tn_tex).
fn pick8(
    i: u32,
    r0: vec4<f32>, r1: vec4<f32>, r2: vec4<f32>, r3: vec4<f32>,
    r4: vec4<f32>, r5: vec4<f32>, r6: vec4<f32>, r7: vec4<f32>,
) -> vec4<f32> {
    let lo = select(select(r3, r2, i == 2u), select(r1, r0, i == 0u), i < 2u);
    let hi = select(select(r7, r6, i == 6u), select(r5, r4, i == 4u), i < 6u);
    return select(hi, lo, i < 4u);
}

@compute @workgroup_size(8, 8)
fn grad_update_gather_tex(@builtin(global_invocation_id) gid: vec3<u32>) {
    let qa = 2u * gid.x;
    let m0 = gid.y * 8u;
    if (qa * 4u >= ga_dims.fan_out || m0 >= ga_dims.inputs) {
        return;
    }
    // Column quad b may lie past fan_out (read clamped, never written); pixels past inputs are the
    // texture's zeros and reach only rows that are not written.
    let qb = qa + 1u;
    let qbc = min(qb, (ga_dims.fan_out - 1u) / 4u);
    // Pixels m0..m0+7 are components 2h and 2h+1 of the sample's texel m0 / 16.
    let t = m0 / 16u;
    let h = (m0 / 8u) & 1u;
    let mask = (1u << ga_dims.row_shift) - 1u;
    let z = vec4<f32>(0.0);
    var a0 = z; var a1 = z; var a2 = z; var a3 = z; var a4 = z; var a5 = z; var a6 = z; var a7 = z;
    var b0 = z; var b1 = z; var b2 = z; var b3 = z; var b4 = z; var b5 = z; var b6 = z; var b7 = z;
    var suma = z;
    var sumb = z;
    for (var r = 0u; r < step.rows; r++) {
        let i = step.start + r;
        let s = textureLoad(order_tex, vec2<u32>(i % ORDER_TEX_WIDTH, i / ORDER_TEX_WIDTH), 0).x;
        let u = textureLoad(images_tex, vec2<u32>((s & mask) * ga_dims.texels + t, s >> ga_dims.row_shift), 0);
        let xa = unpack_pixels(select(u.x, u.z, h == 1u));
        let xb = unpack_pixels(select(u.y, u.w, h == 1u));
        let ya = textureLoad(dz_tex, vec2<u32>(qa, r), 0);
        let yb = textureLoad(dz_tex, vec2<u32>(qbc, r), 0);
        a0 += xa.x * ya; b0 += xa.x * yb;
        a1 += xa.y * ya; b1 += xa.y * yb;
        a2 += xa.z * ya; b2 += xa.z * yb;
        a3 += xa.w * ya; b3 += xa.w * yb;
        a4 += xb.x * ya; b4 += xb.x * yb;
        a5 += xb.y * ya; b5 += xb.y * yb;
        a6 += xb.z * ya; b6 += xb.z * yb;
        a7 += xb.w * ya; b7 += xb.w * yb;
        suma += ya;
        sumb += yb;
    }
    // Rows past `inputs` and a second column quad past fan_out are left out by loop bounds, not by
    // branches (lavapipe runs an untaken branch's body masked off).
    let rows = min(8u, ga_dims.inputs - m0);
    let quads = min(2u, (ga_dims.fan_out + 3u) / 4u - qa);
    for (var j = 0u; j < quads; j++) {
        let q = qa + j;
        let keep = lanes_of(q, ga_dims.fan_out);
        for (var i = 0u; i < rows; i++) {
            let g = select(pick8(i, b0, b1, b2, b3, b4, b5, b6, b7), pick8(i, a0, a1, a2, a3, a4, a5, a6, a7), j == 0u);
            update_at(q, ga_dims.w_row + m0 + i, g, keep);
        }
    }
    if (gid.y == 0u) {
        update_at(qa, ga_dims.b_row, suma, lanes_of(qa, ga_dims.fan_out));
        if (qb * 4u < ga_dims.fan_out) {
            update_at(qb, ga_dims.b_row, sumb, lanes_of(qb, ga_dims.fan_out));
        }
    }
}
