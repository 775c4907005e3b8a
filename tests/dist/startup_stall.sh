# A rank frozen (SIGSTOP, through the LMT_TEST_STALL_STARTUP_RANK hook) during start-up: the job
# ends non-zero within the start-up deadline plus a margin, and one line names the frozen rank.
# Frozen before MPI_Init_thread (the others block in its fence: PMIx says who never arrived),
# after it (the start-up rendezvous says who never checked in), and rank 0 itself.
source "$(dirname "$0")/lib.sh"
T=5
# The margin: 1 s PMIx query per missing rank, 3 s backstop for rank > 0, mpirun's teardown
# (measured 1-2 s): 20 s is far above it and far below a hang.
LIMIT=$((T + 20))

stall_case() {  # NP RANK PHASE EXPECTED-REGEX
  local np=$1 rank=$2 phase=$3 expect=$4 start rc elapsed
  start=$(date +%s)
  timeout 120 mpirun -np "$np" --oversubscribe --bind-to none -x OMP_NUM_THREADS \
    -x LMT_TEST_STALL_STARTUP_RANK="$rank" -x LMT_TEST_STALL_STARTUP_PHASE="$phase" \
    "$PROBE" runtime --startup-timeout "$T" >"$TMP/out" 2>"$TMP/err"
  rc=$?
  elapsed=$(( $(date +%s) - start ))
  grep "^lmt:" "$TMP/err"
  [ $rc -ne 124 ] || fail "rank $rank frozen $phase: the job hung (killed by timeout 120)"
  [ $rc -ne 0 ] || fail "rank $rank frozen $phase: the job exited 0"
  [ $elapsed -le $LIMIT ] || fail "rank $rank frozen $phase: the job took ${elapsed}s (> ${LIMIT}s)"
  grep -Eq "$expect" "$TMP/err" || fail "rank $rank frozen $phase: no line matching: $expect"
  echo "rank $rank of $np frozen $phase: ended in ${elapsed}s with rc=$rc"
}

stall_case 2 1 before-init \
  "^lmt: rank 0: start-up: rank 1 of 2 \(host [^)]+\) did not arrive within $T s \(--collective-timeout\): stopped, crashed or never started \(waited in MPI_Init_thread\)"
stall_case 3 2 after-init \
  "^lmt: rank 0: start-up: rank 2 of 3 \(host [^)]+\) did not arrive within $T s \(--collective-timeout\): .*waited in the start-up rendezvous"
stall_case 2 0 before-init \
  "^lmt: rank 1: start-up: rank 0 of 2 \(host [^)]+\) did not arrive within $T s"

# lmt train itself: --collective-timeout is the start-up deadline, read before MPI starts.
fmnist
start=$(date +%s)
timeout 120 mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS \
  -x LMT_TEST_STALL_STARTUP_RANK=1 "$LMT_BIN" train --data "$FM" --out "$TMP/run" --threads 1 \
  --collective-timeout "$T" >"$TMP/out" 2>"$TMP/err"
rc=$?
elapsed=$(( $(date +%s) - start ))
grep "^lmt" "$TMP/err"
[ $rc -ne 124 ] && [ $rc -ne 0 ] || fail "lmt train with a frozen rank: exit $rc"
[ $elapsed -le $LIMIT ] || fail "lmt train with a frozen rank: took ${elapsed}s (> ${LIMIT}s)"
grep -Eq "^lmt: rank 0: start-up: rank 1 of 2 \(host [^)]+\) did not arrive within $T s \(--collective-timeout\)" "$TMP/err" ||
  fail "lmt train with a frozen rank: no line naming rank 1"
[ ! -e "$TMP/run" ] || fail "lmt train with a frozen rank: the run directory was written"
echo "lmt train, rank 1 frozen: ended in ${elapsed}s with rc=$rc"

# No process is left behind (the frozen ranks included).
sleep 1
if pgrep -f "$PROBE runtime" >/dev/null; then fail "a dist_probe process outlived its job"; fi
if pgrep -f "$LMT_BIN train --data $FM --out $TMP/run" >/dev/null; then fail "an lmt rank outlived its job"; fi
echo "startup stall: every case ended with the frozen rank named"
