#!/usr/bin/env bash
# Configures and builds lmt against the LibTorch inside a Python `torch` wheel (LibTorch 2.x,
# CUDA when the wheel has it), into its own build folder; Debian's LibTorch 1.13 build
# (scripts/setup.sh -> build/) is untouched.
#
#   scripts/build-cuda.sh [PYTHON] [-- extra cmake -D options]
#     PYTHON   the python whose torch to build against (default: python3), e.g.
#              .venv-cuda/bin/python (a venv with `pip install torch`), or the GPU machine's python3
#   env: BUILD_DIR=build-cuda   TARGETS="lmt_cli ..." (default: lmt_cli; "all" for everything)
#        JOBS=$(nproc)          NICE=0 (e.g. NICE=10 on a shared machine)
#        LMT_USE_BUNDLE=0       1: take HDF5, Open MPI, Boost, GTest, libjpeg-turbo and zlib from
#                               bundle/ (scripts/gpu-bundle.sh), for a machine without Debian's
#                               -dev packages (scripts/gpu-check.sh sets it)
#
# The wheel's TorchConfig.cmake is found through torch.utils.cmake_prefix_path; its CUDA parts
# (Caffe2's cuda.cmake) need a CUDA toolkit of the wheel's major version (nvcc on PATH or
# /usr/local/cuda): a cu130 wheel wants CUDA 13. NCCL for dist/'s communicator is taken from the
# toolkit (/usr/local/cuda) or, failing that, from the wheel's nvidia-nccl package.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3
if [ $# -gt 0 ] && [ "$1" != "--" ]; then PY=$1; shift; fi
[ "${1:-}" = "--" ] && shift
BUILD_DIR=${BUILD_DIR:-build-cuda}
TARGETS=${TARGETS:-lmt_cli}
JOBS=${JOBS:-$(nproc)}
NICE=${NICE:-0}

# What the wheel holds: the CMake prefix, its own lib folder, its NCCL (nvidia-nccl-cu*), its CUDA.
info=$("$PY" - <<'EOF' 2>/dev/null
import os, torch
print(torch.utils.cmake_prefix_path)
print(os.path.join(os.path.dirname(torch.__file__), "lib"))
nccl = ""
try:
    import nvidia.nccl, glob
    for d in nvidia.nccl.__path__:
        if glob.glob(os.path.join(d, "lib", "libnccl.so*")):
            nccl = d
except Exception:
    pass
print(nccl)
print(torch.__version__, torch.version.cuda or "none")
EOF
) || { echo "build-cuda: $PY cannot import torch" >&2; exit 1; }
{ read -r PREFIX; read -r TORCH_LIB; read -r WHEEL_NCCL; read -r TORCH_VER TORCH_CUDA; } <<<"$info"
echo "build-cuda: torch $TORCH_VER (CUDA $TORCH_CUDA) from $PREFIX"

ARGS=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$PREFIX"
      # TorchConfig's find_library(torch/c10) would take a system LibTorch (Debian's 1.13 in
      # /usr/lib) before the wheel's: pin them to the wheel.
      -DTORCH_LIBRARY="$TORCH_LIB/libtorch.so" -Dc10_LIBRARY="$TORCH_LIB/libc10.so"
      -DPython_EXECUTABLE="$(command -v "$PY")")
command -v ninja >/dev/null && ARGS+=(-G Ninja)
command -v ccache >/dev/null && ARGS+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [ "$TORCH_CUDA" != none ]; then
  # Caffe2's cuda.cmake wants nvcc; the toolkit at /usr/local/cuda when it is not on PATH.
  if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH=/usr/local/cuda/bin:$PATH
  fi
  if [ ! -f /usr/local/cuda/include/nccl.h ] && [ -z "${NCCL_HOME:-}" ] && [ -n "$WHEEL_NCCL" ]; then
    export NCCL_HOME=$WHEEL_NCCL
  fi
fi
if [ "${LMT_USE_BUNDLE:-0}" = 1 ]; then
  # shellcheck source=scripts/bundle-env.sh
  source scripts/bundle-env.sh
  lmt_bundle_env
  ARGS+=("${LMT_BUNDLE_CMAKE_ARGS[@]}")
fi

nice -n "$NICE" cmake -S . -B "$BUILD_DIR" "${ARGS[@]}" "$@"
read -r -a T <<<"$TARGETS"
if [ "$TARGETS" = all ]; then T=(); fi
nice -n "$NICE" cmake --build "$BUILD_DIR" --parallel "$JOBS" ${T[@]+--target "${T[@]}"}
echo "build-cuda: built ${TARGETS} in $BUILD_DIR"
