// The kernels that read a step's samples straight from the dataset resident on the GPU as u8 pixels,
// so no normalised batch is ever uploaded:
//   gather            x (capacity, ldx) = normalise(images[sample(r)])            (texture path, 1-layer models)
//   forward_gather    act (capacity, ldc) = relu(normalise(images[sample(r)]) · W + b)   (first layer forward)
//   forward_gather_tex  the same, the texture path's: images, order and W read as textures (below)
//   grad_update_gather  dW = x^T · dZ, db = colsum(dZ), each applied by the optimizer to W, b, m, v at once
//   dropout           act (capacity, ld) of a hidden layer past the first, in place: Keras' dropout
// The forward kernels apply the first layer's dropout in their epilogue (after ReLU); both draw the
// masks from Philox4x32-10 below (twins: cpu::philox4x32_10, cpu::dropout).
// Row r < step.rows is sample order[step.start + r] (or step.start + r when dims.direct != 0); rows from
// step.rows on are a partial batch's empty tail: forward kernels write 0 there and never read `order`
// for them, and the gradient sums stop at step.rows. `images` holds a split's pixels 4 to a u32,
// little-endian (byte b is (images[b / 4] >> (8 (b % 4))) & 0xff), sample i's pixel p being byte
// i * inputs + p, so with an odd `inputs` a row starts mid-u32.
// Each entry point has its own bind-group layout; WGSL lets variables of different entry points share
// a binding number, so each entry point's variables carry its prefix (g_, f_, a_).
// Twins: cpu::gather, cpu::forward_gather, cpu::forward_gather_tex, cpu::grad_update_gather, cpu::dropout. Tested by tests/kernels.rs (through
// gpu::selftest, with NaN in every padding lane and every output).

// 1 / 255 as Rust's `1.0f32 / 255.0` rounds it (cpu::PIXEL_SCALE, bits 0x3b808081), written as an exact
// hexadecimal literal so every compiler reads the same bits (naga cannot fold a bitcast in a const).
// normalise(px) = f32(px) * PIXEL_SCALE is one correctly rounded multiply: bit-identical on every
// device, fast math or not. tests/kernels.rs checks the literal's bits.
const PIXEL_SCALE: f32 = 0x1.010102p-8f;

// Same record as in optimizers.wgsl and tail.wgsl (tests/shaders.rs checks); here rows, start (and alpha for grad_update_gather) are read.
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

struct GatherDims {
    inputs: u32,   // pixels per sample
    ldx: u32,      // row stride of x in floats (a multiple of 4, >= inputs)
    capacity: u32, // rows of x
    direct: u32,   // != 0: row r is sample step.start + r
}

