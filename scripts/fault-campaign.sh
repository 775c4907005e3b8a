#!/usr/bin/env bash
# scripts/fault-campaign.sh: repeated fault injection against real lmt train runs (Fashion-MNIST,
# lmt-mnist, a few dozen steps, mpirun ranks on this host). NOT part of CI: it takes minutes.
#
# Usage: scripts/fault-campaign.sh [-n N] [--np R] [--timeout S] [--work DIR] [--kinds LIST]
#   -n N         trials per kind (default 5)
#   --np R       ranks per job (default 2)
#   --timeout S  --collective-timeout of the jobs, also their start-up deadline (default 5)
#   --work DIR   scratch directory (default /tmp/lmt-fault-campaign; emptied first)
#   --kinds LIST comma-separated subset of: kill-train,stop-startup,stop-train,kill-checkpoint,full-disk
# Trial kinds:
#   kill-train       SIGKILL a random rank during training
#   stop-startup     SIGSTOP a random rank at start-up (LMT_TEST_STALL_STARTUP_RANK)
#   stop-train       SIGSTOP a random rank during training
#   kill-checkpoint  SIGKILL a random rank while rank 0 writes a checkpoint, then --resume auto and
#                    compare the final model with an uninterrupted run (compare_models --bitwise)
#   full-disk        every rank runs under `trap '' XFSZ; ulimit -f KIB` (a random limit between
#                    64 and 1313 KiB: below the 1.3 MB optimizer.pt of the step-5 checkpoint), so a
#                    write (checkpoint model.pt or optimizer.pt, metrics) fails like on a
#                    full disk. The limit is set in a shell between mpirun and lmt, not around
#                    mpirun: Open MPI's own files (PMIx store, shared-memory segments) would hit it
#                    first, so these jobs also use --mca btl tcp,self.
# Every job runs under the script's own limit (timeout + 60 s, then SIGKILL): a job it has to kill is
# a hang. Table columns: trials; ended-with-named-error (non-zero exit and a line naming the rank
# that was hit, or for full-disk a "lmt: rank R: ..." line naming a file); hang; wrong exit (0 after
# a fault, a crash code 134/139, or full-disk anything but 1); resumed-bitwise (kill-checkpoint);
# end-s (seconds from the fault, or from the launch for stop-startup and full-disk, to the end
# of the job: min-max).
set -uo pipefail

N=5 NP=2 T=5 WORK=/tmp/lmt-fault-campaign KINDS=kill-train,stop-startup,stop-train,kill-checkpoint,full-disk
while [ $# -gt 0 ]; do
  case "$1" in
    -n) N=$2; shift 2 ;;
    --np) NP=$2; shift 2 ;;
    --timeout) T=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --kinds) KINDS=$2; shift 2 ;;
    -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fault-campaign: unknown option '$1'" >&2; exit 2 ;;
  esac
done
case "$N$NP$T" in *[!0-9]*) echo "fault-campaign: -n, --np, --timeout take integers" >&2; exit 2 ;; esac
[ "$N" -ge 1 ] && [ "$N" -le 1000 ] || { echo "fault-campaign: -n must be 1..1000" >&2; exit 2; }

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LMT="${LMT_BIN:-$ROOT/build/lmt}"
# lmt with the test hooks as Trainer listeners (tests/train/lmt_hooked.cpp): the checkpoint pause.
LMT_HOOKED="${LMT_HOOKED_BIN:-$ROOT/build/lmt-hooked}"
COMPARE="$ROOT/build/tests/dp/compare_models"
FMNIST_DIR="${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}"
[ -x "$LMT" ] && [ -x "$LMT_HOOKED" ] ||
  { echo "fault-campaign: no lmt or lmt-hooked in $(dirname "$LMT") (build them first)" >&2; exit 1; }
