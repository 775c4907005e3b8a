#!/bin/bash
# Step-time comparisons measured in one run, each configuration repeated REPEATS times in
# interleaved order (the machine may be shared): the real `lmt train` loop (its reported
# images_per_s over STEPS steps) vs the Python PyTorch reference (bench/python/step_reference.py:
# same LibTorch kernels, model, batch, Adam, cross-entropy, threads; loop_images_per_s over the
# same number of steps), 1 vs 2 ranks, overlap on vs off, --pi-sync average vs split, and
# gradient accumulation (--accum-steps 4 vs 1 at the same micro-batch, 2 ranks: per image), and
# data-parallel scaling (issue 20): 2 ranks vs 1 at the same global batch (lmt-mnist DP_BATCH,
# ResNet-18 RESNET_BATCH), beside PyTorch DDP over Gloo (step_reference.py under mpirun) vs its
# own 1 process. Every rank runs THREADS intra-op threads, so 2 ranks use twice the cores.
# Prints medians over repeats with the min..max spread, and ratios of the medians.
# Usage: bench/bench_step.sh LMT_BIN FASHION_MNIST_DIR (from lmt convert)
#   env: REPEATS=3 STEPS=200 BATCH=64 DP_BATCH=256 RESNET=1 RESNET_STEPS=20 RESNET_BATCH=64 THREADS=1
#        OUT=/tmp/lmt-bench-step ONLY_ACCUM=0 (1: only the accumulation pair)
set -uo pipefail
LMT=${1:?lmt binary}
FM=${2:?dataset dir of lmt convert fashion-mnist}
REPEATS=${REPEATS:-3} STEPS=${STEPS:-200} BATCH=${BATCH:-64} THREADS=${THREADS:-1}
RESNET=${RESNET:-1} RESNET_STEPS=${RESNET_STEPS:-20} RESNET_BATCH=${RESNET_BATCH:-64}
DP_BATCH=${DP_BATCH:-256}
OUT=${OUT:-/tmp/lmt-bench-step}
HERE="$(cd "$(dirname "$0")" && pwd)"
export OMP_NUM_THREADS=$THREADS OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$OUT" && : >"$OUT/results.jsonl"
CIFAR="$OUT/random-cifar"
if [ "$RESNET" = 1 ] && [ ! -f "$CIFAR/test.h5" ]; then
  /usr/bin/python3 "$HERE/python/make_random_cifar.py" "$CIFAR" 2048 || exit 1
fi

record() {  # record LABEL BATCH IMAGES_PER_S
  echo "{\"label\":\"$1\",\"batch\":$2,\"images_per_s\":$3}" >>"$OUT/results.jsonl"
}
run_lmt() {  # run_lmt LABEL NP STEPS BATCH lmt-train-args...
  local label=$1 np=$2 steps=$3 batch=$4; shift 4
  local line ips
  line=$(mpirun -np "$np" --bind-to none -x OMP_NUM_THREADS "$LMT" train --threads "$THREADS" \
    --max-steps "$steps" --epochs 1 --batch-size "$batch" --log-every 100000000 \
    --out "$OUT/run" --overwrite "$@" 2>>"$OUT/stderr.log" | tail -1)
  ips=$(echo "$line" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["images_per_s"])' 2>/dev/null) \
    && record "$label" "$batch" "$ips" || echo "bench_step.sh: $label failed (see $OUT/stderr.log)" >&2
}
run_py() {  # run_py LABEL NP STEPS BATCH step_reference-args... (NP > 1: DDP over Gloo)
  local label=$1 np=$2 steps=$3 batch=$4; shift 4
  local ips
  ips=$(mpirun -np "$np" --bind-to none -x OMP_NUM_THREADS /usr/bin/python3 "$HERE/python/step_reference.py" --threads "$THREADS" --warmup 0 \
    --steps "$steps" --batch-size "$batch" "$@" 2>>"$OUT/stderr.log" | tail -1 \
    | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["loop_images_per_s"])') \
    && record "$label" "$batch" "$ips" || echo "bench_step.sh: $label failed (see $OUT/stderr.log)" >&2
}

