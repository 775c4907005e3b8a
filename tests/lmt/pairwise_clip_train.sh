#!/usr/bin/env bash
# --lmt-head pairwise and --lmt-clip train through the CLI (on a 3000/1000-image Fashion-MNIST
# subset): finite losses, a training bound that stays bounded over 3 epochs and a sound bound
# below that of the same steps of cross-entropy; a pairwise certificate; and from the same
# weights and batch the clipped loss is below the unclipped one (the clip only shrinks shifts).
set -uo pipefail
export OMP_NUM_THREADS=1
PY=/usr/bin/python3
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fail() { echo "FAIL: $*"; exit 1; }
[ -x "$LMT_BIN" ] || fail "lmt not built at $LMT_BIN"
[ -f "${FMNIST_DIR:-}/train-images-idx3-ubyte.gz" ] || { echo "SKIP: no Fashion-MNIST"; exit 77; }
TMP="${LMT_TEST_TMP:-/tmp/lmt-lmt-test}"
rm -rf "$TMP" && mkdir -p "$TMP/sub"
"$LMT_BIN" convert fashion-mnist --src "$FMNIST_DIR" --out "$TMP/fm" >/dev/null 2>&1 || fail "convert"
$PY "$HERE/subset.py" "$TMP/fm/train.h5" "$TMP/sub/train.h5" 3000 || fail "subset train"
$PY "$HERE/subset.py" "$TMP/fm/test.h5" "$TMP/sub/test.h5" 1000 || fail "subset test"
COMMON=(--data "$TMP/sub" --model lmt-mnist --lmt-c 1 --threads 1 --seed 5)

# field FILE KEY: KEY of every epoch line of a metrics.jsonl, one per line.
field() { $PY -c '
import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    if d.get("type") == "epoch": print(d[sys.argv[2]])' "$1" "$2"; }
sound_bound() {  # sound_bound MODEL HEAD: the sound L lmt certify reports
  rm -f "$TMP/cert.jsonl"
  "$LMT_BIN" certify --model-file "$1" --data "$TMP/sub/test.h5" --head "$2" --threads 1 \
    --metrics-out "$TMP/cert.jsonl" >"$TMP/cert.log" 2>&1 || { cat "$TMP/cert.log"; return 1; }
  $PY - "$TMP/cert.jsonl" <<'PY'
import json, math, sys
d = json.loads(open(sys.argv[1]).readline())
r, L = d["median_radius"], d["lipschitz_bound"]
if not (math.isfinite(r) and r >= 0 and math.isfinite(L) and L > 0): sys.exit(f"FAIL: certify {d}")
print(L)
PY
}

# 1. Cross-entropy, the reference for the bound: 3 epochs of 15 steps at batch 200.
"$LMT_BIN" train "${COMMON[@]}" --loss ce --batch-size 200 --epochs 3 --out "$TMP/ce" \
  >"$TMP/ce.log" 2>&1 || { tail -5 "$TMP/ce.log"; fail "ce: lmt train exited non-zero"; }
L_ce=$(sound_bound "$TMP/ce/model.pt" global) || fail "certify ce"
echo "cross-entropy: sound L $L_ce"

# 2. The same steps with each head/clip setting.
for setting in "pairwise|pairwise|--lmt-head pairwise" \
               "pairwise-clip|pairwise|--lmt-head pairwise --lmt-clip true" \
               "global-clip|global|--lmt-head global --lmt-clip true"; do
  IFS='|' read -r name rule flags <<<"$setting"
  # shellcheck disable=SC2086
  "$LMT_BIN" train "${COMMON[@]}" --loss lmt $flags --batch-size 200 --epochs 3 \
    --out "$TMP/$name" >"$TMP/$name.log" 2>&1 \
    || { tail -5 "$TMP/$name.log"; fail "$name: lmt train exited non-zero"; }
  L_sound=$(sound_bound "$TMP/$name/model.pt" "$rule") || fail "$name: certify --head $rule"
  $PY - "$name" "$(field "$TMP/$name/metrics.jsonl" loss)" \
      "$(field "$TMP/$name/metrics.jsonl" lipschitz_bound)" "$L_sound" "$L_ce" <<'PY' || exit 1
import math, sys
name = sys.argv[1]
losses = [float(v) for v in sys.argv[2].split()]
bounds = [float(v) for v in sys.argv[3].split()]
sound, ce = float(sys.argv[4]), float(sys.argv[5])
print(f"{name}: epoch losses {losses}, training L {bounds}, sound L {sound} (CE {ce})")
if len(losses) != 3 or len(bounds) != 3: sys.exit(f"FAIL: {name}: expected 3 epoch lines")
if not all(math.isfinite(v) for v in losses): sys.exit(f"FAIL: {name}: non-finite loss")
if not all(math.isfinite(v) and v > 0 for v in bounds): sys.exit(f"FAIL: {name}: bad L {bounds}")
# Without the clip the full shift keeps L from growing; with it (shift <= margin) L may grow, but
# it stays below the bound cross-entropy reaches in the same steps.
if "clip" not in name and bounds[-1] > 1.5 * bounds[0]:
    sys.exit(f"FAIL: {name}: L grew {bounds[0]} -> {bounds[-1]}")
if not sound < ce: sys.exit(f"FAIL: {name}: sound L {sound} not below cross-entropy's {ce}")
PY
done

# 3. One step from the same weights and batch: clipped loss < unclipped loss, for both heads.
for head in global pairwise; do
  for clip in false true; do
    "$LMT_BIN" train "${COMMON[@]}" --loss lmt --lmt-head $head --lmt-clip $clip \
      --batch-size 500 --max-steps 1 --out "$TMP/one-$head-$clip" >"$TMP/one-$head-$clip.log" 2>&1 \
      || { tail -5 "$TMP/one-$head-$clip.log"; fail "one step $head clip=$clip"; }
  done
  plain=$(field "$TMP/one-$head-false/metrics.jsonl" loss)
  clipped=$(field "$TMP/one-$head-true/metrics.jsonl" loss)
  echo "$head head, first-step loss: unclipped $plain, clipped $clipped"
  $PY -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if b < a else 1)" \
    "$plain" "$clipped" || fail "$head: clipped loss $clipped not below unclipped $plain"
done
echo "PASS"
