# Faults in a 3-rank `lmt train`: (a) rank 1 SIGKILLed mid-training, (b) rank 1 throwing after
# step 3 (test hook LMT_TEST_THROW_AT of lmt-hooked), (c) rank 1 alone given an unreadable dataset (MPMD
# launch). Each time mpirun exits non-zero within the collective timeout plus a margin, no final
# model is written, and for (b) and (c) the error is printed once naming rank 1. Times are
# measured from the failure (the kill, or the moment rank 1's error line appears).
source "$(dirname "$0")/lib.sh"
LMT_BIN="$LMT_HOOKED_BIN"  # lmt with the test hooks as Trainer listeners (tests/train/lmt_hooked.cpp)
TIMEOUT=60  # long enough for a slow start-up on a loaded machine
MARGIN=15

# run_after_error NAME mpirun-args...: runs the job in the background, notes when a line
# "lmt: rank 1:" appears in NAME.err, and sets RC and ELAPSED (seconds from then to the exit).
run_after_error() {
  local name=$1; shift
  "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  local job=$! seen=""
  while kill -0 $job 2>/dev/null; do
    if [ -z "$seen" ] && grep -q "^lmt: rank 1:" "$TMP/$name.err"; then seen=$(date +%s.%N); fi
    sleep 0.1
  done
  wait $job
  RC=$?
  [ -n "$seen" ] || seen=$(date +%s.%N)  # printed just before the exit
  ELAPSED=$(awk -v a="$seen" -v b="$(date +%s.%N)" 'BEGIN { printf "%d", b - a + 0.999 }')
}
ARGS=(train --model lmt-mnist --batch-size 30 --epochs 1 --seed 1 --threads 1 --log-every 1000
      --collective-timeout $TIMEOUT)

# (a) SIGKILL rank 1 once training has started (rank 0 printed the run line, plus 2 s).
mpi 3 -- "${ARGS[@]}" --data "$FM" --out "$TMP/killed" >"$TMP/killed.out" 2>"$TMP/killed.err" &
launcher=$!
for _ in $(seq 1200); do
  grep -q "steps/epoch" "$TMP/killed.err" && break
  kill -0 $launcher 2>/dev/null || break
  sleep 0.1
done
grep -q "steps/epoch" "$TMP/killed.err" || { cat "$TMP/killed.err"; fail "training never started"; }
sleep 2
victim=""
for pid in $(pgrep -f -- "--out $TMP/killed"); do  # mpirun and its ranks; pick rank 1
  tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1" && victim=$pid
done
[ -n "$victim" ] || fail "rank 1 not found among the job's processes"
kill -KILL "$victim"
start=$(date +%s)
wait $launcher
rc=$?
elapsed=$(( $(date +%s) - start ))
echo "(a) rank 1 (pid $victim) killed: mpirun exited rc=$rc after ${elapsed}s"
[ $rc -ne 0 ] || fail "(a) job exited 0 after a rank was killed"
[ $elapsed -le $((TIMEOUT + MARGIN)) ] || fail "(a) job took ${elapsed}s after the kill"
[ ! -e "$TMP/killed/model.pt" ] || fail "(a) a final model was written"

# (b) rank 1 throws after step 3; the others are then blocked in the next all-reduce.
export LMT_TEST_THROW_AT=1:3
run_after_error threw mpi 3 -x LMT_TEST_THROW_AT -- "${ARGS[@]}" --data "$FM" --out "$TMP/threw"
unset LMT_TEST_THROW_AT
rc=$RC elapsed=$ELAPSED
echo "(b) rank 1 threw: mpirun exited rc=$rc ${elapsed}s after the error"
grep "^lmt: rank" "$TMP/threw.err"
[ $rc -ne 0 ] || fail "(b) job exited 0 after a rank threw"
[ $elapsed -le $((TIMEOUT + MARGIN)) ] || fail "(b) job took ${elapsed}s"
[ "$(grep -c '^lmt: rank 1: lmt train: LMT_TEST_THROW_AT: injected failure after step 3$' \
     "$TMP/threw.err")" = 1 ] || { cat "$TMP/threw.err"; fail "(b) error not printed once naming rank 1"; }
[ "$(grep -c '^lmt: rank' "$TMP/threw.err")" = 1 ] || fail "(b) more than one rank reported an error"
[ ! -e "$TMP/threw/model.pt" ] || fail "(b) a final model was written"

# (c) rank 1's dataset directory holds a corrupt train.h5 (the others read the good one).
mkdir -p "$TMP/bad"
head -c 4096 "$FM/train.h5" >"$TMP/bad/train.h5"
cp "$FM/test.h5" "$TMP/bad/test.h5"
run_after_error corrupt "${MPIRUN[@]}" -np 1 "$LMT_BIN" "${ARGS[@]}" --data "$FM" --out "$TMP/corrupt" \
  : -np 1 "$LMT_BIN" "${ARGS[@]}" --data "$TMP/bad" --out "$TMP/corrupt" \
  : -np 1 "$LMT_BIN" "${ARGS[@]}" --data "$FM" --out "$TMP/corrupt"
rc=$RC elapsed=$ELAPSED
echo "(c) rank 1 had a corrupt dataset: mpirun exited rc=$rc ${elapsed}s after the error"
grep "^lmt: rank" "$TMP/corrupt.err"
[ $rc -ne 0 ] || fail "(c) job exited 0"
[ $elapsed -le $((TIMEOUT + MARGIN)) ] || fail "(c) job took ${elapsed}s"
grep -q "^lmt: rank 1: lmt train: .*$TMP/bad/train.h5" "$TMP/corrupt.err" \
  || { cat "$TMP/corrupt.err"; fail "(c) error does not name rank 1 and its file"; }
[ "$(grep -c '^lmt: rank' "$TMP/corrupt.err")" = 1 ] || fail "(c) more than one rank reported an error"
echo "PASS"
