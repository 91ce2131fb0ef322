// dense_tail: the whole last dense layer of a training step in ONE workgroup, so a step needs no
// dispatch between the logits and the first layer's backward:
//   1. logits (rows, classes) = act · W + b, into the dlogits scratch of `dz`
//   2. per row: sparse softmax cross-entropy (log-sum-exp, max-subtracted), dlogits = (softmax - onehot)
//      * step.scale in place; the loss, correct and non-finite counts kept per invocation
//   3. dW (k, classes) = act^T · dlogits and db = colsum(dlogits) into `grads`, and (dims.input_grad != 0)
//      the masked input gradient dZ (rows, k) = (dlogits · W^T) * (act > 0) into `dz`
//   4. the three counts reduced across the workgroup into ONE StepStat at stats[step.stat]
// Phases pass data through `dz` (storage), hence storageBarrier + workgroupBarrier between them; every
// invocation reaches every barrier (loops over work items, no early return). Any capacity, k and class
// count: work items are strided by the workgroup size. Only rows < step.rows count; dlogits and dZ are
// written 0 past them (a partial batch), and neither `act`, `order` nor `labels` is read there.
// Padding lanes of every input may hold anything (tests put NaN there): they are masked before use.
// Non-finite values are detected from bit patterns, never with x != x (undefined under Metal's fast math).
// Twin: cpu::dense_tail. Tested by tests/kernels.rs (through gpu::selftest).

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

struct TailDims {
    k: u32,          // the layer's fan_in: columns of act and of dZ
    classes: u32,    // the layer's fan_out
    capacity: u32,   // rows of act, dlogits and dZ
    lda: u32,        // row stride of act and of dZ (a multiple of 4)
    ldw: u32,        // row stride of W and dW (a multiple of 4)
    ldo: u32,        // row stride of dlogits (a multiple of 4)
    w_off: u32,      // W (k, ldw) in params and dW in grads, in floats (multiples of 4, like the rest)
    b_off: u32,      // b (classes) in params and db in grads
    dl_off: u32,     // dlogits (capacity, ldo) in dz
    dx_off: u32,     // dZ (capacity, lda) in dz
    direct: u32,     // != 0: row r is sample step.start + r, else order[step.start + r]
    input_grad: u32, // != 0: write dZ (the layer below has weights)
    update: u32,     // dense_tail_tex only: != 0 also applies the optimizer to W and b (p, m, v at w_off, b_off)
    mask_scale: f32, // != 0: act is a hidden layer's output after dropout; dZ's kept lanes are scaled by it
    _pad1: u32,
    _pad2: u32,
}

// Same record as in optimizers.wgsl and gather.wgsl (tests/shaders.rs checks); rows, stat, scale and start are read here.
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

struct StepStat {
    loss: f32,
    correct: u32,
    nonfinite: u32, // rows whose logits or loss are infinite or NaN
    _pad: u32,
}

const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> act: array<vec4<f32>>;        // (capacity, lda) from float 0
@group(0) @binding(1) var<storage, read> params: array<vec4<f32>>;     // W (k, ldw) at w_off, b at b_off
@group(0) @binding(2) var<storage, read> labels: array<u32>;           // (samples in the split)
@group(0) @binding(3) var<storage, read> order: array<u32>;            // (order length)
@group(0) @binding(4) var<storage, read_write> grads: array<vec4<f32>>; // dW (k, ldw) at w_off, db at b_off
@group(0) @binding(5) var<storage, read_write> dz: array<vec4<f32>>;    // dlogits at dl_off, dZ at dx_off
@group(0) @binding(6) var<storage, read_write> stats: array<StepStat>;  // (stat slots)
@group(0) @binding(7) var<uniform> dims: TailDims;
@group(0) @binding(8) var<uniform> step: Step;

var<workgroup> red_loss: array<f32, WG>;
var<workgroup> red_correct: array<u32, WG>;
var<workgroup> red_bad: array<u32, WG>;

fn lanes_below(i4: u32, n: u32) -> vec4<bool> {
    let i0 = i4 * 4u;
    return vec4<u32>(i0, i0 + 1u, i0 + 2u, i0 + 3u) < vec4<u32>(n);
}

// Infinite or NaN: all exponent bits set.
fn nonfinite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

// act > 0 from the bit patterns (positive sign, magnitude in (0, inf]): NaN is not > 0, as in cpu::relu.
fn positive(v: vec4<f32>) -> vec4<bool> {
    let b = bitcast<vec4<i32>>(v);
    return (b > vec4<i32>(0)) & (b <= vec4<i32>(0x7f800000));
}

