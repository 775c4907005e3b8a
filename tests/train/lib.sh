# Shared by the train script tests: the converted Fashion-MNIST (once per build, under a lock),
# the lmt binary, mpirun with one torch thread per rank, and small assertion helpers.
set -uo pipefail
TMP="${LMT_TEST_TMP:-/tmp/lmt-train-test}"
rm -rf "$TMP" && mkdir -p "$TMP"
export OMP_NUM_THREADS=1
PY=/usr/bin/python3
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HELPER="${LMT_BUILD_DIR}/tests/train/interop_helper"
fail() { echo "FAIL: $*"; exit 1; }
[ -x "$LMT_BIN" ] || fail "lmt not built at $LMT_BIN"
[ -d "${FMNIST_DIR:-}" ] || { echo "SKIP: Fashion-MNIST not at ${FMNIST_DIR:-}"; exit 77; }

FM="${LMT_BUILD_DIR}/tests/train/fashion-mnist"
(
  flock 9
  [ -f "$FM/test.h5" ] || "$LMT_BIN" convert fashion-mnist --src "$FMNIST_DIR" --out "$FM" >/dev/null
) 9>"${LMT_BUILD_DIR}/tests/train/.fashion-mnist.lock" || fail "convert failed"

# The common training command (2 epochs of 20 steps at global batch 3000, capped at 30 steps,
# LMT loss so power-iteration vectors and the bound are exercised; a metrics.jsonl step line every
# 4 steps, so a stop between two of them checks that a resumed run writes the same ones).
TRAIN_ARGS=(--data "$FM" --model lmt-mnist --loss lmt --batch-size 3000 --epochs 2 --max-steps 30
            --threads 1 --log-every 4)
MPIRUN=(mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS -x LMT_TEST_CHECKPOINT_PAUSE_MS)
mpi() {  # mpi NP lmt-args...
  local np=$1; shift
  "${MPIRUN[@]}" -np "$np" "$LMT_BIN" "$@"
}
export LMT_TEST_CHECKPOINT_PAUSE_MS="${LMT_TEST_CHECKPOINT_PAUSE_MS:-0}"
expect_code() {  # expect_code WANT GOT what
  [ "$2" -eq "$1" ] || fail "$3: exit code $2, expected $1"
}
export_st() {  # export_st MODEL_FILE OUT
  "$LMT_BIN" export --model-file "$1" --format safetensors --out "$2" --bound false >/dev/null \
    || fail "export of $1"
}
