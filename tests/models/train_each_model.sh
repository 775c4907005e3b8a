#!/usr/bin/env bash
# Each architecture (tiny option sizes) trains a few steps on Fashion-MNIST through the real CLI
# with the LMT loss (ViT: cross-entropy) and writes a finite loss (and, for LMT, a finite
# positive bound) to metrics.jsonl.
source "$(dirname "$0")/../cli/lib.sh"  # LMT_TEST_TMP (fresh), fail, convert_fmnist
set +e  # this script checks exit codes itself
TMP="$LMT_TEST_TMP"
convert_fmnist "$TMP/fm" || { echo "FAIL: convert"; exit 1; }

# name|loss|extra flags
runs=(
  "wrn16-4|lmt|--model-option depth=10 --model-option widen=1"
  "wrn28-10|lmt|--model-option depth=10 --model-option widen=1 --model-option dropout=0.3"
  "lipshift|lmt|--model-option depths=1,1 --model-option width=16 --model-option patch=2 --model-option drop_path=0.2 --pad-to 32"
  "lipshift-cifar|lmt|--model-option depths=1,1,1 --model-option width=16 --pad-to 32"
  "resnet18|lmt|--model-option width=8"
  "resnet50|lmt|--model-option width=4"
  "resnet18|lmt|--model-option width=8 --model-option norm=center"
  "wrn16-4|lmt|--model-option depth=10 --model-option widen=1 --model-option norm=center"
  "vit-tiny|ce|--model-option patch=7 --model-option depth=2 --model-option width=32 --model-option heads=2"
  "vit-small|ce|--model-option patch=4 --model-option depth=1 --model-option width=32 --model-option heads=4 --pad-to 32"
)
status=0
for run in "${runs[@]}"; do
  IFS='|' read -r name loss flags <<<"$run"
  out="$TMP/run-$name-$(echo "$flags" | tr -c 'a-z0-9' '_' | tail -c 40)"
  # shellcheck disable=SC2086
  if ! "$LMT_BIN" train --data "$TMP/fm" --out "$out" --model "$name" --loss "$loss" \
      --epochs 1 --max-steps 5 --batch-size 32 --threads 1 --seed 1 $flags >"$out.log" 2>&1; then
    echo "FAIL: $name: lmt train exited non-zero"; tail -5 "$out.log"; status=1; continue
  fi
  if ! python3 - "$out/metrics.jsonl" "$loss" <<'PY'
import json, math, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
epochs = [l for l in lines if l.get("type") == "epoch"]
assert epochs, "no epoch line in metrics.jsonl"
last = epochs[-1]
assert math.isfinite(last["loss"]) and last["loss"] > 0, f"loss {last['loss']}"
assert last["step"] == 5, f"step {last['step']}"
if sys.argv[2] == "lmt":
    L = last.get("lipschitz_bound")
    assert L is not None and math.isfinite(L) and L > 0, f"bound {L}"
else:
    assert "lipschitz_bound" not in last, "a bound was logged for a model without one"
print("ok", last["loss"], last.get("lipschitz_bound"))
PY
  then
    echo "FAIL: $name: metrics.jsonl"; status=1
  else
    echo "ok: $name"
  fi
done
exit $status
