// Sparse softmax cross-entropy of one training step, in one workgroup: for each of the step's `rows`
// samples, dlogits = (softmax(z) - onehot(label)) * scale (the host passes scale = 1 / rows), and the
// summed loss (log-sum-exp form, max-subtracted so logits of +-1000 stay finite), correct count (first
// maximum == label) and non-finite count (rows whose logits or loss are infinite or NaN, from the bit
// patterns) of the rows each invocation handled, written to stats[stat * WG + lid], where they
// stay until the host reads a whole run of steps at once and adds each step's WG partial sums. There is
// no workgroup reduction on purpose: one workgroupBarrier cost ~2 ms per dispatch on lavapipe
// (docs/perf.md), far more than the host's additions. Rows from `rows` to `capacity` (a partial last batch) get dlogits = 0, so the matmuls can
// always run over the full capacity and those rows add nothing to any gradient.
// Twins: cpu::softmax_xent, cpu::xent_nonfinite. Tested by tests/kernels.rs.

struct XentDims {
    cols: u32,     // classes
    ld: u32,       // row stride of logits and dlogits, in floats
    capacity: u32, // rows held by the logits / dlogits buffers
    _pad: u32,
}

// Per-step values, one 256-byte record per queued step; each ring slot's bind group sees its own record.
struct Step {
    rows: u32,  // samples in this step
    slot: u32,  // the step's ring slot (not read here)
    stat: u32,  // index into stats
    alpha: f32, // Adam's bias-corrected step size (read by optimizers.wgsl)
    scale: f32, // gradient scale, 1 / rows
    start: u32, // first index into the epoch's order (read by gather.wgsl, tail.wgsl)
    _pad1: u32,
    _pad2: u32,
}

struct StepStat {
    loss: f32,
    correct: u32,
    nonfinite: u32, // rows whose logits or loss are infinite or NaN
    _pad: u32,
}

// Infinite or NaN: all exponent bits set. From the bits because under fast math (Metal) x != x is
// undefined.
fn nonfinite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

const WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> logits: array<f32>;          // (capacity, ld)
@group(0) @binding(1) var<storage, read> labels: array<u32>;          // (samples): the resident split's
@group(0) @binding(2) var<storage, read> order: array<u32>;           // (epoch entries): row r is sample order[step.start + r]
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;   // (capacity, ld)
@group(0) @binding(4) var<storage, read_write> stats: array<StepStat>; // (stat slots, WG)
@group(0) @binding(5) var<uniform> dims: XentDims;
@group(0) @binding(6) var<uniform> step: Step;

@compute @workgroup_size(64)
fn softmax_xent(@builtin(local_invocation_index) lid: u32) {
    var loss = 0.0;
    var correct = 0u;
    var bad = 0u;
    for (var r = lid; r < dims.capacity; r += WG) {
        let row = r * dims.ld;
        if (r >= step.rows) {
            for (var j = 0u; j < dims.cols; j++) {
                dlogits[row + j] = 0.0;
            }
            continue;
        }
        let label = labels[order[step.start + r]];
        var arg = 0u;
        var mx = logits[row];
        var any_bad = nonfinite(mx);
        for (var j = 1u; j < dims.cols; j++) {
            let v = logits[row + j];
            any_bad = any_bad || nonfinite(v);
            if (v > mx) {
                arg = j;
                mx = v;
            }
        }
        var sum = 0.0;
        for (var j = 0u; j < dims.cols; j++) {
            sum += exp(logits[row + j] - mx);
        }
        let lse = mx + log(sum);
        let l = lse - logits[row + label];
        loss += l;
        correct += select(0u, 1u, arg == label);
        bad += select(0u, 1u, any_bad || nonfinite(l));
        for (var j = 0u; j < dims.cols; j++) {
            let p = exp(logits[row + j] - lse);
            let onehot = select(0.0, 1.0, j == label);
            dlogits[row + j] = (p - onehot) * step.scale;
        }
    }
    stats[step.stat * WG + lid] = StepStat(loss, correct, bad, 0u);
}
