#!/bin/bash
# How lmt train degrades when the cores are shared (issue 20): lmt-mnist, --threads 2, alone and
# beside BUSY CPU-bound processes (`yes`), under each OpenMP idle-wait setting and with
# --threads 1. Prints images/s and the CPU seconds the run used (user+sys), one line per run,
# in one run of this script; the README's "Threads" table comes from it.
# Usage: bench/bench_threads.sh LMT_BIN FASHION_MNIST_DIR   env: STEPS=300 BATCH=50 BUSY=2
set -uo pipefail
LMT=${1:?lmt binary}
FM=${2:?dataset dir of lmt convert fashion-mnist}
STEPS=${STEPS:-300} BATCH=${BATCH:-50} BUSY=${BUSY:-2}
OUT=$(mktemp -d)
trap 'kill "${HOGS[@]}" 2>/dev/null; rm -rf "$OUT"' EXIT
HOGS=()
one() {  # one LABEL THREADS ENV...
  local label=$1 threads=$2; shift 2
  local line cpu
  line=$(env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT "$@" /usr/bin/time -f '%U %S' -o "$OUT/time" \
    "$LMT" train --data "$FM" --model lmt-mnist --epochs 1 --max-steps "$STEPS" \
    --batch-size "$BATCH" --threads "$threads" --log-every 100000000 --out "$OUT/run" \
    --overwrite 2>/dev/null | tail -1)
  cpu=$(awk '{print $1 + $2}' "$OUT/time")
  echo "$line" | /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); \
print(f'  {\"$label\":36s} {d[\"images_per_s\"]:9.0f} images/s  {float(\"$cpu\"):6.1f} s CPU')" \
    || echo "  $label: failed" >&2
}
table() {
  one "libgomp default (spin 300000)" 2
  one "GOMP_SPINCOUNT=3000" 2 GOMP_SPINCOUNT=3000
  one "OMP_WAIT_POLICY=PASSIVE" 2 OMP_WAIT_POLICY=PASSIVE
  one "--threads 1" 1
}
echo "lmt-mnist, batch $BATCH, $STEPS steps, $(nproc) cores; alone:"
table
for _ in $(seq "$BUSY"); do yes >/dev/null & HOGS+=($!); done
echo "beside $BUSY busy processes:"
table
