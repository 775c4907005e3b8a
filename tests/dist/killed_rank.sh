# One of 3 ranks SIGKILLs itself: mpirun ends the others and exits non-zero promptly, long
# before the 120 s collective timeout and the probe's own 60 s loop.
source "$(dirname "$0")/lib.sh"
start=$(date +%s)
mpi 3 -- kill --victim 2 --timeout 120 >"$TMP/out" 2>"$TMP/err"
rc=$?
elapsed=$(( $(date +%s) - start ))
tail -5 "$TMP/err"
[ $rc -ne 0 ] || fail "job exited 0"
[ $elapsed -lt 45 ] || fail "job took ${elapsed}s after a rank was killed"
echo "killed rank ended the job in ${elapsed}s with rc=$rc"
