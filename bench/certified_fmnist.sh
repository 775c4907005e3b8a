#!/bin/bash
# Deep certified models on real Fashion-MNIST (issue 17): each run trains EPOCHS epochs through
# the real CLI, then `lmt certify` (sound float64 bound, radius rule best) on the 10,000 test
# images. One table: clean accuracy, certified accuracy at l2 radii 0.1 / 0.3 / 0.5 / 1.0 / 1.58,
# median certified radius, sound L, parameters, training images/s (wall, whole run incl. the
# end-of-epoch evaluations). The reference is the best lmt-mnist recipe (pairwise head, c = 1).
# Usage: bench/certified_fmnist.sh LMT_BIN FASHION_MNIST_DIR (from lmt convert)
#   env: EPOCHS=10 THREADS=2 OUT=/tmp/lmt-certified ONLY="label ..." (a subset of the labels)
set -uo pipefail
LMT=${1:?lmt binary}
FM=${2:?dataset dir of lmt convert fashion-mnist}
EPOCHS=${EPOCHS:-10} THREADS=${THREADS:-2} OUT=${OUT:-/tmp/lmt-certified} ONLY=${ONLY:-}
mkdir -p "$OUT" && touch "$OUT/results.jsonl"

LIRES="--model liresnet --model-option stem=patch --model-option width=16"
ADAM="--optimizer adam --lr 3e-4 --schedule cosine --batch-size 128"
# label|flags (all runs: no input normalization, seed 0)
runs=(
  "lmt-mnist LMT c=1 pairwise|--model lmt-mnist --loss lmt --lmt-c 1 --lmt-head pairwise --batch-size 50"
  "liresnet d6 w16 EMMA 1.5|$LIRES --model-option depth=6 $ADAM --loss emma --emma-eps 1.5 --eps-warmup 2 --lmt-head pairwise"
  "liresnet d6 w16 LMT c=1|$LIRES --model-option depth=6 $ADAM --loss lmt --lmt-c 1 --lmt-c-warmup 2 --lmt-head pairwise"
  "liresnet d6 w32 EMMA 1.5|--model liresnet --model-option stem=patch --model-option width=32 --model-option depth=6 $ADAM --loss emma --emma-eps 1.5 --eps-warmup 2 --lmt-head pairwise"
  "liresnet d6 w16 EMMA 1.0|$LIRES --model-option depth=6 $ADAM --loss emma --emma-eps 1.0 --eps-warmup 2 --lmt-head pairwise"
  "liresnet d12 w16 EMMA 1.5|$LIRES --model-option depth=12 $ADAM --loss emma --emma-eps 1.5 --eps-warmup 2 --lmt-head pairwise"
  "liresnet d12 w16 LMT c=1|$LIRES --model-option depth=12 $ADAM --loss lmt --lmt-c 1 --lmt-c-warmup 2 --lmt-head pairwise"
  "lipshift w16 EMMA 1.5|--model lipshift --model-option width=16 --model-option depths=1,1,2,1 --pad-to 32 $ADAM --loss emma --emma-eps 1.5 --eps-warmup 2 --lmt-head pairwise"
  "lipshift w16 LMT c=1|--model lipshift --model-option width=16 --model-option depths=1,1,2,1 --pad-to 32 $ADAM --loss lmt --lmt-c 1 --lmt-c-warmup 2 --lmt-head pairwise"
  "resnet18 w8 center LMT c=0.1|--model resnet18 --model-option width=8 --model-option norm=center --loss lmt --lmt-c 0.1 --lmt-c-warmup 1 --batch-size 64"
)

for run in "${runs[@]}"; do
  IFS='|' read -r label flags <<<"$run"
  if [ -n "$ONLY" ] && [[ "|$ONLY|" != *"|$label|"* ]]; then continue; fi
  dir="$OUT/$(echo "$label" | tr -c 'a-zA-Z0-9\n' '_')"
  rm -rf "$dir"
  echo "certified: $label: training $EPOCHS epoch(s)" >&2
  # shellcheck disable=SC2086
  train=$("$LMT" train --data "$FM" --out "$dir" --normalize 0 --epochs "$EPOCHS" \
    --threads "$THREADS" --seed 0 $flags 2>"$dir.log" | tail -n 1) ||
    { echo "certified: $label: training failed (see $dir.log)" >&2; continue; }
  tail -n 1 "$dir.log" >&2
  "$LMT" certify --model-file "$dir/model.pt" --data "$FM/test.h5" --eps 0.1,0.3,0.5,1.0,1.58 \
    --threads "$THREADS" --metrics-out "$dir/certify.jsonl" >/dev/null 2>"$dir.certify.log" ||
    { echo "certified: $label: certify failed (see $dir.certify.log)" >&2; continue; }
  params=$(grep -Eo '[0-9]+ parameters' "$dir.log" | head -n 1 | cut -d' ' -f1)
  echo "{\"label\":\"$label\",\"epochs\":$EPOCHS,\"parameters\":${params:-0},\"train\":$train,\"eval\":$(tail -n 1 "$dir/certify.jsonl")}" \
    >>"$OUT/results.jsonl"
done

python3 - "$OUT/results.jsonl" <<'PY'
import json, sys
rows = {}
for l in open(sys.argv[1]):
    if l.strip():
        r = json.loads(l)
        rows[r["label"]] = r  # a rerun of a label replaces its row
rows = rows.values()
print("Fashion-MNIST, no input normalization, seed 0; certified = l2 radius, sound bound")
print("| model | epochs | parameters | clean | 0.1 | 0.3 | 0.5 | 1.0 | 1.58 | median r | L sound | img/s |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    t, e = r["train"], r["eval"]
    cells = " | ".join(f"{100 * c:.1f}" for c in e["certified_accuracy"])
    print(f"| {r['label']} | {r['epochs']} | {r['parameters']:,} | {100 * e['clean_accuracy']:.1f} | "
          f"{cells} | {e['median_radius']:.3f} | {e['lipschitz_bound']:.4g} | {t['images_per_s']:.0f} |")
PY
