# all_reduce (sum/avg/max/min, 4 dtypes, non-contiguous, async), broadcast from every root,
# all_gather and the control-message helpers on 1..4 ranks, with both progress modes; plus a
# plain start (no mpirun) as an Open MPI singleton world of one; and the same through the
# host-staging wrapper.
source "$(dirname "$0")/lib.sh"
"$PROBE" collectives || fail "plain start (singleton) collectives"
for np in 1 2 3 4; do
  for progress in thread nonblocking; do
    mpi $np -- collectives --progress $progress || fail "collectives on $np ranks ($progress)"
  done
done
# --staged 1: through make_staging_communicator's host copies (--grad-backend mpi on GPUs).
for np in 2 3; do
  mpi $np -- collectives --staged 1 || fail "collectives on $np ranks, staged"
done
echo "all collective checks passed"
