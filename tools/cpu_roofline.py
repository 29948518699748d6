#!/usr/bin/env python3
"""Where mhfa's time goes on a CPU, against the machine's own limits, in one run.

    tools/cpu_roofline.py [--build DIR] [--cases a,b] [--runs N] [--dtype float32]

Runs mhfa-bench --peak --stages (PoCL: MHFA_DEVICE=pocl) for the cases, then OpenBLAS SGEMM
(numpy's matmul on float32; OPENBLAS_NUM_THREADS sets its threads, 2 unless set) at the shapes of
each case's projections, and prints per case and stage: mhfa's device time and GFLOP/s, its share
of the multiply-add peak that --peak measured through the same OpenCL device, and for the
projections the SGEMM time at the same shape and mhfa's speed as a share of it. The attention
stage has no GEMM of its own to compare with; its share of the peak is the figure.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
import numpy as np  # noqa: E402  (after the thread count is set)

CASE_LINE = re.compile(r"\[mhfa-bench\] (\S+): B(\d+) Nq(\d+) Nk(\d+) Din(\d+) E(\d+) H(\d+)")


def sgemm_ms(m, k, n, runs):
    """Median ms of a float32 [m][k] x [k][n] product through numpy (OpenBLAS)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    out = np.empty((m, n), np.float32)
    np.matmul(a, b, out=out)  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def gemm_shapes(shape):
    """(stage, [(m, k, n), ...]) of a case's projections, as mhfa launches them."""
    b, nq, nk, din, e = (shape[k] for k in ("batch", "nq", "nk", "din", "e"))
    inputs = [(b * nq, din, 3 * e)] if nq == nk else [(b * nq, din, e), (b * nk, din, 2 * e)]
    return [("project", inputs), ("output", [(b * nq, e, e)])]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default="build")
    p.add_argument("--cases", default="route-enc,route-enc-mask,route-dec,route-store,long")
    p.add_argument("--runs", type=int, default=9)
    p.add_argument("--dtype", default="float32")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        json_path = os.path.join(tmp, "mhfa.json")
        run = subprocess.run(
            [os.path.join(args.build, "tools", "mhfa-bench"), "--peak", "--stages", "--short",
             "--cases", args.cases, "--runs", str(args.runs), "--dtype", args.dtype,
             "--json", json_path], capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"mhfa-bench failed ({run.returncode}):\n{run.stderr}")
        results = {r["case"]: r for r in json.load(open(json_path))}
    peak = float(re.search(r"peak fma_gflops=([\d.]+)", run.stdout).group(1))
    shapes = {m.group(1): dict(zip(("batch", "nq", "nk", "din", "e", "h"),
                                   map(int, m.groups()[1:])))
              for m in CASE_LINE.finditer(run.stderr)}
    print(f"# device peak (mhfa-bench --peak): {peak:.1f} GFLOP/s; SGEMM: numpy {np.__version__},"
          f" OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}; mhfa --dtype {args.dtype}")
    line = "%-15s %-8s %10s %9s %7s %10s %9s %9s"
    print(line % ("case", "stage", "mhfa_ms", "GFLOP/s", "%peak", "sgemm_ms", "GFLOP/s",
                  "%sgemm"))
    for case, r in results.items():
        if r.get("error") or r.get("skipped") or case not in shapes:
            print(f"{case:15s} {r.get('error') or r.get('note', 'no stage times')}")
            continue
        shape = shapes[case]
        flops = {"project": 2.0 * shape["batch"] * (shape["nq"] + 2 * shape["nk"]) * shape["din"]
                 * shape["e"],
                 "attend": 4.0 * shape["batch"] * shape["nq"] * shape["nk"] * shape["e"],
                 "output": 2.0 * shape["batch"] * shape["nq"] * shape["e"] * shape["e"]}
        sgemm = {stage: sum(sgemm_ms(m, k, n, args.runs) for m, k, n in gemms)
                 for stage, gemms in gemm_shapes(shape)}
        if not r.get("project_ms") and r.get("attend_ms"):
            print(f"{case:15s} attend   {r['attend_ms']:10.2f}   the absorbed kernel: the whole "
                  "forward in one launch, no stage to set against a GEMM")
            continue
        for stage in ("project", "attend", "output"):
            ms = r.get(stage + "_ms")
            if not ms:
                print(line % (case, stage, "-", "-", "-", "-", "-", "-"))
                continue
            gflops = flops[stage] / (ms * 1e-3) / 1e9
            s_ms = sgemm.get(stage)
            s_gflops = flops[stage] / (s_ms * 1e-3) / 1e9 if s_ms else None
            print(line % (case, stage, f"{ms:.2f}", f"{gflops:.1f}", f"{100 * gflops / peak:.0f}",
                          "-" if s_ms is None else f"{s_ms:.2f}",
                          "-" if s_gflops is None else f"{s_gflops:.1f}",
                          "-" if s_ms is None else f"{100 * s_ms / ms:.0f}"))


if __name__ == "__main__":
    main()
