#!/usr/bin/env bash
# Fetches from PyPI exactly the CUDA pieces a `--features cuda` build of vgrad needs, into a
# cache folder (default .cuda/ in the workspace, ignored by git; VGRAD_CUDA_CACHE moves it),
# and prints the environment to build with as `export NAME=value` lines:
#
#   eval "$(scripts/cuda-toolchain.sh)"          # nvcc & co. (~104 MB): `cargo check --features cuda`
#   eval "$(scripts/cuda-toolchain.sh --link)"   # + cuBLAS, cuRAND, NVRTC (~580 MB) and a
#                                                #   libcuda stub: a linked build
#
# CUDA 13.0 is pinned: cudarc reads the version from `nvcc --version` and rejects newer
# ones. CUDA_COMPUTE_CAP (default 90: H100/H200) picks the GPU the kernels are built for.
# The binary needs the real driver and libraries where it runs; the stub is for linking.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${VGRAD_CUDA_CACHE:-$root/.cuda}
link=false
case "${1:-}" in
    --link) link=true ;;
    "") ;;
    *) echo "usage: $0 [--link]" >&2; exit 2 ;;
esac

wheels=$cache/wheels
toolkit=$cache/toolkit
home=$toolkit/nvidia/cu13

fetch() {
    local platforms=()
    for n in 5 12 17 27 28; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version 3.11 "${platforms[@]}" --platform manylinux2014_x86_64 \
        --platform manylinux2010_x86_64 --platform manylinux1_x86_64 --dest "$wheels" "$@" >&2
}

unpack() {
    for wheel in "$@"; do
        python3 -m zipfile -e "$wheel" "$toolkit" >&2
    done
}

mkdir -p "$wheels" "$toolkit"
if [ ! -x "$home/bin/nvcc" ] || [ ! -x "$home/nvvm/bin/cicc" ]; then
    echo "fetching nvcc 13.0 from PyPI into $cache" >&2
    fetch "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cccl==13.0.*" \
        "nvidia-cuda-crt==13.0.*" "nvidia-nvvm==13.0.*"
    unpack "$wheels"/nvidia_cuda_nvcc-13.0.* "$wheels"/nvidia_cuda_runtime-13.0.* \
        "$wheels"/nvidia_cuda_cccl-13.0.* "$wheels"/nvidia_cuda_crt-13.0.* "$wheels"/nvidia_nvvm-13.0.*
    # zipfile keeps no permission bits.
    chmod +x "$home"/bin/* "$home"/nvvm/bin/* 2>/dev/null || true
fi

if $link && [ ! -e "$home/lib/stubs/libcuda.so" ]; then
    echo "fetching cuBLAS, cuRAND and NVRTC for CUDA 13 from PyPI into $cache" >&2
    fetch "nvidia-cublas==13.*" "nvidia-curand==10.*" "nvidia-cuda-nvrtc==13.*"
    unpack "$wheels"/nvidia_cublas-13.* "$wheels"/nvidia_curand-10.* "$wheels"/nvidia_cuda_nvrtc-13.*
    # The linker looks for the unversioned names.
    for lib in cublas cublasLt curand nvrtc cudart; do
        real=$(cd "$home/lib" && ls "lib$lib.so".* 2>/dev/null | grep -E "^lib$lib\.so\.[0-9]+$" | head -n 1 || true)
        [ -n "$real" ] && ln -sf "$real" "$home/lib/lib$lib.so"
    done
    # libcuda comes with the GPU driver, not with the toolkit: link against a stub that
    # defines every driver function cudarc declares, under the driver's soname.
    cudarc=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* 2>/dev/null | tail -n 1)
    if [ -z "$cudarc" ]; then
        (cd "$root" && cargo fetch >&2)
        cudarc=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* | tail -n 1)
    fi
    mkdir -p "$home/lib/stubs"
    grep -ohE '^pub unsafe fn cu[A-Za-z0-9_]+' "$cudarc/src/driver/sys/mod.rs" \
        | sed -E 's/^pub unsafe fn (.*)$/int \1(void) { return 999; }/' | sort -u >"$home/lib/stubs/cuda_stub.c"
    cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$home/lib/stubs/libcuda.so" "$home/lib/stubs/cuda_stub.c"
fi

echo "export CUDA_HOME=\"$home\""
echo "export PATH=\"$home/bin:\$PATH\""
echo "export CUDA_COMPUTE_CAP=\"${CUDA_COMPUTE_CAP:-90}\""
