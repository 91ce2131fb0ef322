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
}

// Same record as in adam.wgsl and gather.wgsl (tests/shaders.rs checks); rows, stat, scale and start are read here.
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
                y = select(z4, y, positive(act[r * lda4 + q]) & lanes_below(q, dims.k));
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
