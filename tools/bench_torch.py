#!/usr/bin/env python3
"""PyTorch side of the mhfa benchmark (tools/bench.sh runs it after mhfa-bench).

For each case it loads DIR/<case>.bin written by mhfa-bench (shapes, mhfa's weights, the inputs,
the mask and mhfa's output), builds the MultiHeadFlashAttention layer in PyTorch from
docs/semantics.md, times one module call (median of --runs after warm-up, inputs already
on the device, under torch.no_grad()) and reports max |mhfa - torch| on the same numbers.
CUDA if available (CUDA events, TF32 off), else CPU with --threads threads (wall clock).
On CPU it also runs the peers of tools/bench_peers.py (--peers) on the same module and inputs,
timed the same way, and gives every output's error against a float64 evaluation.
The module runs in the dump's storage type (mhfa-bench --dtype): float32, float16 or bfloat16.
--compile also times torch.compile of the module, default mode and (CUDA only: it adds CUDA
graphs) mode="reduce-overhead", each compiled afresh, its compile time (the first call) reported
apart; a variant that fails is reported with its error.
"""
import argparse
import datetime
import json
import math
import os
import statistics
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import bench_peers

DTYPE_NAMES = ("float32", "float16", "bfloat16")  # mhfa_dtype, as the dump's header holds it
TORCH_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

MAGIC = b"MHFABNC1"
HEADER = struct.Struct("<8s32s16i")
HEADER_FIELDS = ("batch", "n_query", "graph_size", "input_dim", "embed_dim", "n_heads", "cross",
                 "store", "mask_ndim", "m0", "m1", "m2", "m3", "bias", "dtype", "pad1")


