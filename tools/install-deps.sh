#!/usr/bin/env bash
# Installs what mhfa needs to build and test on Debian (12 or later), idempotently: a compiler,
# CMake and Ninja, OpenCL headers and the ICD loader, PoCL's CPU device, CLBlast, cJSON (weights
# files), cairo (mhfa-run's heatmap), CMocka, pytest and numpy (the Python package's tests), clinfo;
# for the hardening checks (RELIABILITY.md) Oclgrind, valgrind, and clang with its sanitizer and
# libFuzzer runtimes.
set -euo pipefail
packages=(build-essential cmake ninja-build pkg-config opencl-c-headers ocl-icd-opencl-dev
          pocl-opencl-icd libclblast-dev libcjson-dev libcairo2-dev libcmocka-dev python3-pytest
          python3-numpy clinfo oclgrind valgrind clang libclang-rt-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
