# Shared by the dist script tests: the probe binary and an mpirun with one torch thread per rank.
set -uo pipefail
PROBE="${LMT_BUILD_DIR}/tests/dist/dist_probe"
[ -x "$PROBE" ] || { echo "dist_probe not built at $PROBE"; exit 1; }
mkdir -p "${LMT_TEST_TMP:-/tmp/lmt-dist-test}"
TMP="${LMT_TEST_TMP:-/tmp/lmt-dist-test}"
export OMP_NUM_THREADS=1
mpi() {  # mpi NP [mpirun options...] -- probe args...
  local np=$1; shift
  local opts=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do opts+=("$1"); shift; done
  shift
  mpirun -np "$np" --oversubscribe --bind-to none -x OMP_NUM_THREADS "${opts[@]}" "$PROBE" "$@"
}
fail() { echo "FAIL: $*"; exit 1; }
