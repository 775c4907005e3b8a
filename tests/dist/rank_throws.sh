# A rank that throws prints "lmt: rank 1: ..." once and aborts the job: the other ranks, blocked
# in a collective with a 120 s timeout, end at once and mpirun exits non-zero.
source "$(dirname "$0")/lib.sh"
start=$(date +%s)
mpi 3 -- throw --thrower 1 --timeout 120 >"$TMP/out" 2>"$TMP/err"
rc=$?
elapsed=$(( $(date +%s) - start ))
cat "$TMP/err"
[ $rc -ne 0 ] || fail "job exited 0"
[ $elapsed -lt 45 ] || fail "job took ${elapsed}s after a rank threw"
[ "$(grep -c '^lmt: rank 1: injected failure$' "$TMP/err")" = 1 ] || fail "error not printed once with its rank"
echo "throwing rank ended the job in ${elapsed}s with rc=$rc"
