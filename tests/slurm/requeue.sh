# Sourced by requeue_srun.sh / requeue_mpirun.sh with JOB_SCRIPT, SBATCH_EXTRA and SIGNAL_MODE
# (steps: scancel --signal=USR1 to the ranks; batch: --batch, to the shell that forwards it).
# The quick job is stopped by USR1 after its first checkpoint: lmt checkpoints and exits 3, the
# job script requeues the job, the requeued job resumes with --resume auto and finishes (sbatch
# --wait returns 0) with weights bitwise equal to an uninterrupted run (plain mpirun, same
# options) and the same metrics lines.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_cluster

# The uninterrupted reference, outside Slurm.
mpirun --allow-run-as-root -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS "$LMT_BIN" \
  train --data "$LMT_DATA" --out "$TMP/straight" --threads 1 "${QUICK_ARGS[@]}" \
  >"$TMP/straight.log" 2>&1 || fail "uninterrupted run (see $TMP/straight.log)"

RUN="$TMP/run"
# The job runs lmt-hooked (tests/train/lmt_hooked.cpp) pausing 200 ms after each checkpoint file:
# the 60 steps alone take under a second, less than scancel needs to reach the job, so without
# the pause the run could finish before the signal. The pause does not change the numbers.
LMT_BIN="$LMT_HOOKED_BIN" LMT_TEST_CHECKPOINT_PAUSE_MS=200 LMT_RUN_DIR="$RUN" sbatch --wait --parsable --output="$TMP/job.log" "${SBATCH_EXTRA[@]}" \
  "$SRC/slurm/$JOB_SCRIPT" "${QUICK_ARGS[@]}" >"$TMP/sbatch.out" &
sbatch_pid=$!
for _ in $(seq 1200); do [ -d "$RUN/checkpoints/step-000020" ] && break; sleep 0.1; done
[ -d "$RUN/checkpoints/step-000020" ] || { cat "$TMP/job.log"; fail "no first checkpoint"; }
jobid=$(head -1 "$TMP/sbatch.out"); jobid=${jobid%%;*}
[ -n "$jobid" ] || fail "no job id from sbatch --parsable"
if [ "$SIGNAL_MODE" = batch ]; then
  scancel --signal=USR1 --batch "$jobid" || fail "scancel --signal=USR1 --batch $jobid"
else
  scancel --signal=USR1 "$jobid" || fail "scancel --signal=USR1 $jobid"
fi
echo "sent USR1 ($SIGNAL_MODE) to job $jobid"
wait $sbatch_pid
code=$?
cat "$TMP/job.log"
[ $code -eq 0 ] || fail "sbatch --wait exit code $code (see $TMP/job.log)"

stop_line=$(grep -m1 "stopped on request after step" "$TMP/job.log") ||
  fail "the job was not stopped by USR1 (it finished before the signal?)"
step=$(echo "$stop_line" | sed 's/.*after step \([0-9]*\).*/\1/')
[ "$step" -ge 20 ] && [ "$step" -lt 60 ] || fail "stopped at step $step, expected 20..59"
ckpt=$(printf "%s/checkpoints/step-%06d" "$RUN" "$step")
$PY "$HERE/check_run.py" manifest "$ckpt" || fail "the stop checkpoint is not whole"
grep -q "requeueing job $jobid" "$TMP/job.log" || fail "the job script did not requeue"
grep -q "(restart 1)" "$TMP/job.log" || fail "the job did not run again after the requeue"
grep -q "resuming from $ckpt " "$TMP/job.log" || fail "the requeued job did not resume from $ckpt"
grep -q "lmt: exit code 0" "$TMP/job.log" || fail "the requeued job did not finish"

for r in straight run; do
  "$LMT_BIN" export --model-file "$TMP/$r/model.pt" --format safetensors \
    --out "$TMP/$r.safetensors" --bound false >/dev/null || fail "export of $r/model.pt"
done
$PY "$SRC/tests/train/compare_runs.py" "$TMP/straight.safetensors" "$TMP/run.safetensors" \
  "$TMP/straight/metrics.jsonl" "$RUN/metrics.jsonl" || fail "the requeued run differs"
echo "PASS"
