# SLURM_NTASKS=2 with a plain start (as srun without PMI gives): stop with an error that says so.
source "$(dirname "$0")/lib.sh"
SLURM_NTASKS=2 "$PROBE" runtime >"$TMP/out" 2>"$TMP/err"
rc=$?
cat "$TMP/err"
[ $rc -ne 0 ] || fail "a world of one under SLURM_NTASKS=2 was accepted"
grep -q "SLURM_NTASKS=2 but MPI sees a world of one" "$TMP/err" || fail "message does not explain"
grep -q "srun --mpi=pmix" "$TMP/err" || fail "message does not give the fix"
# And a matching world is accepted.
SLURM_NTASKS=1 "$PROBE" runtime || fail "SLURM_NTASKS=1 plain start rejected"
mpi 2 -- runtime >"$TMP/out" || fail "mpirun start rejected"
grep -q "size 2 local 1/2 launcher mpirun" "$TMP/out" || fail "rank env under mpirun: $(cat $TMP/out)"
echo "slurm mismatch detected"
