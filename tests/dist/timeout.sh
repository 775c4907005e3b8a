# A rank that sleeps 60 s before a collective: the others report the collective by name, name
# the sleeper (it answers the watchdog's ping from outside any collective) and the job ends
# non-zero within the 3 s timeout plus the probe and abort margin (well before the sleeper wakes).
# Then the same with a rank frozen by SIGSTOP: it cannot answer, and is named as silent.
source "$(dirname "$0")/lib.sh"
start=$(date +%s)
mpi 2 -- timeout --timeout 3 --sleep-rank 1 --sleep 60 >"$TMP/out" 2>"$TMP/err"
rc=$?
elapsed=$(( $(date +%s) - start ))
cat "$TMP/err"
[ $rc -ne 0 ] || fail "job exited 0"
[ $elapsed -lt 40 ] || fail "job took ${elapsed}s: the timeout did not end it"
grep -Eq "lmt: rank 0: collective all_reduce did not complete within 3 s: rank 1 of 2 \(host [^,]+, pid [0-9]+\) has been outside collectives for [0-9]+ s" "$TMP/err" ||
  fail "no timeout message naming rank 0, the collective and the sleeping rank 1"
echo "timeout (sleeping rank) ended the job in ${elapsed}s with rc=$rc"

start=$(date +%s)
mpi 3 -- timeout --timeout 3 --sleep-rank 2 --stall stop >"$TMP/out" 2>"$TMP/err"
rc=$?
elapsed=$(( $(date +%s) - start ))
cat "$TMP/err"
[ $rc -ne 0 ] || fail "job exited 0"
[ $elapsed -lt 40 ] || fail "job took ${elapsed}s: the timeout did not end it"
grep -Eq "lmt: rank [01]: collective all_reduce did not complete within 3 s: rank 2 of 3 \(host [^,]+, pid [0-9]+\) does not answer within 3 s: stopped" "$TMP/err" ||
  fail "no timeout message naming the stopped rank 2"
echo "timeout (stopped rank) ended the job in ${elapsed}s with rc=$rc"
