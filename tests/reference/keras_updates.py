"""Keras 3's training step in numpy float64, written from Keras 3's formulas (keras/src/optimizers/
adam.py, sgd.py, rmsprop.py; SparseCategoricalCrossentropy with its default mean over the batch), as
an independent reference for tests/optimizer_parity.rs. It reads an fmnist model file (safetensors) for
the initial weights and the IDX training files, takes STEPS steps of BATCH samples in dataset order,
and writes the final weights, flat in the file's tensor order, as float64 little-endian.

usage: keras_updates.py DATA_DIR INIT.safetensors OPTIMIZER_JSON STEPS BATCH OUT.f64
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


def gradients(layers, x, labels):
    """Mean sparse categorical cross-entropy of softmax(MLP(x)) and its gradients."""
    acts = [x]
    for i, (w, b) in enumerate(layers):
        z = acts[-1] @ w + b
        acts.append(np.maximum(z, 0.0) if i + 1 < len(layers) else z)
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
            d = (d @ w.T) * (acts[i] > 0)
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
    steps, batch = int(steps), int(batch)
    layers = read_safetensors(init)
    images = read_idx(find(data_dir, "train-images-idx3-ubyte.gz"))
    labels = read_idx(find(data_dir, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    x_all = images.reshape(images.shape[0], -1).astype(np.float64) / 255.0
    step = make_optimizer(json.loads(opt_json))
    slots = [[{}, {}] for _ in layers]
    for t in range(1, steps + 1):
        rows = slice((t - 1) * batch, t * batch)
        grads = gradients(layers, x_all[rows], labels[rows])
        for (w, b), (gw, gb), (sw, sb) in zip(layers, grads, slots):
            step(w, gw, sw, t)
            step(b, gb, sb, t)
    flat = np.concatenate([a.ravel() for wb in layers for a in wb])
    flat.astype("<f8").tofile(out)


if __name__ == "__main__":
    main()
