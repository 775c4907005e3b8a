# Shared helpers of the CLI script tests: a scratch dir, assertions, one Fashion-MNIST conversion.
set -euo pipefail
: "${LMT_BIN:?}" "${LMT_TEST_TMP:?}"
rm -rf "$LMT_TEST_TMP"
mkdir -p "$LMT_TEST_TMP"
cd "$LMT_TEST_TMP"

fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_exit CODE PATTERN -- command...: runs the command, checks its exit code and that its
# stderr matches PATTERN (an extended regex).
expect_exit() {
  local code=$1 pattern=$2; shift 3
  local rc=0
  "$@" >out.txt 2>err.txt || rc=$?
  [ "$rc" -eq "$code" ] || { cat err.txt >&2; fail "exit $rc, expected $code: $*"; }
  grep -Eq -- "$pattern" err.txt || { cat err.txt >&2; fail "stderr lacks /$pattern/: $*"; }
  [ "$(wc -l < err.txt)" -le 2 ] || { cat err.txt >&2; fail "more than one error line: $*"; }
}

# json_field FILE KEY: the numeric value of "KEY" in the last JSON line of FILE.
json_field() {
  tail -n 1 "$1" | grep -Eo "\"$2\":[-0-9.eE+]+" | head -n 1 | cut -d: -f2
}

convert_fmnist() {
  [ -f "$FMNIST_DIR/train-images-idx3-ubyte.gz" ] || { echo "Fashion-MNIST missing"; exit 77; }
  "$LMT_BIN" convert fashion-mnist --src "$FMNIST_DIR" --out "$1" >/dev/null 2>&1
}
