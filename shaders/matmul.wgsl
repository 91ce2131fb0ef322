// Matrix products in the three layouts training needs, each invocation computing a 4x4 block of C with
// A and B read as vec4 (the load pattern that is ~15x faster than scalar loads on lavapipe, see
// ../shared/WGPU-NOTES.md), plus the small ops fused into their epilogues:
//   mm_nn  C (m, n) = A (m, k) · B (k, n)        forward X·W;  epilogue: + bias (FLAG_BIAS), ReLU (FLAG_RELU)
//   mm_nt  C (m, n) = A (m, k) · B (n, k)^T      input grad dZ·W^T; epilogue: ReLU mask (FLAG_MASK),
//                                                times dropout's scale where kept (FLAG_DROPOUT)
//   mm_tn  C (m, n) = A (k, m)^T · B (k, n)      weight grad X^T·dZ; also colsum(B) (FLAG_COLSUM)
// Contract (the host keeps it, tests/kernels.rs checks it): every row stride and offset is a multiple of 4
// floats and a row stride is at least its row length rounded up to 4. Values in the padding lanes of the
// inputs are never trusted (tests fill them with NaN); C's padding lanes are written as 0.
// Any m, n, k is handled: rows past m are clamped on load and not stored, the k tail is masked lane by
// lane. There is no workgroup memory and no barrier, so the early returns are safe.
// Twins: cpu::matmul, cpu::matmul_at_b, cpu::matmul_a_bt, cpu::bias_add, cpu::relu, cpu::relu_backward,
// cpu::bias_grad.