// dZ's factor where act > 0: dropout's scale (act being a layer's output after dropout), else 1,
// which leaves the values bit for bit (twin: cpu::relu_dropout_backward).
fn dz_scale() -> f32 {
    return select(1.0, dims.mask_scale, dims.mask_scale != 0.0);
}

// One float of dz by float index.
fn dz_at(i: u32) -> f32 {
    return dz[i / 4u][i % 4u];
}

@compute @workgroup_size(256)
fn dense_tail(@builtin(local_invocation_index) lid: u32) {
    let z4 = vec4<f32>(0.0);
    let nq = (dims.classes + 3u) / 4u; // class quads
    let kq = (dims.k + 3u) / 4u;       // k quads
    let lda4 = dims.lda / 4u;
    let ldw4 = dims.ldw / 4u;
    let ldo4 = dims.ldo / 4u;
    let w4 = dims.w_off / 4u;
    let dl4 = dims.dl_off / 4u;
    let kl = dims.k - 1u;

    // 1. Logits, one (row, class quad) per item; rows past the step get 0 (their dlogits), and so do
    // the class lanes past `classes` (W's and b's padding lanes are masked out).
    for (var it = lid; it < dims.capacity * nq; it += WG) {
        let r = it / nq;
        let j4 = it % nq;
        var y = z4;
        if (r < step.rows) {
            let keep = lanes_below(j4, dims.classes);
            let ai = r * lda4;
            for (var q = 0u; q < kq; q++) {
                // act's lanes past k are zeroed; W's rows past k, which do not exist, are clamped to
                // row k-1 and meet those zeros.
                let k0 = q * 4u;
                let a = select(z4, act[ai + q], lanes_below(q, dims.k));
                let wq = w4 + j4;
                y += a.x * select(z4, params[wq + k0 * ldw4], keep)
                    + a.y * select(z4, params[wq + min(k0 + 1u, kl) * ldw4], keep)
                    + a.z * select(z4, params[wq + min(k0 + 2u, kl) * ldw4], keep)
                    + a.w * select(z4, params[wq + min(k0 + 3u, kl) * ldw4], keep);
            }
            y = select(z4, y + params[dims.b_off / 4u + j4], keep);
        }
        dz[dl4 + r * ldo4 + j4] = y;
    }
    // An execution barrier that also makes this phase's storage writes visible to the workgroup.
    storageBarrier();

    // 2. Softmax cross-entropy, one live row per item, dlogits in place (padding lanes stay 0).
    var loss = 0.0;
    var correct = 0u;
    var bad = 0u;
    for (var r = lid; r < step.rows; r += WG) {
        var sample = step.start + r;
        if (dims.direct == 0u) {
            sample = order[step.start + r];
        }
        // Labels are checked on upload; the clamp only keeps the index inside the row by construction.
        let label = min(labels[sample], dims.classes - 1u);
        let row = dims.dl_off + r * dims.ldo;
        var arg = 0u;
        var mx = dz_at(row);
        var any_bad = nonfinite(mx);
        for (var j = 1u; j < dims.classes; j++) {
            let v = dz_at(row + j);
            any_bad = any_bad || nonfinite(v);
            if (v > mx) {
                arg = j;
                mx = v;
            }
        }
        var sum = 0.0;
        for (var j = 0u; j < dims.classes; j++) {
            sum += exp(dz_at(row + j) - mx);
        }
        let lse = mx + log(sum);
        let l = lse - dz_at(row + label);
        loss += l;
        correct += select(0u, 1u, arg == label);
        bad += select(0u, 1u, any_bad || nonfinite(l));
        for (var j = 0u; j < dims.classes; j++) {
            let i = row + j;
            let p = exp(dz_at(i) - lse);
            dz[i / 4u][i % 4u] = (p - select(0.0, 1.0, j == label)) * step.scale;
        }
    }
    // An execution barrier that also makes this phase's storage writes visible to the workgroup.
    storageBarrier();

    // 3. Gradients. Items [0, kq * nq): a 4x4 block of dW (4 rows of k, one class quad) over the live
    // rows, and for k-quad 0 also db. Items from kq * nq on, when input_grad: one (row, k quad) of dZ.
    let n_dw = kq * nq;
    var n_dx = 0u;
    if (dims.input_grad != 0u) {
        n_dx = dims.capacity * kq;
    }
    for (var it = lid; it < n_dw + n_dx; it += WG) {
        if (it < n_dw) {
            let q = it / nq;
            let j4 = it % nq;
            var acc0 = z4;
            var acc1 = z4;
            var acc2 = z4;
            var acc3 = z4;
            var sum = z4;
            for (var r = 0u; r < step.rows; r++) {
                // act's lanes past k may be NaN padding: they reach only rows of dW that are not stored.
                let a = act[r * lda4 + q];
                let d = dz[dl4 + r * ldo4 + j4];
                acc0 += a.x * d;
                acc1 += a.y * d;
                acc2 += a.z * d;
                acc3 += a.w * d;
                sum += d;
            }
            let keep = lanes_below(j4, dims.classes);
            let k0 = q * 4u;
            let gi = w4 + k0 * ldw4 + j4;
            grads[gi] = select(z4, acc0, keep);
            if (k0 + 1u < dims.k) {
                grads[gi + ldw4] = select(z4, acc1, keep);
            }
            if (k0 + 2u < dims.k) {
                grads[gi + 2u * ldw4] = select(z4, acc2, keep);
            }
            if (k0 + 3u < dims.k) {
                grads[gi + 3u * ldw4] = select(z4, acc3, keep);
            }
            if (q == 0u) {
                grads[dims.b_off / 4u + j4] = select(z4, sum, keep);
            }
        } else {
            let e = it - n_dw;
            let r = e / kq;
            let q = e % kq;
            var y = z4;
            if (r < step.rows) {
                let k0 = q * 4u;
                let k1 = min(k0 + 1u, kl);
                let k2 = min(k0 + 2u, kl);
                let k3 = min(k0 + 3u, kl);
                for (var j4 = 0u; j4 < nq; j4++) {
                    // dlogits' padding lanes are 0 (phase 1) and W's are masked, so no NaN meets a 0.
                    let d = dz[dl4 + r * ldo4 + j4];
                    let keep = lanes_below(j4, dims.classes);
                    let wq = w4 + j4;
                    y += vec4<f32>(
                        dot(d, select(z4, params[wq + k0 * ldw4], keep)),
                        dot(d, select(z4, params[wq + k1 * ldw4], keep)),
                        dot(d, select(z4, params[wq + k2 * ldw4], keep)),
                        dot(d, select(z4, params[wq + k3 * ldw4], keep)),
                    );
                }
                y = select(z4, y * dz_scale(), positive(act[r * lda4 + q]) & lanes_below(q, dims.k));
            }
            dz[dims.dx_off / 4u + r * lda4 + q] = y;
        }
    }

    // 4. The step's stats, one record: invocation 0 adds the partials of the invocations that had rows.
    // One barrier and a serial sum rather than a tree: a software rasteriser pays for every barrier
    // (lavapipe runs a workgroup's invocations as coroutines that all switch at each one), and the sum
    // is at most WG adds from workgroup memory.
    red_loss[lid] = loss;
    red_correct[lid] = correct;
    red_bad[lid] = bad;
    workgroupBarrier();
    if (lid == 0u) {
        var total = StepStat(0.0, 0u, 0u, 0u);
        for (var i = 0u; i < min(step.rows, WG); i++) {
            total.loss += red_loss[i];
            total.correct += red_correct[i];
            total.nonfinite += red_bad[i];
        }
        stats[step.stat] = total;
    }
}

