"""Keras 3's training step in numpy float64, written from Keras 3's formulas (keras/src/optimizers/
adam.py, sgd.py, rmsprop.py; SparseCategoricalCrossentropy with its default mean over the batch), as
an independent reference for tests/optimizer_parity.rs and tests/dropout.rs. It reads an fmnist model
file (safetensors) for the initial weights and the IDX training files, takes STEPS steps of BATCH
samples in dataset order, and writes the final weights, flat in the file's tensor order, as float64
little-endian. With DROPOUT_JSON ({"rates": [...], "seed": S}), Keras' Dropout(rate) follows each
hidden layer's ReLU, its masks drawn as fmnist documents them: column 4q + i of row r at step t in
hidden layer l is kept when word i of Philox4x32-10(key = (S mod 2^32, S >> 32), counter = (q, r, t,
l)) is at least round(rate * 2^32); kept values are multiplied by 1 / (1 - rate).

usage: keras_updates.py DATA_DIR INIT.safetensors OPTIMIZER_JSON STEPS BATCH OUT.f64 [DROPOUT_JSON]
"""

import gzip
import json
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    data = blob[8 + n :]
    tensors = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        tensors[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(t["shape"]).astype(np.float64)
    layers = []
    i = 0
    while f"layers.{i}.weight" in tensors:
        layers.append([tensors[f"layers.{i}.weight"], tensors[f"layers.{i}.bias"]])
        i += 1
    return layers


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        blob = f.read()
    dims = blob[3]
    shape = struct.unpack(">" + "I" * dims, blob[4 : 4 + 4 * dims])
    return np.frombuffer(blob[4 + 4 * dims :], dtype=np.uint8).reshape(shape)


def find(data_dir, name):
    import os

    gz = os.path.join(data_dir, name)
    return gz if os.path.exists(gz) else gz[: -len(".gz")]


M0, M1, W0, W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85
MASK32 = 0xFFFFFFFF


def philox4x32_10(key, ctr):
    """Random123's Philox4x32 with 10 rounds, in Python integers."""
    k0, k1 = key
    c0, c1, c2, c3 = ctr
    for r in range(10):
        if r > 0:
            k0, k1 = (k0 + W0) & MASK32, (k1 + W1) & MASK32
        p0, p1 = M0 * c0, M1 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & MASK32, (p0 >> 32) ^ c3 ^ k1, p0 & MASK32
    return (c0, c1, c2, c3)


def dropout_factor(rows, cols, layer, step, rate, seed):
    """Keras' inverted dropout as a factor per activation: 1 / (1 - rate) where kept, else 0."""
    threshold = min(round(rate * 2**32), MASK32)
    key = (seed & MASK32, seed >> 32)
    factor = np.zeros((rows, cols))
    scale = float(np.float32(1.0) / (np.float32(1.0) - np.float32(rate)))
    for r in range(rows):
        for q in range((cols + 3) // 4):
            words = philox4x32_10(key, (q, r, step, layer))
            for i in range(4):
                c = 4 * q + i
                if c < cols and words[i] >= threshold:
                    factor[r, c] = scale
    return factor


def gradients(layers, x, labels, dropout=None, step=0):
    """Mean sparse categorical cross-entropy of softmax(MLP(x)) and its gradients; `dropout` ({"rates",
    "seed"}) drops after each hidden layer's ReLU."""
    acts = [x]
    for i, (w, b) in enumerate(layers):
        z = acts[-1] @ w + b
        if i + 1 < len(layers):
            a = np.maximum(z, 0.0)
            if dropout and dropout["rates"][i] > 0:
                a = a * dropout_factor(*a.shape, i, step, dropout["rates"][i], dropout["seed"])
            acts.append(a)
        else:
            acts.append(z)
    logits = acts[-1]
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    n = x.shape[0]
    d = probs.copy()
    d[np.arange(n), labels] -= 1.0
    d /= n
    grads = [None] * len(layers)
    for i in reversed(range(len(layers))):
        w, _ = layers[i]
        grads[i] = [acts[i].T @ d, d.sum(axis=0)]
        if i > 0:
            # acts[i] is layer i - 1's output after dropout: the derivative is dropout's factor
            # where ReLU passed and dropout kept.
            factor = np.ones_like(acts[i])
            if dropout and dropout["rates"][i - 1] > 0:
                rate = dropout["rates"][i - 1]
                factor *= float(np.float32(1.0) / (np.float32(1.0) - np.float32(rate)))
            d = (d @ w.T) * (acts[i] > 0) * factor
    return grads


def make_optimizer(cfg):
    name = cfg["name"]
    lr = cfg["learning_rate"]
    if name == "adam":
        b1, b2, eps = cfg["beta1"], cfg["beta2"], cfg["epsilon"]

        def step(p, g, s, t):
            m, v = s.setdefault("m", np.zeros_like(p)), s.setdefault("v", np.zeros_like(p))
            alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
            m += (g - m) * (1 - b1)
            v += (np.square(g) - v) * (1 - b2)
            p -= alpha * m / (np.sqrt(v) + eps)

    elif name == "sgd":
        mu, nesterov = cfg["momentum"], cfg["nesterov"]

        def step(p, g, s, t):
            if mu == 0:
                p -= g * lr
                return
            m = s.setdefault("m", np.zeros_like(p))
            m[...] = m * mu - g * lr
            if nesterov:
                p += m * mu - g * lr
            else:
                p += m

    elif name == "rmsprop":
        rho, mu, eps = cfg["rho"], cfg["momentum"], cfg["epsilon"]

        def step(p, g, s, t):
            v = s.setdefault("v", np.zeros_like(p))
            v[...] = rho * v + (1 - rho) * np.square(g)
            increment = lr * g / np.sqrt(v + eps)
            if mu > 0:
                m = s.setdefault("m", np.zeros_like(p))
                m[...] = mu * m + increment
                p -= m
            else:
                p -= increment

    else:
        raise SystemExit(f"unknown optimizer {name}")
    return step


def main():
    data_dir, init, opt_json, steps, batch, out = sys.argv[1:7]
    dropout = json.loads(sys.argv[7]) if len(sys.argv) > 7 else None
    steps, batch = int(steps), int(batch)
    layers = read_safetensors(init)
    images = read_idx(find(data_dir, "train-images-idx3-ubyte.gz"))
    labels = read_idx(find(data_dir, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    x_all = images.reshape(images.shape[0], -1).astype(np.float64) / 255.0
    step = make_optimizer(json.loads(opt_json))
    slots = [[{}, {}] for _ in layers]
    for t in range(1, steps + 1):
        rows = slice((t - 1) * batch, t * batch)
        grads = gradients(layers, x_all[rows], labels[rows], dropout, t)
        for (w, b), (gw, gb), (sw, sb) in zip(layers, grads, slots):
            step(w, gw, sw, t)
            step(b, gb, sb, t)
    flat = np.concatenate([a.ravel() for wb in layers for a in wb])
    flat.astype("<f8").tofile(out)


if __name__ == "__main__":
    main()
