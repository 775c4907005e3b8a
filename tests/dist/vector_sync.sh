# average_unit_vectors gives the normalized mean, bitwise identical on all ranks;
# share_owned_vectors gives every rank the owner's vectors.
source "$(dirname "$0")/lib.sh"
for np in 1 2 3 4; do
  mpi $np -- vectors || fail "vectors on $np ranks"
done
mpi 2 -- vectors --staged 1 || fail "vectors on 2 ranks, staged"
echo "vector_sync passed"
