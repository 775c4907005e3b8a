# all_reduce (sum/avg/max/min, 4 dtypes, non-contiguous, async), broadcast from every root,
# all_gather and the control-message helpers on 1..4 ranks, with both progress modes; plus a
# plain start (no mpirun) as an Open MPI singleton world of one.
source "$(dirname "$0")/lib.sh"
"$PROBE" collectives || fail "plain start (singleton) collectives"
for np in 1 2 3 4; do
  for progress in thread nonblocking; do
    mpi $np -- collectives --progress $progress || fail "collectives on $np ranks ($progress)"
  done
done
echo "all collective checks passed"
