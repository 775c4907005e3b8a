# GradSync's averaged gradients equal an explicit all_gather average of the ranks' gradients
# (an unused-on-odd-ranks parameter included), bitwise identical across ranks, with buckets in
# reverse order within their caps: several caps, overlap on and off, 1..4 ranks. And shards of a
# global batch give the single-process global-batch gradient.
source "$(dirname "$0")/lib.sh"
for np in 1 2 3 4; do
  for overlap in 1 0; do
    mpi $np -- grad_sync --first 1024 --cap 4096 --overlap $overlap ||
      fail "grad_sync np=$np overlap=$overlap"
  done
done
for caps in "1048576 26214400" "64 256" "1 1"; do
  set -- $caps
  for overlap in 1 0; do
    mpi 3 -- grad_sync --first $1 --cap $2 --overlap $overlap ||
      fail "grad_sync np=3 first=$1 cap=$2 overlap=$overlap"
  done
done
mpi 2 -- grad_sync --first 1024 --cap 4096 --progress nonblocking || fail "grad_sync nonblocking"
for np in 2 3 4; do
  for overlap in 1 0; do
    mpi $np -- equivalence --overlap $overlap || fail "equivalence np=$np overlap=$overlap"
  done
done
for overlap in 1 0; do  # the host-staged path of --grad-backend mpi on GPUs
  mpi 3 -- grad_sync --first 1024 --cap 4096 --overlap $overlap --staged 1 ||
    fail "grad_sync np=3 overlap=$overlap staged"
done
echo "grad_sync passed"