struct ForwardGatherDims {
    inputs: u32,   // pixels per sample = rows of W
    fan_out: u32,  // columns of W and act
    capacity: u32, // rows of act
    ldc: u32,      // row stride of act (a multiple of 4)
    w_off: u32,    // W (inputs, ldw) in params, in floats (a multiple of 4)
    ldw: u32,      // row stride of W (a multiple of 4)
    b_off: u32,    // b (fan_out) in params (a multiple of 4)
    direct: u32,
    relu: u32,     // != 0: ReLU on the output
    drop_threshold: u32, // dropout after ReLU (layer 0): a lane survives when its word is >= this; 0: none
    drop_scale: f32,     // 1 / (1 - rate)
    drop_key0: u32,      // Philox's key (the run's seed)
    drop_key1: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct GradUpdateDims {
    inputs: u32,  // pixels per sample = rows of W
    fan_out: u32, // columns of W and dZ
    ld: u32,      // row stride of W in params, m and v (a multiple of 4)
    ldz: u32,     // row stride of dZ (a multiple of 4)
    w_off: u32,   // W (inputs, ld) in params, m and v, in floats (a multiple of 4)
    b_off: u32,   // b (fan_out) in params, m and v (a multiple of 4)
    dz_off: u32,  // dZ (>= step.rows, ldz) in dz (a multiple of 4)
    direct: u32,
}

// Shared by all three entry points.
@group(0) @binding(0) var<storage, read> images: array<u32>; // (split bytes / 4, rounded up): u8 pixels
@group(0) @binding(1) var<storage, read> order: array<u32>;  // (order length): sample indices

// gather
@group(0) @binding(2) var<storage, read_write> g_x: array<vec4<f32>>; // (capacity, ldx)
@group(0) @binding(3) var<uniform> g_dims: GatherDims;
@group(0) @binding(4) var<uniform> g_step: Step;

// forward_gather
@group(0) @binding(2) var<storage, read> f_params: array<vec4<f32>>;     // W (inputs, ldw) at w_off, b at b_off
@group(0) @binding(3) var<storage, read_write> f_act: array<vec4<f32>>;  // (capacity, ldc)
@group(0) @binding(4) var<uniform> f_dims: ForwardGatherDims;
@group(0) @binding(5) var<uniform> f_step: Step;

// grad_update_gather
@group(0) @binding(2) var<storage, read> a_dz: array<vec4<f32>>;         // dZ (>= rows, ldz) at dz_off
@group(0) @binding(3) var<storage, read_write> a_p: array<vec4<f32>>;    // W (inputs, ld) at w_off, b at b_off
@group(0) @binding(4) var<storage, read_write> a_m: array<vec4<f32>>;    // optimizer slot m, same layout
@group(0) @binding(5) var<storage, read_write> a_v: array<vec4<f32>>;    // optimizer slot v, same layout
@group(0) @binding(6) var<uniform> a_dims: GradUpdateDims;
@group(0) @binding(7) var<uniform> a_step: Step;

// forward_gather_tex (its own numbering: WGSL lets entry points share binding numbers)
struct ForwardGatherTexDims {
    inputs: u32,    // pixels per sample = rows of W
    fan_out: u32,   // columns of W and act
    capacity: u32,  // rows of act
    ldc: u32,       // row stride of act (a multiple of 4)
    w_row: u32,     // W's row 0 in w_tex (a texel row of 4 consecutive floats a texel)
    b_off: u32,     // b (fan_out) in params, in floats (a multiple of 4)
    texels: u32,    // texels a sample takes in images_tex (inputs / 16 rounded up)
    row_shift: u32, // images_tex holds 2^row_shift samples a row
    direct: u32,
    relu: u32,
    drop_threshold: u32, // as in ForwardGatherDims
    drop_scale: f32,
    drop_key0: u32,
    drop_key1: u32,
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(0) var<storage, read> t_params: array<vec4<f32>>;    // b at b_off
@group(0) @binding(1) var<storage, read_write> t_act: array<vec4<f32>>; // (capacity, ldc)
@group(0) @binding(2) var<uniform> t_dims: ForwardGatherTexDims;
@group(0) @binding(3) var<uniform> t_step: Step;
@group(1) @binding(0) var t_w: texture_2d<f32>;      // W (inputs, fan_out) from row w_row
@group(1) @binding(1) var t_images: texture_2d<u32>; // a split's pixels (see image_texel)
@group(1) @binding(2) var t_order: texture_2d<u32>;  // the epoch's order (see order_texel)

// The sample of live row r (r < step.rows; `order` is never read for the others).
fn sample_of(start: u32, r: u32, direct: u32) -> u32 {
    if (direct != 0u) {
        return start + r;
    }
    return order[start + r];
}

// Pixels k0..k0+3 of the sample whose first byte is `base`, normalised; lanes at or past `inputs` are
// 0. The quad is shifted out of the (one or two) u32s it straddles; `hi` is the u32 holding the last
// pixel the quad needs, so no index passes the sample's last byte, hence the split's. The second term
// is hi << (32 - sh) written as two shifts, because a shift by 32 is undefined in SPIR-V and MSL (it is
// 0 here when the quad is aligned).
fn pixels4(base: u32, k0: u32, inputs: u32) -> vec4<f32> {
    let b = base + k0;
    let sh = (b & 3u) * 8u;
    let lo = images[b / 4u];
    let hi = images[(base + min(k0 + 3u, inputs - 1u)) / 4u];
    let w = (lo >> sh) | ((hi << (31u - sh)) << 1u);
    let bytes = vec4<u32>(w, w >> 8u, w >> 16u, w >> 24u) & vec4<u32>(0xffu);
    let lanes = vec4<u32>(k0, k0 + 1u, k0 + 2u, k0 + 3u) < vec4<u32>(inputs);
    return select(vec4<f32>(0.0), vec4<f32>(bytes) * PIXEL_SCALE, lanes);
}

// Lanes of the column quad n4 that lie inside n.
fn n_lanes(n4: u32, n: u32) -> vec4<bool> {
    let n0 = n4 * 4u;
    return vec4<u32>(n0, n0 + 1u, n0 + 2u, n0 + 3u) < vec4<u32>(n);
}

// ReLU's keep mask, v > 0, from the bit patterns: a positive sign and a non-NaN magnitude above +0
// (+inf kept). Under fast math (Metal) a NaN comparison is undefined; this is not, and it agrees with
// cpu::relu (NaN -> 0) everywhere.
fn relu_keep(v: vec4<f32>) -> vec4<bool> {
    let b = bitcast<vec4<i32>>(v);
    return (b > vec4<i32>(0)) & (b <= vec4<i32>(0x7f800000));
}

// gid.x: column quad of x (all ldx / 4 of them, so padding lanes are written 0), gid.y: row.
@compute @workgroup_size(64)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>) {
    let q = gid.x;
    let r = gid.y;
    let ldx4 = g_dims.ldx / 4u;
    if (q >= ldx4 || r >= g_dims.capacity) {
        return;
    }
    var x = vec4<f32>(0.0);
    if (r < g_step.rows && q * 4u < g_dims.inputs) {
        let s = sample_of(g_step.start, r, g_dims.direct);
        x = pixels4(s * g_dims.inputs, q * 4u, g_dims.inputs);
    }
    g_x[r * ldx4 + q] = x;
}

// forward_gather: one workgroup per 16 x 8 tile of act (FG_BLOCKS 4x4 blocks: 4 row quads x 2 column
// quads), with K split into FG_SLICES interleaved slices of k-quads, one invocation per (slice, block):
// 128 invocations a workgroup, 4,096 for 32x784x128, where one invocation per 4x4 block would leave a
// real GPU with 256. The slices' partial blocks are summed through workgroup memory (8 KiB).
const FG_SLICES: u32 = 16u;
const FG_BLOCKS: u32 = 8u;
var<workgroup> f_partial: array<vec4<f32>, 512>; // (FG_SLICES, FG_BLOCKS, 4 rows)

@compute @workgroup_size(128)
fn forward_gather(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let block = lid % FG_BLOCKS;
    let slice = lid / FG_BLOCKS;
    let inputs = f_dims.inputs;
    // Column quads past fan_out are read clamped (and never stored); rows past the step read sample 0's
    // pixels (in range whatever `order` holds there) and are stored as 0. No invocation returns early:
    // all of them reach the barrier.
    let n4 = min(wg.x * 2u + block % 2u, (f_dims.fan_out - 1u) / 4u);
    let m0 = wg.y * 16u + (block / 2u) * 4u;
    var base = vec4<u32>(0u);
    for (var i = 0u; i < 4u; i++) {
        if (m0 + i < f_step.rows) {
            base[i] = sample_of(f_step.start, m0 + i, f_dims.direct) * inputs;
        }
    }
    let ldw4 = f_dims.ldw / 4u;
    let wi = f_dims.w_off / 4u + n4;
    let kl = inputs - 1u;
    let z = vec4<f32>(0.0);
    var acc0 = z;
    var acc1 = z;
    var acc2 = z;
    var acc3 = z;
    let kq = (inputs + 3u) / 4u;
    for (var q = slice; q < kq; q += FG_SLICES) {
        // In the last quad, pixel lanes past `inputs` are 0 and W's rows past it, which do not exist,
        // are clamped to row inputs-1: zero times a real weight.
        let k0 = q * 4u;
        let w0 = f_params[wi + k0 * ldw4];
        let w1 = f_params[wi + min(k0 + 1u, kl) * ldw4];
        let w2 = f_params[wi + min(k0 + 2u, kl) * ldw4];
        let w3 = f_params[wi + min(k0 + 3u, kl) * ldw4];
        let x0 = pixels4(base.x, k0, inputs);
        let x1 = pixels4(base.y, k0, inputs);
        let x2 = pixels4(base.z, k0, inputs);
        let x3 = pixels4(base.w, k0, inputs);
        acc0 += x0.x * w0 + x0.y * w1 + x0.z * w2 + x0.w * w3;
        acc1 += x1.x * w0 + x1.y * w1 + x1.z * w2 + x1.w * w3;
        acc2 += x2.x * w0 + x2.y * w1 + x2.z * w2 + x2.w * w3;
        acc3 += x3.x * w0 + x3.y * w1 + x3.z * w2 + x3.w * w3;
    }
    let at = (slice * FG_BLOCKS + block) * 4u;
    f_partial[at] = acc0;
    f_partial[at + 1u] = acc1;
    f_partial[at + 2u] = acc2;
    f_partial[at + 3u] = acc3;
    workgroupBarrier();
    // The tile's 32 output quads, one invocation each: sum the slices, add the bias, ReLU, store.
    if (lid < FG_BLOCKS * 4u) {
        let b = lid / 4u;
        let i = lid % 4u;
        var sum = z;
        for (var s = 0u; s < FG_SLICES; s++) {
            sum += f_partial[(s * FG_BLOCKS + b) * 4u + i];
        }
        let row = wg.y * 16u + (b / 2u) * 4u + i;
        let q = wg.x * 2u + b % 2u;
        if (row < f_dims.capacity && q * 4u < f_dims.fan_out) {
            var y = sum + f_params[f_dims.b_off / 4u + q];
            if (f_dims.relu != 0u) {
                y = select(z, y, relu_keep(y));
            }
            y = dropout4(y, q, row, 0u, f_step.counter, f_dims.drop_threshold, f_dims.drop_scale, vec2<u32>(f_dims.drop_key0, f_dims.drop_key1));
            let keep = n_lanes(q, f_dims.fan_out) & vec4<bool>(row < f_step.rows);
            f_act[row * (f_dims.ldc / 4u) + q] = select(z, y, keep);
        }
    }
}

// The update of one vec4 of the flat buffers; lanes outside `keep` (columns past fan_out, whose values
// may be anything) are written back as they were.
fn update_vec4(i: u32, g: vec4<f32>, keep: vec4<bool>) {
    let p0 = a_p[i];
    let m0 = a_m[i];
    let v0 = a_v[i];
    let u = update4(p0, g, m0, v0, a_step.alpha);
    a_p[i] = select(p0, u.p, keep);
    a_m[i] = select(m0, u.m, keep);
    a_v[i] = select(v0, u.v, keep);
}

// grad_update_gather: gid.x: column quad of W, gid.y: quad of W's rows (pixels), so an invocation holds a
// 4x4 block of dW: per live row, one u32 of pixels (two when unaligned) and one vec4 of dZ feed 16
// multiply-adds; the invocations of a workgroup row share the pixel loads. Row-quad 0 also sums dZ's
// columns for db. 6,272 invocations for 784x128. No workgroup memory, no barrier: early return is safe.
@compute @workgroup_size(16, 4)
fn grad_update_gather(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n4 = gid.x;
    let k0 = gid.y * 4u;
    let inputs = a_dims.inputs;
    if (n4 * 4u >= a_dims.fan_out || k0 >= inputs) {
        return;
    }
    let ldz4 = a_dims.ldz / 4u;
    var zi = a_dims.dz_off / 4u + n4;
    let z = vec4<f32>(0.0);
    var acc0 = z;
    var acc1 = z;
    var acc2 = z;
    var acc3 = z;
    var sum = z;
    for (var r = 0u; r < a_step.rows; r++) {
        // dZ's lanes past fan_out may hold anything: they reach only lanes that update_vec4 leaves as they were.
        let x = pixels4(sample_of(a_step.start, r, a_dims.direct) * inputs, k0, inputs);
        let d = a_dz[zi];
        zi += ldz4;
        acc0 += x.x * d;
        acc1 += x.y * d;
        acc2 += x.z * d;
        acc3 += x.w * d;
        sum += d;
    }
    let keep = n_lanes(n4, a_dims.fan_out);
    let ld4 = a_dims.ld / 4u;
    let wi = a_dims.w_off / 4u + gid.y * 4u * ld4 + n4;
    update_vec4(wi, acc0, keep);
    if (k0 + 1u < inputs) {
        update_vec4(wi + ld4, acc1, keep);
    }
    if (k0 + 2u < inputs) {
        update_vec4(wi + 2u * ld4, acc2, keep);
    }
    if (k0 + 3u < inputs) {
        update_vec4(wi + 3u * ld4, acc3, keep);
    }
    if (gid.y == 0u) {
        update_vec4(a_dims.b_off / 4u + n4, sum, keep);
    }
}

// ---- The texture path's first layer (software adapters, where a texel fetch is several times
// cheaper than a storage-buffer load: docs/perf.md) ----
// images_tex (rgba32uint) holds a split's pixels 16 to a texel, little-endian as in `images` (pixel
// 16 t + 4 c + b of a sample is byte b of component c of its texel t), each sample in `texels` whole
// texels (zero past `inputs`), 2^row_shift samples a texture row; order_tex (r32uint) holds entry i of
// the order at texel (i % ORDER_TEX_WIDTH, i / ORDER_TEX_WIDTH). Shifts and masks only: a CPU driver
// divides lane by lane. Layouts built by gpu::dataset (ImageTexture, OrderTexture).
const ORDER_TEX_WIDTH: u32 = 4096u;

// The texel of images_tex holding pixels 16 t .. 16 t + 15 of sample s.
fn image_texel(s: u32, t: u32, texels: u32, row_shift: u32) -> vec2<u32> {
    return vec2<u32>((s & ((1u << row_shift) - 1u)) * texels + t, s >> row_shift);
}

fn order_texel(i: u32) -> vec2<u32> {
    return vec2<u32>(i % ORDER_TEX_WIDTH, i / ORDER_TEX_WIDTH);
}

// Four pixels packed in a u32, normalised.
fn unpack_pixels(w: u32) -> vec4<f32> {
    return vec4<f32>(vec4<u32>(w, w >> 8u, w >> 16u, w >> 24u) & vec4<u32>(0xffu)) * PIXEL_SCALE;
}

// The first texel of the sample of row r (clamped to the last live row, so `order` is never read past
// the step; rows past it are stored as 0).
fn t_first_texel(r: u32) -> vec2<u32> {
    let i = t_step.start + min(r, t_step.rows - 1u);
    var s = i;
    if (t_dims.direct == 0u) {
        s = textureLoad(t_order, order_texel(i), 0).x;
    }
    return image_texel(s, 0u, t_dims.texels, t_dims.row_shift);
}

fn t_fma4(acc: vec4<f32>, x: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> vec4<f32> {
    return acc + x.x * b0 + x.y * b1 + x.z * b2 + x.w * b3;
}

// Row `row` of act: bias, ReLU, 0 past the live rows and in lanes past fan_out; nothing past capacity.
fn t_store(row: u32, q: u32, acc: vec4<f32>, bias: vec4<f32>, keep: vec4<bool>) {
    if (row >= t_dims.capacity) {
        return;
    }
    var y = acc + bias;
    if (t_dims.relu != 0u) {
        y = select(vec4<f32>(0.0), y, relu_keep(y));
    }
    y = dropout4(y, q, row, 0u, t_step.counter, t_dims.drop_threshold, t_dims.drop_scale, vec2<u32>(t_dims.drop_key0, t_dims.drop_key1));
    let live = keep & vec4<bool>(row < t_step.rows);
    t_act[row * (t_dims.ldc / 4u) + q] = select(vec4<f32>(0.0), y, live);
}

// forward_gather_tex: an 8x8 block of act per invocation (two column quads qa, qb; eight rows), 8x8
// invocations a workgroup, as mm_nn_tex. Per 16 pixels: one texel per row feeds 4 k-quads, so x costs
// 8 fetches where mm_nn_tex's mirror of a gathered x costs 32, and no gather, x buffer or copy is left.
@compute @workgroup_size(8, 8)
fn forward_gather_tex(@builtin(global_invocation_id) gid: vec3<u32>) {
    let qa = 2u * gid.x;
    let m0 = gid.y * 8u;
    if (qa * 4u >= t_dims.fan_out || m0 >= t_dims.capacity) {
        return;
    }
    // Column quad b may lie past fan_out (read clamped, never stored).
    let qb = qa + 1u;
    let qbc = min(qb, (t_dims.fan_out - 1u) / 4u);
    let c0 = t_first_texel(m0);
    let c1 = t_first_texel(m0 + 1u);
    let c2 = t_first_texel(m0 + 2u);
    let c3 = t_first_texel(m0 + 3u);
    let c4 = t_first_texel(m0 + 4u);
    let c5 = t_first_texel(m0 + 5u);
    let c6 = t_first_texel(m0 + 6u);
    let c7 = t_first_texel(m0 + 7u);
    let kl = t_dims.inputs - 1u;
    let z = vec4<f32>(0.0);
    var a0 = z; var a1 = z; var a2 = z; var a3 = z; var a4 = z; var a5 = z; var a6 = z; var a7 = z;
    var b0 = z; var b1 = z; var b2 = z; var b3 = z; var b4 = z; var b5 = z; var b6 = z; var b7 = z;
    for (var t = 0u; t < t_dims.texels; t++) {
        let dt = vec2<u32>(t, 0u);
        let u0 = textureLoad(t_images, c0 + dt, 0);
        let u1 = textureLoad(t_images, c1 + dt, 0);
        let u2 = textureLoad(t_images, c2 + dt, 0);
        let u3 = textureLoad(t_images, c3 + dt, 0);
        let u4 = textureLoad(t_images, c4 + dt, 0);
        let u5 = textureLoad(t_images, c5 + dt, 0);
        let u6 = textureLoad(t_images, c6 + dt, 0);
        let u7 = textureLoad(t_images, c7 + dt, 0);
        for (var j = 0u; j < 4u; j++) {
            // Pixel lanes past `inputs` are zeroed (the texture's zeros are not trusted) and W's rows
            // past it, which do not exist, are clamped to row inputs-1.
            let k0 = t * 16u + j * 4u;
            let lanes = vec4<u32>(k0, k0 + 1u, k0 + 2u, k0 + 3u) < vec4<u32>(t_dims.inputs);
            let w0 = t_dims.w_row + min(k0, kl);
            let w1 = t_dims.w_row + min(k0 + 1u, kl);
            let w2 = t_dims.w_row + min(k0 + 2u, kl);
            let w3 = t_dims.w_row + min(k0 + 3u, kl);
            let wa0 = textureLoad(t_w, vec2<u32>(qa, w0), 0);
            let wa1 = textureLoad(t_w, vec2<u32>(qa, w1), 0);
            let wa2 = textureLoad(t_w, vec2<u32>(qa, w2), 0);
            let wa3 = textureLoad(t_w, vec2<u32>(qa, w3), 0);
            let wb0 = textureLoad(t_w, vec2<u32>(qbc, w0), 0);
            let wb1 = textureLoad(t_w, vec2<u32>(qbc, w1), 0);
            let wb2 = textureLoad(t_w, vec2<u32>(qbc, w2), 0);
            let wb3 = textureLoad(t_w, vec2<u32>(qbc, w3), 0);
            let x0 = select(z, unpack_pixels(u0[j]), lanes);
            let x1 = select(z, unpack_pixels(u1[j]), lanes);
            let x2 = select(z, unpack_pixels(u2[j]), lanes);
            let x3 = select(z, unpack_pixels(u3[j]), lanes);
            let x4 = select(z, unpack_pixels(u4[j]), lanes);
            let x5 = select(z, unpack_pixels(u5[j]), lanes);
            let x6 = select(z, unpack_pixels(u6[j]), lanes);
            let x7 = select(z, unpack_pixels(u7[j]), lanes);
            a0 = t_fma4(a0, x0, wa0, wa1, wa2, wa3); b0 = t_fma4(b0, x0, wb0, wb1, wb2, wb3);
            a1 = t_fma4(a1, x1, wa0, wa1, wa2, wa3); b1 = t_fma4(b1, x1, wb0, wb1, wb2, wb3);
            a2 = t_fma4(a2, x2, wa0, wa1, wa2, wa3); b2 = t_fma4(b2, x2, wb0, wb1, wb2, wb3);
            a3 = t_fma4(a3, x3, wa0, wa1, wa2, wa3); b3 = t_fma4(b3, x3, wb0, wb1, wb2, wb3);
            a4 = t_fma4(a4, x4, wa0, wa1, wa2, wa3); b4 = t_fma4(b4, x4, wb0, wb1, wb2, wb3);
            a5 = t_fma4(a5, x5, wa0, wa1, wa2, wa3); b5 = t_fma4(b5, x5, wb0, wb1, wb2, wb3);
            a6 = t_fma4(a6, x6, wa0, wa1, wa2, wa3); b6 = t_fma4(b6, x6, wb0, wb1, wb2, wb3);
            a7 = t_fma4(a7, x7, wa0, wa1, wa2, wa3); b7 = t_fma4(b7, x7, wb0, wb1, wb2, wb3);
        }
    }
    let bias_a = t_params[t_dims.b_off / 4u + qa];
    let ka = n_lanes(qa, t_dims.fan_out);
    t_store(m0, qa, a0, bias_a, ka);
    t_store(m0 + 1u, qa, a1, bias_a, ka);
    t_store(m0 + 2u, qa, a2, bias_a, ka);
    t_store(m0 + 3u, qa, a3, bias_a, ka);
    t_store(m0 + 4u, qa, a4, bias_a, ka);
    t_store(m0 + 5u, qa, a5, bias_a, ka);
    t_store(m0 + 6u, qa, a6, bias_a, ka);
    t_store(m0 + 7u, qa, a7, bias_a, ka);
    if (qb * 4u < t_dims.fan_out) {
        let bias_b = t_params[t_dims.b_off / 4u + qb];
        let kb = n_lanes(qb, t_dims.fan_out);
        t_store(m0, qb, b0, bias_b, kb);
        t_store(m0 + 1u, qb, b1, bias_b, kb);
        t_store(m0 + 2u, qb, b2, bias_b, kb);
        t_store(m0 + 3u, qb, b3, bias_b, kb);
        t_store(m0 + 4u, qb, b4, bias_b, kb);
        t_store(m0 + 5u, qb, b5, bias_b, kb);
        t_store(m0 + 6u, qb, b6, bias_b, kb);
        t_store(m0 + 7u, qb, b7, bias_b, kb);
    }
}

// ---- Dropout (Keras' inverted dropout, training only) ----
// Column 4q + i of row r at optimizer step t in hidden layer l survives when word i of
// Philox4x32-10(key, (q, r, t, l)) is at least the layer's threshold round(rate * 2^32), and is then
// multiplied by 1 / (1 - rate): integer tests only, so the CPU twin (cpu::dropout) draws the same mask.
const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// (high, low) words of the 64-bit product a * b, from 16-bit halves.
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let mid = ((a0 * b0) >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
    return vec2<u32>(a1 * b1 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u), a * b);
}

fn philox_round(key: vec2<u32>, c: vec4<u32>) -> vec4<u32> {
    let p0 = mulhilo(PHILOX_M0, c.x);
    let p1 = mulhilo(PHILOX_M1, c.z);
    return vec4<u32>(p1.x ^ c.y ^ key.x, p1.y, p0.x ^ c.w ^ key.y, p0.y);
}

// Philox4x32-10 (Random123's philox4x32_10; tests/kernels.rs checks its known answers through the
// dropout kernel and cpu::philox4x32_10).
fn philox4(key: vec2<u32>, ctr: vec4<u32>) -> vec4<u32> {
    var k = key;
    var c = philox_round(k, ctr);
    for (var round = 1u; round < 10u; round++) {
        k += vec2<u32>(PHILOX_W0, PHILOX_W1);
        c = philox_round(k, c);
    }
    return c;
}

// Dropout of act quad q of row `row` in hidden layer `layer` at step `counter`: kept lanes times
// `scale`, the others 0; threshold 0 leaves y as it is.
fn dropout4(y: vec4<f32>, q: u32, row: u32, layer: u32, counter: u32, threshold: u32, scale: f32, key: vec2<u32>) -> vec4<f32> {
    if (threshold == 0u) {
        return y;
    }
    let u = philox4(key, vec4<u32>(q, row, counter, layer));
    return select(vec4<f32>(0.0), y * scale, u >= vec4<u32>(threshold));
}

struct DropoutDims {
    cols: u32,      // the layer's fan_out
    ld: u32,        // row stride of act (a multiple of 4)
    layer: u32,     // hidden layer index (>= 1: the first layer's dropout is the forward epilogue)
    threshold: u32,
    scale: f32,
    key0: u32,
    key1: u32,
    _pad0: u32,
}
@group(0) @binding(0) var<storage, read_write> d_act: array<vec4<f32>>; // (capacity, ld)
@group(0) @binding(1) var<uniform> d_dims: DropoutDims;
@group(0) @binding(2) var<uniform> d_step: Step;

// gid.x: column quad, gid.y: row; rows past the step's live rows and lanes past `cols` are left as
// they are.
@compute @workgroup_size(64)
fn dropout(@builtin(global_invocation_id) gid: vec3<u32>) {
    let q = gid.x;
    let row = gid.y;
    if (q * 4u >= d_dims.cols || row >= d_step.rows) {
        return;
    }
    let i = row * (d_dims.ld / 4u) + q;
    let y = d_act[i];
    let dropped = dropout4(y, q, row, d_dims.layer, d_step.counter, d_dims.threshold, d_dims.scale, vec2<u32>(d_dims.key0, d_dims.key1));
    d_act[i] = select(y, dropped, n_lanes(q, d_dims.cols));
}
