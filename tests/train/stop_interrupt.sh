# Ctrl-C as a user types it on a terminal (tests/cli/pty_run.py writes ^C to a pty): the first
# stops `lmt train` at the next step with a checkpoint (exit 3), a second quits at once (130,
# killed by SIGINT), for one process and for launch/lmt-mpirun's two ranks; a SIGINT to one rank
# of a plain mpirun job stops every rank with a checkpoint. The runs are far longer than the
# test (50 epochs of batch 32): one that does not stop on ^C runs into pty_run's timeout.
source "$(dirname "$0")/lib.sh"
LMT_BIN="$LMT_HOOKED_BIN"  # LMT_TEST_CHECKPOINT_PAUSE_MS: a checkpoint that takes seconds
PTY=($PY "$LMT_SOURCE_DIR/tests/cli/pty_run.py" --cols 80 --timeout 300)
LONG=(--data "$FM" --model lmt-mnist --loss lmt --batch-size 32 --epochs 50)  # + --threads 1
WRAPPER=("$LMT_SOURCE_DIR/launch/lmt-mpirun" --allow-root --np 2 --threads 1 --)  # adds it
export LMT_BIN

complete_checkpoint() {  # complete_checkpoint RUN_DIR: the latest checkpoint has its MANIFEST
  local last
  last=$(ls -d "$1"/checkpoints/step-* 2>/dev/null | sort | tail -1)
  [ -n "$last" ] && [ -f "$last/MANIFEST" ]
}

# One process, one ^C once the bar is up: checkpoint, exit 3.
"${PTY[@]}" --out "$TMP/one.out" --ctrl-c-after 'train \[' -- \
  "$LMT_BIN" train "${LONG[@]}" --threads 1 --out "$TMP/one"
expect_code 3 $? "one ^C (see $TMP/one.out)"
grep -qa "stopped on request after step" "$TMP/one.out" || fail "no stop message after ^C"
complete_checkpoint "$TMP/one" || fail "no complete checkpoint after ^C"

# Two ^C: the second, typed while the stop's checkpoint is being written (5 s per file), ends
# the process at once.
LMT_TEST_CHECKPOINT_PAUSE_MS=5000 "${PTY[@]}" --out "$TMP/two.out" --ctrl-c-after 'train \[' \
  --ctrl-c-after 'interrupt again to quit at once' -- "$LMT_BIN" train "${LONG[@]}" --threads 1 \
  --out "$TMP/two"
expect_code 130 $? "two ^C (see $TMP/two.out)"
! grep -qa "stopped on request" "$TMP/two.out" || fail "the second ^C waited for the checkpoint"

# SIGINT to one rank of a plain mpirun job: every rank checkpoints at the same step, exit 3.
set -m  # the job's processes get SIGINT as on a terminal, not ignored as a script's `cmd &`
"${MPIRUN[@]}" -np 2 "$LMT_BIN" train "${LONG[@]}" --threads 1 --out "$TMP/rank" --log-every 1 \
  > "$TMP/rank.log" 2>&1 &
pid=$!
set +m
trap 'kill -- -$pid 2>/dev/null' EXIT  # no job outlives a failure
for _ in $(seq 6000); do
  grep -q '"type":"step"' "$TMP/rank/metrics.jsonl" 2>/dev/null && break
  sleep 0.02
done
rank1=$(pgrep -P $pid -f "lmt(-hooked)? train" | sort -n | tail -1)
[ -n "$rank1" ] || fail "no rank process found"
kill -INT "$rank1"
wait $pid; code=$?
trap - EXIT
expect_code 3 $code "SIGINT to one rank (see $TMP/rank.log)"
[ "$(grep -c 'stopped on request after step' "$TMP/rank.log")" = 1 ] || fail "rank 0's stop message"
complete_checkpoint "$TMP/rank" || fail "no complete checkpoint after SIGINT to a rank"

# launch/lmt-mpirun on a terminal: ^C reaches the script alone (mpirun would kill the ranks 1 s
# after its own SIGINT), which passes it on as SIGUSR1: exit 3; a second ^C: 130.
"${PTY[@]}" --out "$TMP/wrapper.out" --ctrl-c-after 'train \[' -- \
  "${WRAPPER[@]}" train "${LONG[@]}" --out "$TMP/wrapper"
expect_code 3 $? "lmt-mpirun, one ^C (see $TMP/wrapper.out)"
complete_checkpoint "$TMP/wrapper" || fail "no complete checkpoint after ^C to lmt-mpirun"
LMT_TEST_CHECKPOINT_PAUSE_MS=5000 "${PTY[@]}" --out "$TMP/wrapper2.out" --ctrl-c-after 'train \[' \
  --ctrl-c-after 'interrupt again to quit at once' -- "${WRAPPER[@]}" train "${LONG[@]}" \
  --out "$TMP/wrapper2"
expect_code 130 $? "lmt-mpirun, two ^C (see $TMP/wrapper2.out)"
! pgrep -f "lmt-hooked train .*$TMP/wrapper2" >/dev/null || fail "a rank outlived lmt-mpirun's exit"
echo "PASS"
