#!/usr/bin/env bash
# The GPU check of issue 16, in ONE script for a machine with an NVIDIA GPU and a CUDA `torch`
# wheel in its python3, but without Debian's -dev packages and without network (the device tool's
# machine: 16 cores, at most 8 minutes in all). It needs bundle/ (scripts/gpu-bundle.sh, run on a
# machine with the Debian mirror; carry `bundle` with the working tree), then:
#   1. builds lmt against the wheel's LibTorch (scripts/build-cuda.sh, bundle prefix for HDF5,
#      Open MPI, Boost, GTest, libjpeg-turbo, zlib): lmt, compare_models, the dist unit and NCCL
#      tests;
#   2. runs the dist unit and CUDA/NCCL tests (dist_unit_test, dist_nccl_test: skipped tests
#      count as failed for NCCL, whose tests skip only without a GPU);
#   3. prints ONE table:
#      - Fashion-MNIST lmt-mnist, cross-entropy and LMT (configs/fmnist-lmt.ini), 1 GPU: test
#        accuracy, L, images/s;
#      - 2 ranks on one GPU with --grad-backend mpi vs 1 rank, 20 SGD steps (the dp equivalence
#        test's run: softplus, batch 64, lr 0.01), weights within 1e-5 relative (the CPU tests');
#      - GPU vs CPU after the same 20 SGD steps (max relative weight difference; 1e-5 as above);
#      - exact resume on the GPU: wrn16-4 with dropout, 10 steps + resume 10 vs 20 straight (1e-5);
#      - resnet50 at 224 px on synthetic data, step time fp32 vs bf16 in lmt and in Python PyTorch
#        from the same wheel (bench/python/resnet50_step.py);
#      - LMT / cross-entropy step-time ratio on GPU (from the two Fashion-MNIST rows).
# A row whose command fails prints `failed: <reason>` and the script goes on; the exit code is 1
# when any row or test failed, 2 when the build failed (then no row can run).
# With $OUT set, the rows are also written to $OUT/gpu-check.jsonl and the logs' tails to
# $OUT/gpu-check.log.
#
#   scripts/gpu-check.sh                  # python3's torch
#   env: PYTHON=python3  WORK=/tmp/lmt-gpu-check  BUDGET_S=480 (rows not started after this
#        many seconds report `failed: time budget`)  FMNIST_EPOCHS=1  R50_BATCH=64  R50_STEPS=30
#        JOBS=$(nproc)  SKIP_BUILD=0
# Uses flags of `lmt train` from issue 16 (--device, --precision, --grad-backend): on a build
# without them those rows fail with lmt's own one-line reason.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
T0=$(date +%s)
PYTHON=${PYTHON:-python3}
WORK=${WORK:-/tmp/lmt-gpu-check}
BUDGET_S=${BUDGET_S:-480}
FMNIST_EPOCHS=${FMNIST_EPOCHS:-1}
R50_BATCH=${R50_BATCH:-64}
R50_STEPS=${R50_STEPS:-30}
BUILD_DIR=${BUILD_DIR:-build-cuda}
LMT=$ROOT/$BUILD_DIR/lmt
COMPARE=$ROOT/$BUILD_DIR/tests/dp/compare_models
JSONL=""
LOG=""
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  JSONL=$OUT/gpu-check.jsonl
  LOG=$OUT/gpu-check.log
  : >"$JSONL"
  : >"$LOG"
fi
rm -rf "$WORK"
mkdir -p "$WORK"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_hwloc_base_binding_policy=none
# Sandboxed kernels (gVisor) may refuse cross-memory attach: shared memory copies it instead.
export OMPI_MCA_btl_vader_single_copy_mechanism=none
FAILED=0
TABLE=()

