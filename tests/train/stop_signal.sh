# Stop signals on 2 ranks: SIGUSR1 to mpirun (which forwards it to the ranks) makes the trainer
# finish its step, write a checkpoint and exit with code 3; SIGTERM to one rank alone does the same
# (the ranks agree by an all-reduce of the flag); resuming from these finishes bitwise identical to
# an uninterrupted run.
source "$(dirname "$0")/lib.sh"
LMT_BIN="$LMT_HOOKED_BIN"  # lmt with the test hooks as Trainer listeners (tests/train/lmt_hooked.cpp)
export LMT_TEST_CHECKPOINT_PAUSE_MS=100  # slows the run so the signals land mid-run
mpi 2 train "${TRAIN_ARGS[@]}" --out "$TMP/straight" > "$TMP/straight.log" 2>&1
expect_code 0 $? "uninterrupted run (see $TMP/straight.log)"

RUN="$TMP/run"
trap '[ -n "${pid:-}" ] && kill "$pid" 2>/dev/null' EXIT  # no trainer outlives a failure
ARGS=("${TRAIN_ARGS[@]}" --out "$RUN" --checkpoint-every 3 --keep-last 2 --resume auto)
wait_for_dir() { for _ in $(seq 6000); do [ -d "$1" ] && return 0; sleep 0.02; done; return 1; }

"${MPIRUN[@]}" -np 2 "$LMT_BIN" train "${ARGS[@]}" > "$TMP/usr1.log" 2>&1 &
pid=$!
wait_for_dir "$RUN/checkpoints/step-000003" || fail "no first checkpoint"
kill -USR1 $pid
wait $pid; code=$?; pid=
expect_code 3 $code "after SIGUSR1 (see $TMP/usr1.log)"
grep -q "stopped on request after step" "$TMP/usr1.log" || fail "no stop message"
stopped=$(ls -d "$RUN"/checkpoints/step-* | sort | tail -1)
[ -f "$stopped/MANIFEST" ] || fail "no complete checkpoint after the stop"
[ "$(ls -d "$RUN"/checkpoints/step-* | wc -l)" -le 2 ] || fail "--keep-last 2 not honoured"
echo "SIGUSR1: stopped at $stopped"

"${MPIRUN[@]}" -np 2 "$LMT_BIN" train "${ARGS[@]}" > "$TMP/term.log" 2>&1 &
pid=$!
after=$(( (10#${stopped##*step-} / 3 + 1) * 3 )); after=$(printf "%06d" $after)  # next periodic one
wait_for_dir "$RUN/checkpoints/step-$after" || fail "no checkpoint after resuming"
rank1=$(pgrep -P $pid -f "lmt(-hooked)? train" | sort -n | tail -1)
[ -n "$rank1" ] || fail "no rank process found"
kill -TERM $rank1
wait $pid; code=$?; pid=
expect_code 3 $code "after SIGTERM to one rank (see $TMP/term.log)"
echo "SIGTERM: stopped at $(ls -d "$RUN"/checkpoints/step-* | sort | tail -1)"

mpi 2 train "${ARGS[@]}" > "$TMP/final.log" 2>&1
expect_code 0 $? "final resume (see $TMP/final.log)"
export_st "$TMP/straight/model.pt" "$TMP/a.safetensors"
export_st "$RUN/model.pt" "$TMP/b.safetensors"
cd "$HERE" && $PY compare_runs.py "$TMP/a.safetensors" "$TMP/b.safetensors" \
  "$TMP/straight/metrics.jsonl" "$RUN/metrics.jsonl" || fail "stopped run differs"
echo "PASS"
