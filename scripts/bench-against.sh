#!/usr/bin/env bash
# The speed of this tree against another, on the same device in the same run: builds mhfa-bench
# in both, then runs them in turn, ROUNDS times, with the built-in plan and with each tuning file
# given, and prints each case's fastest time per tree and the ratio.
#   scripts/bench-against.sh OTHER_TREE [--rounds N] [--cases a,b] [TUNING_FILE ...]
# OTHER_TREE is a source tree, such as `git archive COMMIT | tar -x -C old` makes (carry it with
# the device call). MHFA_DEVICE picks the device, as for tools/bench.sh; results go to
# $OUT/against.txt (default /tmp/out), the raw lines first.
set -euo pipefail
cd "$(dirname "$0")/.."
other="$1"; shift
rounds=2 cases=route-enc,route-enc-mask,route-dec,route-store,long,xlong tunings=(builtin)
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --cases) cases="$2"; shift 2 ;;
        *) tunings+=("$(realpath "$1")"); shift ;;
    esac
done
out="${OUT:-/tmp/out}"
mkdir -p "$out"
raw="$out/against.txt"
: > "$raw"
for tree in this other; do
    src=.
    [[ $tree == other ]] && src="$other"
    cmake -S "$src" -B "build-against-$tree" -G Ninja -DCMAKE_BUILD_TYPE=Release > "$out/build-$tree.txt" 2>&1
    cmake --build "build-against-$tree" --target mhfa-bench >> "$out/build-$tree.txt" 2>&1
done
export MHFA_CACHE_DIR=off
for round in $(seq "$rounds"); do
    for tree in other this; do
        for tuning in "${tunings[@]}"; do
            if [[ $tuning == builtin ]]; then unset MHFA_TUNING_FILE; else export MHFA_TUNING_FILE="$tuning"; fi
            echo "## $tree $(basename "$tuning") round $round" >> "$raw"
            "build-against-$tree/tools/mhfa-bench" --runs 30 --cases "$cases" 2>&1 |
                grep -E '^case=|rror' >> "$raw" || true
        done
    done
done
python3 - "$raw" <<'PY' | tee -a "$raw"
import collections, re, sys
best = collections.defaultdict(lambda: float("inf"))
key = None
for line in open(sys.argv[1]):
    m = re.match(r"## (\S+) (\S+) round", line)
    if m:
        key = m.groups()
        continue
    m = re.match(r"case=(\S+) mhfa_ms=(\S+)", line)
    if m and key:
        k = (key[1], m.group(1), key[0])
        best[k] = min(best[k], float(m.group(2)))
print("%-24s %-15s %10s %10s %9s" % ("plan", "case", "other_ms", "this_ms", "this/other"))
for (plan, case, tree) in sorted(best):
    if tree == "this" and (plan, case, "other") in best:
        o, t = best[(plan, case, "other")], best[(plan, case, "this")]
        print("%-24s %-15s %10.4f %10.4f %9.3f" % (plan, case, o, t, t / o))
PY
