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

# For the tests that run lmt train: the binary, Fashion-MNIST converted once per build (under a
# lock), and the pid of rank R among an mpirun's children.
fmnist() {
  [ -x "${LMT_BIN:-}" ] || fail "lmt not built at ${LMT_BIN:-}"
  [ -f "${FMNIST_DIR:-}/train-images-idx3-ubyte.gz" ] || { echo "SKIP: no Fashion-MNIST"; exit 77; }
  FM="${LMT_BUILD_DIR}/tests/dist/fashion-mnist"
  (
    flock 9
    [ -f "$FM/test.h5" ] || "$LMT_BIN" convert fashion-mnist --src "$FMNIST_DIR" --out "$FM" >/dev/null
  ) 9>"${LMT_BUILD_DIR}/tests/dist/.fashion-mnist.lock" || fail "convert failed"
}
source "$(dirname "${BASH_SOURCE[0]}")/procs.sh"  # rank_pid, wait_catches
