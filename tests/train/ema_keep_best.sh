# EMA of the weights and --keep-best, on a 1200/1000-image cut of Fashion-MNIST (10 steps per
# epoch at global batch 120):
# - 1 rank, 4 steps, a checkpoint after each: the EMA in each checkpoint's ema.pt follows
#   e = d e + (1 - d) w with the warm-up decay from the live weights in its model.pt
#   (check_ema.py formula states the float32 tolerance); `lmt export --checkpoint` takes the EMA;
#   --keep-best certified@0.02 records the sound bound's certified accuracy beside the training
#   bound's;
# - 2 ranks, --accum-steps 2, 3 epochs, --keep-best test-accuracy: both ranks end with the same
#   EMA; stopped after step 15 (mid-epoch 2) and resumed, model.pt, model_best.pt and the
#   metrics lines equal the uninterrupted run's bitwise; model_best.pt is the EMA of the epoch
#   the metrics name (epoch 2 of 3 on this machine: test accuracy 0.578, then 0.566).
LMT_BIN="$LMT_HOOKED_BIN"  # LMT_TEST_RANK_DIR: every rank saves its final model (lmt_hooked.cpp)
source "$(dirname "$0")/lib.sh"
WEIGHTS="${LMT_BUILD_DIR}/tests/train/weights_helper"
[ -x "$WEIGHTS" ] || fail "weights_helper not built at $WEIGHTS"
SMALL="$TMP/small"
"$WEIGHTS" subset "$FM" 1200 1000 "$SMALL" || fail "dataset cut"
check() { (cd "$HERE" && $PY check_ema.py "$@") || fail "check_ema.py $1"; }

ARGS=(train --data "$SMALL" --model lmt-mnist --loss lmt --batch-size 120 --ema-decay 0.9
      --ema-warmup --threads 1 --log-every 1000)
"$LMT_BIN" "${ARGS[@]}" --max-steps 4 --checkpoint-every 1 --keep-last 0 --out "$TMP/formula" \
  --keep-best certified@0.02 > "$TMP/formula.log" 2>&1 || fail "1-rank run (see $TMP/formula.log)"
for k in 1 2 3 4; do
  ckpt="$TMP/formula/checkpoints/step-00000$k"
  export_st "$ckpt/model.pt" "$TMP/formula/live-$k.safetensors"
  export_st "$ckpt/ema.pt" "$TMP/formula/ema-$k.safetensors"
done
check formula "$TMP/formula" 0.9 4
"$LMT_BIN" export --checkpoint "$TMP/formula/checkpoints/step-000004" --format safetensors \
  --out "$TMP/formula/ckpt.safetensors" --bound false > /dev/null || fail "export --checkpoint"
check same "$TMP/formula/ckpt.safetensors" "$TMP/formula/ema-4.safetensors"
export_st "$TMP/formula/model_best.pt" "$TMP/formula/best.safetensors"
export_st "$TMP/formula/model.pt" "$TMP/formula/final.safetensors"
check best "$TMP/formula/metrics.jsonl" "$TMP/formula/best.safetensors" \
  "$TMP/formula/ema-4.safetensors" "$TMP/formula/final.safetensors"

ARGS+=(--accum-steps 2 --epochs 3 --keep-best test-accuracy --checkpoint-every 10 --keep-last 0)
mkdir -p "$TMP/ranks"
"${MPIRUN[@]}" -x LMT_TEST_RANK_DIR="$TMP/ranks" -np 2 "$LMT_BIN" "${ARGS[@]}" --out "$TMP/straight" \
  > "$TMP/straight.log" 2>&1
expect_code 0 $? "2-rank run (see $TMP/straight.log)"
export_st "$TMP/ranks/rank-0.pt" "$TMP/rank-0.safetensors"
export_st "$TMP/ranks/rank-1.pt" "$TMP/rank-1.safetensors"
check same "$TMP/rank-0.safetensors" "$TMP/rank-1.safetensors"

mpi 2 "${ARGS[@]}" --out "$TMP/split" --stop-after-steps 15 > "$TMP/first.log" 2>&1
expect_code 3 $? "first part (see $TMP/first.log)"
mpi 2 "${ARGS[@]}" --out "$TMP/split" --resume auto > "$TMP/second.log" 2>&1
expect_code 0 $? "resumed part (see $TMP/second.log)"
grep -q "resuming from .*step-000015" "$TMP/second.log" || fail "did not resume from step 15"
for f in model model_best; do
  export_st "$TMP/straight/$f.pt" "$TMP/straight-$f.safetensors"
  export_st "$TMP/split/$f.pt" "$TMP/split-$f.safetensors"
  (cd "$HERE" && $PY compare_runs.py "$TMP/straight-$f.safetensors" "$TMP/split-$f.safetensors" \
    "$TMP/straight/metrics.jsonl" "$TMP/split/metrics.jsonl") || fail "$f.pt: resumed run differs"
done
check same "$TMP/straight-model.safetensors" "$TMP/rank-0.safetensors"

for e in 1 2 3; do
  export_st "$TMP/straight/checkpoints/step-0000${e}0/ema.pt" "$TMP/ema-epoch-$e.safetensors"
done
check best "$TMP/straight/metrics.jsonl" "$TMP/straight-model_best.safetensors" \
  "$TMP/ema-epoch-%d.safetensors" "$TMP/straight-model.safetensors"
echo "PASS"
