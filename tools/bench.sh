#!/usr/bin/env bash
# mhfa against PyTorch, side by side, on the same weights and inputs.
#
#   tools/bench.sh [--cases a,b,...] [--json FILE] [--runs N] [--short] [--threads N]
#                  [--chart FILE.png] [--peers a,b,... | --no-peers]
#                  [--precision float32,bfloat16,float16] [--compile]
#
# Builds mhfa-bench into build/ (cmake + ninja) when it is missing, runs it on the device of
# MHFA_DEVICE (dumping each case's weights, inputs, mask and output into build/bench-work/), then
# runs tools/bench_torch.py on those dumps (CUDA if PyTorch sees a GPU, else CPU) and prints one
# row per case. JSON goes to build/bench.json unless --json says otherwise. --chart draws that
# JSON with tools/bench_chart.py (needs matplotlib beside torch). On a terminal, one line on
# stderr shows the case, the step and the seconds so far; in a pipe nothing is added.
#
# When PyTorch runs on CPU, the CPU peers of tools/bench_peers.py run the same module on the same
# inputs (torch-eager, torch-compile, openvino-f32, openvino-default, ort; --peers picks some,
# --no-peers none), with a table per case: ms, ratio to mhfa, error against float64. Their
# packages (openvino onnxruntime onnx onnxscript) are installed with pip when missing; a failed
# install is reported and the peers concerned show the error.
#
# --precision runs everything once per storage type (mhfa-bench --dtype, PyTorch's module and
# inputs in that dtype; dumps of float32 in build/bench-work, of the others in
# build/bench-work/DTYPE) and implies --compile: PyTorch eager, torch.compile and, on CUDA,
# torch.compile(mode="reduce-overhead"), compile times apart, with a table per precision of
# ratios to each and to the best, and every output's error against float64 (on the values as
# stored, for 16-bit types), and the attention core's TFLOP/s from a second, profiled mhfa-bench
# run (--stages, 5 forwards; the absorbed kernel's whole forward counts as the core). The CPU
# peers run with float32.
#
# Environment:
#   MHFA_DEVICE         OpenCL device for mhfa (e.g. pocl, nvidia); unset: first GPU, else any.
#   MHFA_TORCH_PYTHON   Python interpreter with torch to use (e.g. /opt/torchenv/bin/python).
#                       Unset: python3 if it imports torch, else build/torch-venv, created and
#                       filled from PyPI on first use.
#   MHFA_BUILD_DIR      build folder (default build/).
#   MHFA_TORCH_THREADS  CPU threads for PyTorch and the peers on CPU (default 2; also --threads).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MHFA_BUILD_DIR:-$root/build}"
cases=""
json=""
runs=""
short=""
chart=""
threads="${MHFA_TORCH_THREADS:-2}"
peers="all"
precisions="float32"
compile=""

usage() {
    sed -n '2,38s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --cases) cases="$2"; shift 2 ;;
        --json) json="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --short) short=1; shift ;;
        --chart) chart="$2"; shift 2 ;;
        --peers) peers="$2"; shift 2 ;;
        --no-peers) peers="none"; shift ;;
        --precision) precisions="$2"; compile=1; shift 2 ;;
        --compile) compile=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "bench.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
json="${json:-$build/bench.json}"
source "$root/tools/progress.sh"
work="$build/bench-work"

build_bench() {
    if [[ ! -f "$build/build.ninja" && ! -f "$build/Makefile" ]]; then
        echo "== configuring $build" >&2
        cmake -S "$root" -B "$build" -G Ninja >&2
    fi
    echo "== building mhfa-bench" >&2
    cmake --build "$build" --target mhfa-bench >&2
}

# Prints the path of a Python that imports torch, installing one under build/ if needed.
torch_python() {
    if [[ -n "${MHFA_TORCH_PYTHON:-}" ]]; then
        echo "$MHFA_TORCH_PYTHON"
        return
    fi
    if python3 -c 'import torch' 2>/dev/null; then
        command -v python3
        return
    fi
    local venv="$build/torch-venv"
    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
        echo "== installing PyTorch from PyPI into $venv" >&2
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install --upgrade pip >&2
        "$venv/bin/pip" install torch >&2
    fi
    echo "$venv/bin/python"
}

# pip-installs what the CPU peers import, when PyTorch runs on CPU; a failure is only reported.
peer_packages() {
    local missing=() pkg
    if [[ "$peers" == none ]] || "$py" -c 'import torch; exit(not torch.cuda.is_available())'; then
        return 0
    fi
    for pkg in openvino onnxruntime onnx onnxscript; do
        "$py" -c "import $pkg" 2>/dev/null || missing+=("$pkg")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then return 0; fi
    echo "== installing ${missing[*]} for the CPU peers ($py -m pip)" >&2
    if ! "$py" -m pip install "${missing[@]}" >&2; then
        echo "bench.sh: pip install ${missing[*]} failed; the peers that need them report it" >&2
    fi
}