[ -x "$COMPARE" ] || { echo "fault-campaign: no compare_models at $COMPARE" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
if [ -d "$WORK" ] && [ -n "$(ls -A "$WORK")" ] && [ ! -e "$WORK/.lmt-fault-campaign" ]; then
  echo "fault-campaign: --work $WORK is not empty and was not made by this script" >&2; exit 1
fi
rm -rf "$WORK" && mkdir -p "$WORK" && touch "$WORK/.lmt-fault-campaign"
FM="$WORK/fashion-mnist"
"$LMT" convert fashion-mnist --src "$FMNIST_DIR" --out "$FM" >/dev/null ||
  { echo "fault-campaign: convert failed" >&2; exit 1; }

HARD=$((T + 60))  # the script's own limit per job: beyond it, the job hung
MPI=(mpirun -np "$NP" --oversubscribe --bind-to none -x OMP_NUM_THREADS)
# Long enough that a fault lands mid-run (about 150 steps/s/rank here), short enough to finish.
ARGS=(--data "$FM" --model lmt-mnist --batch-size 256 --epochs 3 --max-steps 600 --threads 1
      --log-every 10 --collective-timeout "$T")
CKPT_ARGS=(--data "$FM" --model lmt-mnist --batch-size 256 --max-steps 40 --threads 1
           --log-every 100000 --collective-timeout "$T" --checkpoint-every 5 --keep-last 2 --seed 11)

declare -A trials named hangs wrong bitwise times
log() { printf '%s\n' "$*" >&2; }

source "$(dirname "${BASH_SOURCE[0]}")/../tests/dist/procs.sh"  # rank_pid
wait_for() {  # wait_for SECONDS COMMAND...: polls every 20 ms
  local n=$(($1 * 50)); shift
  for _ in $(seq "$n"); do "$@" && return 0; sleep 0.02; done
  return 1
}
# Mid-training: the progress line of step 20 or later (--log-every 10) is in the job's log.
has_progress() { grep -Eq "^train: ([2-9][0-9]|[1-9][0-9][0-9]+)/" "$1.log"; }
writing_checkpoint() { compgen -G "$1/checkpoints/.tmp-step-*" >/dev/null; }
# finish PID: waits for the job (killing it at the hard limit); sets RC, HUNG and ELAPSED (s
# from the call, i.e. from the fault, to the end of the job).
finish() {
  local pid=$1 start=$SECONDS t0
  t0=$(date +%s.%N)
  RC=
  while kill -0 "$pid" 2>/dev/null; do
    if [ $((SECONDS - start)) -ge "$HARD" ]; then
      pkill -KILL -P "$pid" 2>/dev/null; kill -KILL "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null; RC=137; HUNG=1; ELAPSED=$HARD; return
    fi
    sleep 0.05
  done
  wait "$pid"; RC=$?; HUNG=0
  ELAPSED=$(echo "$(date +%s.%N) - $t0" | bc)
}
count() {  # count KIND NAMED(0/1) WRONG(0/1) BITWISE(0/1/-)
  trials[$1]=$((${trials[$1]:-0} + 1))
  [ "$HUNG" = 1 ] && hangs[$1]=$((${hangs[$1]:-0} + 1))
  [ "$2" = 1 ] && named[$1]=$((${named[$1]:-0} + 1))
  [ "$3" = 1 ] && wrong[$1]=$((${wrong[$1]:-0} + 1))
  [ "$4" = 1 ] && bitwise[$1]=$((${bitwise[$1]:-0} + 1))
  [ "$4" = - ] && bitwise[$1]=-
  times[$1]="${times[$1]:-} $ELAPSED"
  return 0
}
crash_code() { [ "$1" -eq 134 ] || [ "$1" -eq 139 ] || [ "$1" -eq 0 ]; }

trial_kill_train() {
  local i=$1 dir="$WORK/kill-train-$i" victim=$((RANDOM % NP)) pid vpid n=0 w=0
  "${MPI[@]}" "$LMT" train "${ARGS[@]}" --seed "$i" --out "$dir" >"$dir.log" 2>&1 &
  pid=$!
  wait_for 60 has_progress "$dir"
  vpid=$(rank_pid $pid $victim) && kill -KILL "$vpid"
  finish $pid
  grep -Eq "rank $victim .*(signal 9|Killed)|rank $victim of $NP" "$dir.log" && [ "$RC" -ne 0 ] && n=1
  crash_code "$RC" && w=1
  log "kill-train $i: rank $victim killed -> exit $RC after ${ELAPSED}s"
  count kill-train $n $w -
}

trial_stop_startup() {
  local i=$1 dir="$WORK/stop-startup-$i" victim=$((RANDOM % NP)) pid n=0 w=0
  "${MPI[@]}" -x LMT_TEST_STALL_STARTUP_RANK=$victim "$LMT" train "${ARGS[@]}" --seed "$i" \
    --out "$dir" >"$dir.log" 2>&1 &
  pid=$!
  finish $pid
  grep -Eq "start-up: rank $victim of $NP .*did not arrive within $T s" "$dir.log" &&
    [ "$RC" -ne 0 ] && n=1
  { crash_code "$RC" || [ "$RC" -ne 1 ]; } && w=1
  log "stop-startup $i: rank $victim frozen -> exit $RC after ${ELAPSED}s (from launch)"
  count stop-startup $n $w -
}

trial_stop_train() {
  local i=$1 dir="$WORK/stop-train-$i" victim=$((RANDOM % NP)) pid vpid n=0 w=0
  "${MPI[@]}" "$LMT" train "${ARGS[@]}" --seed "$i" --out "$dir" >"$dir.log" 2>&1 &
  pid=$!
  wait_for 60 has_progress "$dir"
  vpid=$(rank_pid $pid $victim) && kill -STOP "$vpid"
  finish $pid
  grep -Eq "rank $victim of $NP \(host [^,]+, pid $vpid\) does not answer" "$dir.log" &&
    [ "$RC" -ne 0 ] && n=1
  { crash_code "$RC" || [ "$RC" -ne 1 ]; } && w=1
  log "stop-train $i: rank $victim frozen -> exit $RC after ${ELAPSED}s"
  count stop-train $n $w -
}

REFERENCE=""
trial_kill_checkpoint() {
  local i=$1 dir="$WORK/kill-checkpoint-$i" victim=$((RANDOM % NP)) pid vpid n=0 w=0 b=0 rc2
  if [ -z "$REFERENCE" ]; then
    "${MPI[@]}" "$LMT" train "${CKPT_ARGS[@]}" --out "$WORK/reference" >"$WORK/reference.log" 2>&1 ||
      { log "reference run failed (see $WORK/reference.log)"; exit 1; }
    REFERENCE="$WORK/reference/model.pt"
  fi
  # Each checkpoint file write pauses 300 ms, so a kill lands inside a checkpoint; which one
  # (the 1st to the 7th) is random.
  LMT_TEST_CHECKPOINT_PAUSE_MS=300 "${MPI[@]}" -x LMT_TEST_CHECKPOINT_PAUSE_MS "$LMT_HOOKED" train \
    "${CKPT_ARGS[@]}" --out "$dir" --resume auto >"$dir.log" 2>&1 &
  pid=$!
  local skip=$((RANDOM % 3))
  for _ in $(seq 0 $skip); do
    wait_for 60 writing_checkpoint "$dir" && wait_for 60 bash -c "! compgen -G '$dir/checkpoints/.tmp-step-*' >/dev/null" || true
  done
  wait_for 60 writing_checkpoint "$dir"
  local writing
  writing=$(cd "$dir/checkpoints" 2>/dev/null && ls -d .tmp-step-* 2>/dev/null | head -1)
  vpid=$(rank_pid $pid $victim) && kill -KILL "$vpid"
  finish $pid
  [ "$RC" -ne 0 ] && grep -Eq "rank $victim .*(signal 9|Killed)|rank $victim of $NP" "$dir.log" && n=1
  crash_code "$RC" && w=1
  if [ "$HUNG" = 0 ]; then
    timeout -s KILL "$HARD" "${MPI[@]}" "$LMT" train "${CKPT_ARGS[@]}" --out "$dir" --resume auto \
      >"$dir.resume.log" 2>&1
    rc2=$?
    [ $rc2 -eq 0 ] && "$COMPARE" "$REFERENCE" "$dir/model.pt" --bitwise >/dev/null 2>&1 && b=1
  fi
  log "kill-checkpoint $i: rank $victim killed while ${writing:-?} was written -> exit $RC after ${ELAPSED}s; resume exit ${rc2:-none}, bitwise=$b"
  count kill-checkpoint $n $w $b
}

trial_full_disk() {
  local i=$1 dir="$WORK/full-disk-$i" kib=$((64 + RANDOM % 1250)) pid n=0 w=0
  # ulimit -f counts 1024-byte blocks in bash; SIGXFSZ ignored, so a write past it fails EFBIG.
  "${MPI[@]}" --mca btl tcp,self bash -c "trap '' XFSZ; ulimit -f $kib; exec \"\$0\" \"\$@\"" \
    "$LMT" train "${CKPT_ARGS[@]}" --out "$dir" >"$dir.log" 2>&1 &
  pid=$!
  finish $pid
  [ "$RC" -eq 1 ] && grep -Eq "^lmt: rank [0-9]+: .*($dir|\.pt|\.jsonl|checkpoint|model)" "$dir.log" && n=1
  [ "$RC" -ne 1 ] && w=1
  local left
  left=$(find "$dir" -name "*.tmp*" -o -name ".tmp-*" 2>/dev/null | wc -l)
  log "full-disk $i: limit ${kib} KiB -> exit $RC after ${ELAPSED}s (from launch), temporary files left: $left: $(grep -m1 '^lmt' "$dir.log")"
  count full-disk $n $w -
}

IFS=, read -r -a kinds <<<"$KINDS"
for kind in "${kinds[@]}"; do
  case "$kind" in
    kill-train | stop-startup | stop-train | kill-checkpoint | full-disk) ;;
    *) echo "fault-campaign: unknown kind '$kind'" >&2; exit 2 ;;
  esac
  for i in $(seq 1 "$N"); do "trial_${kind//-/_}" "$i"; done
done

# end-s: seconds from the fault (from the launch for stop-startup and full-disk) to the end of
# the job, min-max over the trials.
printf '\n%-16s %7s %23s %5s %11s %16s %12s\n' kind trials ended-with-named-error hang wrong-exit \
  resumed-bitwise end-s
for kind in "${kinds[@]}"; do
  range=$(tr ' ' '\n' <<<"${times[$kind]:-}" | grep . | sort -g | sed -n '1p;$p' | xargs printf '%.1f-' | sed 's/-$//')
  printf '%-16s %7s %23s %5s %11s %16s %12s\n' "$kind" "${trials[$kind]:-0}" "${named[$kind]:-0}" \
    "${hangs[$kind]:-0}" "${wrong[$kind]:-0}" "${bitwise[$kind]:--}" "$range"
done