// dense_tail_tex: the same computation as dense_tail for the texture operand path (software adapters),
// laid out for a CPU driver, where a storage-buffer or workgroup-memory load costs about 10x a texel
// fetch and 20x a register (docs/perf.md, `cargo bench --bench lavapipe_loads`): act and W|b are read
// from textures, and each invocation keeps what it reuses in named variables (a row's four class quads).
// Work is filtered by loop bounds, never by a branch inside a loop: lavapipe runs a branch's body with
// its lanes masked off even when no lane takes it (an untaken zero-fill branch once cost 40% of this
// kernel, docs/perf.md).
//   A. One row per invocation: the row's logits (W|b rows from the texture, uniform across the
//      invocations), its softmax cross-entropy and dlogits in registers, dlogits stored for phase B, and
//      (input_grad) the row's masked dZ from the same registers.
//   B. One group of TT_QUADS k quads per invocation: dW = act^T · dlogits and db over the live rows,
//      stored, and with dims.update applied at once by the optimizer (p from wb_tex, m and v from their buffers;
//      the texture path does this when no layer between the first and this one needs a standalone update).
// One barrier between them; the stats are reduced after it. At most TT_MAX_CLASSES classes (the
// dlogits of a row live in registers); the host runs dense_tail past that.
// Textures: act_tex (capacity rows, k/4 texels; texel q of row r holds act[r, 4q..4q+4]) and wb_tex
// (k + 1 rows, classes/4 texels: row i < k is W's row i, row k is b). Their padding lanes may hold
// anything. The dims keep dense_tail's meaning: lda is dZ's row stride, ldw, w_off and b_off place dW and
// db in tt_grads.

