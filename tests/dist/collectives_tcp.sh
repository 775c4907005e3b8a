# The collective checks over TCP only (no shared-memory transport), on 2 and 3 ranks.
source "$(dirname "$0")/lib.sh"
for np in 2 3; do
  mpi $np --mca btl tcp,self -- collectives || fail "collectives over tcp on $np ranks"
done
mpi 2 --mca btl tcp,self -- grad_sync --cap 4096 --first 1024 || fail "grad_sync over tcp"
echo "tcp collectives passed"
