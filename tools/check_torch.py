#!/usr/bin/env python3
"""PyTorch parity check of the Python package (needs torch and safetensors; not run in CI).

Trains the layer in PyTorch (Adam, a toy objective) so its weights are not the initial ones,
brings it into mhfa three ways (mhfa.Layer.from_torch; tools/export_torch.py on a checkpoint
with a nested prefix; safetensors.torch.save_file of the whole state_dict, loaded with n_heads),
runs self-attention, cross-attention with masks and a decoder step through each, and compares
with PyTorch in float32 and float64: max |mhfa - torch64| <= 1e-5 * max(1, max |torch64|).

    MHFA_LIBRARY=build/libmhfa.so python tools/check_torch.py [--device pocl] [--steps 300]

Prints a table; exits 1 when a row fails.
"""
import argparse
import copy
import math
import os
import subprocess
import sys
import tempfile

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIX = "encoder.layers.0.attn."


class Layer(nn.Module):
    """MultiHeadFlashAttention: four projections, per-head scaled dot products, mask True = out."""

    def __init__(self, n_heads, input_dim, embed_dim, bias=True):
        super().__init__()
        self.n_heads, self.head_dim = n_heads, embed_dim // n_heads
        self.W_query = nn.Linear(input_dim, embed_dim, bias)
        self.W_key = nn.Linear(input_dim, embed_dim, bias)
        self.W_val = nn.Linear(input_dim, embed_dim, bias)
        self.W_out = nn.Linear(embed_dim, embed_dim, bias)
        for lin in (self.W_query, self.W_key, self.W_val, self.W_out):
            nn.init.xavier_uniform_(lin.weight)

    def heads(self, x):
        b, n, _ = x.shape
        return x.view(b, n, self.n_heads, self.head_dim).transpose(1, 2)

    def forward(self, q, h=None, mask=None, sdpa=True):
        """sdpa: PyTorch's fused attention; else explicit softmax (returns the weights too)."""
        h = q if h is None else h
        b, nq, _ = q.shape
        Q, K, V = self.heads(self.W_query(q)), self.heads(self.W_key(h)), self.heads(self.W_val(h))
        shape = (b, self.n_heads, nq, h.shape[1])
        masked = torch.zeros(shape, dtype=torch.bool) if mask is None else as_4d(mask).expand(shape)
        dead = masked.all(dim=-1, keepdim=True)
        weights = None
        if sdpa:
            keep = None if mask is None else ~masked
            ctx = F.scaled_dot_product_attention(Q, K, V, attn_mask=keep)
        else:
            scores = (Q @ K.transpose(-2, -1)) / math.sqrt(self.head_dim)
            weights = torch.softmax(scores.masked_fill(masked, float("-inf")), -1)
            weights = weights.masked_fill(dead, 0.0)
            ctx = weights @ V
        ctx = ctx.masked_fill(dead, 0.0)
        return self.W_out(ctx.transpose(1, 2).reshape(b, nq, -1)), weights


def as_4d(mask):
    return {2: lambda m: m[:, None, None, :], 3: lambda m: m[:, None], 4: lambda m: m}[mask.dim()](mask)


class Model(nn.Module):
    """The layer at encoder.layers.0.attn, as in a real model's state_dict."""

    def __init__(self, n_heads, input_dim, embed_dim, bias):
        super().__init__()
        self.embed = nn.Linear(3, input_dim)
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList([nn.Module()])
        self.encoder.layers[0].attn = Layer(n_heads, input_dim, embed_dim, bias)
        self.head = nn.Linear(embed_dim, 1)

    @property
    def attn(self):
        return self.encoder.layers[0].attn

    def forward(self, points, mask=None):
        x = self.embed(points)
        return self.head(self.attn(x, None, mask)[0]).squeeze(-1)


