# shellcheck shell=bash
# Sourced (bash): points the build and the run at the Debian packages of bundle/ (made by
# scripts/gpu-bundle.sh), for a machine without Debian's -dev packages.
#
#   source scripts/bundle-env.sh     # unpacks bundle/gpu-bundle.tar.xz into build-bundle/prefix
#                                    # (again only when the tarball changed), then exports:
#   LMT_BUNDLE_PREFIX   the unpacked tree (its usr/ holds what Debian installs under /usr)
#   OPAL_PREFIX         Open MPI's relocated install prefix (mpirun, orted, mpicc and the MCA
#                       components find their files from it instead of /usr)
#   PATH, LD_LIBRARY_PATH   the prefix's bin and library folders first
#   FMNIST_DIR          Fashion-MNIST's .gz files
#   LMT_BUNDLE_CMAKE_ARGS   (an array) the -D hints that make CMake find HDF5, MPI, Boost, GTest,
#                       libjpeg-turbo and zlib in the prefix
# Returns non-zero (and says why) when there is no bundle.
lmt_bundle_env() {
  local root tarball P L sha
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  tarball=$root/bundle/gpu-bundle.tar.xz
  P=${LMT_BUNDLE_PREFIX:-$root/build-bundle/prefix}
  if [ ! -f "$tarball" ]; then
    echo "bundle-env: no $tarball (run scripts/gpu-bundle.sh on a machine with the Debian mirror)" >&2
    return 1
  fi
  sha=$(sha256sum "$tarball" | cut -d' ' -f1)
  if [ "$(cat "$P/.bundle-sha256" 2>/dev/null)" != "$sha" ]; then
    rm -rf "$P"
    mkdir -p "$P"
    if command -v xz >/dev/null; then
      xz -dc "$tarball" | tar -C "$P" -xf - || return 1
    else  # Python's tarfile reads .tar.xz and keeps the symlinks
      python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
        "$tarball" "$P" || return 1
    fi
    echo "$sha" >"$P/.bundle-sha256"
  fi
  L=$P/usr/lib/x86_64-linux-gnu
  # mpicc --showme names Open MPI's internal header folder, which gpu-bundle.sh drops (5 MB);
  # CMake refuses an imported target whose include folder does not exist.
  mkdir -p "$L/openmpi/include/openmpi"
  export LMT_BUNDLE_PREFIX=$P
  export OPAL_PREFIX=$P/usr
  # Debian's PMIx (Open MPI's launcher store) lives in its own prefix; its components are found
  # only through the component path (PMIX_PREFIX alone leaves them at /usr).
  export PMIX_PREFIX=$L/pmix2
  export PMIX_MCA_mca_base_component_path=$L/pmix2/lib/pmix
  export PATH=$P/usr/bin:$PATH
  export LD_LIBRARY_PATH=$L:$L/openmpi/lib:$L/hdf5/serial:$L/pmix2/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export FMNIST_DIR=$P/usr/share/datasets/fashion-mnist
  # Components whose libraries the bundle leaves out (UCX, libfabric, ...) are simply skipped.
  export OMPI_MCA_mca_base_component_show_load_errors=0
  # shellcheck disable=SC2034  # read by the caller
  LMT_BUNDLE_CMAKE_ARGS=(
    -DMPI_C_COMPILER="$P/usr/bin/mpicc.openmpi"
    -DMPIEXEC_EXECUTABLE="$P/usr/bin/mpirun.openmpi"
    -DHDF5_ROOT="$P/usr"
    -DHDF5_C_INCLUDE_DIR="$P/usr/include/hdf5/serial"
    -DHDF5_C_LIBRARY_hdf5="$L/hdf5/serial/libhdf5.so"
    -DHDF5_hdf5_LIBRARY_RELEASE="$L/hdf5/serial/libhdf5.so"  # (FindHDF5 without h5cc)
    -DHDF5_USE_STATIC_LIBRARIES=OFF
    -DHDF5_NO_FIND_PACKAGE_CONFIG_FILE=ON
    -DBoost_ROOT="$P/usr"
    -DBoost_DIR="$L/cmake/Boost-1.74.0"
    -DGTest_DIR="$L/cmake/GTest"
    -DZLIB_ROOT="$P/usr"
    -DZLIB_INCLUDE_DIR="$P/usr/include"
    -DLMT_TURBOJPEG_LIBRARY="$L/libturbojpeg.so"
    -DLMT_TURBOJPEG_INCLUDE_DIR="$P/usr/include"
    -DPMIX_INCLUDE_DIR=PMIX_INCLUDE_DIR-NOTFOUND
  )
}
