# A rank that sleeps 60 s before a collective: the others report the collective by name and
# the job ends non-zero within the 3 s timeout plus a margin (well before the sleeper wakes).
source "$(dirname "$0")/lib.sh"
start=$(date +%s)
mpi 2 -- timeout --timeout 3 --sleep-rank 1 --sleep 60 >"$TMP/out" 2>"$TMP/err"
rc=$?
elapsed=$(( $(date +%s) - start ))
cat "$TMP/err"
[ $rc -ne 0 ] || fail "job exited 0"
[ $elapsed -lt 40 ] || fail "job took ${elapsed}s: the timeout did not end it"
grep -q "lmt: rank 0: collective all_reduce did not complete within 3 s; a peer rank failed or is hung" "$TMP/err" ||
  fail "no timeout message naming rank 0 and the collective"
echo "timeout ended the job in ${elapsed}s with rc=$rc"
