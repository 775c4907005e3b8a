# Shared by the slurm script tests: the skip rule, the converted Fashion-MNIST (once per build,
# under a lock), a private cluster torn down on any exit, and the quick job's options.
set -uo pipefail
TMP="${LMT_TEST_TMP:-/tmp/lmt-slurm-test}"
rm -rf "$TMP" && mkdir -p "$TMP"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="${LMT_SOURCE_DIR:-$(cd "$HERE/../.." && pwd)}"
PY=/usr/bin/python3
fail() { echo "FAIL: $*"; exit 1; }
export PATH="$PATH:/usr/sbin:/sbin"
for p in slurmctld slurmd sbatch srun scontrol scancel munged; do
  command -v $p >/dev/null || { echo "SKIP: $p not installed (Debian packages slurm-wlm, munge)"; exit 77; }
done
[ "$(id -u)" -eq 0 ] || fail "the private Slurm cluster needs root (slurmd starts job tasks)"
[ -x "${LMT_BIN:-}" ] || fail "lmt not built at ${LMT_BIN:-}"
[ -d "${FMNIST_DIR:-}" ] || fail "Fashion-MNIST not at ${FMNIST_DIR:-} (dataset-fashion-mnist)"

FM="${LMT_BUILD_DIR}/tests/slurm/fashion-mnist"
mkdir -p "$(dirname "$FM")"
(
  flock 9
  [ -f "$FM/test.h5" ] || "$LMT_BIN" convert fashion-mnist --src "$FMNIST_DIR" --out "$FM" >/dev/null
) 9>"${LMT_BUILD_DIR}/tests/slurm/.fashion-mnist.lock" || fail "convert failed"

# The private cluster: the trap stops it on any exit; the watchdog (--owner) also stops it if
# this script is killed outright (ctest's timeout). Its logs are kept in $TMP on failure.
CLUSTER=""
stop_cluster() {
  local code=$?
  if [ -n "$CLUSTER" ]; then
    [ $code -ne 0 ] && cp -r "$CLUSTER/log" "$TMP/cluster-log" 2>/dev/null
    "$SRC/scripts/slurm-cluster.sh" stop "$CLUSTER"
  fi
  exit $code
}
trap stop_cluster EXIT
trap 'exit 130' INT TERM
start_cluster() {
  # Two tasks need two CPUs in Slurm's view, even on a one-core machine.
  local cores
  cores=$(env -u OMP_NUM_THREADS nproc)
  export LMT_SLURM_CPUS=$((cores < 2 ? 2 : cores))
  CLUSTER=$("$SRC/scripts/slurm-cluster.sh" start --owner $$) || fail "cluster did not start"
  export SLURM_CONF="$CLUSTER/slurm.conf"
}

# The quick job: 60 steps of the LMT loss (power-iteration state is exercised) at global batch
# 100 on 2 ranks, a checkpoint every 20 steps. Job scripts read LMT_BIN, LMT_DATA, LMT_RUN_DIR.
QUICK_ARGS=(--model lmt-mnist --loss lmt --batch-size 100 --max-steps 60 --checkpoint-every 20
            --keep-last 0 --log-every 20)
export LMT_DATA="$FM" OMP_NUM_THREADS=1
# The job scripts must not rely on the harness's root flags: they set them under this test flag.
unset OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM
export LMT_TEST_ALLOW_ROOT=1
