#!/bin/bash
# The model zoo on real Fashion-MNIST under one LMT recipe: each model trains EPOCHS epochs with
# the LMT loss (ViT: cross-entropy, it has no bound) through the real CLI, then `lmt certify`
# (sound bound) or `lmt eval` (ViT) on the 10,000 test images. Prints one table: parameters,
# clean accuracy, certified accuracy at l2 radii 0.1 / 0.3 / 1.0, median certified radius, the
# sound L, the last training L, training images/s. Sizes are reduced where the published ones do
# not fit a laptop (the label says which options were used).
# Usage: bench/zoo_fmnist.sh LMT_BIN FASHION_MNIST_DIR (from lmt convert)
#   env: EPOCHS=1 C=0.1 C_WARMUP=1 (epochs of linear c warm-up) BATCH=64 THREADS=2
#        OUT=/tmp/lmt-zoo ONLY="label ..." (a subset of the labels below)
set -uo pipefail
LMT=${1:?lmt binary}
FM=${2:?dataset dir of lmt convert fashion-mnist}
EPOCHS=${EPOCHS:-1} C=${C:-0.1} C_WARMUP=${C_WARMUP:-1} BATCH=${BATCH:-64} THREADS=${THREADS:-2}
OUT=${OUT:-/tmp/lmt-zoo} ONLY=${ONLY:-}
mkdir -p "$OUT" && : >"$OUT/results.jsonl"

# label|model|loss|flags
runs=(
  "lmt-mnist|lmt-mnist|lmt|"
  "resnet18 w8 batch|resnet18|lmt|--model-option width=8"
  "resnet18 w8 center|resnet18|lmt|--model-option width=8 --model-option norm=center"
  "wrn16-1 batch|wrn16-4|lmt|--model-option widen=1"
  "wrn16-1 center|wrn16-4|lmt|--model-option widen=1 --model-option norm=center"
  "wrn28-1 center|wrn28-10|lmt|--model-option widen=1 --model-option norm=center"
  "lipshift w32|lipshift|lmt|--model-option width=32 --pad-to 32"
  "lipshift-cifar w16|lipshift-cifar|lmt|--model-option width=16 --model-option dropout=0 --model-option drop_path=0 --pad-to 32"
  "vit-tiny d6 (ce)|vit-tiny|ce|--model-option patch=4 --model-option depth=6"
)

for run in "${runs[@]}"; do
  IFS='|' read -r label model loss flags <<<"$run"
  if [ -n "$ONLY" ] && [[ " $ONLY " != *" $label "* ]]; then continue; fi
  dir="$OUT/$(echo "$label" | tr -c 'a-zA-Z0-9\n' '_')"
  rm -rf "$dir"
  lmtflags=()
  [ "$loss" = lmt ] && lmtflags=(--lmt-c "$C" --lmt-c-warmup "$C_WARMUP")
  echo "zoo: $label: training ($EPOCHS epoch(s), loss $loss)" >&2
  # shellcheck disable=SC2086
  train=$("$LMT" train --data "$FM" --out "$dir" --model "$model" --loss "$loss" "${lmtflags[@]}" \
    --normalize 0 --epochs "$EPOCHS" --batch-size "$BATCH" --threads "$THREADS" --seed 0 \
    $flags 2>"$dir.log" | tail -n 1) || { echo "zoo: $label: training failed (see $dir.log)" >&2; continue; }
  tail -n 1 "$dir.log" >&2
  if [ "$loss" = lmt ]; then
    "$LMT" certify --model-file "$dir/model.pt" --data "$FM/test.h5" --eps 0.1,0.3,1.0 \
      --threads "$THREADS" --metrics-out "$dir/certify.jsonl" >/dev/null 2>&1 ||
      { echo "zoo: $label: certify failed" >&2; continue; }
  else
    "$LMT" eval --model-file "$dir/model.pt" --data "$FM/test.h5" 2>/dev/null | tail -n 1 \
      >"$dir/certify.jsonl" || { echo "zoo: $label: eval failed" >&2; continue; }
  fi
  params=$(grep -Eo '[0-9]+ parameters' "$dir.log" | head -n 1 | cut -d' ' -f1)
  echo "{\"label\":\"$label\",\"parameters\":${params:-0},\"train\":$train,\"eval\":$(tail -n 1 "$dir/certify.jsonl")}" \
    >>"$OUT/results.jsonl"
done

python3 - "$OUT/results.jsonl" "$C" "$C_WARMUP" "$EPOCHS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"Fashion-MNIST, {sys.argv[4]} epoch(s), LMT c={sys.argv[2]} (linear warm-up over "
      f"{sys.argv[3]} epoch(s)), Adam 1e-3, no input normalization; certified = l2 radius")
print("| model | parameters | clean % | cert 0.1 | cert 0.3 | cert 1.0 | median r | L sound | L train | img/s |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    t, e = r["train"], r["eval"]
    clean = 100 * e.get("clean_accuracy", e.get("accuracy", float("nan")))
    cert = e.get("certified_accuracy")
    cells = [f"{100 * c:.1f}" for c in cert] if cert else ["–"] * 3
    med = f"{e['median_radius']:.3f}" if "median_radius" in e else "–"
    sound = f"{e['lipschitz_bound']:.4g}" if "lipschitz_bound" in e else "–"
    train_l = f"{t['lipschitz_bound']:.4g}" if "lipschitz_bound" in t else "–"
    print(f"| {r['label']} | {r['parameters']:,} | {clean:.1f} | {' | '.join(cells)} | {med} | {sound} | {train_l} | "
          f"{t['images_per_s']:.0f} |")
PY
