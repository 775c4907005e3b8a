# Process helpers of the dist script tests and scripts/fault-campaign.sh (no side effects when
# sourced): the pid of an mpirun's rank, and waiting for a process's SIGTERM handler.
# wait_catches PID: waits (up to 10 s) until process PID has a SIGTERM handler installed (bit 15-1
# of the SigCgt mask in /proc/PID/status), so a signal sent then meets lmt's handler and not the
# default action; a process that starts slowly (a loaded machine) is not killed by it.
wait_catches() {
  local mask
  for _ in $(seq 500); do
    mask=$(awk '/^SigCgt:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
    [ -n "$mask" ] && (( (16#$mask >> 14) & 1 )) && return 0
    sleep 0.02
  done
  return 1
}
rank_pid() {  # rank_pid MPIRUN_PID RANK (waits up to 10 s for the rank to appear)
  local p
  for _ in $(seq 500); do
    for p in $(pgrep -P "$1"); do
      tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" &&
        { echo "$p"; return 0; }
    done
    sleep 0.02
  done
  return 1
}
