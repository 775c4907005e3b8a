# Bad dataset files through the CLI (issue 14): the fuzzed fixtures, a changed pixel byte in a
# freshly converted file and a conversion into a full disk each end with exit 1 and one line
# naming the file, within seconds (the ctest TIMEOUT bounds a hang); nothing complete-looking is
# left by the failed conversion, and conversion stays byte-for-byte reproducible.
set -euo pipefail
: "${LMT_BIN:?}" "${LMT_TEST_TMP:?}" "${LMT_SOURCE_DIR:?}"
rm -rf "$LMT_TEST_TMP" && mkdir -p "$LMT_TEST_TMP" && cd "$LMT_TEST_TMP"
fail() { echo "FAIL: $*" >&2; exit 1; }
FIX="$LMT_SOURCE_DIR/../shared/fixtures/bad-input"
[ -f "$FIX/h5-hang.h5" ] && [ -f "$FIX/seed-model.pt" ] || { echo "fixtures absent: $FIX"; exit 77; }
[ -f "$FMNIST_DIR/train-images-idx3-ubyte.gz" ] || { echo "Fashion-MNIST missing"; exit 77; }

# expect_one_line_error FILE PATTERN -- command...: exit 1, exactly one stderr line, naming FILE
# and matching PATTERN.
expect_one_line_error() {
  local file=$1 pattern=$2; shift 3
  local rc=0
  "$@" >out.txt 2>err.txt || rc=$?
  [ "$rc" -eq 1 ] || { cat err.txt >&2; fail "exit $rc, expected 1: $*"; }
  [ "$(wc -l < err.txt)" -eq 1 ] || { cat err.txt >&2; fail "not one stderr line: $*"; }
  grep -Fq -- "$file" err.txt || { cat err.txt >&2; fail "stderr does not name $file: $*"; }
  grep -Eq -- "$pattern" err.txt || { cat err.txt >&2; fail "stderr lacks /$pattern/: $*"; }
}

cp "$FIX/seed-model.pt" model.pt
for f in h5-segv-1byte.h5 h5-segv-2.h5 h5-hang.h5; do
  cp "$FIX/$f" "$f"
  expect_one_line_error "$f" "corrupt file" -- "$LMT_BIN" eval --model-file model.pt --data "$f"
  expect_one_line_error "$f" "corrupt file" -- "$LMT_BIN" certify --model-file model.pt --data "$f"
  expect_one_line_error "$f" "corrupt file" -- \
    "$LMT_BIN" attack --model-file model.pt --data "$f" --norm L2 --eps 0.5 --attacks pgd
done

# A fresh conversion: reproducible bytes, read by eval; one changed pixel byte in the middle of
# test.h5 (image chunks fill all but the first and last few KB) fails the Fletcher-32 check.
"$LMT_BIN" convert fashion-mnist --src "$FMNIST_DIR" --out fm > /dev/null 2>&1 || fail "convert"
"$LMT_BIN" convert fashion-mnist --src "$FMNIST_DIR" --out fm2 > /dev/null 2>&1 || fail "convert"
cmp fm/train.h5 fm2/train.h5 && cmp fm/test.h5 fm2/test.h5 || fail "conversion not reproducible"
"$LMT_BIN" eval --model-file model.pt --data fm/test.h5 > /dev/null 2>&1 || fail "eval of intact file"
at=$(( $(stat -c %s fm/test.h5) / 2 ))
old=$(od -An -tu1 -j "$at" -N1 fm/test.h5 | tr -d ' ')
printf "$(printf '\\%03o' $(( old ^ 0x20 )))" | dd of=fm/test.h5 bs=1 seek="$at" conv=notrunc 2>/dev/null
expect_one_line_error fm/test.h5 "dataset 'images'.*Fletcher32" -- \
  "$LMT_BIN" eval --model-file model.pt --data fm/test.h5

# A full disk: the file size limit (writes past it fail with EFBIG, SIGXFSZ ignored) stands in
# for ENOSPC without privileges. Exit 1 (not the segfault in HDF5's exit handler), one error line
# naming train.h5, and no .h5 or temporary file left.
rc=0
( trap '' XFSZ; ulimit -f 4000; exec "$LMT_BIN" convert fashion-mnist --src "$FMNIST_DIR" \
    --out full ) > out.txt 2> err.txt || rc=$?
[ "$rc" -eq 1 ] || { cat err.txt >&2; fail "full-disk convert: exit $rc, expected 1"; }
[ "$(grep -c 'train.h5' err.txt)" -eq 1 ] || { cat err.txt >&2; fail "full-disk: no one line naming train.h5"; }
grep -q "File too large" err.txt || { cat err.txt >&2; fail "full-disk: reason missing"; }
[ -z "$(ls -A full 2>/dev/null)" ] || { ls -la full >&2; fail "full-disk convert left files"; }
# Into a folder holding a good conversion: the previous files stay as they were.
rc=0
( trap '' XFSZ; ulimit -f 4000; exec "$LMT_BIN" convert fashion-mnist --src "$FMNIST_DIR" \
    --out fm2 ) > out.txt 2> err.txt || rc=$?
[ "$rc" -eq 1 ] || { cat err.txt >&2; fail "full-disk convert over fm2: exit $rc, expected 1"; }
cmp fm/train.h5 fm2/train.h5 || fail "the previous train.h5 was changed by a failed conversion"
[ "$(ls fm2)" = "$(printf 'test.h5\ntrain.h5')" ] || { ls -la fm2 >&2; fail "fm2: stray files"; }
echo "bad files: all checks passed"