struct MatmulDims {
    m: u32,
    n: u32,
    k: u32,
    flags: u32,
    lda: u32,   // row strides in floats (multiples of 4)
    ldb: u32,
    ldc: u32,
    lde: u32,   // row stride of the epilogue operand (the ReLU output for FLAG_MASK)
    a_off: u32, // offsets in floats (multiples of 4)
    b_off: u32,
    c_off: u32,
    e_off: u32, // bias (in b) for FLAG_BIAS, mask source (in e) for FLAG_MASK, colsum output (in c) for FLAG_COLSUM
    mask_scale: f32, // FLAG_DROPOUT: the masked layer's dropout scale, 1 / (1 - rate)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const FLAG_BIAS: u32 = 1u;
const FLAG_RELU: u32 = 2u;
const FLAG_MASK: u32 = 4u;
const FLAG_COLSUM: u32 = 8u;
const FLAG_DROPOUT: u32 = 16u;

@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> e: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> dims: MatmulDims;

// Lanes of the k-quad starting at k0 that lie inside k.
fn k_lanes(k0: u32) -> vec4<bool> {
    return vec4<u32>(k0, k0 + 1u, k0 + 2u, k0 + 3u) < vec4<u32>(dims.k);
}

// Lanes of the n-quad n4 that lie inside n; the rest are stored as 0.
fn n_lanes(n4: u32) -> vec4<bool> {
    let n0 = n4 * 4u;
    return vec4<u32>(n0, n0 + 1u, n0 + 2u, n0 + 3u) < vec4<u32>(dims.n);
}

// ReLU as the CPU twin has it: anything not > 0 (NaN included) becomes 0.
fn relu4(v: vec4<f32>) -> vec4<f32> {
    return select(vec4<f32>(0.0), v, v > vec4<f32>(0.0));
}

// Stores row `row` of the 4x4 block (skipped past m) after the epilogue shared by mm_nn and mm_nt.
fn store_row(row: u32, n4: u32, acc_in: vec4<f32>, keep: vec4<bool>) {
    if (row >= dims.m) {
        return;
    }
    var acc = acc_in;
    if ((dims.flags & FLAG_BIAS) != 0u) {
        acc += b[dims.e_off / 4u + n4];
    }
    if ((dims.flags & FLAG_RELU) != 0u) {
        acc = relu4(acc);
    }
    if ((dims.flags & FLAG_MASK) != 0u) {
        // The mask source is the layer's output after dropout: positive only where ReLU passed and
        // dropout kept, and there dropout's backward is its scale (cpu::relu_dropout_backward).
        let y = e[(dims.e_off + row * dims.lde) / 4u + n4];
        if ((dims.flags & FLAG_DROPOUT) != 0u) {
            acc *= dims.mask_scale;
        }
        acc = select(vec4<f32>(0.0), acc, y > vec4<f32>(0.0));
    }
    c[(dims.c_off + row * dims.ldc) / 4u + n4] = select(vec4<f32>(0.0), acc, keep);
}

// gid.x: quad of columns of C, gid.y: quad of rows of C.
@compute @workgroup_size(8, 8)
fn mm_nn(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n4 = gid.x;
    let m0 = gid.y * 4u;
    if (n4 * 4u >= dims.n || m0 >= dims.m) {
        return;
    }
    let last = dims.m - 1u;
    let lda4 = dims.lda / 4u;
    let ldb4 = dims.ldb / 4u;
    let a0i = (dims.a_off + m0 * dims.lda) / 4u;
    let a1i = (dims.a_off + min(m0 + 1u, last) * dims.lda) / 4u;
    let a2i = (dims.a_off + min(m0 + 2u, last) * dims.lda) / 4u;
    let a3i = (dims.a_off + min(m0 + 3u, last) * dims.lda) / 4u;
    var bi = dims.b_off / 4u + n4;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let kq = dims.k / 4u;
    for (var q = 0u; q < kq; q++) {
        let b0 = b[bi];
        let b1 = b[bi + ldb4];
        let b2 = b[bi + 2u * ldb4];
        let b3 = b[bi + 3u * ldb4];
        bi += 4u * ldb4;
        let x0 = a[a0i + q];
        let x1 = a[a1i + q];
        let x2 = a[a2i + q];
        let x3 = a[a3i + q];
        acc0 += x0.x * b0 + x0.y * b1 + x0.z * b2 + x0.w * b3;
        acc1 += x1.x * b0 + x1.y * b1 + x1.z * b2 + x1.w * b3;
        acc2 += x2.x * b0 + x2.y * b1 + x2.z * b2 + x2.w * b3;
        acc3 += x3.x * b0 + x3.y * b1 + x3.z * b2 + x3.w * b3;
    }
    let k0 = kq * 4u;
    if (k0 < dims.k) {
        // The k tail: A's lanes past k are zeroed (they may be NaN padding); B's rows past k do not exist,
        // so they are clamped to row k-1 and meet a zero from A.
        let lanes = k_lanes(k0);
        let z = vec4<f32>(0.0);
        let x0 = select(z, a[a0i + kq], lanes);
        let x1 = select(z, a[a1i + kq], lanes);
        let x2 = select(z, a[a2i + kq], lanes);
        let x3 = select(z, a[a3i + kq], lanes);
        let kl = dims.k - 1u;
        let b0 = b[dims.b_off / 4u + k0 * ldb4 + n4];
        let b1 = b[dims.b_off / 4u + min(k0 + 1u, kl) * ldb4 + n4];
        let b2 = b[dims.b_off / 4u + min(k0 + 2u, kl) * ldb4 + n4];
        let b3 = b[dims.b_off / 4u + min(k0 + 3u, kl) * ldb4 + n4];
        acc0 += x0.x * b0 + x0.y * b1 + x0.z * b2 + x0.w * b3;
        acc1 += x1.x * b0 + x1.y * b1 + x1.z * b2 + x1.w * b3;
        acc2 += x2.x * b0 + x2.y * b1 + x2.z * b2 + x2.w * b3;
        acc3 += x3.x * b0 + x3.y * b1 + x3.z * b2 + x3.w * b3;
    }
    let keep = n_lanes(n4);
    store_row(m0, n4, acc0, keep);
    store_row(m0 + 1u, n4, acc1, keep);
    store_row(m0 + 2u, n4, acc2, keep);
    store_row(m0 + 3u, n4, acc3, keep);
}

// Sums the four lanes of each of the four products of row-vector x with the rows of the n-quad.
fn hsum4(p0: vec4<f32>, p1: vec4<f32>, p2: vec4<f32>, p3: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(
        p0.x + p0.y + p0.z + p0.w,
        p1.x + p1.y + p1.z + p1.w,
        p2.x + p2.y + p2.z + p2.w,
        p3.x + p3.y + p3.z + p3.w,
    );
}

// gid.x: quad of columns of C (= rows of B), gid.y: quad of rows of C. Both operands are read along k.
@compute @workgroup_size(8, 8)
fn mm_nt(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n4 = gid.x;
    let m0 = gid.y * 4u;
    let n0 = n4 * 4u;
    if (n0 >= dims.n || m0 >= dims.m) {
        return;
    }
    let lastm = dims.m - 1u;
    let lastn = dims.n - 1u;
    let a0i = (dims.a_off + m0 * dims.lda) / 4u;
    let a1i = (dims.a_off + min(m0 + 1u, lastm) * dims.lda) / 4u;
    let a2i = (dims.a_off + min(m0 + 2u, lastm) * dims.lda) / 4u;
    let a3i = (dims.a_off + min(m0 + 3u, lastm) * dims.lda) / 4u;
    let b0i = (dims.b_off + n0 * dims.ldb) / 4u;
    let b1i = (dims.b_off + min(n0 + 1u, lastn) * dims.ldb) / 4u;
    let b2i = (dims.b_off + min(n0 + 2u, lastn) * dims.ldb) / 4u;
    let b3i = (dims.b_off + min(n0 + 3u, lastn) * dims.ldb) / 4u;
    // acc_ij holds the lane-wise partial products of C[m0+i, n0+j]; lanes are summed once at the end.
    var acc00 = vec4<f32>(0.0); var acc01 = vec4<f32>(0.0); var acc02 = vec4<f32>(0.0); var acc03 = vec4<f32>(0.0);
    var acc10 = vec4<f32>(0.0); var acc11 = vec4<f32>(0.0); var acc12 = vec4<f32>(0.0); var acc13 = vec4<f32>(0.0);
    var acc20 = vec4<f32>(0.0); var acc21 = vec4<f32>(0.0); var acc22 = vec4<f32>(0.0); var acc23 = vec4<f32>(0.0);
    var acc30 = vec4<f32>(0.0); var acc31 = vec4<f32>(0.0); var acc32 = vec4<f32>(0.0); var acc33 = vec4<f32>(0.0);
    let kq = (dims.k + 3u) / 4u;
    for (var q = 0u; q < kq; q++) {
        // Only the last quad can be partial; both operands' lanes past k may be NaN padding.
        let lanes = k_lanes(q * 4u);
        let z = vec4<f32>(0.0);
        let y0 = select(z, b[b0i + q], lanes);
        let y1 = select(z, b[b1i + q], lanes);
        let y2 = select(z, b[b2i + q], lanes);
        let y3 = select(z, b[b3i + q], lanes);
        let x0 = select(z, a[a0i + q], lanes);
        let x1 = select(z, a[a1i + q], lanes);
        let x2 = select(z, a[a2i + q], lanes);
        let x3 = select(z, a[a3i + q], lanes);
        acc00 += x0 * y0; acc01 += x0 * y1; acc02 += x0 * y2; acc03 += x0 * y3;
        acc10 += x1 * y0; acc11 += x1 * y1; acc12 += x1 * y2; acc13 += x1 * y3;
        acc20 += x2 * y0; acc21 += x2 * y1; acc22 += x2 * y2; acc23 += x2 * y3;
        acc30 += x3 * y0; acc31 += x3 * y1; acc32 += x3 * y2; acc33 += x3 * y3;
    }
    let keep = n_lanes(n4);
    store_row(m0, n4, hsum4(acc00, acc01, acc02, acc03), keep);
    store_row(m0 + 1u, n4, hsum4(acc10, acc11, acc12, acc13), keep);
    store_row(m0 + 2u, n4, hsum4(acc20, acc21, acc22, acc23), keep);
    store_row(m0 + 3u, n4, hsum4(acc30, acc31, acc32, acc33), keep);
}

// gid.x: quad of columns of C, gid.y: quad of rows of C (= columns of A). One outer product per k.
// With FLAG_COLSUM the invocations of row-quad 0 also write colsum(B) (n) at e_off in c: the bias
// gradient costs no extra loads because those invocations read every row of their B columns anyway.
@compute @workgroup_size(8, 8)
fn mm_tn(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n4 = gid.x;
    let m4 = gid.y;
    let m0 = m4 * 4u;
    if (n4 * 4u >= dims.n || m0 >= dims.m) {
        return;
    }
    let lda4 = dims.lda / 4u;
    let ldb4 = dims.ldb / 4u;
    var ai = dims.a_off / 4u + m4;
    var bi = dims.b_off / 4u + n4;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var sum = vec4<f32>(0.0);
    for (var kk = 0u; kk < dims.k; kk++) {
        // A's lanes past m may be NaN padding: they only reach rows of C that are not stored.
        let x = a[ai];
        let y = b[bi];
        ai += lda4;
        bi += ldb4;
        acc0 += x.x * y;
        acc1 += x.y * y;
        acc2 += x.z * y;
        acc3 += x.w * y;
        sum += y;
    }
    let keep = n_lanes(n4);
    let z = vec4<f32>(0.0);
    let ci = (dims.c_off + m0 * dims.ldc) / 4u + n4;
    let ldc4 = dims.ldc / 4u;
    c[ci] = select(z, acc0, keep);
    if (m0 + 1u < dims.m) {
        c[ci + ldc4] = select(z, acc1, keep);
    }
    if (m0 + 2u < dims.m) {
        c[ci + 2u * ldc4] = select(z, acc2, keep);
    }
    if (m0 + 3u < dims.m) {
        c[ci + 3u * ldc4] = select(z, acc3, keep);
    }
    if ((dims.flags & FLAG_COLSUM) != 0u && m4 == 0u) {
        c[dims.e_off / 4u + n4] = select(z, sum, keep);
    }
}

// ---- Texture-operand variants for the first layer's two big products (784-wide) ----
// On software Vulkan (lavapipe, Mesa 22) every storage-buffer load runs lane by lane and costs ~5x a
// texel fetch, which is vectorised; these variants read A and B as rgba32float textures, one texel = 4
// consecutive floats of a row (texel (q, r) = row r, floats 4q..4q+3), and write C like the others.
// The host keeps the textures as mirrors of the buffers (the batch is uploaded straight into one; params
// and dZ are copied after they change). `a_off` and `b_off` are row offsets here, in texels' rows.
// Bias (FLAG_BIAS) is still read from `b` (the params buffer) at `e_off`.
@group(1) @binding(0) var a_tex: texture_2d<f32>;
@group(1) @binding(1) var b_tex: texture_2d<f32>;

fn ta(q: u32, row: u32) -> vec4<f32> {
    return textureLoad(a_tex, vec2<u32>(q, row), 0);
}

fn tb(q: u32, row: u32) -> vec4<f32> {
    return textureLoad(b_tex, vec2<u32>(q, row), 0);
}

// The texture variants compute an 8x8 block per invocation (two column quads a and b, eight rows):
// 16 texel fetches feed 256 multiply-adds, twice the reuse of the 4x4 block, because fetches are what
// bounds a software GPU. A workgroup of 8x8 such blocks covers a 64x64 tile (TEX_TILE on the host);
// 64-invocation workgroups measured 1.5-2x faster on lavapipe than 16-invocation ones.
fn fma4(acc: vec4<f32>, x: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> vec4<f32> {
    return acc + x.x * b0 + x.y * b1 + x.z * b2 + x.w * b3;
}

// C (m, n) = A (m, k) · B (k, n), A and B from textures. As mm_nn, same epilogue.
@compute @workgroup_size(8, 8)
fn mm_nn_tex(@builtin(global_invocation_id) gid: vec3<u32>) {
    let qa = 2u * gid.x;
    let m0 = gid.y * 8u;
    if (qa * 4u >= dims.n || m0 >= dims.m) {
        return;
    }
    // Column quad b may lie past n (then it is read clamped and never stored); rows past m likewise.
    let qb = 2u * gid.x + 1u;
    let qbc = min(qb, (dims.n - 1u) / 4u);
    let last = dims.m - 1u;
    let r0 = dims.a_off + m0;
    let r1 = dims.a_off + min(m0 + 1u, last);
    let r2 = dims.a_off + min(m0 + 2u, last);
    let r3 = dims.a_off + min(m0 + 3u, last);
    let r4 = dims.a_off + min(m0 + 4u, last);
    let r5 = dims.a_off + min(m0 + 5u, last);
    let r6 = dims.a_off + min(m0 + 6u, last);
    let r7 = dims.a_off + min(m0 + 7u, last);
    let kl = dims.k - 1u;
    let z = vec4<f32>(0.0);
    var a0 = z; var a1 = z; var a2 = z; var a3 = z; var a4 = z; var a5 = z; var a6 = z; var a7 = z;
    var b0 = z; var b1 = z; var b2 = z; var b3 = z; var b4 = z; var b5 = z; var b6 = z; var b7 = z;
    let kq = (dims.k + 3u) / 4u;
    for (var q = 0u; q < kq; q++) {
        // Only the last quad can be partial: A's lanes past k are zeroed (padding is never trusted) and
        // B's rows past k are clamped to row k-1, meeting those zeros.
        let k0 = q * 4u;
        let lanes = k_lanes(k0);
        let k1 = dims.b_off + min(k0 + 1u, kl);
        let k2 = dims.b_off + min(k0 + 2u, kl);
        let k3 = dims.b_off + min(k0 + 3u, kl);
        let wa0 = tb(qa, dims.b_off + k0);
        let wa1 = tb(qa, k1);
        let wa2 = tb(qa, k2);
        let wa3 = tb(qa, k3);
        let wb0 = tb(qbc, dims.b_off + k0);
        let wb1 = tb(qbc, k1);
        let wb2 = tb(qbc, k2);
        let wb3 = tb(qbc, k3);
        let x0 = select(z, ta(q, r0), lanes);
        let x1 = select(z, ta(q, r1), lanes);
        let x2 = select(z, ta(q, r2), lanes);
        let x3 = select(z, ta(q, r3), lanes);
        let x4 = select(z, ta(q, r4), lanes);
        let x5 = select(z, ta(q, r5), lanes);
        let x6 = select(z, ta(q, r6), lanes);
        let x7 = select(z, ta(q, r7), lanes);
        a0 = fma4(a0, x0, wa0, wa1, wa2, wa3); b0 = fma4(b0, x0, wb0, wb1, wb2, wb3);
        a1 = fma4(a1, x1, wa0, wa1, wa2, wa3); b1 = fma4(b1, x1, wb0, wb1, wb2, wb3);
        a2 = fma4(a2, x2, wa0, wa1, wa2, wa3); b2 = fma4(b2, x2, wb0, wb1, wb2, wb3);
        a3 = fma4(a3, x3, wa0, wa1, wa2, wa3); b3 = fma4(b3, x3, wb0, wb1, wb2, wb3);
        a4 = fma4(a4, x4, wa0, wa1, wa2, wa3); b4 = fma4(b4, x4, wb0, wb1, wb2, wb3);
        a5 = fma4(a5, x5, wa0, wa1, wa2, wa3); b5 = fma4(b5, x5, wb0, wb1, wb2, wb3);
        a6 = fma4(a6, x6, wa0, wa1, wa2, wa3); b6 = fma4(b6, x6, wb0, wb1, wb2, wb3);
        a7 = fma4(a7, x7, wa0, wa1, wa2, wa3); b7 = fma4(b7, x7, wb0, wb1, wb2, wb3);
    }
    let ka = n_lanes(qa);
    store_row(m0, qa, a0, ka);
    store_row(m0 + 1u, qa, a1, ka);
    store_row(m0 + 2u, qa, a2, ka);
    store_row(m0 + 3u, qa, a3, ka);
    store_row(m0 + 4u, qa, a4, ka);
    store_row(m0 + 5u, qa, a5, ka);
    store_row(m0 + 6u, qa, a6, ka);
    store_row(m0 + 7u, qa, a7, ka);
    if (qb * 4u < dims.n) {
        let kb = n_lanes(qb);
        store_row(m0, qb, b0, kb);
        store_row(m0 + 1u, qb, b1, kb);
        store_row(m0 + 2u, qb, b2, kb);
        store_row(m0 + 3u, qb, b3, kb);
        store_row(m0 + 4u, qb, b4, kb);
        store_row(m0 + 5u, qb, b5, kb);
        store_row(m0 + 6u, qb, b6, kb);
        store_row(m0 + 7u, qb, b7, kb);
    }
}

// Stores one row of an mm_tn block (no epilogue), skipped past m.
fn store_plain(row: u32, q: u32, acc: vec4<f32>, keep: vec4<bool>) {
    if (row < dims.m) {
        c[(dims.c_off + row * dims.ldc) / 4u + q] = select(vec4<f32>(0.0), acc, keep);
    }
}

// C (m, n) = A (k, m)^T · B (k, n), A and B from textures; FLAG_COLSUM as in mm_tn. Rows of C come in
// two quads (A texels ma, mb), columns in two quads (B texels qa, qb).
@compute @workgroup_size(8, 8)
fn mm_tn_tex(@builtin(global_invocation_id) gid: vec3<u32>) {
    let qa = 2u * gid.x;
    let ma = 2u * gid.y;
    let m0 = ma * 4u;
    if (qa * 4u >= dims.n || m0 >= dims.m) {
        return;
    }
    // Quads past m or n are read clamped and never stored; A's lanes past m may be NaN padding and
    // only reach rows that are not stored.
    let qb = qa + 1u;
    let qbc = min(qb, (dims.n - 1u) / 4u);
    let mbc = min(ma + 1u, (dims.m - 1u) / 4u);
    let z = vec4<f32>(0.0);
    var a0 = z; var a1 = z; var a2 = z; var a3 = z; var a4 = z; var a5 = z; var a6 = z; var a7 = z;
    var b0 = z; var b1 = z; var b2 = z; var b3 = z; var b4 = z; var b5 = z; var b6 = z; var b7 = z;
    var suma = z;
    var sumb = z;
    for (var kk = 0u; kk < dims.k; kk++) {
        let xa = ta(ma, dims.a_off + kk);
        let xb = ta(mbc, dims.a_off + kk);
        let ya = tb(qa, dims.b_off + kk);
        let yb = tb(qbc, dims.b_off + kk);
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
    let ka = n_lanes(qa);
    store_plain(m0, qa, a0, ka);
    store_plain(m0 + 1u, qa, a1, ka);
    store_plain(m0 + 2u, qa, a2, ka);
    store_plain(m0 + 3u, qa, a3, ka);
    store_plain(m0 + 4u, qa, a4, ka);
    store_plain(m0 + 5u, qa, a5, ka);
    store_plain(m0 + 6u, qa, a6, ka);
    store_plain(m0 + 7u, qa, a7, ka);
    let has_b = qb * 4u < dims.n;
    if (has_b) {
        let kb = n_lanes(qb);
        store_plain(m0, qb, b0, kb);
        store_plain(m0 + 1u, qb, b1, kb);
        store_plain(m0 + 2u, qb, b2, kb);
        store_plain(m0 + 3u, qb, b3, kb);
        store_plain(m0 + 4u, qb, b4, kb);
        store_plain(m0 + 5u, qb, b5, kb);
        store_plain(m0 + 6u, qb, b6, kb);
        store_plain(m0 + 7u, qb, b7, kb);
    }
    if ((dims.flags & FLAG_COLSUM) != 0u && gid.y == 0u) {
        c[dims.e_off / 4u + qa] = select(z, suma, ka);
        if (has_b) {
            c[dims.e_off / 4u + qb] = select(z, sumb, n_lanes(qb));
        }
    }
}

// C (m, n) = A (m, k) · B (n, k)^T, A and B from textures (both read along k); FLAG_MASK as in mm_nt,
// its mask still from `e`. A 4x4 block per invocation in 8x8 workgroups: the input gradient of a layer
// after the first is a small product, so the 32x32 tile (MM_TILE) keeps enough workgroups.
@compute @workgroup_size(8, 8)
fn mm_nt_tex(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n4 = gid.x;
    let m0 = gid.y * 4u;
    let n0 = n4 * 4u;
    if (n0 >= dims.n || m0 >= dims.m) {
        return;
    }
    let lastm = dims.m - 1u;
    let lastn = dims.n - 1u;
    let a0 = dims.a_off + m0;
    let a1 = dims.a_off + min(m0 + 1u, lastm);
    let a2 = dims.a_off + min(m0 + 2u, lastm);
    let a3 = dims.a_off + min(m0 + 3u, lastm);
    let b0 = dims.b_off + n0;
    let b1 = dims.b_off + min(n0 + 1u, lastn);
    let b2 = dims.b_off + min(n0 + 2u, lastn);
    let b3 = dims.b_off + min(n0 + 3u, lastn);
    let z = vec4<f32>(0.0);
    // acc_ij holds the lane-wise partial products of C[m0+i, n0+j]; lanes are summed once at the end.
    var acc00 = z; var acc01 = z; var acc02 = z; var acc03 = z;
    var acc10 = z; var acc11 = z; var acc12 = z; var acc13 = z;
    var acc20 = z; var acc21 = z; var acc22 = z; var acc23 = z;
    var acc30 = z; var acc31 = z; var acc32 = z; var acc33 = z;
    let kq = (dims.k + 3u) / 4u;
    for (var q = 0u; q < kq; q++) {
        // Only the last quad can be partial; both operands' lanes past k may be NaN padding.
        let lanes = k_lanes(q * 4u);
        let y0 = select(z, tb(q, b0), lanes);
        let y1 = select(z, tb(q, b1), lanes);
        let y2 = select(z, tb(q, b2), lanes);
        let y3 = select(z, tb(q, b3), lanes);
        let x0 = select(z, ta(q, a0), lanes);
        let x1 = select(z, ta(q, a1), lanes);
        let x2 = select(z, ta(q, a2), lanes);
        let x3 = select(z, ta(q, a3), lanes);
        acc00 += x0 * y0; acc01 += x0 * y1; acc02 += x0 * y2; acc03 += x0 * y3;
        acc10 += x1 * y0; acc11 += x1 * y1; acc12 += x1 * y2; acc13 += x1 * y3;
        acc20 += x2 * y0; acc21 += x2 * y1; acc22 += x2 * y2; acc23 += x2 * y3;
        acc30 += x3 * y0; acc31 += x3 * y1; acc32 += x3 * y2; acc33 += x3 * y3;
    }
    let keep = n_lanes(n4);
    store_row(m0, n4, hsum4(acc00, acc01, acc02, acc03), keep);
    store_row(m0 + 1u, n4, hsum4(acc10, acc11, acc12, acc13), keep);
    store_row(m0 + 2u, n4, hsum4(acc20, acc21, acc22, acc23), keep);
    store_row(m0 + 3u, n4, hsum4(acc30, acc31, acc32, acc33), keep);
}