elapsed() { echo $(($(date +%s) - T0)); }
say() { echo "gpu-check [$(elapsed)s]: $*"; }
json_escape() { "$PYTHON" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }
emit_json() {  # emit_json '{"row": ...}'
  [ -n "$JSONL" ] && echo "$1" >>"$JSONL"
  return 0
}
keep_log() {  # keep_log NAME FILE: the last 60 lines of FILE into $OUT/gpu-check.log
  [ -n "$LOG" ] && [ -f "$2" ] && { echo "===== $1 ($2)"; tail -n 60 "$2"; } >>"$LOG"
  return 0
}
row_ok() {  # row_ok NAME RESULT [JSON fields without braces]
  TABLE+=("$(printf '| %-44s | %s |' "$1" "$2")")
  emit_json "{\"row\":$(json_escape "$1"),\"ok\":true,\"result\":$(json_escape "$2")${3:+,$3}}"
}
row_failed() {  # row_failed NAME REASON
  FAILED=1
  TABLE+=("$(printf '| %-44s | failed: %s |' "$1" "$2")")
  emit_json "{\"row\":$(json_escape "$1"),\"ok\":false,\"result\":$(json_escape "failed: $2")}"
}
budget_left() { [ "$(elapsed)" -lt "$BUDGET_S" ]; }
# reason LOG: the last meaningful line of a failed command's output, for the table.
reason() {
  local line
  line=$(grep -v '^\s*$' "$1" 2>/dev/null | grep -viE 'warning|^\s*at |^\[' | tail -n 1)
  [ -n "$line" ] || line=$(tail -n 1 "$1" 2>/dev/null)
  echo "${line:-no output}" | cut -c1-160
}
# field JSON_LINE KEY: one value of lmt's JSON summary line ("" when absent).
field() {
  "$PYTHON" -c 'import json,sys
try:
    v = json.loads(sys.argv[1]).get(sys.argv[2], "")
except Exception:
    v = ""
print(v if not isinstance(v, float) else f"{v:.6g}")' "$1" "$2"
}
summary_line() { grep '^{' "$1" 2>/dev/null | grep '"command"' | tail -n 1; }

# ---- 0. what this machine is --------------------------------------------------------------------
say "machine: $(nproc) cores; $(nvidia-smi -L 2>/dev/null | head -n 1 || echo 'no nvidia-smi')"
"$PYTHON" -c 'import torch; print("gpu-check: python torch", torch.__version__, "CUDA", torch.version.cuda,
  "device:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device")' ||
  say "python3 has no torch"
HAVE_CUDA=$("$PYTHON" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)

# ---- 1. bundle and build ------------------------------------------------------------------------
# shellcheck source=scripts/bundle-env.sh
source scripts/bundle-env.sh
if ! lmt_bundle_env; then
  echo "gpu-check: failed: no bundle (scripts/gpu-bundle.sh, then carry bundle/)"
  exit 2
fi
say "bundle unpacked at $LMT_BUNDLE_PREFIX"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  say "building lmt against $PYTHON's LibTorch into $BUILD_DIR"
  if ! LMT_USE_BUNDLE=1 BUILD_DIR=$BUILD_DIR JOBS=${JOBS:-$(nproc)} \
       TARGETS="lmt_cli compare_models dist_unit_test dist_nccl_test" \
       scripts/build-cuda.sh "$PYTHON" -- -DLMT_BUILD_BENCH=OFF >"$WORK/build.log" 2>&1; then
    keep_log build "$WORK/build.log"
    grep -E 'error|Error' "$WORK/build.log" | head -n 20
    echo "gpu-check: failed: build ($(reason "$WORK/build.log"))"
    exit 2
  fi
  keep_log build "$WORK/build.log"
fi
say "built; $("$LMT" --version 2>&1 | tr '\n' ';')"
emit_json "{\"row\":\"version\",\"ok\":true,\"result\":$(json_escape "$("$LMT" --version 2>&1 | tr '\n' ';')")}"

