#!/usr/bin/env bash
# On the GPU machine (through the device tool): build, run the tests on the GPU, run the
# benchmark (and check its outputs against float64) and the demo, and leave everything under
# $OUT. Steps are chosen by arguments:
#   scripts/device-run.sh [info] [test] [bench[=CASES]] [run] [peak] [tune]
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
    tune) # later steps use what it wrote
        MHFA_BUILD_DIR="$build" tools/mhfa-tune --out "$out/tuning.txt" > "$out/tune.txt" 2>&1
        export MHFA_TUNING_FILE="$out/tuning.txt"
        tail -4 "$out/tune.txt" ;;
    esac
done
