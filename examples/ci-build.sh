#!/usr/bin/env bash
# Installs a build of mhfa to a temporary prefix, builds the installed examples from there with
# CMake (find_package) and with make (pkg-config), runs both on a weights file and checks that
# they print the same checksum.
#
#   examples/ci-build.sh BUILD_DIR WEIGHTS.safetensors
set -euo pipefail
build=$(realpath "$1")
weights=$(realpath "$2")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" > "$work/install.txt"

# The library folder is lib, lib64 or lib/<multiarch>, as GNUInstallDirs chose.
pc=$(find "$prefix" -path '*/pkgconfig/mhfa.pc' | head -1)
libdir=$(dirname "$(dirname "$pc")")
examples="$prefix/share/doc/mhfa/examples"

cmake -S "$examples" -B "$work/cmake" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" > "$work/cmake.txt"
cmake --build "$work/cmake" >> "$work/cmake.txt"
cp -r "$examples" "$work/make"
PKG_CONFIG_PATH="$libdir/pkgconfig" make -s -C "$work/make" forward_file

export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MHFA_CACHE_DIR="${MHFA_CACHE_DIR:-$build/kernel-cache}"
"$work/cmake/forward_file" "$weights" | tee "$work/cmake.out"
"$work/make/forward_file" "$weights" | tee "$work/make.out"
if ! cmp -s "$work/cmake.out" "$work/make.out"; then
    echo "ci-build: the CMake and pkg-config builds of forward_file disagree" >&2
    exit 1
fi
echo "ci-build: installed tree OK (CMake and pkg-config builds agree)"
