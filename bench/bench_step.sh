#!/bin/bash
# Step-time comparisons measured in one run, each configuration repeated REPEATS times in
# interleaved order (the machine may be shared): our C++ training loop (bench_step, the real
# Trainer) vs the Python PyTorch reference (bench/python/step_reference.py, same LibTorch kernels,
# model, batch, Adam, threads), 1 vs 2 ranks, overlap on vs off, --pi-sync average vs split.
# Prints a table of medians over repeats with the min..max spread and the ratios.
# Usage: bench/bench_step.sh BUILD_DIR FASHION_MNIST_DIR   (env: REPEATS=3 STEPS=30 WARMUP=5
#        BATCH=64 RESNET_BATCH=32 RESNET=1 THREADS=1 OUT=/tmp/lmt-bench-step)
set -uo pipefail
BUILD=${1:?build dir}
FM=${2:?dataset dir of lmt convert fashion-mnist}
REPEATS=${REPEATS:-3} STEPS=${STEPS:-30} WARMUP=${WARMUP:-5} THREADS=${THREADS:-1}
BATCH=${BATCH:-64} RESNET_BATCH=${RESNET_BATCH:-32} RESNET=${RESNET:-1}
OUT=${OUT:-/tmp/lmt-bench-step}
HERE="$(cd "$(dirname "$0")" && pwd)"
export OMP_NUM_THREADS=$THREADS OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$OUT" && : >"$OUT/results.jsonl"
CIFAR="$OUT/random-cifar"
[ "$RESNET" = 1 ] && [ ! -f "$CIFAR/test.h5" ] && "$BUILD/bench/bench_step" make-data "$CIFAR" 2048 >/dev/null

run() {  # run LABEL NP|py args...
  local label=$1 np=$2; shift 2
  local line
  if [ "$np" = py ]; then
    line=$(/usr/bin/python3 "$HERE/python/step_reference.py" --threads "$THREADS" --steps "$STEPS" \
      --warmup "$WARMUP" "$@" 2>>"$OUT/stderr.log" | tail -1)
  else
    line=$(mpirun -np "$np" --bind-to none -x OMP_NUM_THREADS "$BUILD/bench/bench_step" \
      --threads "$THREADS" --steps "$STEPS" --warmup "$WARMUP" "$@" 2>>"$OUT/stderr.log" | tail -1)
  fi
  case "$line" in
    "{"*) echo "{\"label\":\"$label\",${line#\{}" >>"$OUT/results.jsonl" ;;
    *) echo "bench_step.sh: $label failed (see $OUT/stderr.log)" >&2 ;;
  esac
}

for rep in $(seq "$REPEATS"); do
  echo "repeat $rep/$REPEATS" >&2
  M=(--data "$FM" --model lmt-mnist --batch-size "$BATCH")
  run "mnist lmt 1 rank" 1 "${M[@]}"
  run "mnist python 1 proc" py "${M[@]}"
  run "mnist lmt 2 ranks overlap" 2 "${M[@]}" --overlap 1
  run "mnist lmt 2 ranks no-overlap" 2 "${M[@]}" --overlap 0
  run "mnist-lmtloss 2 ranks pi average" 2 "${M[@]}" --loss lmt --pi-sync average
  run "mnist-lmtloss 2 ranks pi split" 2 "${M[@]}" --loss lmt --pi-sync split
  if [ "$RESNET" = 1 ]; then
    R=(--data "$CIFAR" --model resnet18 --batch-size "$RESNET_BATCH")
    run "resnet18 lmt 1 rank" 1 "${R[@]}"
    run "resnet18 python 1 proc" py "${R[@]}"
    run "resnet18 lmt 2 ranks overlap" 2 "${R[@]}" --overlap 1
    run "resnet18 lmt 2 ranks no-overlap" 2 "${R[@]}" --overlap 0
  fi
done

/usr/bin/python3 - "$OUT/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r["label"], []).append(r["median_step_s"])
med = {k: statistics.median(v) for k, v in by.items()}
print(f"{'configuration':36s} {'runs':>4s} {'median step ms':>14s} {'spread ms':>17s} {'steps/s':>8s}")
for k, v in by.items():
    print(f"{k:36s} {len(v):4d} {1e3*med[k]:14.1f} {1e3*min(v):8.1f}..{1e3*max(v):7.1f} {1/med[k]:8.2f}")
def ratio(name, a, b):
    if a in med and b in med:
        print(f"{name:60s} {med[b]/med[a]:6.2f}x")
print("\nratios of median step times (>1: the first is faster)")
for m in ("mnist", "resnet18"):
    ratio(f"{m}: lmt C++ loop vs Python PyTorch (1 process)", f"{m} lmt 1 rank", f"{m} python 1 proc")
    ratio(f"{m}: 2 ranks overlap on vs off", f"{m} lmt 2 ranks overlap", f"{m} lmt 2 ranks no-overlap")
    ratio(f"{m}: 2 ranks (global batch) vs 1 rank", f"{m} lmt 2 ranks overlap", f"{m} lmt 1 rank")
ratio("mnist lmt loss, 2 ranks: pi-sync split vs average", "mnist-lmtloss 2 ranks pi split",
      "mnist-lmtloss 2 ranks pi average")
PY
