#!/usr/bin/env bash
# Builds vgrad with CUDA for one GPU generation: target/cuda/release/vgrad (a target folder
# of its own, so the CPU build in target/ is left alone).
#
#   scripts/build-cuda.sh [COMPUTE_CAP]     # default 90 (H100, H200); 80 for A100, 89 for L4
#
# The toolkit comes from PyPI through scripts/cuda-toolchain.sh; the binary needs the
# NVIDIA driver and the CUDA 13 libraries (cuBLAS, cuRAND, NVRTC) where it runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CUDA_COMPUTE_CAP=${1:-${CUDA_COMPUTE_CAP:-90}}
eval "$(scripts/cuda-toolchain.sh --link)"
cargo build --release --package vgrad-cli --bin vgrad --features cuda --target-dir target/cuda >&2
echo "$root/target/cuda/release/vgrad"
