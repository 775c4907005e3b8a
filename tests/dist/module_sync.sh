# verify_and_broadcast makes parameters and buffers equal to rank 0's, and names the first
# shape mismatch with its rank and parameter.
source "$(dirname "$0")/lib.sh"
for np in 2 3; do
  mpi $np -- module_sync || fail "module_sync on $np ranks"
  mpi $np -- module_sync --mismatch 1 || fail "module_sync mismatch message on $np ranks"
done
echo "module_sync passed"
