#!/usr/bin/env bash
# The ViT (vit-tiny, small options) trains with PGD-AT and a linear eps warm-up on Fashion-MNIST
# without divergence: the run completes (the trainer aborts on a non-finite loss at any step) and
# its epoch loss is finite and below the loss of a uniform guess by the end.
source "$(dirname "$0")/../cli/lib.sh"  # LMT_TEST_TMP (fresh), fail, convert_fmnist
set +e  # this script checks exit codes itself
TMP="$LMT_TEST_TMP"
convert_fmnist "$TMP/fm" || { echo "FAIL: convert"; exit 1; }
"$LMT_BIN" train --data "$TMP/fm" --out "$TMP/vit" --model vit-tiny --model-option patch=7 \
  --model-option depth=2 --model-option width=32 --model-option heads=2 --loss pgd-at --norm Linf \
  --eps 0.1 --attack-steps 2 --eps-warmup 0.02 --epochs 1 --max-steps 60 --batch-size 32 \
  --threads 1 --seed 1 >"$TMP/vit.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  grep -qi "unknown model\|unknown architecture" "$TMP/vit.log" && { echo "vit-tiny not registered"; exit 77; }
  echo "FAIL: vit-tiny pgd-at exited $rc"; tail -5 "$TMP/vit.log"; exit 1
fi
python3 - "$TMP/vit/metrics.jsonl" <<'PY' || exit 1
import json, math, sys
epochs = [json.loads(l) for l in open(sys.argv[1]) if '"epoch"' in l]
assert epochs, "no epoch line"
loss = epochs[-1]["loss"]
assert math.isfinite(loss) and loss < math.log(10) * 1.2, f"epoch loss {loss}"
PY
