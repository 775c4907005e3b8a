#!/usr/bin/env bash
# Installs every dependency of lmt from Debian packages, then configures and builds a Release
# build in build/. Usage: scripts/setup.sh [extra cmake -D options]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache clang-format
  libtorch-dev                                  # LibTorch 1.13 (CPU)
  libopenblas0-openmp                           # BLAS/LAPACK behind torch's matmul, eigvalsh
  libopenmpi-dev openmpi-bin                    # MPI launcher and CPU transport
  libhdf5-dev                                   # dataset files
  libboost-program-options-dev                  # CLI flags and INI configs
  libgtest-dev                                  # unit tests
  libturbojpeg0-dev libjpeg62-turbo-dev zlib1g-dev  # JPEG datasets, .gz inputs
  dataset-fashion-mnist                         # real data for training runs and tests
  python3-torch python3-torchvision python3-numpy python3-h5py  # interop tests (/usr/bin/python3)
  slurm-wlm munge                               # the private Slurm cluster of the launch tests
  gnuplot-nox fonts-dejavu-core                 # certify --plot and lmt plot (pngcairo terminal)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
LAUNCHER=()
command -v ccache >/dev/null && LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build "${GEN[@]}" "${LAUNCHER[@]}" -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build --parallel "$(nproc)"
echo "setup: built build/lmt"
