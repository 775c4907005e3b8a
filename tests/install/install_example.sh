#!/bin/bash
# lmt as a library: the build tree is installed into a temporary prefix, examples/ is configured
# and built against that installed package alone (find_package(lmt)), converts Fashion-MNIST with
# the installed lmt and runs the example on 2 ranks: it trains and certifies, and its JSON line
# must report finite values, every test image counted once, and certified <= clean accuracy.
set -uo pipefail
TMP="${LMT_TEST_TMP:-/tmp/lmt-install-test}"
rm -rf "$TMP" && mkdir -p "$TMP"
PREFIX="$TMP/prefix"
fail() { echo "FAIL: $*"; exit 1; }
[ -d "${FMNIST_DIR:-}" ] || { echo "SKIP: Fashion-MNIST not at ${FMNIST_DIR:-}"; exit 77; }
[ -f "$LMT_BUILD_DIR/cmake_install.cmake" ] || fail "no cmake_install.cmake in $LMT_BUILD_DIR"

# 1. Install, and check what landed: every public header of every installed room, its library,
#    the package files; installed headers include only installed lmt headers.
cmake --install "$LMT_BUILD_DIR" --prefix "$PREFIX" > "$TMP/install.log" 2>&1 \
  || { tail -20 "$TMP/install.log"; fail "cmake --install"; }
CONFIG_DIR=$(dirname "$(find "$PREFIX" -name lmtConfig.cmake | head -1)")
[ -f "$CONFIG_DIR/lmtConfig.cmake" ] && [ -f "$CONFIG_DIR/lmtTargets.cmake" ] \
  && [ -f "$CONFIG_DIR/lmtConfigVersion.cmake" ] || fail "package config files missing under $PREFIX"
rooms=$(sed -n 's/^set(LMT_ROOMS "\(.*\)")$/\1/p' "$CONFIG_DIR/lmtConfig.cmake" | tr ';' ' ')
for room in lipschitz data dist models train; do
  [[ " $rooms " == *" $room "* ]] || fail "room $room not in the package (LMT_ROOMS: $rooms)"
done
for room in $rooms; do
  ls "$PREFIX"/lib*/liblmt_"$room".a > /dev/null 2>&1 || fail "liblmt_$room.a not installed"
  for h in "$LMT_SOURCE_DIR/$room/include/lmt/$room"/*.h; do
    cmp -s "$h" "$PREFIX/include/lmt/$room/$(basename "$h")" || fail "header $h not installed"
  done
done
while IFS= read -r hit; do
  file=${hit%%:*}; target=$(sed -n 's/.*#include[[:space:]]*<\(lmt\/[^>]*\)>.*/\1/p' <<<"${hit#*:}")
  [ -f "$PREFIX/include/$target" ] || fail "$file includes <$target>, which is not installed"
done < <(grep -rH '#include[[:space:]]*<lmt/' "$PREFIX/include/lmt")
if grep -rn '#include[[:space:]]*"' "$PREFIX/include/lmt"; then fail "an installed header has a quoted include"; fi

# 2. examples/ as a separate project against the installed package only.
GEN=(); command -v ninja > /dev/null && GEN=(-G Ninja)
cmake -S "$LMT_SOURCE_DIR/examples" -B "$TMP/build" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$PREFIX" > "$TMP/configure.log" 2>&1 \
  || { tail -30 "$TMP/configure.log"; fail "configuring examples/ against $PREFIX"; }
found=$(sed -n 's/^lmt_DIR:PATH=//p' "$TMP/build/CMakeCache.txt")
[ "$found" -ef "$CONFIG_DIR" ] || fail "examples/ found lmt at '$found', not in $CONFIG_DIR"
cmake --build "$TMP/build" -j 1 > "$TMP/build.log" 2>&1 \
  || { tail -30 "$TMP/build.log"; fail "building examples/"; }
EXAMPLE="$TMP/build/fmnist_lmt"
[ -x "$EXAMPLE" ] || fail "fmnist_lmt not built"

# 3. Data through the installed CLI, then 2 ranks of the example.
"$PREFIX/bin/lmt" convert fashion-mnist --src "$FMNIST_DIR" --out "$TMP/fm" > "$TMP/convert.log" 2>&1 \
  || { tail -5 "$TMP/convert.log"; fail "installed lmt convert"; }
STEPS=150
mpirun --oversubscribe --bind-to none -np 2 "$EXAMPLE" "$TMP/fm" --steps $STEPS --batch-size 100 \
  > "$TMP/run.log" 2>&1 || { tail -20 "$TMP/run.log"; fail "fmnist_lmt on 2 ranks"; }
cat "$TMP/run.log"
grep '^{' "$TMP/run.log" | tail -1 > "$TMP/result.json"
/usr/bin/python3 - "$TMP/result.json" "$TMP/fm/test.h5" "$STEPS" <<'PY' || fail "result check"
import json, math, sys
import h5py
r = json.load(open(sys.argv[1]))
with h5py.File(sys.argv[2], "r") as f:
    n_test = len(f["labels"])
checks = {
    "world_size is 2": r["world_size"] == 2,
    "steps as asked": r["steps"] == int(sys.argv[3]),
    "finite positive loss": math.isfinite(r["loss"]) and r["loss"] > 0,
    "finite positive bounds": all(math.isfinite(r[k]) and r[k] > 0 for k in ("train_bound", "sound_bound")),
    "every test image once": r["test_samples"] == n_test,
    "learned (clean accuracy well above the 10% of chance)": r["clean_accuracy"] > 0.5,
}
cert = [r["certified_accuracy"][k] for k in sorted(r["certified_accuracy"], key=float)]
checks["0 <= certified <= clean, shrinking with eps"] = (
    all(0 <= c <= r["clean_accuracy"] for c in cert) and cert == sorted(cert, reverse=True))
for name, ok in checks.items():
    print(("ok   " if ok else "FAIL ") + name)
sys.exit(0 if all(checks.values()) else 1)
PY
echo "PASS"