def train(model, steps, gen):
    """Adam on a toy task: each point's distance to the centroid of the unmasked points."""
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        points = torch.rand(16, 12, 3, generator=gen)
        mask = torch.rand(16, 12, generator=gen) < 0.25
        keep = (~mask).float()[..., None]
        centroid = (points * keep).sum(1, keepdim=True) / keep.sum(1, keepdim=True).clamp(min=1)
        target = (points - centroid).norm(dim=-1)
        loss = F.mse_loss(model(points, mask), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def cases(input_dim, n_heads, gen):
    """name -> (q, h, mask) as torch float32 tensors (h and mask may be None)."""
    def x(*shape):
        return torch.randn(*shape, generator=gen)

    def mask(*dims, dead=True):
        m = torch.rand(dims, generator=gen) < 0.3
        if dead:
            m.view(-1, dims[-1])[1::3] = True
        return m

    return {
        "self": (x(4, 20, input_dim), None, None),
        "self mask2": (x(4, 20, input_dim), None, mask(4, 20, dead=False)),
        "cross mask3": (x(3, 6, input_dim), x(3, 17, input_dim), mask(3, 6, 17)),
        "cross mask4": (x(2, 5, input_dim), x(2, 9, input_dim), mask(2, n_heads, 5, 9)),
        "decoder step": (x(8, 1, input_dim), x(8, 50, input_dim), mask(8, 50, dead=False)),
    }


def layers_from(mhfa, model, workdir, device, tag):
    """name -> mhfa.Layer, each way of bringing the trained layer over."""
    attn = model.attn
    found = {"from_torch": mhfa.Layer.from_torch(attn, device=device),
             "from_torch store": mhfa.Layer.from_torch(attn, device=device,
                                                       store_attn_weights=True)}
    checkpoint = os.path.join(workdir, f"{tag}.pt")
    torch.save({"model": model.state_dict(), "step": 1}, checkpoint)
    exported = os.path.join(workdir, f"{tag}-export.safetensors")
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "export_torch.py"), checkpoint,
                    exported, "--prefix", PREFIX, "--n-heads", str(attn.n_heads)], check=True)
    found["export_torch.py"] = mhfa.Layer.load(exported, device=device)
    whole = os.path.join(workdir, f"{tag}-state.safetensors")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, whole)
    found["save_file + n_heads"] = mhfa.Layer.load(whole, prefix=PREFIX, n_heads=attn.n_heads,
                                                   device=device)
    return found


def max_abs(a, b):
    return (a.double() - b.double()).abs().max().item()


def check(mhfa, config, steps, device, workdir, rows):
    n_heads, input_dim, embed_dim, bias = config
    tag = f"h{n_heads}-d{input_dim}-e{embed_dim}-b{int(bias)}"
    torch.manual_seed(len(rows) + 1)
    gen = torch.Generator().manual_seed(7 + len(rows))
    model = Model(n_heads, input_dim, embed_dim, bias)
    initial = copy.deepcopy(model.attn.state_dict())
    loss = train(model, steps, gen)
    moved = max(max_abs(initial[k], v) for k, v in model.attn.state_dict().items())
    print(f"{tag}: trained {steps} steps, loss {loss:.4f}, weights moved by up to {moved:.3f}")
    ok = moved > 1e-2
    attn32 = model.attn.eval()
    attn64 = copy.deepcopy(attn32).double()
    layers = layers_from(mhfa, model, workdir, device, tag)
    with torch.no_grad():
        for case, (q, h, mask) in cases(input_dim, n_heads, gen).items():
            ref64, w64 = attn64(q.double(), None if h is None else h.double(), mask, sdpa=False)
            ref32, _ = attn32(q, h, mask)
            bound = 1e-5 * max(1.0, ref64.abs().max().item())
            for name, layer in layers.items():
                out = torch.from_numpy(layer(q.numpy(), None if h is None else h.numpy(),
                                             None if mask is None else mask.numpy()))
                err = max_abs(out, ref64)
                row_ok = err <= bound
                if layer.store_attn_weights:
                    w, _ = layer.last_attention
                    row_ok = row_ok and max_abs(torch.from_numpy(w), w64) <= 1e-5
                rows.append((tag, case, name, err, max_abs(out, ref32), max_abs(ref32, ref64),
                             bound, row_ok))
                ok = ok and row_ok
    for layer in layers.values():
        layer.close()
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="mhfa device spec (default MHFA_DEVICE)")
    parser.add_argument("--steps", type=int, default=300, help="Adam steps of training")
    args = parser.parse_args()
    try:
        import mhfa
    except ModuleNotFoundError:
        sys.path.insert(0, os.path.join(ROOT, "python"))
        import mhfa
    print(f"mhfa {mhfa.__version__} ({mhfa._native.lib._name}), torch {torch.__version__}")
    rows, ok = [], True
    with tempfile.TemporaryDirectory() as workdir, mhfa.Context(args.device) as device:
        print(f"device: {device.device_name}")
        for config in ((8, 16, 64, True), (3, 7, 12, False)):
            ok = check(mhfa, config, args.steps, device, workdir, rows) and ok
    header = ("layer", "case", "mhfa from", "|mhfa-t64|", "|mhfa-t32|", "|t32-t64|", "bound", "")
    widths = (16, 13, 20, 10, 10, 10, 9, 4)
    print("  ".join(f"{h:<{w}}" for h, w in zip(header, widths)))
    for tag, case, name, e64, e32, t, bound, row_ok in rows:
        print(f"{tag:<16}  {case:<13}  {name:<20}  {e64:<10.2e}  {e32:<10.2e}  {t:<10.2e}  "
              f"{bound:<9.1e}  {'ok' if row_ok else 'FAIL'}")
    print("all within bound" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
