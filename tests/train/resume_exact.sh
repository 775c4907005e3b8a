# Exact resume on 2 ranks: 30 steps straight vs 15 steps, stop, resume for 15. The final weights
# (every parameter and buffer, power-iteration vectors included) are bitwise identical and the
# metrics lines match (timing fields aside).
source "$(dirname "$0")/lib.sh"
mpi 2 train "${TRAIN_ARGS[@]}" --out "$TMP/straight" > "$TMP/straight.log" 2>&1
expect_code 0 $? "straight run (see $TMP/straight.log)"

mpi 2 train "${TRAIN_ARGS[@]}" --out "$TMP/split" --stop-after-steps 15 > "$TMP/first.log" 2>&1
expect_code 3 $? "first half (see $TMP/first.log)"
[ -f "$TMP/split/checkpoints/step-000015/MANIFEST" ] || fail "no checkpoint at step 15"
[ ! -f "$TMP/split/model.pt" ] || fail "a stopped run wrote the final model"
mpi 2 train "${TRAIN_ARGS[@]}" --out "$TMP/split" --resume auto > "$TMP/second.log" 2>&1
expect_code 0 $? "resumed half (see $TMP/second.log)"
grep -q "resuming from .*step-000015" "$TMP/second.log" || fail "did not resume from step 15"

export_st "$TMP/straight/model.pt" "$TMP/a.safetensors"
export_st "$TMP/split/model.pt" "$TMP/b.safetensors"
cd "$HERE" && $PY compare_runs.py "$TMP/a.safetensors" "$TMP/b.safetensors" \
  "$TMP/straight/metrics.jsonl" "$TMP/split/metrics.jsonl" || fail "runs differ"
echo "PASS"