ONLY_ACCUM=${ONLY_ACCUM:-0}
for rep in $(seq "$REPEATS"); do
  echo "repeat $rep/$REPEATS" >&2
  M=(--data "$FM" --model lmt-mnist)
  # The same micro-batch (BATCH/2 per rank): K=4 takes 4 of them per optimizer step and one
  # all-reduce, K=1 one and one all-reduce.
  run_lmt "lmt-mnist LMT loss: 2 ranks, accum 1" 2 "$STEPS" "$BATCH" "${M[@]}" --loss lmt --accum-steps 1
  run_lmt "lmt-mnist LMT loss: 2 ranks, accum 4" 2 "$((STEPS / 4))" "$((4 * BATCH))" "${M[@]}" \
    --loss lmt --accum-steps 4
  [ "$ONLY_ACCUM" = 1 ] && continue
  run_lmt "lmt-mnist: lmt C++, 1 rank" 1 "$STEPS" "$BATCH" "${M[@]}"
  run_py "lmt-mnist: Python PyTorch, 1 process" 1 "$STEPS" "$BATCH" "${M[@]}"
  run_lmt "lmt-mnist: lmt C++, 2 ranks, overlap" 2 "$STEPS" "$BATCH" "${M[@]}" --overlap true
  run_lmt "lmt-mnist: lmt C++, 2 ranks, no overlap" 2 "$STEPS" "$BATCH" "${M[@]}" --overlap false
  run_lmt "lmt-mnist B$DP_BATCH: lmt C++, 1 rank" 1 "$STEPS" "$DP_BATCH" "${M[@]}"
  run_lmt "lmt-mnist B$DP_BATCH: lmt C++, 2 ranks" 2 "$STEPS" "$DP_BATCH" "${M[@]}"
  run_py "lmt-mnist B$DP_BATCH: Python, 1 process" 1 "$STEPS" "$DP_BATCH" "${M[@]}"
  run_py "lmt-mnist B$DP_BATCH: DDP Gloo, 2 ranks" 2 "$STEPS" "$DP_BATCH" "${M[@]}"
  run_lmt "lmt-mnist LMT loss: 2 ranks, pi average" 2 "$STEPS" "$BATCH" "${M[@]}" --loss lmt --pi-sync average
  run_lmt "lmt-mnist LMT loss: 2 ranks, pi split" 2 "$STEPS" "$BATCH" "${M[@]}" --loss lmt --pi-sync split
  if [ "$RESNET" = 1 ]; then
    R=(--data "$CIFAR" --model resnet18)
    run_lmt "resnet18: lmt C++, 1 rank" 1 "$RESNET_STEPS" "$RESNET_BATCH" "${R[@]}"
    run_py "resnet18: Python PyTorch, 1 process" 1 "$RESNET_STEPS" "$RESNET_BATCH" "${R[@]}"
    run_lmt "resnet18: lmt C++, 1 rank, channels-last" 1 "$RESNET_STEPS" "$RESNET_BATCH" "${R[@]}" --channels-last
    run_py "resnet18: DDP Gloo, 2 ranks" 2 "$RESNET_STEPS" "$RESNET_BATCH" "${R[@]}"
    run_lmt "resnet18: lmt C++, 2 ranks, overlap" 2 "$RESNET_STEPS" "$RESNET_BATCH" "${R[@]}" --overlap true
    run_lmt "resnet18: lmt C++, 2 ranks, no overlap" 2 "$RESNET_STEPS" "$RESNET_BATCH" "${R[@]}" --overlap false
  fi
done

/usr/bin/python3 - "$OUT/results.jsonl" "$DP_BATCH" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by, batch = {}, {}
for r in rows:
    by.setdefault(r["label"], []).append(r["batch"] / r["images_per_s"])
    batch[r["label"]] = r["batch"]
med = {k: statistics.median(v) for k, v in by.items()}
print(f"{'configuration':44s} {'runs':>4s} {'step ms':>8s} {'spread ms':>15s} {'steps/s':>8s} {'img/s':>7s}")
for k, v in by.items():
    print(f"{k:44s} {len(v):4d} {1e3*med[k]:8.1f} {1e3*min(v):7.1f}..{1e3*max(v):6.1f}"
          f" {1/med[k]:8.2f} {batch[k]/med[k]:7.0f}")
def ratio(name, a, b):
    if a in med and b in med:
        print(f"  {name:58s} {med[b]/med[a]:5.2f}x")
print("ratios of median step times (> 1: the first named is faster)")
for m in ("lmt-mnist", "resnet18"):
    ratio(f"{m}: lmt C++ vs Python PyTorch", f"{m}: lmt C++, 1 rank", f"{m}: Python PyTorch, 1 process")
    ratio(f"{m}: 2 ranks overlap on vs off", f"{m}: lmt C++, 2 ranks, overlap", f"{m}: lmt C++, 2 ranks, no overlap")
    ratio(f"{m}: 2 ranks vs 1 rank (same global batch)", f"{m}: lmt C++, 2 ranks, overlap", f"{m}: lmt C++, 1 rank")
m = f"lmt-mnist B{sys.argv[2]}"
ratio(f"{m}: lmt 2 ranks vs 1 rank", f"{m}: lmt C++, 2 ranks", f"{m}: lmt C++, 1 rank")
ratio(f"{m}: DDP Gloo 2 ranks vs Python 1 process", f"{m}: DDP Gloo, 2 ranks", f"{m}: Python, 1 process")
ratio(f"{m}: lmt 2 ranks vs DDP Gloo 2 ranks", f"{m}: lmt C++, 2 ranks", f"{m}: DDP Gloo, 2 ranks")
ratio("resnet18, 1 rank: --channels-last vs NCHW", "resnet18: lmt C++, 1 rank, channels-last", "resnet18: lmt C++, 1 rank")
ratio("resnet18: DDP Gloo 2 ranks vs Python 1 process", "resnet18: DDP Gloo, 2 ranks", "resnet18: Python PyTorch, 1 process")
ratio("resnet18: lmt 2 ranks vs DDP Gloo 2 ranks", "resnet18: lmt C++, 2 ranks, overlap", "resnet18: DDP Gloo, 2 ranks")
def per_image(name, a, b):
    if a in med and b in med:
        print(f"  {name:58s} {(med[a] / batch[a]) / (med[b] / batch[b]):5.2f}x")
print("cost per image (< 1.05: accumulation costs at most 5% more per image)")
per_image("lmt-mnist LMT, 2 ranks: accum 4 vs accum 1", "lmt-mnist LMT loss: 2 ranks, accum 4",
          "lmt-mnist LMT loss: 2 ranks, accum 1")
ratio("lmt-mnist LMT loss, 2 ranks: pi split vs average", "lmt-mnist LMT loss: 2 ranks, pi split",
      "lmt-mnist LMT loss: 2 ranks, pi average")
PY
