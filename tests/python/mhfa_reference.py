"""A float64 numpy evaluation of the layer, and a small safetensors writer, for the tests."""
import json
import struct

import numpy as np

PROJECTIONS = ("W_query", "W_key", "W_val", "W_out")


def random_weights(rng, input_dim, embed_dim, bias=True):
    """{"W_query.weight": ..., "W_query.bias": ...} of random, never-zero float32 values."""
    weights = {}
    for name in PROJECTIONS:
        fan_in = embed_dim if name == "W_out" else input_dim
        w = rng.uniform(0.1, 1.0, (embed_dim, fan_in)) * rng.choice([-1, 1], (embed_dim, fan_in))
        weights[name + ".weight"] = (w / np.sqrt(fan_in)).astype(np.float32)
        if bias:
            weights[name + ".bias"] = rng.uniform(-0.5, 0.5, embed_dim).astype(np.float32)
    return weights


def as_4d(mask):
    """[B][Nk] and [B][Nq][Nk] masks as [B][H][Nq][Nk] with dims of 1 that broadcast."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim == 2:
        return mask[:, None, None, :]
    if mask.ndim == 3:
        return mask[:, None, :, :]
    return mask


def stored(x, dtype):
    """x (float64) as the storage type keeps it: float32 as it is, float16 or bfloat16 rounded
    to nearest even (by way of float32)."""
    x = np.asarray(x, np.float64)
    if dtype == "float16":
        return x.astype(np.float32).astype(np.float16).astype(np.float64)
    if dtype == "bfloat16":
        bits = x.astype(np.float32).view(np.uint32).astype(np.uint64)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16
        rounded = np.where(np.isnan(x), bits | 0x400000, rounded)
        return rounded.astype(np.uint32).view(np.float32).astype(np.float64)
    return x


def forward(weights, n_heads, q, h=None, mask=None, dtype="float32"):
    """(out [B][Nq][E], attention weights [B][H][Nq][Nk]) in float64, as make_golden.py's Layer;
    with a 16-bit dtype, on the values as mhfa stores them: inputs, weights, Q, K, V, context and
    output rounded to it."""
    def linear(x, name):
        y = stored(x, dtype) @ stored(weights[name + ".weight"], dtype).T
        b = weights.get(name + ".bias")
        return stored(y if b is None else y + stored(b, dtype), dtype)

    def split(x):
        b, n, e = x.shape
        return x.reshape(b, n, n_heads, e // n_heads).transpose(0, 2, 1, 3)

    q = np.asarray(q, np.float64)
    h = q if h is None else np.asarray(h, np.float64)
    Q, K, V = split(linear(q, "W_query")), split(linear(h, "W_key")), split(linear(h, "W_val"))
    batch, _, n_query, head_dim = Q.shape
    scores = Q @ K.transpose(0, 1, 3, 2) / np.sqrt(head_dim)
    masked = np.zeros(scores.shape, bool)
    if mask is not None:
        masked = np.broadcast_to(as_4d(mask), scores.shape)
    dead = masked.all(axis=-1, keepdims=True)
    scores = np.where(masked, -np.inf, scores)
    top = np.where(dead, 0.0, scores.max(axis=-1, keepdims=True))
    e = np.exp(scores - top)
    total = e.sum(axis=-1, keepdims=True)
    attn = np.where(dead, 0.0, e / np.where(dead, 1.0, total))
    ctx = (attn @ V).transpose(0, 2, 1, 3).reshape(batch, n_query, -1)
    return linear(ctx, "W_out"), attn


def write_safetensors(path, tensors, metadata=None, dtype="F32"):
    """A safetensors file as the safetensors package writes it (F32, F64 or F16 data)."""
    numpy_type = {"F32": "<f4", "F64": "<f8", "F16": "<f2"}[dtype]
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        blob = np.ascontiguousarray(array, dtype=numpy_type).tobytes()
        header[name] = {"dtype": dtype, "shape": list(np.shape(array)),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
