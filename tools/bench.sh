#!/usr/bin/env bash
# mhfa against PyTorch, side by side, on the same weights and inputs.
#
#   tools/bench.sh [--cases a,b,...] [--json FILE] [--runs N] [--short] [--threads N]
#                  [--chart FILE.png]
#
# Builds mhfa-bench into build/ (cmake + ninja) when it is missing, runs it on the device of
# MHFA_DEVICE (dumping each case's weights, inputs, mask and output into build/bench-work/), then
# runs tools/bench_torch.py on those dumps (CUDA if PyTorch sees a GPU, else CPU) and prints one
# row per case. JSON goes to build/bench.json unless --json says otherwise. --chart draws that
# JSON with tools/bench_chart.py (needs matplotlib beside torch). On a terminal, one line on
# stderr shows the case, the step and the seconds so far; in a pipe nothing is added.
#
# Environment:
#   MHFA_DEVICE         OpenCL device for mhfa (e.g. pocl, nvidia); unset: first GPU, else any.
#   MHFA_TORCH_PYTHON   Python interpreter with torch to use (e.g. /opt/torchenv/bin/python).
#                       Unset: python3 if it imports torch, else build/torch-venv, created and
#                       filled from PyPI on first use.
#   MHFA_BUILD_DIR      build folder (default build/).
#   MHFA_TORCH_THREADS  CPU threads for PyTorch on CPU (default 2; also --threads).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MHFA_BUILD_DIR:-$root/build}"
cases=""
json=""
runs=""
short=""
chart=""
threads="${MHFA_TORCH_THREADS:-2}"

usage() {
    sed -n '2,21s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --cases) cases="$2"; shift 2 ;;
        --json) json="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --short) short=1; shift ;;
        --chart) chart="$2"; shift 2 ;;
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

progress_run building build_bench
py="$(progress_run "finding PyTorch" torch_python)"
mkdir -p "$work"
rm -f "$work"/*.bin "$work"/mhfa.json "$work"/torch.json

mhfa_args=(--dump "$work" --json "$work/mhfa.json")
torch_args=(--dump "$work" --json "$work/torch.json" --threads "$threads")
if [[ -n "$cases" ]]; then mhfa_args+=(--cases "$cases"); fi
if [[ -n "$runs" ]]; then
    mhfa_args+=(--runs "$runs")
    torch_args+=(--runs "$runs")
fi
if [[ -n "$short" ]]; then mhfa_args+=(--short); fi

echo "== mhfa-bench (MHFA_DEVICE=${MHFA_DEVICE:-<unset>})" >&2
status=0
progress_run mhfa "$build/tools/mhfa-bench" "${mhfa_args[@]}" || status=$?
echo "== bench_torch.py ($py)" >&2
progress_run pytorch "$py" "$root/tools/bench_torch.py" "${torch_args[@]}" || status=$?
[[ -f "$work/torch.json" ]] || echo "[]" >"$work/torch.json"

# Merge both sides per case, print the table and write the JSON list.
"$py" - "$work/mhfa.json" "$work/torch.json" "$json" <<'EOF'
import datetime, json, sys

mhfa = json.load(open(sys.argv[1]))
torch_by_case = {r["case"]: r for r in json.load(open(sys.argv[2]))}
date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
rows = []
for m in mhfa:
    t = torch_by_case.get(m["case"], {})
    row = dict(m)
    row.update({k: v for k, v in t.items() if k != "date"})
    row.setdefault("mhfa_ms", None)
    row.setdefault("torch_ms", None)
    row.setdefault("mhfa_peak_bytes", None)
    row.setdefault("max_abs_diff", None)
    row["ratio"] = (row["torch_ms"] / row["mhfa_ms"]
                    if row["mhfa_ms"] and row["torch_ms"] else None)
    row["date"] = date
    rows.append(row)

def cell(v, fmt):
    return "-" if v is None else format(v, fmt)

head = ("case", "device", "mhfa_ms", "torch_ms", "ratio", "TFLOP/s", "mhfa_peak_bytes",
        "max_abs_diff")
print("%-15s %-34s %10s %10s %7s %8s %15s %12s  %s" % (head + ("note",)))
for r in rows:
    note = r.get("error") or r.get("note", "")
    print("%-15s %-34s %10s %10s %7s %8s %15s %12s  %s" % (
        r["case"], r["device"][:34], cell(r["mhfa_ms"], ".3f"), cell(r["torch_ms"], ".3f"),
        cell(r["ratio"], ".2f"), cell(r.get("tflops"), ".4f"), cell(r["mhfa_peak_bytes"], "d"),
        cell(r["max_abs_diff"], ".2e"), note))
with open(sys.argv[3], "w") as f:
    json.dump(rows, f, indent=1)
print("# torch: %s; JSON: %s" % (rows[0].get("torch_device", "-") if rows else "-", sys.argv[3]))
EOF
if [[ -n "$chart" ]]; then
    progress_run chart "$py" "$root/tools/bench_chart.py" "$json" "$chart" || status=$?
fi
exit "$status"