progress_run building build_bench
py="$(progress_run "finding PyTorch" torch_python)"
progress_run "installing peers" peer_packages
mhfa_common=()
torch_common=(--threads "$threads")
if [[ -n "$cases" ]]; then mhfa_common+=(--cases "$cases"); fi
if [[ -n "$runs" ]]; then
    mhfa_common+=(--runs "$runs")
    torch_common+=(--runs "$runs")
fi
if [[ -n "$short" ]]; then mhfa_common+=(--short); fi
if [[ -n "$compile" ]]; then torch_common+=(--compile); fi

status=0
results=()
IFS=',' read -r -a precision_list <<<"$precisions"
for precision in "${precision_list[@]}"; do
    dir="$work"
    [[ "$precision" == float32 ]] || dir="$work/$precision"
    mkdir -p "$dir"
    rm -f "$dir"/*.bin "$dir"/mhfa.json "$dir"/torch.json
    peer_args=(--peers "$peers")
    [[ "$precision" == float32 ]] || peer_args=(--peers none)
    echo "== mhfa-bench --dtype $precision (MHFA_DEVICE=${MHFA_DEVICE:-<unset>})" >&2
    progress_run "mhfa $precision" "$build/tools/mhfa-bench" "${mhfa_common[@]}" --dtype "$precision" \
        --dump "$dir" --json "$dir/mhfa.json" || status=$?
    [[ -f "$dir/mhfa.json" ]] || echo "[]" >"$dir/mhfa.json"
    echo "== bench_torch.py $precision ($py)" >&2
    progress_run "pytorch $precision" "$py" "$root/tools/bench_torch.py" --dump "$dir" \
        --json "$dir/torch.json" "${torch_common[@]}" "${peer_args[@]}" || status=$?
    [[ -f "$dir/torch.json" ]] || echo "[]" >"$dir/torch.json"
    if [[ -n "$compile" ]]; then # the attention core's rate, from a profiling queue of its own
        progress_run "stages $precision" "$build/tools/mhfa-bench" "${mhfa_common[@]}" \
            --dtype "$precision" --stages --runs 5 --json "$dir/stages.json" >/dev/null || status=$?
    fi
    [[ -f "$dir/stages.json" ]] || echo "[]" >"$dir/stages.json"
    results+=("$dir/mhfa.json" "$dir/torch.json" "$dir/stages.json")
done

# Merge both sides per case, print the tables and write the JSON list.
"$py" - "$json" "${results[@]}" <<'EOF'
import datetime, json, sys

files = sys.argv[2:]
runs = [[json.load(open(f)) for f in files[i:i + 3]] for i in range(0, len(files), 3)]
date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
rows = []
for mhfa, torch_rows, stage_rows in runs:
    torch_by_case = {r["case"]: r for r in torch_rows}
    stages_by_case = {r["case"]: r for r in stage_rows}
    for m in mhfa:
        t = torch_by_case.get(m["case"], {})
        row = dict(m)
        row.update({k: v for k, v in t.items() if k != "date"})
        gflops = stages_by_case.get(m["case"], {}).get("attend_gflops")
        row["attend_tflops"] = gflops / 1e3 if gflops else None
        for key in ("mhfa_ms", "torch_ms", "mhfa_peak_bytes", "max_abs_diff", "mhfa_err64"):
            row.setdefault(key, None)
        row["ratio"] = (row["torch_ms"] / row["mhfa_ms"]
                        if row["mhfa_ms"] and row["torch_ms"] else None)
        for p in row.get("peers", []):  # peer ms / mhfa ms, as ratio
            p["ratio"] = p["ms"] / row["mhfa_ms"] if p["ms"] and row["mhfa_ms"] else None
        f32 = [p for p in row.get("peers", []) if p["precision"] == "f32" and p["ms"]]
        best = min(f32, key=lambda p: p["ms"]) if f32 else {}
        row["best_f32_peer"], row["best_f32_ms"] = best.get("name"), best.get("ms")
        row["best_f32_ratio"] = best.get("ratio")
        row["date"] = date
        rows.append(row)

def cell(v, fmt):
    return "-" if v is None else format(v, fmt)

head = ("case", "dtype", "device", "mhfa_ms", "torch_ms", "ratio", "TFLOP/s", "mhfa_peak_bytes",
        "max_abs_diff", "mhfa_err64", "best_f32_peer", "vs_best")
line = "%-15s %-8s %-34s %10s %10s %7s %8s %15s %12s %10s %-16s %7s  %s"
print(line % (head + ("note",)))
for r in rows:
    note = r.get("error") or r.get("note", "")
    print(line % (
        r["case"], r.get("dtype", "float32"), r["device"][:34], cell(r["mhfa_ms"], ".3f"),
        cell(r["torch_ms"], ".3f"),
        cell(r["ratio"], ".2f"), cell(r.get("tflops"), ".4f"), cell(r["mhfa_peak_bytes"], "d"),
        cell(r["max_abs_diff"], ".2e"), cell(r["mhfa_err64"], ".2e"),
        r["best_f32_peer"] or "-", cell(r["best_f32_ratio"], ".2f"), note))

# With --compile: per precision, PyTorch's eager and compiled modules against mhfa (ratio = their
# ms / mhfa ms; best = the fastest of them) and each one's error against float64.
names = ("torch-eager", "torch-compile", "torch-compile-ro")
for r in rows:
    if "variants" not in r:
        continue
    ms = {"torch-eager": r["torch_ms"]}
    ms.update({v["name"]: v["ms"] for v in r["variants"]})
    timed = {n: t for n, t in ms.items() if t}
    r["best_torch"] = min(timed, key=timed.get) if timed else None
    r["best_torch_ratio"] = (timed[r["best_torch"]] / r["mhfa_ms"]
                             if r["best_torch"] and r["mhfa_ms"] else None)
dtypes = list(dict.fromkeys(r.get("dtype", "float32") for r in rows if "variants" in r))
for dtype in dtypes:
    print("\n== %s: mhfa against PyTorch (ratio = PyTorch ms / mhfa ms; err64 = max error "
          "against float64 on the stored values)" % dtype)
    vline = "%-15s %9s %9s %9s %9s %6s %6s %6s %-17s %6s %9s %9s %9s %9s %8s"
    print(vline % ("case", "mhfa_ms", "eager", "compile", "compile-ro", "r_eag", "r_cmp",
                   "r_ro", "best", "r_best", "mhfa_e64", "eager_e64", "cmp_e64", "ro_e64",
                   "core_TF/s"))
    for r in rows:
        if r.get("dtype", "float32") != dtype or "variants" not in r:
            continue
        var = {v["name"]: v for v in r["variants"]}
        def v_ms(n):
            return r["torch_ms"] if n == "torch-eager" else var.get(n, {}).get("ms")
        def v_err(n):
            return r.get("torch_err64") if n == "torch-eager" else var.get(n, {}).get("err64")
        ratios = [v_ms(n) / r["mhfa_ms"] if v_ms(n) and r["mhfa_ms"] else None for n in names]
        print(vline % ((r["case"], cell(r["mhfa_ms"], ".3f")) +
                       tuple(cell(v_ms(n), ".3f") for n in names) +
                       tuple(cell(x, ".2f") for x in ratios) +
                       (r["best_torch"] or "-", cell(r["best_torch_ratio"], ".2f"),
                        cell(r.get("mhfa_err64"), ".1e")) +
                       tuple(cell(v_err(n), ".1e") for n in names) +
                       (cell(r.get("attend_tflops"), ".2f"),)))
        for v in r["variants"]:
            if v["status"] != "ok":
                print("   %s %s: %s" % (v["name"], v["status"], v["error"]))
            elif v["compile_s"] is not None:
                print("   %s compiled in %.1f s" % (v["name"], v["compile_s"]))

# One table per case with peers: ratio = ms / mhfa ms (above 1: mhfa is faster).
for r in rows:
    if not r.get("peers"):
        continue
    print("\n== %s: mhfa and its CPU peers (ratio = ms / mhfa_ms; err64 = max error against "
          "float64; * = best float32 peer)" % r["case"])
    peer_line = " %1s %-17s %-9s %10s %7s %10s  %s"
    print(peer_line % ("", "name", "precision", "ms", "ratio", "err64", "status"))
    mhfa_status = "error: " + r["error"] if r.get("error") else "ok"
    print(peer_line % ("", "mhfa", "f32", cell(r["mhfa_ms"], ".3f"), "1.00" if r["mhfa_ms"]
                       else "-", cell(r["mhfa_err64"], ".2e"), mhfa_status))
    for p in r["peers"]:
        status = "error: " + p["error"] if p["status"] == "error" else p["status"]
        print(peer_line % ("*" if p["name"] == r["best_f32_peer"] else "", p["name"],
                           p["precision"] or "-", cell(p["ms"], ".3f"), cell(p["ratio"], ".2f"),
                           cell(p["err64"], ".2e"), status))
    if r["best_f32_peer"]:
        print("   best float32 peer: %s, %s ms, ratio %s" % (
            r["best_f32_peer"], cell(r["best_f32_ms"], ".3f"), cell(r["best_f32_ratio"], ".2f")))
notes = dict.fromkeys(r["peers_note"] for r in rows if r.get("peers_note"))
for n in notes:
    print("# " + n)
with open(sys.argv[1], "w") as f:
    json.dump(rows, f, indent=1)
print("# torch: %s; JSON: %s" % (rows[0].get("torch_device", "-") if rows else "-", sys.argv[1]))
EOF
if [[ -n "$chart" ]]; then
    progress_run chart "$py" "$root/tools/bench_chart.py" "$json" "$chart" || status=$?
fi
exit "$status"
