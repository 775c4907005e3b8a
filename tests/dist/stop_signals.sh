# Stop requests and lmt train (2 ranks, real Fashion-MNIST):
# - during start-up: the stop handlers exist from main's first line, so a SIGTERM while MPI starts
#   is never a silent 143: exit 3 and one line "stopped by a signal during start-up ... nothing
#   was written" (nothing is, not even the run directory). Two ways: the signalled rank is blocked
#   in MPI_Init_thread (a peer frozen by LMT_TEST_STALL_STARTUP_RANK: it ends on its own after 5 s)
#   and the signalled rank is the late one (the start-up rendezvous carries its flag to all ranks).
# - during training, SIGTERM to launch/lmt-mpirun (which passes it to mpirun as SIGUSR1: Open MPI's
#   mpirun itself answers SIGTERM with exit 1 and a SIGKILL 1 s later): exit 3, and --resume auto
#   finishes bitwise identical to an uninterrupted run.
source "$(dirname "$0")/lib.sh"
fmnist
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ARGS=(--data "$FM" --model lmt-mnist --batch-size 256 --max-steps 30 --log-every 1000 --seed 3)
MPI=(mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS)
trap '[ -n "${m:-}" ] && kill -KILL "$m" 2>/dev/null' EXIT
rm -rf "$TMP"/run-*

# 1. SIGTERM to rank 0 while it waits in MPI_Init_thread for a frozen rank 1.
"${MPI[@]}" -x LMT_TEST_STALL_STARTUP_RANK=1 "$LMT_BIN" train "${ARGS[@]}" --threads 1 \
  --collective-timeout 40 --out "$TMP/run-a" >"$TMP/a.log" 2>&1 &
m=$!
r0=$(rank_pid $m 0) || fail "rank 0 not found"
for _ in $(seq 250); do grep -q STALL "$TMP/a.log" && break; sleep 0.02; done
wait_catches "$r0" || fail "rank 0 never installed its SIGTERM handler"
kill -TERM "$r0"
wait $m; rc=$?; m=
grep "^lmt" "$TMP/a.log"
[ $rc -eq 3 ] || fail "SIGTERM in MPI_Init_thread: exit $rc, expected 3"
grep -q "^lmt: rank 0: stopped by a signal during start-up (MPI_Init_thread had not completed): training had not started and nothing was written" "$TMP/a.log" ||
  fail "SIGTERM in MPI_Init_thread: no start-up stop line"
[ ! -e "$TMP/run-a" ] || fail "SIGTERM in MPI_Init_thread: the run directory was written"
echo "start-up stop (blocked rank): exit 3"

# 2. SIGTERM to the late rank (frozen, then continued): every rank learns it at the rendezvous.
"${MPI[@]}" -x LMT_TEST_STALL_STARTUP_RANK=1 "$LMT_BIN" train "${ARGS[@]}" --threads 1 \
  --collective-timeout 40 --out "$TMP/run-b" >"$TMP/b.log" 2>&1 &
m=$!
r1=$(rank_pid $m 1) || fail "rank 1 not found"
for _ in $(seq 250); do grep -q STALL "$TMP/b.log" && break; sleep 0.02; done
wait_catches "$r1" || fail "rank 1 never installed its SIGTERM handler"
kill -TERM "$r1" && kill -CONT "$r1"
wait $m; rc=$?; m=
grep "^lmt" "$TMP/b.log"
[ $rc -eq 3 ] || fail "SIGTERM to the late rank: exit $rc, expected 3"
[ "$(grep -c "stopped by a signal during start-up" "$TMP/b.log")" -eq 1 ] ||
  fail "SIGTERM to the late rank: expected exactly one start-up stop line"
[ ! -e "$TMP/run-b" ] || fail "SIGTERM to the late rank: the run directory was written"
echo "start-up stop (rendezvous): exit 3"

# 3. SIGTERM to lmt-mpirun during training, then resume.
"${MPI[@]}" "$LMT_BIN" train "${ARGS[@]}" --threads 1 --out "$TMP/run-straight" >"$TMP/s.log" 2>&1 ||
  fail "uninterrupted run (see $TMP/s.log)"
RESUMABLE=("${ARGS[@]}" --out "$TMP/run-c" --checkpoint-every 5 --resume auto)
LMT_BIN="$LMT_HOOKED_BIN" LMT_TEST_CHECKPOINT_PAUSE_MS=100 "$(dirname "$0")/../../launch/lmt-mpirun" --allow-root --np 2 \
  --threads 1 -- train "${RESUMABLE[@]}" >"$TMP/c.log" 2>&1 &
m=$!
for _ in $(seq 1500); do [ -f "$TMP/run-c/checkpoints/step-000005/MANIFEST" ] && break; sleep 0.02; done
[ -f "$TMP/run-c/checkpoints/step-000005/MANIFEST" ] || fail "no first checkpoint (see $TMP/c.log)"
kill -TERM $m
wait $m; rc=$?; m=
[ $rc -eq 3 ] || fail "SIGTERM to lmt-mpirun: exit $rc, expected 3 (see $TMP/c.log)"
grep -q "stopped on request after step" "$TMP/c.log" || fail "SIGTERM to lmt-mpirun: no stop line"
grep "stopped on request" "$TMP/c.log"
"${MPI[@]}" "$LMT_BIN" train "${RESUMABLE[@]}" --threads 1 >"$TMP/c2.log" 2>&1 ||
  fail "resume (see $TMP/c2.log)"
"$LMT_BUILD_DIR/tests/dp/compare_models" "$TMP/run-straight/model.pt" "$TMP/run-c/model.pt" \
  --bitwise || fail "the resumed run differs from the uninterrupted one"
echo "SIGTERM to lmt-mpirun: exit 3, resumed bitwise"