# ---- 2. CUDA/NCCL tests (the GoogleTest executables CTest runs; their test names are the
# suites', so they are run directly) -------------------------------------------------------------
for t in dist/dist_unit_test dist/dist_nccl_test; do
  name="tests: $(basename "$t")"
  log=$WORK/$(basename "$t").log
  if timeout 180 "$BUILD_DIR/tests/$t" >"$log" 2>&1; then
    summary="$(grep -E '^\[  PASSED  \]' "$log" | tail -n 1 | sed 's/\[  PASSED  \] //')"
    skipped=$(grep -E '^\[  SKIPPED \] [A-Za-z]' "$log" | sort -u | wc -l)
    if [ "$skipped" -gt 0 ] && [ "$t" = dist/dist_nccl_test ]; then
      row_failed "$name" "$summary, $skipped skipped ($(grep -m1 -i 'skip' "$log" | cut -c1-80))"
    else
      [ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
      row_ok "$name" "$summary passed"
    fi
  else
    row_failed "$name" "$(grep -E '^\[  FAILED  \]' "$log" | head -n 3 | tr '\n' ' ')$(reason "$log")"
  fi
  keep_log "$name" "$log"
done

# ---- 3. rows ------------------------------------------------------------------------------------
FM=$WORK/fmnist
if ! "$LMT" convert fashion-mnist --src "$FMNIST_DIR" --out "$FM" >"$WORK/convert.log" 2>&1; then
  row_failed "Fashion-MNIST convert" "$(reason "$WORK/convert.log")"
fi

CE_IPS="" LMT_IPS=""
fmnist_row() {  # fmnist_row NAME VAR_FOR_IPS lmt-train-args...
  local name=$1 var=$2 log line acc bound ips
  shift 2
  log=$WORK/$var.log
  budget_left || { row_failed "$name" "time budget"; return; }
  if timeout 240 "$LMT" train --data "$FM" --out "$WORK/$var" --epochs "$FMNIST_EPOCHS" \
       --device cuda --log-every 100000 "$@" >"$log" 2>&1; then
    line=$(summary_line "$log")
    acc=$(field "$line" test_accuracy) bound=$(field "$line" lipschitz_bound) ips=$(field "$line" images_per_s)
    row_ok "$name" "test acc $acc, L ${bound:-n/a}, $ips images/s ($FMNIST_EPOCHS epoch)" \
      "\"test_accuracy\":${acc:-null},\"lipschitz_bound\":${bound:-null},\"images_per_s\":${ips:-null}"
    printf -v "$var" '%s' "$ips"
  else
    row_failed "$name" "$(reason "$log")"
  fi
  keep_log "$name" "$log"
}
fmnist_row "FMNIST lmt-mnist CE, 1 GPU" CE_IPS --model lmt-mnist --batch-size 50
fmnist_row "FMNIST lmt-mnist LMT (fmnist-lmt.ini), 1 GPU" LMT_IPS --config configs/fmnist-lmt.ini

# The dp equivalence test's 20 steps (tests/dp/equivalence.sh).
EQ_ARGS=(train --data "$FM" --model lmt-mnist --model-option act=softplus --optimizer sgd --lr 0.01
         --batch-size 64 --seed 11 --threads 1 --log-every 1000 --max-steps 20)
run_eq() {  # run_eq NAME NP lmt-args...: 0 when it ran
  local name=$1 np=$2
  shift 2
  if [ "$np" = 1 ]; then
    timeout 180 "$LMT" "${EQ_ARGS[@]}" --out "$WORK/$name" "$@" >"$WORK/$name.log" 2>&1
  else
    timeout 180 mpirun -np "$np" --bind-to none -x OMP_NUM_THREADS=1 "$LMT" "${EQ_ARGS[@]}" \
      --out "$WORK/$name" "$@" >"$WORK/$name.log" 2>&1
  fi
}
compare_row() {  # compare_row NAME A B: max relative difference within 1e-5
  local name=$1 out
  out=$("$COMPARE" "$WORK/$2/model.pt" "$WORK/$3/model.pt" --rtol 1e-5 2>&1)
  local rc=$? diff
  diff=$(echo "$out" | sed -n 's/.*max relative difference \([^ ]*\).*/\1/p' | head -n 1)
  if [ $rc -eq 0 ]; then
    row_ok "$name" "max rel. weight diff $diff (<= 1e-5)" "\"max_rel_diff\":${diff:-null}"
  else
    row_failed "$name" "max rel. weight diff ${diff:-?} ($(echo "$out" | tail -n 1 | cut -c1-100))"
  fi
}
if budget_left; then
  if ! run_eq eq-gpu1 1 --device cuda; then
    row_failed "2 ranks/1 GPU --grad-backend mpi vs 1 rank" "1 rank: $(reason "$WORK/eq-gpu1.log")"
    row_failed "GPU vs CPU, 20 SGD steps" "GPU run: $(reason "$WORK/eq-gpu1.log")"
  else
    if run_eq eq-gpu2 2 --device cuda --grad-backend mpi; then
      compare_row "2 ranks/1 GPU --grad-backend mpi vs 1 rank" eq-gpu2 eq-gpu1
    else
      row_failed "2 ranks/1 GPU --grad-backend mpi vs 1 rank" "$(reason "$WORK/eq-gpu2.log")"
    fi
    if run_eq eq-cpu1 1 --device cpu; then
      compare_row "GPU vs CPU, 20 SGD steps" eq-gpu1 eq-cpu1
    else
      row_failed "GPU vs CPU, 20 SGD steps" "CPU run: $(reason "$WORK/eq-cpu1.log")"
    fi
  fi
  for n in eq-gpu1 eq-gpu2 eq-cpu1; do keep_log "$n" "$WORK/$n.log"; done
else
  row_failed "2 ranks/1 GPU --grad-backend mpi vs 1 rank" "time budget"
  row_failed "GPU vs CPU, 20 SGD steps" "time budget"
fi

# Exact resume on the GPU: wrn16-4 with dropout, whose masks come from the GPU's generator, 20
# steps straight vs 10, stop (exit 3), resume for 10; weights within 1e-5 as above. A resume that
# restarted the GPU generator would draw other masks for steps 11..20.
RS_ARGS=(train --data "$FM" --model wrn16-4 --model-option dropout=0.3 --optimizer sgd --lr 0.01
         --batch-size 64 --seed 11 --log-every 1000 --max-steps 20 --device cuda)
run_rs() {  # run_rs NAME lmt-args...
  local name=$1
  shift
  timeout 180 "$LMT" "${RS_ARGS[@]}" --out "$WORK/$name" "$@" >"$WORK/$name.log" 2>&1
}
if budget_left; then
  run_rs rs-straight
  a=$?
  run_rs rs-split --stop-after-steps 10
  b=$?
  cp "$WORK/rs-split.log" "$WORK/rs-first.log" 2>/dev/null
  run_rs rs-split --resume auto
  c=$?
  if [ $a = 0 ] && [ $b = 3 ] && [ $c = 0 ] &&
     ! grep -q "resuming from .*step-000010" "$WORK/rs-split.log"; then
    row_failed "GPU exact resume, dropout, 10+10 vs 20 steps" "the second run did not resume from step 10"
  elif [ $a = 0 ] && [ $b = 3 ] && [ $c = 0 ]; then
    compare_row "GPU exact resume, dropout, 10+10 vs 20 steps" rs-split rs-straight
  else
    row_failed "GPU exact resume, dropout, 10+10 vs 20 steps" \
      "exit codes $a, $b, $c (want 0, 3, 0): $(reason "$WORK/$([ $a != 0 ] && echo rs-straight || echo rs-split).log")"
  fi
  for n in rs-straight rs-first rs-split; do keep_log "$n" "$WORK/$n.log"; done
else
  row_failed "GPU exact resume, dropout, 10+10 vs 20 steps" "time budget"
fi

# resnet50, 224 px, synthetic: lmt (images/s of its loop over R50_STEPS steps) and Python.
R50=$WORK/r50-data
R50_OK=0
if budget_left; then
  if "$PYTHON" bench/python/make_random_cifar.py "$R50" $((R50_BATCH * 4)) 224 "$R50_BATCH" \
       >"$WORK/r50-data.log" 2>&1; then
    R50_OK=1
  else
    row_failed "resnet50 224px data" "$(reason "$WORK/r50-data.log")"
  fi
fi
for prec in fp32 bf16; do
  name="resnet50 224px batch $R50_BATCH, lmt $prec"
  if [ $R50_OK = 0 ] || ! budget_left; then row_failed "$name" "time budget or no data"; continue; fi
  log=$WORK/r50-$prec.log
  if timeout 240 "$LMT" train --data "$R50" --out "$WORK/r50-$prec" --model resnet50 \
       --optimizer sgd --lr 0.01 --batch-size "$R50_BATCH" --max-steps "$R50_STEPS" --epochs 1 \
       --log-every 100000 --device cuda --precision "$prec" >"$log" 2>&1; then
    ips=$(field "$(summary_line "$log")" images_per_s)
    ms=$("$PYTHON" -c "print(f'{$R50_BATCH * 1000 / float(\"$ips\"):.1f}')" 2>/dev/null || echo "?")
    row_ok "$name" "$ms ms/step, $ips images/s (loop incl. warm-up)" \
      "\"images_per_s\":${ips:-null},\"step_ms\":${ms:-null}"
  else
    row_failed "$name" "$(reason "$log")"
  fi
  keep_log "$name" "$log"
done
name="resnet50 224px batch $R50_BATCH, Python PyTorch"
if budget_left && [ "$HAVE_CUDA" = 1 ]; then
  if timeout 240 "$PYTHON" bench/python/resnet50_step.py --batch-size "$R50_BATCH" --size 224 \
       --steps "$R50_STEPS" --precision fp32,bf16 >"$WORK/r50-py.log" 2>&1; then
    for prec in fp32 bf16; do
      line=$(grep "\"precision\": \"$prec\"" "$WORK/r50-py.log" | tail -n 1)
      if [ -n "$line" ]; then
        row_ok "$name $prec" "$(field "$line" step_ms) ms/step, $(field "$line" images_per_s) images/s (median step)" \
          "\"step_ms\":$(field "$line" step_ms)"
      else
        row_failed "$name $prec" "no result line"
      fi
    done
  else
    row_failed "$name" "$(reason "$WORK/r50-py.log")"
  fi
  keep_log "python resnet50" "$WORK/r50-py.log"
elif [ "$HAVE_CUDA" != 1 ]; then
  row_failed "$name" "no CUDA device"
else
  row_failed "$name" "time budget"
fi

if [ -n "$CE_IPS" ] && [ -n "$LMT_IPS" ]; then
  ratio=$("$PYTHON" -c "print(f'{float(\"$CE_IPS\") / float(\"$LMT_IPS\"):.2f}')")
  row_ok "LMT / CE step-time ratio, lmt-mnist, GPU" "$ratio (CE $CE_IPS vs LMT $LMT_IPS images/s)" \
    "\"ratio\":$ratio"
else
  row_failed "LMT / CE step-time ratio, lmt-mnist, GPU" "a Fashion-MNIST row failed"
fi

# ---- the table ----------------------------------------------------------------------------------
echo
echo "gpu-check: $(nvidia-smi -L 2>/dev/null | head -n 1 || echo 'no GPU'); $("$LMT" --version 2>/dev/null | head -n 2 | tr '\n' ' '); $(elapsed) s"
printf '| %-44s | %s |\n' "check" "result"
printf '|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "--------"
printf '%s\n' "${TABLE[@]}"
exit $FAILED
