#!/usr/bin/env python3
"""Golden files for mhfa, made by PyTorch (CPU, float32).

Builds the MultiHeadFlashAttention layer as docs/semantics.md describes it, runs a few
small cases and writes each to <outdir>/<name>.bin (default: tests/data beside this tools folder).
tests/test_golden.c feeds them through mhfa; neither CI nor the tests need PyTorch.

    python3 tools/make_golden.py [outdir]

File format (all little-endian, no padding):
  header, 16 int32: magic 0x4746484D ("MHFG"), version 1, batch, n_query, graph_size, input_dim,
    embed_dim, n_heads, bias, self_attention, store_attn_weights, mask_ndim (0, 2, 3 or 4),
    mask_dims[4] (the first mask_ndim used, the rest 0). Self-attention: graph_size == n_query.
  then, in this order:
    float32 W_query [E][D_in], W_key [E][D_in], W_val [E][D_in], W_out [E][E]  (nn.Linear layout)
    float32 b_query, b_key, b_val, b_out [E] each          -- only if bias
    float32 q [B][Nq][D_in]
    float32 h [B][Nk][D_in]                                 -- only if not self-attention
    uint8   mask, product of mask_dims bytes, 1 = masked out -- only if mask_ndim > 0
    float32 expected output [B][Nq][E]
    float32 expected weights [B][H][Nq][Nk]                 -- only if store_attn_weights
  and nothing after.
"""
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

MAGIC, VERSION = 0x4746484D, 1


class Layer(nn.Module):
    """MultiHeadFlashAttention in evaluation mode, written from SEMANTICS.md."""

    def __init__(self, n_heads, input_dim, embed_dim, bias):
        super().__init__()
        assert embed_dim % n_heads == 0
        self.n_heads, self.head_dim = n_heads, embed_dim // n_heads
        self.W_query = nn.Linear(input_dim, embed_dim, bias)
        self.W_key = nn.Linear(input_dim, embed_dim, bias)
        self.W_val = nn.Linear(input_dim, embed_dim, bias)
        self.W_out = nn.Linear(embed_dim, embed_dim, bias)
        for lin in self.projections():
            nn.init.xavier_uniform_(lin.weight)  # biases keep nn.Linear's default

    def projections(self):
        return [self.W_query, self.W_key, self.W_val, self.W_out]

    def split(self, x):  # [B][N][E] -> [B][H][N][d]; head j takes features [j*d, (j+1)*d)
        b, n, _ = x.shape
        return x.view(b, n, self.n_heads, self.head_dim).transpose(1, 2)

    def forward(self, q, h=None, mask=None, store=False):
        h = q if h is None else h
        b, nq, _ = q.shape
        nk = h.shape[1]
        Q = self.split(self.W_query(q))
        K, V = self.split(self.W_key(h)), self.split(self.W_val(h))
        masked = torch.zeros(b, self.n_heads, nq, nk, dtype=torch.bool)
        if mask is not None:
            masked = as_4d(mask).expand(b, self.n_heads, nq, nk)
        dead = masked.all(dim=-1, keepdim=True)  # no key to attend: output 0 by definition
        weights = None
        if store:  # the manual path
            scores = Q @ K.transpose(-2, -1) / math.sqrt(self.head_dim)
            weights = torch.softmax(scores.masked_fill(masked, float("-inf")), dim=-1)
            weights = weights.masked_fill(dead, 0.0)  # softmax of all -inf is NaN
            ctx = weights @ V
        else:  # the flash path; SDPA's boolean mask is True = may attend
            keep = None if mask is None else ~masked
            ctx = F.scaled_dot_product_attention(Q, K, V, attn_mask=keep)
        ctx = ctx.masked_fill(dead, 0.0)  # explicit, whatever this torch version does
        out = self.W_out(ctx.transpose(1, 2).reshape(b, nq, -1))
        return out, weights


def as_4d(mask):
    """[B][Nk] and [B][Nq][Nk] masks viewed as [B][H][Nq][Nk] with dims of 1 that broadcast."""
    if mask.dim() == 2:
        return mask[:, None, None, :]
    if mask.dim() == 3:
        return mask[:, None, :, :]
    return mask


def make_mask(dims, dead_rows, gen):
    """~30% masked at random; with dead_rows, every third row of the last dim masked whole."""
    mask = torch.rand(dims, generator=gen) < 0.3
    if dead_rows:
        rows = mask.view(-1, dims[-1])
        rows[1::3] = True
    return mask


# A new case also needs its GOLDEN(name) line in tests/test_golden.c.
# name: (batch, n_query, graph_size, input_dim, embed_dim, n_heads, bias, self, store,
#        mask_dims or None, fully masked rows)
CASES = {
    "self_nomask_hd1": (2, 7, 7, 5, 3, 3, 1, 1, 0, None, 0),
    "self_mask2_hd3_store": (3, 9, 9, 7, 6, 2, 0, 1, 1, (3, 9), 1),
    "cross_mask3_hd16": (2, 5, 11, 12, 32, 2, 1, 0, 0, (2, 5, 11), 1),
    "cross_mask3_hd16_store": (2, 5, 11, 12, 32, 2, 1, 0, 1, (2, 5, 11), 1),
    "cross_mask4_hd32_store": (2, 6, 13, 10, 64, 2, 0, 0, 1, (2, 2, 6, 13), 1),
    "cross_mask4_bcast_hd3": (3, 4, 10, 9, 12, 4, 1, 0, 0, (3, 1, 4, 10), 1),
    "self_mask4_bcast_hd16_store": (2, 11, 11, 16, 48, 3, 1, 1, 1, (1, 3, 1, 11), 0),
    "decoder_step_mask2_hd16": (3, 1, 21, 16, 48, 3, 1, 0, 0, (3, 21), 0),
    "decoder_step_mask4_hd3_store": (2, 1, 15, 6, 9, 3, 0, 0, 1, (2, 3, 1, 15), 1),
    "self_nomask_hd32_store": (1, 10, 10, 16, 32, 1, 0, 1, 1, None, 0),
    "routing_mask2_e128_h8": (2, 20, 20, 32, 128, 8, 1, 1, 0, (2, 20), 0),
}


