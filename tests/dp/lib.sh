# Shared by the dp script tests: Fashion-MNIST converted into this test's scratch dir, the lmt
# binary and compare_models, mpirun with one torch thread per rank, assertion helpers.
set -uo pipefail
TMP="${LMT_TEST_TMP:-/tmp/lmt-dp-test}"
rm -rf "$TMP" && mkdir -p "$TMP"
# Intra-op threads per rank: 1 by default (2 ranks on 2 cores); LMT_TEST_THREADS=2 runs the same
# checks with 2, since every tolerance here must hold for either.
THREADS="${LMT_TEST_THREADS:-1}"
export OMP_NUM_THREADS="$THREADS"
COMPARE="${LMT_BUILD_DIR}/tests/dp/compare_models"
fail() { echo "FAIL: $*"; exit 1; }
[ -x "$LMT_BIN" ] || fail "lmt not built at $LMT_BIN"
[ -x "$COMPARE" ] || fail "compare_models not built at $COMPARE"
[ -d "${FMNIST_DIR:-}" ] || { echo "SKIP: Fashion-MNIST not at ${FMNIST_DIR:-}"; exit 77; }

FM="$TMP/fashion-mnist"
"$LMT_BIN" convert fashion-mnist --src "$FMNIST_DIR" --out "$FM" >"$TMP/convert.log" 2>&1 \
  || fail "convert failed (see $TMP/convert.log)"

MPIRUN=(mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS)
mpi() {  # mpi NP [mpirun options...] -- lmt args...
  local np=$1; shift
  local opts=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do opts+=("$1"); shift; done
  shift
  "${MPIRUN[@]}" -np "$np" "${opts[@]}" "$LMT_BIN" "$@"
}
expect_code() {  # expect_code WANT GOT what
  [ "$2" -eq "$1" ] || fail "$3: exit code $2, expected $1"
}
# compare A B [compare_models flags]: prints the comparison, fails the test with WHAT on mismatch.
compare() {
  local what=$1; shift
  "$COMPARE" "$@" | sed "s|^|  $what: |"
  [ "${PIPESTATUS[0]}" -eq 0 ] || fail "$what"
}