const TT_WG: u32 = 32u;
const TT_MAX_CLASSES: u32 = 16u; // four class quads, each its own variable
const TT_QUADS: u32 = 4u;        // k quads per invocation in phase B

// dense_tail_tex's own group 0 (the same buffers as dense_tail's bindings 2-8, numbered from 0).
@group(0) @binding(0) var<storage, read> tt_labels: array<u32>;
@group(0) @binding(1) var<storage, read> tt_order: array<u32>;
@group(0) @binding(2) var<storage, read_write> tt_grads: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> tt_dz: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> tt_stats: array<StepStat>;
// With dims.update: the parameters, m and v the update writes (W and b at w_off, b_off, as in tt_grads).
@group(0) @binding(5) var<storage, read_write> tt_p: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> tt_m: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> tt_v: array<vec4<f32>>;
@group(0) @binding(8) var<uniform> tt_dims: TailDims;
@group(0) @binding(9) var<uniform> tt_step: Step;
@group(1) @binding(0) var act_tex: texture_2d<f32>;
@group(1) @binding(1) var wb_tex: texture_2d<f32>;

var<workgroup> tt_loss: array<f32, TT_WG>;
var<workgroup> tt_correct: array<u32, TT_WG>;
var<workgroup> tt_bad: array<u32, TT_WG>;

// dense_tail_tex's dZ factor, as dz_scale.
fn tt_dz_scale() -> f32 {
    return select(1.0, tt_dims.mask_scale, tt_dims.mask_scale != 0.0);
}

// Row i (< k, or k for the bias) of W|b, class quad j4, its lanes past `classes` zeroed.
fn wb_quad(j4: u32, i: u32) -> vec4<f32> {
    let keep = lanes_below(j4, tt_dims.classes);
    return select(vec4<f32>(0.0), textureLoad(wb_tex, vec2<u32>(j4, i), 0), keep);
}

// Class quad j4 of the four (selects, not an indexed array).
fn quad_of(y0: vec4<f32>, y1: vec4<f32>, y2: vec4<f32>, y3: vec4<f32>, j4: u32) -> vec4<f32> {
    return select(select(select(y3, y2, j4 == 2u), y1, j4 == 1u), y0, j4 == 0u);
}

// Class j of the four class quads.
fn class_of(y0: vec4<f32>, y1: vec4<f32>, y2: vec4<f32>, y3: vec4<f32>, j: u32) -> f32 {
    let q = j / 4u;
    let v = select(select(select(y3, y2, q == 2u), y1, q == 1u), y0, q == 0u);
    let l = j % 4u;
    return select(select(select(v.w, v.z, l == 2u), v.y, l == 1u), v.x, l == 0u);
}

// W rows k0..k0+3 (clamped to k - 1: rows past k do not exist and meet zeroed act lanes or are not
// stored) times class quad j4: y += a.x W[k0] + ... (forward) for one quad.
fn fwd_quad(a: vec4<f32>, j4: u32, k0: u32, kl: u32) -> vec4<f32> {
    return a.x * wb_quad(j4, k0) + a.y * wb_quad(j4, min(k0 + 1u, kl))
        + a.z * wb_quad(j4, min(k0 + 2u, kl)) + a.w * wb_quad(j4, min(k0 + 3u, kl));
}

// (d · W[k0], ..., d · W[k0+3]) for class quad j4 (rows clamped as in fwd_quad).
fn back_quad(d: vec4<f32>, j4: u32, k0: u32, kl: u32) -> vec4<f32> {
    return vec4<f32>(
        dot(d, wb_quad(j4, k0)),
        dot(d, wb_quad(j4, min(k0 + 1u, kl))),
        dot(d, wb_quad(j4, min(k0 + 2u, kl))),
        dot(d, wb_quad(j4, min(k0 + 3u, kl))),
    );
}

