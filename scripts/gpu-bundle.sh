#!/usr/bin/env bash
# Builds bundle/: the Debian packages lmt needs beyond a CUDA torch wheel, for a machine with an
# NVIDIA GPU, CUDA, CMake, ninja and Python torch but without Debian's -dev packages and without
# network (scripts/gpu-check.sh uses it there). Runs here, on a Debian bookworm machine with the
# package mirror; needs apt-get and dpkg only (no root: nothing is installed).
#
#   scripts/gpu-bundle.sh               # -> bundle/gpu-bundle.tar.xz, bundle/MANIFEST
#   scripts/gpu-bundle.sh --keep-debs   # also keep build-bundle/debs/*.deb
#
# Every package is unpacked with `dpkg -x` into a private prefix, build-bundle/prefix (never
# into /); docs, man pages, static libraries we do not link, Fortran and OpenSHMEM parts and
# Open MPI's internal headers are removed, Boost's headers are cut to the ones
# <boost/program_options.hpp> and <boost/any.hpp> include, absolute symlinks are made relative
# inside the prefix. The prefix travels as ONE file, bundle/gpu-bundle.tar.xz (a tree of
# symlinked .so files need not survive a copy; the tarball does, and is a third of the size);
# scripts/bundle-env.sh unpacks it into build-bundle/prefix and points CMake, the linker and
# Open MPI (OPAL_PREFIX) at it. The bundle must stay well under the device tool's 64 MiB (with
# the working tree): the script prints its size and fails above LMT_BUNDLE_MAX_MB (default 45).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
B=$ROOT/build-bundle          # staging: .debs and the unpacked prefix (ignored, not carried)
OUTDIR=$ROOT/bundle           # what travels: the tarball and its manifest
KEEP_DEBS=0
[ "${1:-}" = --keep-debs ] && KEEP_DEBS=1
MAX_MB=${LMT_BUNDLE_MAX_MB:-45}

# Headers, CMake configs and the link-time .so symlinks (-dev packages), taken without their
# dependencies (we pick what we need below); the data set.
DEV=(
  libopenmpi-dev openmpi-bin openmpi-common   # mpi.h, mpicc wrapper data, mpirun/orted, help files
  libhdf5-dev                                 # hdf5.h (hdf5/serial), libhdf5.so link
  libboost-program-options1.74-dev libboost1.74-dev  # BoostConfig + headers (pruned below)
  libgtest-dev                                # static gtest + GTestConfig.cmake
  libturbojpeg0-dev libjpeg62-turbo-dev zlib1g-dev
  dataset-fashion-mnist                       # /usr/share/datasets/fashion-mnist/*.gz
)
# Shared libraries the binaries load at run time: these and their dependency closure...
RUNTIME=(libopenmpi3 openmpi-bin libhdf5-103-1 libboost-program-options1.74.0 libturbojpeg0
         libjpeg62-turbo libsz2 libaec0)
# ...minus what every glibc system has, what only a login system needs (PAM, ssh, debconf),
# and hwloc's optional plugins (X11, OpenCL, libxml2 + ICU: 40 MB; hwloc runs without them),
# and the fabric stacks (UCX, libfabric, PSM, verbs: one machine talks over shared memory and
# TCP; the Open MPI components that load them are removed below).
EXCLUDE_RE='^(libc6|libgcc-s1|libstdc\+\+6|gcc-12-base|libcrypt1|libzstd1|liblzma5|libbz2-1\.0|debconf|dpkg|perl-base|adduser|passwd|libpam.*|libaudit.*|libcap-ng0|libdb5\.3|libselinux1|libsemanage.*|libsepol2|libpcre2-8-0|libmd0|libbsd0|libtinfo6|libedit2|libcbor0\.8|libfido2-1|openssh-client|libhwloc-plugins|libxml2|libicu72|libx11-.*|libxau6|libxdmcp6|libxcb1|libxext6|libxnvctrl0|ocl-icd-libopencl1|libpciaccess0|ibverbs-providers|libuuid1|libucx0|libfabric1|libpsm2-2|libpsm-infinipath1|libibverbs1|librdmacm1|libnuma1)$'

mkdir -p "$B/debs"
rm -rf "$B/prefix"
mkdir -p "$B/prefix" "$OUTDIR"

closure=$(apt-get -s -o Dir::State::status=/dev/null install --no-install-recommends "${RUNTIME[@]}" \
  | awk '/^Inst /{print $2}' | grep -Ev "$EXCLUDE_RE" || true)
if [ -z "$closure" ]; then
  echo "gpu-bundle: apt-get could not resolve ${RUNTIME[*]} (run apt-get update?)" >&2
  exit 1
fi
mapfile -t PKGS < <(printf '%s\n' "${DEV[@]}" $closure | sort -u)

echo "gpu-bundle: ${#PKGS[@]} packages"
t0=$(date +%s)
(cd "$B/debs" && apt-get download -q "${PKGS[@]}" >/dev/null)
echo "gpu-bundle: downloaded $(du -sm "$B/debs" | cut -f1) MiB of .deb in $(( $(date +%s) - t0 )) s"

: >"$B/MANIFEST"
for p in "${PKGS[@]}"; do
  deb=$(ls "$B/debs/${p}"_*.deb 2>/dev/null | head -1 || true)
  [ -n "$deb" ] || { echo "gpu-bundle: no .deb for $p" >&2; exit 1; }
  dpkg -x "$deb" "$B/prefix"
  basename "$deb" >>"$B/MANIFEST"
done