class MultiHeadFlashAttention(nn.Module):
    """The layer as SEMANTICS.md describes it (evaluation mode, no dropout)."""

    def __init__(self, n_heads, input_dim, embed_dim, bias=True, store_attn_weights=False):
        super().__init__()
        if embed_dim % n_heads:
            raise ValueError("embed_dim must be divisible by n_heads")
        self.n_heads = n_heads
        self.head_dim = embed_dim // n_heads
        self.store_attn_weights = store_attn_weights
        self.W_query = nn.Linear(input_dim, embed_dim, bias=bias)
        self.W_key = nn.Linear(input_dim, embed_dim, bias=bias)
        self.W_val = nn.Linear(input_dim, embed_dim, bias=bias)
        self.W_out = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.last_attn = None

    def _heads(self, x):  # [B][N][E] -> [B][H][N][d]
        b, n, _ = x.shape
        return x.view(b, n, self.n_heads, self.head_dim).transpose(1, 2)

    @staticmethod
    def _broadcast_mask(mask):  # True = masked out, to [B][1 or H][Nq or 1][Nk]
        if mask.dim() == 2:
            return mask[:, None, None, :]
        if mask.dim() == 3:
            return mask[:, None, :, :]
        return mask

    def _manual(self, q, k, v, mask):
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        if mask is not None:
            scores = scores.masked_fill(mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        self.last_attn = (weights, mask)
        return weights @ v

    def forward(self, q, h=None, mask=None):
        if h is None:
            h = q
        b, nq, _ = q.shape
        Q, K, V = self._heads(self.W_query(q)), self._heads(self.W_key(h)), self._heads(self.W_val(h))
        m = self._broadcast_mask(mask) if mask is not None else None
        if self.store_attn_weights:
            ctx = self._manual(Q, K, V, m)
        else:  # SDPA's boolean mask has True = may attend: the opposite of ours
            ctx = F.scaled_dot_product_attention(Q, K, V, attn_mask=None if m is None else ~m)
        return self.W_out(ctx.transpose(1, 2).reshape(b, nq, -1))


def read_case(path):
    """The dump of one case: header dict and tensors (CPU)."""
    with open(path, "rb") as f:
        raw = f.read()
    magic, name, *ints = HEADER.unpack_from(raw, 0)
    if magic != MAGIC:
        raise ValueError(f"{path}: not an mhfa-bench dump")
    hdr = dict(zip(HEADER_FIELDS, ints), name=name.rstrip(b"\0").decode())
    pos = HEADER.size

    def take(count, dtype, shape):
        nonlocal pos
        size = count * (4 if dtype == torch.float32 else 1)
        t = torch.frombuffer(bytearray(raw[pos:pos + size]), dtype=dtype).reshape(shape)
        pos += size
        return t

    e, din, b = hdr["embed_dim"], hdr["input_dim"], hdr["batch"]
    data = {}
    for proj in ("W_query", "W_key", "W_val", "W_out"):
        fan_in = e if proj == "W_out" else din
        data[proj] = (take(e * fan_in, torch.float32, (e, fan_in)), take(e, torch.float32, (e,)))
    data["q"] = take(b * hdr["n_query"] * din, torch.float32, (b, hdr["n_query"], din))
    data["h"] = None
    if hdr["cross"]:
        data["h"] = take(b * hdr["graph_size"] * din, torch.float32, (b, hdr["graph_size"], din))
    data["mask"] = None
    if hdr["mask_ndim"]:
        dims = [hdr[f"m{i}"] for i in range(hdr["mask_ndim"])]
        data["mask"] = take(math.prod(dims), torch.uint8, dims).bool()
    data["out"] = take(b * hdr["n_query"] * e, torch.float32, (b, hdr["n_query"], e))
    if pos != len(raw):
        raise ValueError(f"{path}: {len(raw) - pos} unexpected trailing bytes")
    return hdr, data


def build_module(hdr, data, device):
    m = MultiHeadFlashAttention(hdr["n_heads"], hdr["input_dim"], hdr["embed_dim"],
                                store_attn_weights=bool(hdr["store"]))
    with torch.no_grad():
        for proj in ("W_query", "W_key", "W_val", "W_out"):
            getattr(m, proj).weight.copy_(data[proj][0])
            getattr(m, proj).bias.copy_(data[proj][1])
    return m.to(device, TORCH_DTYPES[hdr["dtype"]]).eval()


def inputs_on(hdr, data, device):
    """q, h (or None) in the module's dtype and the mask (or None), on device."""
    dtype = TORCH_DTYPES[hdr["dtype"]]
    return [None if data[k] is None else data[k].to(device, dtype if k != "mask" else torch.bool)
            for k in ("q", "h", "mask")]


def time_calls(call, device, warmup, runs):
    """Median ms of runs calls after warmup calls."""
    for _ in range(warmup):
        call()
    times = []
    if device.type == "cuda":
        torch.cuda.synchronize()
        for _ in range(runs):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            call()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
    else:
        for _ in range(runs):
            t0 = time.perf_counter()
            call()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), times


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def run_case(path, device, args):
    hdr, data = read_case(path)
    module = build_module(hdr, data, device)
    q, h, mask = inputs_on(hdr, data, device)
    print(f"[bench_torch] {hdr['name']}: B{hdr['batch']} Nq{hdr['n_query']} "
          f"Nk{hdr['graph_size']} E{hdr['embed_dim']} H{hdr['n_heads']}", file=sys.stderr,
          flush=True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.no_grad():
        ms, _ = time_calls(lambda: module(q, h, mask), device, args.warmup, args.runs)
        out = module(q, h, mask).double().cpu()
    ref = data["out"].double()
    ref64 = bench_peers.reference(hdr, data, device)
    result = {
        "case": hdr["name"],
        "dtype": DTYPE_NAMES[hdr["dtype"]],
        "mhfa_err64": bench_peers.error64(data["out"], ref64),
        "torch_err64": bench_peers.error64(out, ref64),
        "torch_device": device_name(device),
        "torch_ms": ms,
        "torch_runs": args.runs,
        "torch_path": "manual" if hdr["store"] else "sdpa",
        "max_abs_diff": (out - ref).abs().max().item(),
        "max_abs_out": ref.abs().max().item(),
        "torch_version": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if device.type == "cuda":
        result["torch_peak_bytes"] = torch.cuda.max_memory_allocated(device)
    if args.compile:
        result["variants"] = compiled_variants(module, (q, h, mask), ref64, device, args)
    if args.peers and device.type == "cuda":
        result["peers_note"] = "peers skipped: PyTorch runs on CUDA, the peers are CPU only"
    elif args.peers and hdr["dtype"] != 0:
        result["peers_note"] = "peers run on the float32 dumps only"
    elif args.peers:
        result["peers"] = bench_peers.run(
            args.peers, hdr["name"], module, data, ref64, (ms, out),
            lambda call: time_calls(call, device, args.warmup, args.runs)[0], args.threads)
    return result


COMPILE_MODES = (("torch-compile", "default"), ("torch-compile-ro", "reduce-overhead"))


def compiled_variants(module, args_in, ref64, device, args):
    """torch.compile of module in each of COMPILE_MODES: one dict each (name, ms, compile_s,
    err64, status "ok", "skipped" or "error", error)."""
    rows = []
    for name, mode in COMPILE_MODES:
        row = {"name": name, "ms": None, "compile_s": None, "err64": None, "status": "ok",
               "error": ""}
        rows.append(row)
        if mode == "reduce-overhead" and device.type != "cuda":
            row.update(status="skipped", error="CUDA graphs need a GPU")
            continue
        print(f"[bench_torch] {name}", file=sys.stderr, flush=True)
        try:
            torch.compiler.reset()  # compiled afresh, not reused from the last case
            compiled = torch.compile(module, mode=mode)
            def call():
                # CUDA graphs reuse their output buffers: each call is a new step.
                if mode == "reduce-overhead":
                    torch.compiler.cudagraph_mark_step_begin()
                return compiled(*args_in)

            with torch.no_grad():
                t0 = time.perf_counter()
                out = call().clone()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                row["compile_s"] = time.perf_counter() - t0
                row["ms"], _ = time_calls(call, device, args.warmup, args.runs)
                row["err64"] = bench_peers.error64(out, ref64)
        except Exception as e:  # noqa: BLE001  (reported in the table and the JSON)
            print(f"[bench_torch] {name} failed: {type(e).__name__}: {e}", file=sys.stderr)
            row.update(status="error", ms=None,
                       error=f"{type(e).__name__}: {e}".splitlines()[0][:300])
    return rows


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dump", required=True, help="folder of mhfa-bench's <case>.bin files")
    p.add_argument("--cases", default="", help="comma-separated; default: every dump there")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2, help="CPU threads (CPU only)")
    p.add_argument("--device", default="", help="cuda or cpu (default: cuda if available)")
    p.add_argument("--json", help="write the results here as a JSON list")
    p.add_argument("--compile", action="store_true",
                   help="also time torch.compile (default and reduce-overhead modes)")
    p.add_argument("--peers", default="all",
                   help="CPU peers, comma-separated, 'all' or 'none' (CPU only): "
                   + ", ".join(bench_peers.NAMES))
    args = p.parse_args()
    try:
        args.peers = bench_peers.select(args.peers)
    except ValueError as e:
        p.error(str(e))
    return args


def main():
    args = parse_args()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # float32 as float32, as mhfa computes
        torch.backends.cudnn.allow_tf32 = False
    else:
        torch.set_num_threads(args.threads)
    if args.cases:
        names = args.cases.split(",")
    else:
        names = sorted(f[:-4] for f in os.listdir(args.dump) if f.endswith(".bin"))
    results = []
    for name in names:
        path = os.path.join(args.dump, name + ".bin")
        if not os.path.exists(path):
            print(f"[bench_torch] {name}: no dump, skipped", file=sys.stderr)
            continue
        r = run_case(path, device, args)
        print(f"case={r['case']} torch_ms={r['torch_ms']:.4f} max_abs_diff={r['max_abs_diff']:.3g}"
              f" torch_device=\"{r['torch_device']}\"", flush=True)
        for v in r.get("variants", []):
            cells = " ".join(f"{k}={'-' if v[k] is None else format(v[k], '.4g')}"
                             for k in ("ms", "compile_s", "err64"))
            print(f"case={r['case']} dtype={r['dtype']} variant={v['name']} {cells} "
                  f"status={v['status']}" + (f" error=\"{v['error']}\"" if v["error"] else ""),
                  flush=True)
        for peer in r.get("peers", []):
            ms = "-" if peer["ms"] is None else f"{peer['ms']:.4f}"
            err = "-" if peer["err64"] is None else f"{peer['err64']:.3g}"
            print(f"case={r['case']} peer={peer['name']} precision={peer['precision'] or '-'}"
                  f" ms={ms} err64={err} status={peer['status']}"
                  + (f" error=\"{peer['error']}\"" if peer["error"] else ""), flush=True)
        results.append(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
