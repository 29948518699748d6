#!/usr/bin/env bash
# Runs every libFuzzer program of a build folder (configured with -DMHFA_FUZZ=ON, built already:
# this script builds nothing) for SECONDS each, one after another, on a temporary copy of its
# committed corpus, and fails if any of them finds a crash. Nothing is written into the
# repository: new inputs go to the copy, crashing inputs to the output folder (FUZZ_OUT, else a
# temporary folder that is kept when something crashed).
#
#   tests/fuzz/run-all.sh BUILD_DIR [SECONDS]      (SECONDS: 60 if not given)
#
# Prints for each target its executions, libFuzzer's final coverage (cov: and ft:) and how many
# crashes it left; a crash is to be added to tests/fuzz/corpus/NAME/ once fixed.
set -u

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 BUILD_DIR [SECONDS]" >&2
    exit 2
fi
build=$1
seconds=${2:-60}
case $seconds in
'' | *[!0-9]*)
    echo "$0: SECONDS must be a whole number, not '$seconds'" >&2
    exit 2
    ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin_dir=$build/tests/fuzz

targets=()
for program in "$bin_dir"/fuzz_*; do
    [ -f "$program" ] && [ -x "$program" ] || continue
    case $program in *_replay) continue ;; esac
    targets+=("$program")
done
if [ ${#targets[@]} -eq 0 ]; then
    echo "$0: no libFuzzer programs in $bin_dir (configure with CC=clang -DMHFA_FUZZ=ON and" \
        "build first)" >&2
    exit 2
fi

out=${FUZZ_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/mhfa-fuzz.XXXXXX")}
mkdir -p "$out"
# Leaks fail a run too; a report stops it at once.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
printf '%-26s %12s %8s %8s %14s %8s\n' target executions cov ft corpus crashes
for program in "${targets[@]}"; do
    target=$(basename "$program")
    name=${target#fuzz_}
    seeds=$here/corpus/$name
    corpus=$out/$name.corpus
    artifacts=$out/$name.artifacts
    log=$out/$name.log
    rm -rf "$corpus" "$artifacts"
    mkdir -p "$corpus" "$artifacts"
    [ -d "$seeds" ] && cp -R "$seeds"/. "$corpus"/
    seeded=$(find "$corpus" -type f | wc -l)
    # Read-only seed folders beside the copy (libFuzzer writes only into the first folder).
    extra=()
    case $name in
    weights_file) extra=("$repo/tests/data") ;;
    safetensors_memory) extra=("$here/corpus/weights_file") ;;
    esac
    "$program" -max_total_time="$seconds" -timeout=25 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "$corpus" "${extra[@]}" >"$log" 2>&1
    status=$?
    crashes=$(find "$artifacts" -type f | wc -l)
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | grep 'cov:' | tail -n 1)
    cov=$(printf '%s\n' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(printf '%s\n' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    entries=$(find "$corpus" -type f | wc -l)
    printf '%-26s %12s %8s %8s %14s %8s\n' "$target" "${executions:-?}" "${cov:-?}" "${ft:-?}" \
        "$seeded -> $entries" "$crashes"
    if [ $status -ne 0 ] || [ "$crashes" -ne 0 ]; then
        failed=1
        echo "  $target failed (exit status $status); its log: $log" >&2
        grep -E 'ERROR|SUMMARY|==[0-9]+==|deadly signal|Test unit written' "$log" | head -n 8 |
            sed 's/^/    /' >&2
        for artifact in "$artifacts"/*; do
            [ -f "$artifact" ] && echo "  input: $artifact" >&2
        done
    fi
done

if [ $failed -ne 0 ]; then
    echo "fuzzing found crashes; the inputs and logs are in $out" >&2
    exit 1
fi
[ -z "${FUZZ_OUT:-}" ] && rm -rf "$out"
exit 0