P=$B/prefix
LIB=$P/usr/lib/x86_64-linux-gnu
# Absolute symlinks (e.g. libfoo.so -> /usr/lib/...) would point out of the prefix: make them
# relative inside it.
while IFS= read -r link; do
  target=$(readlink "$link")
  case $target in
    /*) ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$P$target")" "$link" ;;
  esac
done < <(find "$P" -type l)

# The plain names scripts and tests call (Debian makes them with update-alternatives).
for n in mpirun mpiexec mpicc mpicxx mpic++; do
  if [ -e "$P/usr/bin/$n.openmpi" ]; then ln -sfn "$n.openmpi" "$P/usr/bin/$n"; fi
done

# Prune what neither the build nor the run needs.
rm -rf "$P/usr/share/doc" "$P/usr/share/man" "$P/usr/share/lintian" "$P/usr/share/info" \
       "$P/usr/share/locale" "$P/usr/share/bug" "$P/usr/share/doc-base" "$P/usr/share/javascript"
find "$P" -name '*.mod' -delete                       # Fortran modules (Open MPI, HDF5)
find "$LIB" -maxdepth 3 -name '*.a' ! -name 'libgtest*.a' -delete
rm -rf "$LIB/fortran" "$LIB/hdf5/serial/lib"*fortran* "$LIB/openmpi/include/openmpi" \
       "$LIB/openmpi/include/openshmem" "$LIB/openmpi/include/"*shmem* "$LIB/openmpi/lib/pkgconfig"
rm -f "$LIB/"liboshmem* "$LIB/openmpi/lib/"liboshmem* "$LIB/"libmpi_mpifh* "$LIB/"libmpi_usempi* \
      "$LIB/"libmpi_java* "$LIB/openmpi/lib/"libmpi_{mpifh,usempi,java}* \
      "$LIB/openmpi/lib/openmpi3/"mca_{spml,sshmem,scoll,atomic}_* \
      "$LIB/openmpi/lib/openmpi3/"mca_{btl_ofi,btl_openib,btl_uct,mtl_ofi,mtl_psm,mtl_psm2,osc_ucx,pml_ucx}.so \
      "$LIB/openmpi/lib/"libmca_common_{ofi,ucx,verbs}* "$LIB/"libmca_common_{ofi,ucx,verbs}* "$P/usr/bin/"*shmem* "$P/usr/bin/"*mpif* \
      "$P/usr/bin/"*mpifort* "$P/usr/bin/"*java*
find "$P" -xtype l -delete                            # links whose target was pruned or absent
mkdir -p "$LIB/openmpi/include/openmpi"               # mpicc --showme still names it

# Boost: keep only the headers that program_options and any pull in (the full tree is 150 MB).
if [ -d "$P/usr/include/boost" ]; then
  keep=$(mktemp)
  printf '#include <boost/program_options.hpp>\n#include <boost/any.hpp>\n' |
    g++ -std=c++17 -M -isystem "$P/usr/include" -x c++ - |
    tr ' \\' '\n\n' | grep "^$P/usr/include/boost/" | sort -u >"$keep"
  [ -s "$keep" ] || { echo "gpu-bundle: could not list Boost's headers" >&2; exit 1; }
  mv "$P/usr/include/boost" "$P/usr/include/boost.full"
  while IFS= read -r f; do
    rel=${f#"$P/usr/include/boost/"}
    mkdir -p "$P/usr/include/boost/$(dirname "$rel")"
    cp -p "$P/usr/include/boost.full/$rel" "$P/usr/include/boost/$rel"
  done <"$keep"
  rm -rf "$P/usr/include/boost.full" "$keep"
  # BoostConfig's other components' configs point at headers and libraries we dropped.
  find "$LIB/cmake" -maxdepth 1 -name 'boost_*' ! -name 'boost_headers-*' \
    ! -name 'boost_program_options-*' -exec rm -rf {} +
fi

# What the bundled programs and libraries still take from the system (the GPU machine must have
# these: glibc, libstdc++, zlib, zstd, ...).
need=$(find "$P" -type f \( -name '*.so*' -o -path '*/bin/*' \) -exec sh -c \
         'for f; do readelf -d "$f" 2>/dev/null | sed -n "s/.*(NEEDED).*\[\(.*\)\]/\1/p"; done' sh {} + |
       sort -u | while read -r so; do [ -n "$(find "$P" -name "$so" -print -quit)" ] || echo "$so"; done)
echo "gpu-bundle: taken from the system:" $need

((KEEP_DEBS)) || rm -rf "$B/debs"
echo "gpu-bundle: $(wc -l <"$B/MANIFEST") packages unpacked into build-bundle/prefix ($(du -sm "$P" | cut -f1) MiB)"
cp "$B/MANIFEST" "$OUTDIR/MANIFEST"
rm -f "$OUTDIR/gpu-bundle.tar.xz"
tar -C "$P" -cf - . | xz -T2 -4 >"$OUTDIR/gpu-bundle.tar.xz.tmp"
mv "$OUTDIR/gpu-bundle.tar.xz.tmp" "$OUTDIR/gpu-bundle.tar.xz"
# bundle-env.sh unpacks again only when the tarball changed.
sha256sum "$OUTDIR/gpu-bundle.tar.xz" | cut -d' ' -f1 >"$P/.bundle-sha256"
mb=$(du -sm "$OUTDIR" | cut -f1)
echo "gpu-bundle: bundle/ is $mb MiB ($(du -b "$OUTDIR/gpu-bundle.tar.xz" | cut -f1) bytes of tar.xz;" \
     "limit ${MAX_MB} MiB; the device tool carries 64 MiB with the tree)"
if ((mb > MAX_MB)); then
  echo "gpu-bundle: too big" >&2
  exit 1
fi
