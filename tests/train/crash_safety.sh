# Crash safety: the trainer is killed with SIGKILL before its first checkpoint, in the middle of
# checkpoint writes (a test hook widens the write window) and right after one; every time
# `--resume auto` continues from the newest complete checkpoint, and the run finished through all
# the crashes ends bitwise identical to an uninterrupted one. Then a truncated, a corrupted and an
# unfinished checkpoint are refused with errors naming the file, and `auto` skips them.
source "$(dirname "$0")/lib.sh"
LMT_BIN="$LMT_HOOKED_BIN"  # lmt with the test hooks as Trainer listeners (tests/train/lmt_hooked.cpp)
RUN="$TMP/run"
ARGS=(--data "$FM" --model lmt-mnist --loss lmt --batch-size 500 --epochs 1 --max-steps 40
      --threads 1 --log-every 1000 --checkpoint-every 2 --keep-last 0)
newest() { ls -d "$RUN"/checkpoints/step-* 2>/dev/null | sort | tail -1; }
wait_for() {  # wait_for CONDITION-COMMAND: polls every 10 ms for up to 120 s
  for _ in $(seq 12000); do eval "$1" && return 0; sleep 0.01; done
  return 1
}

"$LMT_BIN" train "${ARGS[@]}" --out "$TMP/straight" > "$TMP/straight.log" 2>&1
expect_code 0 $? "uninterrupted run (see $TMP/straight.log)"

export LMT_TEST_CHECKPOINT_PAUSE_MS=150
cycle=0
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null' EXIT  # no trainer outlives a failure
crash() {  # crash CONDITION: start (or resume) the run, SIGKILL it once CONDITION holds
  cycle=$((cycle + 1))
  local expected; expected="$(newest)"
  "$LMT_BIN" train "${ARGS[@]}" --out "$RUN" --resume auto > "$TMP/cycle$cycle.log" 2>&1 &
  pid=$!
  wait_for "$1" || fail "cycle $cycle: condition '$1' never held"
  kill -9 $pid; wait $pid 2>/dev/null; pid=
  if [ -n "$expected" ]; then
    grep -q "resuming from $expected " "$TMP/cycle$cycle.log" \
      || fail "cycle $cycle: did not resume from the newest complete checkpoint $expected"
  elif [ $cycle -gt 1 ]; then
    grep -q "starting at step 0" "$TMP/cycle$cycle.log" || fail "cycle $cycle: no fresh start"
  fi
  echo "cycle $cycle: killed; checkpoints: $(ls -A "$RUN/checkpoints" 2>/dev/null | tr '\n' ' ')"
}
# Conditions are evaluated with $pid set to the trainer's process (its temporary directories are
# named .tmp-step-NNNNNN-PID).
crash '[ -f "$RUN/config.ini" ]'                                          # before any checkpoint
crash 'ls -d "$RUN"/checkpoints/.tmp-*-$pid >/dev/null 2>&1'              # during the first write
crash '[ -d "$RUN/checkpoints/step-000004" ]'                              # right after a rename
crash 'ls "$RUN"/checkpoints/.tmp-*-$pid/state.pt >/dev/null 2>&1'        # mid-write
crash 'ls "$RUN"/checkpoints/.tmp-*-$pid/config.ini >/dev/null 2>&1'      # before the MANIFEST
ls -d "$RUN"/checkpoints/.tmp-* >/dev/null 2>&1 || fail "no unfinished checkpoint was left behind"
before="$(newest)"
"$LMT_BIN" train "${ARGS[@]}" --out "$RUN" --resume auto > "$TMP/final.log" 2>&1
expect_code 0 $? "final resume (see $TMP/final.log)"
grep -q "resuming from $before " "$TMP/final.log" || fail "final resume not from $before"
export_st "$TMP/straight/model.pt" "$TMP/a.safetensors"
export_st "$RUN/model.pt" "$TMP/b.safetensors"
(cd "$HERE" && $PY compare_runs.py "$TMP/a.safetensors" "$TMP/b.safetensors" \
  "$TMP/straight/metrics.jsonl" "$RUN/metrics.jsonl") || fail "crashed run differs"

# Resuming a finished run from its last checkpoint (step 40, taken before the epoch's end) redoes
# only the evaluation: same model, and the epoch line is replaced, not duplicated.
"$LMT_BIN" train "${ARGS[@]}" --out "$RUN" --resume auto > "$TMP/again.log" 2>&1
expect_code 0 $? "resume of a finished run (see $TMP/again.log)"
grep -q "resuming from $RUN/checkpoints/step-000040 " "$TMP/again.log" || fail "not from step 40"
export_st "$RUN/model.pt" "$TMP/c.safetensors"
(cd "$HERE" && $PY compare_runs.py "$TMP/a.safetensors" "$TMP/c.safetensors" \
  "$TMP/straight/metrics.jsonl" "$RUN/metrics.jsonl") || fail "resumed finished run differs"

# Damaged checkpoints: --resume PATH names the file; --resume auto warns and takes the previous.
unset LMT_TEST_CHECKPOINT_PAUSE_MS
mapfile -t all < <(ls -d "$RUN"/checkpoints/step-* | sort)
n=${#all[@]}; [ $n -ge 4 ] || fail "expected >= 4 checkpoints with --keep-last 0, found $n"
last="${all[$((n-1))]}"; prev="${all[$((n-2))]}"; prev2="${all[$((n-3))]}"
size=$(stat -c %s "$last/optimizer.pt"); truncate -s $((size / 2)) "$last/optimizer.pt"
"$LMT_BIN" train "${ARGS[@]}" --out "$RUN" --resume "$last" > "$TMP/trunc.log" 2>&1
expect_code 1 $? "resume from a truncated checkpoint"
grep -q "$last/optimizer.pt: .*truncated" "$TMP/trunc.log" || fail "truncation not named: $(cat "$TMP/trunc.log")"

printf '\xff' | dd of="$prev/model.pt" bs=1 seek=$(( $(stat -c %s "$prev/model.pt") / 2 )) conv=notrunc 2>/dev/null
"$LMT_BIN" train "${ARGS[@]}" --out "$RUN" --resume "$prev" > "$TMP/corrupt.log" 2>&1
expect_code 1 $? "resume from a corrupted checkpoint"
grep -q "$prev/model.pt: checksum .*corrupted" "$TMP/corrupt.log" || fail "corruption not named: $(cat "$TMP/corrupt.log")"

rm "$prev2/MANIFEST"
"$LMT_BIN" train "${ARGS[@]}" --out "$RUN" --resume "$prev2" > "$TMP/nomanifest.log" 2>&1
expect_code 1 $? "resume from a checkpoint without MANIFEST"
grep -q "$prev2/MANIFEST: missing" "$TMP/nomanifest.log" || fail "missing MANIFEST not named"

target="${all[$((n-4))]}"; step=$((10#${target##*step-}))
"$LMT_BIN" train "${ARGS[@]}" --out "$RUN" --resume auto --stop-after-steps $((step + 1)) \
  > "$TMP/auto.log" 2>&1
expect_code 3 $? "auto resume past damaged checkpoints"
for bad in "$last/optimizer.pt" "$prev/model.pt" "$prev2/MANIFEST"; do
  grep -q "warning: skipping damaged checkpoint: $bad" "$TMP/auto.log" || fail "no warning naming $bad"
done
grep -q "resuming from $target " "$TMP/auto.log" || fail "auto did not pick $target"
echo "PASS"