def run_case(seed, b, nq, nk, din, e, heads, bias, self_attn, store, mask_dims, dead):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    layer = Layer(heads, din, e, bool(bias)).eval()
    q = torch.randn(b, nq, din, generator=gen)
    h = None if self_attn else torch.randn(b, nk, din, generator=gen)
    mask = None if mask_dims is None else make_mask(mask_dims, dead, gen)
    with torch.no_grad():
        out, weights = layer(q, h, mask, bool(store))
        other, _ = layer(q, h, mask, not store)  # the two paths must agree
    assert torch.allclose(out, other, rtol=0, atol=2e-5), (out - other).abs().max()
    arrays = [lin.weight for lin in layer.projections()]
    arrays += [lin.bias for lin in layer.projections()] if bias else []
    arrays += [q] + ([] if h is None else [h])
    blob = b"".join(float32_bytes(a) for a in arrays)
    if mask is not None:
        blob += bytes(mask.to(torch.uint8).flatten().tolist())
    blob += float32_bytes(out)
    if store:
        blob += float32_bytes(weights)
    assert torch.isfinite(out).all()
    dims = list(mask_dims or ()) + [0] * (4 - len(mask_dims or ()))
    header = struct.pack("<16i", MAGIC, VERSION, b, nq, nk, din, e, heads, bias, self_attn,
                         store, len(mask_dims or ()), *dims)
    return header + blob


def float32_bytes(t):  # exact: float32 values survive the round trip through Python floats
    values = t.detach().to(torch.float32).flatten().tolist()
    return struct.pack(f"<{len(values)}f", *values)


# Safetensors files as PyTorch users write them, for tests/test_weights_file.c: each holds a layer's
# state_dict under prefix in dtype (with mhfa's metadata where meta is set) plus test tensors:
# test.q, test.h (cross-attention only) and test.out, PyTorch's float64 output of the layer with
# the weights as stored (rounded to dtype). The nested file is a two-layer model; its other
# tensors (another layer, an embedding, an int64 counter) are to be ignored.
# A new file also needs its line in tests/test_weights_file.c.
# name: (dtype, prefix, meta, n_heads, input_dim, embed_dim, bias, batch, n_query, graph_size
#        or None for self-attention)
WEIGHTS_FILES = {
    "weights_f32_meta": (torch.float32, "", 1, 4, 12, 16, 1, 2, 7, None),
    "weights_f16": (torch.float16, "", 0, 2, 9, 12, 1, 2, 5, 8),
    "weights_bf16": (torch.bfloat16, "", 0, 3, 8, 12, 0, 3, 1, 11),
    "weights_f64": (torch.float64, "", 0, 2, 5, 8, 1, 1, 6, None),
    "weights_nested": (torch.float32, "encoder.layers.1.attn.", 0, 4, 16, 64, 1, 2, 20, None),
}


def weights_file(seed, dtype, prefix, meta, heads, din, e, bias, b, nq, nk):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    layer = Layer(heads, din, e, bool(bias)).eval()
    stored = {k: v.to(dtype).contiguous() for k, v in layer.state_dict().items()}
    tensors = {prefix + k: v for k, v in stored.items()}
    if prefix:  # the rest of a model, which the loader must leave alone
        other = Layer(heads, din, e, bool(bias))
        tensors.update({"encoder.layers.0.attn." + k: v for k, v in other.state_dict().items()})
        tensors["embed.weight"] = torch.randn(din, 3, generator=gen)
        tensors["encoder.step"] = torch.tensor([12345], dtype=torch.int64)
    q = torch.randn(b, nq, din, generator=gen)
    h = None if nk is None else torch.randn(b, nk, din, generator=gen)
    layer.load_state_dict({k: v.to(torch.float64) for k, v in stored.items()})
    layer = layer.double()
    with torch.no_grad():
        out, _ = layer(q.double(), None if h is None else h.double())
    tensors["test.q"] = q
    if h is not None:
        tensors["test.h"] = h
    tensors["test.out"] = out
    metadata = None
    if meta:
        metadata = {"format": "mhfa", "n_heads": str(heads), "input_dim": str(din),
                    "embed_dim": str(e), "bias": str(bias)}
    return tensors, metadata


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests", "data")
    os.makedirs(outdir, exist_ok=True)
    for i, (name, case) in enumerate(CASES.items()):
        data = run_case(1000 + 17 * i, *case)
        with open(os.path.join(outdir, name + ".bin"), "wb") as f:
            f.write(data)
        print(f"{name}.bin: {len(data)} bytes")
    for i, (name, case) in enumerate(WEIGHTS_FILES.items()):
        tensors, metadata = weights_file(3000 + 17 * i, *case)
        path = os.path.join(outdir, name + ".safetensors")
        save_file(tensors, path, metadata=metadata)
        print(f"{name}.safetensors: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