// dlogits of class quad j4: (softmax - onehot) * scale, lanes past `classes` 0.
fn dlogit_quad(y: vec4<f32>, j4: u32, lse: f32, label: u32) -> vec4<f32> {
    let lane = vec4<u32>(0u, 1u, 2u, 3u) + vec4<u32>(j4 * 4u);
    let onehot = select(vec4<f32>(0.0), vec4<f32>(1.0), lane == vec4<u32>(label));
    let d = (exp(y - vec4<f32>(lse)) - onehot) * tt_step.scale;
    return select(vec4<f32>(0.0), d, lanes_below(j4, tt_dims.classes));
}

// The update of the vec4 at float offset 4 * i of p, m, v with gradient g; p0 is its value before the
// step (from wb_tex); lanes outside `keep` keep their values.
fn tail_update(i: u32, p0: vec4<f32>, g: vec4<f32>, keep: vec4<bool>) {
    let m0 = tt_m[i];
    let v0 = tt_v[i];
    let u = update4(p0, g, m0, v0, tt_step.alpha);
    tt_m[i] = select(m0, u.m, keep);
    tt_v[i] = select(v0, u.v, keep);
    tt_p[i] = select(p0, u.p, keep);
}

@compute @workgroup_size(32)
fn dense_tail_tex(@builtin(local_invocation_index) lid: u32) {
    let z4 = vec4<f32>(0.0);
    let nq = (tt_dims.classes + 3u) / 4u;
    let kq = (tt_dims.k + 3u) / 4u;
    let kl = tt_dims.k - 1u;
    let lda4 = tt_dims.lda / 4u;
    let ldw4 = tt_dims.ldw / 4u;
    let ldo4 = tt_dims.ldo / 4u;
    let dl4 = tt_dims.dl_off / 4u;
    let dx4 = tt_dims.dx_off / 4u;
    let dx_quads = select(0u, kq, tt_dims.input_grad != 0u); // dZ quads a row writes

    // A. Live rows, one per invocation.
    var loss = 0.0;
    var correct = 0u;
    var bad = 0u;
    for (var r = lid; r < tt_step.rows; r += TT_WG) {
        // Logits, one class quad at a time (act re-read per quad: cheaper than masked-off quads).
        var y0 = z4;
        var y1 = z4;
        var y2 = z4;
        var y3 = z4;
        for (var j4 = 0u; j4 < nq; j4++) {
            var acc = wb_quad(j4, tt_dims.k);
            for (var q = 0u; q < kq; q++) {
                let a = select(z4, textureLoad(act_tex, vec2<u32>(q, r), 0), lanes_below(q, tt_dims.k));
                acc += fwd_quad(a, j4, q * 4u, kl);
            }
            y0 = select(y0, acc, j4 == 0u);
            y1 = select(y1, acc, j4 == 1u);
            y2 = select(y2, acc, j4 == 2u);
            y3 = select(y3, acc, j4 == 3u);
        }
        var sample = tt_step.start + r;
        if (tt_dims.direct == 0u) {
            sample = tt_order[tt_step.start + r];
        }
        let label = min(tt_labels[sample], tt_dims.classes - 1u);
        var arg = 0u;
        var mx = y0.x;
        var any_bad = false;
        for (var j = 0u; j < tt_dims.classes; j++) {
            let v = class_of(y0, y1, y2, y3, j);
            any_bad = any_bad || nonfinite(v);
            if (v > mx) {
                arg = j;
                mx = v;
            }
        }
        var sum = 0.0;
        for (var j = 0u; j < tt_dims.classes; j++) {
            sum += exp(class_of(y0, y1, y2, y3, j) - mx);
        }
        let lse = mx + log(sum);
        let l = lse - class_of(y0, y1, y2, y3, label);
        loss += l;
        correct += select(0u, 1u, arg == label);
        bad += select(0u, 1u, any_bad || nonfinite(l));
        y0 = dlogit_quad(y0, 0u, lse, label);
        y1 = dlogit_quad(y1, 1u, lse, label);
        y2 = dlogit_quad(y2, 2u, lse, label);
        y3 = dlogit_quad(y3, 3u, lse, label);
        for (var j4 = 0u; j4 < nq; j4++) {
            tt_dz[dl4 + r * ldo4 + j4] = quad_of(y0, y1, y2, y3, j4);
        }
        // The masked input gradient, from the dlogits in registers.
        for (var q = 0u; q < dx_quads; q++) {
            let k0 = q * 4u;
            var g = z4;
            for (var j4 = 0u; j4 < nq; j4++) {
                g += back_quad(quad_of(y0, y1, y2, y3, j4), j4, k0, kl);
            }
            let a = textureLoad(act_tex, vec2<u32>(q, r), 0);
            tt_dz[dx4 + r * lda4 + q] = select(z4, g * tt_dz_scale(), positive(a) & lanes_below(q, tt_dims.k));
        }
    }
    // Rows past a partial batch: dlogits and dZ are 0, nothing is read.
    for (var r = tt_step.rows + lid; r < tt_dims.capacity; r += TT_WG) {
        for (var j4 = 0u; j4 < nq; j4++) {
            tt_dz[dl4 + r * ldo4 + j4] = z4;
        }
        for (var q = 0u; q < dx_quads; q++) {
            tt_dz[dx4 + r * lda4 + q] = z4;
        }
    }
    tt_loss[lid] = loss;
    tt_correct[lid] = correct;
    tt_bad[lid] = bad;
    // An execution barrier that also makes phase A's storage writes visible to the workgroup.
    storageBarrier();
    workgroupBarrier();

    // B. dW and db over the live rows, TT_QUADS = 4 k quads (16 rows of dW) per invocation, per class
    // quad: dlogits are loaded once per row for the 16 rows (a storage load is the dear part here).
    let groups = (kq + TT_QUADS - 1u) / TT_QUADS;
    for (var gi = lid; gi < groups; gi += TT_WG) {
        let q0 = gi * TT_QUADS;
        let qa = vec4<u32>(min(q0, kq - 1u), min(q0 + 1u, kq - 1u), min(q0 + 2u, kq - 1u), min(q0 + 3u, kq - 1u));
        for (var j4 = 0u; j4 < nq; j4++) {
            var c0 = z4;
            var c1 = z4;
            var c2 = z4;
            var c3 = z4;
            var c4 = z4;
            var c5 = z4;
            var c6 = z4;
            var c7 = z4;
            var c8 = z4;
            var c9 = z4;
            var c10 = z4;
            var c11 = z4;
            var c12 = z4;
            var c13 = z4;
            var c14 = z4;
            var c15 = z4;
            var s = z4;
            for (var r = 0u; r < tt_step.rows; r++) {
                let d = tt_dz[dl4 + r * ldo4 + j4];
                s += d;
                // act's lanes past k may be NaN padding: they reach only rows of dW not stored.
                let a0 = textureLoad(act_tex, vec2<u32>(qa.x, r), 0);
                let a1 = textureLoad(act_tex, vec2<u32>(qa.y, r), 0);
                let a2 = textureLoad(act_tex, vec2<u32>(qa.z, r), 0);
                let a3 = textureLoad(act_tex, vec2<u32>(qa.w, r), 0);
                c0 += a0.x * d;
                c1 += a0.y * d;
                c2 += a0.z * d;
                c3 += a0.w * d;
                c4 += a1.x * d;
                c5 += a1.y * d;
                c6 += a1.z * d;
                c7 += a1.w * d;
                c8 += a2.x * d;
                c9 += a2.y * d;
                c10 += a2.z * d;
                c11 += a2.w * d;
                c12 += a3.x * d;
                c13 += a3.y * d;
                c14 += a3.z * d;
                c15 += a3.w * d;
            }
            let keep = lanes_below(j4, tt_dims.classes);
            let w = tt_dims.w_off / 4u + j4;
            let k0 = q0 * 4u;
            let rows = array<vec4<f32>, 16>(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15);
            for (var i = 0u; i < min(16u, tt_dims.k - min(k0, tt_dims.k)); i++) {
                let at = w + (k0 + i) * ldw4;
                let g = select(z4, rows[i], keep);
                tt_grads[at] = g;
                // A loop of 0 or 1 rather than a branch (see the top of dense_tail_tex).
                for (var a = 0u; a < tt_dims.update; a++) {
                    tail_update(at, textureLoad(wb_tex, vec2<u32>(j4, k0 + i), 0), g, keep);
                }
            }
            if (gi == 0u) {
                let at = tt_dims.b_off / 4u + j4;
                let g = select(z4, s, keep);
                tt_grads[at] = g;
                for (var a = 0u; a < tt_dims.update; a++) {
                    tail_update(at, textureLoad(wb_tex, vec2<u32>(j4, tt_dims.k), 0), g, keep);
                }
            }
        }
    }

    if (lid == 0u) {
        var total = StepStat(0.0, 0u, 0u, 0u);
        for (var i = 0u; i < min(tt_step.rows, TT_WG); i++) {
            total.loss += tt_loss[i];
            total.correct += tt_correct[i];
            total.nonfinite += tt_bad[i];
        }
        tt_stats[tt_step.stat] = total;
    }
}
