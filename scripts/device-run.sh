#!/usr/bin/env bash
# On the GPU machine (through the device tool): build, run the tests on the GPU, run the
# benchmark (and check its outputs against float64) and the demo, and leave everything under
# $OUT. Steps are chosen by arguments:
#   scripts/device-run.sh [info] [test] [bench[=CASES]] [run] [peak] [tune] [probe] [half]
#                         [precision]
# probe: whether wgmma reaches the OpenCL compiler (scripts/wgmma_probe.c). half: the half
# tensor-core kernels' tests, then a sweep of their attention shapes (bfloat16 stage times) whose
# best per head size goes into $OUT/half-tuning.txt, which later steps use. precision:
# tools/bench.sh --precision float32,bfloat16,float16.
# Needs .device/ carried with the call: gpu-env.sh, which unpacks the Debian packages in
# .device/debs (OpenCL headers, ICD loader, CLBlast, cJSON, CMocka) and sets the paths to them.
# cJSON is not among the lab's usual packages: `(cd .device/debs && apt-get download libcjson1
# libcjson-dev)`. A warm machine keeps its first unpacking, so it is redone here.
set -uo pipefail
rm -rf /tmp/mhfa-root
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/out}"
mkdir -p "$out"
source .device/gpu-env.sh > "$out/platforms.txt" 2>&1
# The carried packages' .pc files name /usr, but they lie under gpu-env.sh's root; CMake's
# imported targets refuse include folders that do not exist (cJSON's).
export PKG_CONFIG_SYSROOT_DIR=/tmp/mhfa-root
export MHFA_DEVICE="${MHFA_DEVICE:-nvidia}" MHFA_TORCH_PYTHON="${MHFA_TORCH_PYTHON:-python3}"
build=build-gpu
# The half tensor-core attention's shapes (WARPS BLOCK_K Q_TILES), each timed in bfloat16 on
# route-enc (head_dim 16) and long (64); the fastest attention per head size, with the tensor-core
# projection, into OUT/half-tuning.txt.
half_sweep() {
    local build="$1" out="$2" shape
    : > "$out/half-sweep.txt"
    for shape in "4 16 1" "4 32 1" "4 64 1" "4 32 2" "4 64 2" "8 64 1"; do
        printf '* | projection half | mma 16 2 2 32 32\n* | flash half | * | mma %s\n' "$shape" \
            > "$out/half-shape.txt"
        MHFA_TUNING_FILE="$out/half-shape.txt" "$build/tools/mhfa-bench" --cases route-enc,long \
            --runs 10 --stages --dtype bfloat16 2>/dev/null | grep '^stages' |
            sed "s/^/shape=$shape /" >> "$out/half-sweep.txt"
    done
    fastest() { grep "stages case=$1 " "$out/half-sweep.txt" |
        sed 's/^shape=\(.*\) stages.*attend_ms=\([0-9.]*\).*/\2 \1/' | sort -n | head -1 | cut -d' ' -f2-; }
    printf '* | projection half | mma 16 2 2 32 32\n* | flash half | 64 | mma %s\n* | flash half | 16 | mma %s\n' \
        "$(fastest long)" "$(fastest route-enc)" | tee "$out/half-tuning.txt"
}
cmake -S . -B "$build" -G Ninja -DMHFA_TEST_DEVICE="$MHFA_DEVICE" > "$out/build.txt" 2>&1 &&
    cmake --build "$build" >> "$out/build.txt" 2>&1 || { tail -30 "$out/build.txt"; exit 1; }
for step in "$@"; do
    case "$step" in
    info)
        { nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
          clinfo | grep -E 'Platform Name|Device Name|Driver Version|Max compute|Local memory size|Max work group size'
        } > "$out/info.txt" 2>&1
        cat "$out/info.txt" ;;
    test)
        (cd "$build" && ctest -j4 --output-on-failure > "$out/ctest.txt" 2>&1)
        tail -4 "$out/ctest.txt"; grep -E 'Failed|\*\*\*' "$out/ctest.txt" | head ;;
    bench*)
        cases="${step#bench}"; cases="${cases#=}"
        MHFA_BUILD_DIR="$build" tools/bench.sh ${cases:+--cases "$cases"} --json "$out/bench.json" \
            > "$out/bench.txt" 2> "$out/bench-stderr.txt"
        cat "$out/bench.txt"; tail -3 "$out/bench-stderr.txt"
        "$MHFA_TORCH_PYTHON" tools/check_float64.py "$build/bench-work" > "$out/float64.txt" 2>&1
        cat "$out/float64.txt" ;;
    run)
        "$build/tools/mhfa-run" | tee "$out/run.txt" ;;
    peak)
        timeout 240 clpeak --compute-sp --global-bandwidth > "$out/clpeak.txt" 2>&1
        grep -E 'float|Global|Device|Driver' "$out/clpeak.txt" | head -20 ;;
    probe)
        cc -std=c11 -O1 -o "$build/wgmma_probe" scripts/wgmma_probe.c -lOpenCL &&
            "$build/wgmma_probe" | tee "$out/wgmma-probe.txt" ;;
    half) # later steps use what it wrote
        (cd "$build" && ctest -R 'test_half_storage_mma' --output-on-failure > "$out/ctest-half.txt" 2>&1)
        tail -3 "$out/ctest-half.txt"
        half_sweep "$build" "$out" && export MHFA_TUNING_FILE="$out/half-tuning.txt" ;;
    precision)
        MHFA_BUILD_DIR="$build" tools/bench.sh --precision float32,bfloat16,float16 \
            --json "$out/precision.json" > "$out/precision.txt" 2> "$out/precision-stderr.txt"
        cat "$out/precision.txt"; tail -3 "$out/precision-stderr.txt" ;;
    tune) # later steps use what it wrote
        MHFA_BUILD_DIR="$build" tools/mhfa-tune --out "$out/tuning.txt" > "$out/tune.txt" 2>&1
        export MHFA_TUNING_FILE="$out/tuning.txt"
        tail -4 "$out/tune.txt" ;;
    esac
done
