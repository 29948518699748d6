#!/usr/bin/env python3
"""Checks mhfa's outputs in mhfa-bench dumps against a float64 evaluation of SEMANTICS.md.

    tools/check_float64.py DUMP_DIR      (tools/bench.sh leaves its dumps in build/bench-work)

For each DUMP_DIR/<case>.bin it evaluates the layer in float64 (on the GPU when PyTorch sees one),
with the dump's weights, inputs and mask, and prints max |out - ref| / max(1, max |ref|) for mhfa's
output and for PyTorch's module in the dump's storage type: the contract's limit is 1e-5 (float32),
4e-3 (float16), 3e-2 (bfloat16). For a 16-bit dump the evaluation is on the values as stored: the
dump's inputs and weights are already rounded, and Q, K, V, the context and the output are rounded
where mhfa stores them. Scores are formed a block of queries at a time, so that xlong fits in
memory.
"""
import math
import pathlib
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench_torch  # noqa: E402  (read_case, build_module)


LIMITS = {0: 1e-5, 1: 4e-3, 2: 3e-2}  # by the dump's dtype (mhfa_dtype)
STORAGE = {1: torch.float16, 2: torch.bfloat16}


def reference(hdr, data, device):
    """The layer in float64: projections, masked softmax(Q K^T / sqrt(d)) V per head, output;
    with a 16-bit dtype in the header, rounded to it where mhfa stores values."""
    storage = STORAGE.get(hdr.get("dtype", 0))

    def stored(x):
        return x if storage is None else x.to(storage).double()

    weights = {name: (w.to(device).double(), b.to(device).double())
               for name, (w, b) in ((n, data[n]) for n in ("W_query", "W_key", "W_val", "W_out"))}
    q = data["q"].to(device).double()
    h = data["h"].to(device).double() if data["h"] is not None else q
    batch, n_query, graph_size = hdr["batch"], hdr["n_query"], hdr["graph_size"]
    heads, embed = hdr["n_heads"], hdr["embed_dim"]
    d = embed // heads

    def linear(x, name):
        return stored(x @ weights[name][0].T + weights[name][1])

    def per_head(x, n):
        return x.view(batch, n, heads, d).transpose(1, 2)

    Q = per_head(linear(q, "W_query"), n_query)
    K = per_head(linear(h, "W_key"), graph_size)
    V = per_head(linear(h, "W_val"), graph_size)
    mask = data["mask"]
    if mask is not None:  # True = masked out
        mask = mask.to(device)
        mask = mask.view(batch, 1, 1, graph_size) if mask.dim() == 2 else \
            mask.view(batch, 1, n_query, graph_size)
    context = torch.empty(batch, heads, n_query, d, dtype=torch.float64, device=device)
    step = max(1, (1 << 27) // (batch * heads * graph_size))
    for s in range(0, n_query, step):
        scores = Q[:, :, s:s + step] @ K.transpose(-1, -2) / math.sqrt(d)
        if mask is not None:
            scores = scores.masked_fill(mask[:, :, s:s + step] if mask.shape[2] > 1 else mask,
                                        float("-inf"))
        weights_s = torch.softmax(scores, -1).nan_to_num(0.0)  # fully masked rows: 0
        context[:, :, s:s + step] = weights_s @ V
    return linear(stored(context).transpose(1, 2).reshape(batch, n_query, embed), "W_out")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for path in sorted(pathlib.Path(sys.argv[1]).glob("*.bin")):
        hdr, data = bench_torch.read_case(path)
        with torch.no_grad():
            ref = reference(hdr, data, device).cpu()
            module = bench_torch.build_module(hdr, data, device)
            args = bench_torch.inputs_on(hdr, data, device)
            torch_out = module(*args).double().cpu()
        scale = max(1.0, ref.abs().max().item())
        mhfa_err = (data["out"].double() - ref).abs().max().item() / scale
        torch_err = (torch_out - ref).abs().max().item() / scale
        dtype = bench_torch.DTYPE_NAMES[hdr["dtype"]]
        print(f"{hdr['name']:15s} max|ref| {ref.abs().max().item():.3f}  "
              f"mhfa {mhfa_err:.2e}  PyTorch {dtype} {torch_err:.2e}  "
              f"(limit {LIMITS[hdr['dtype']]:g})", flush=True)


if __name__ == "__main__":
    main()
