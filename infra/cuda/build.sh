#!/usr/bin/env bash
# Builds the fast codec's CUDA backend, libkvrelay_cuda.so (shared/codec/cuda/*.cu), into
# .cuda/ at the repository root (git-ignored; loaded by shared/codec/cuda/library.ts, or from
# KVRELAY_CUDA_LIB). Needs nvcc (CUDA 12 or later); ARCH picks the GPU (default sm_90: H100/H200).
#   bash infra/cuda/build.sh [OUT_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${1:-$ROOT/.cuda}"
ARCH="${ARCH:-sm_90}"
NVCC="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
mkdir -p "$OUT"
# -fmad=false: the frame's step is double arithmetic that must equal the CPU encoder's, unfused;
# -Wall -Wextra on the host code (it builds without a warning: keep it so)
"$NVCC" -O3 -std=c++17 -arch="$ARCH" -fmad=false -Xcompiler -fPIC,-Wall,-Wextra -shared \
  -o "$OUT/libkvrelay_cuda.so" \
  "$ROOT"/shared/codec/cuda/context.cu \
  "$ROOT"/shared/codec/cuda/fast_encode_kernels.cu \
  "$ROOT"/shared/codec/cuda/fast_encode.cu \
  "$ROOT"/shared/codec/cuda/fast_decode.cu
echo "built $OUT/libkvrelay_cuda.so ($ARCH)"
