# The quick Fashion-MNIST job with 2 tasks through slurm/train-1node.sbatch (srun --mpi=pmix) on a
# private one-node cluster, submitted with sbatch --wait: exit code 0, a metrics file from a
# world of 2, the final checkpoint whole (sizes and checksums recomputed here) and equal to the
# final model.
source "$(dirname "$0")/lib.sh"
start_cluster
RUN="$TMP/run"
LMT_RUN_DIR="$RUN" sbatch --wait --output="$TMP/job.log" "$SRC/slurm/train-1node.sbatch" \
  "${QUICK_ARGS[@]}"
code=$?
cat "$TMP/job.log"
[ $code -eq 0 ] || fail "sbatch --wait exit code $code (see $TMP/job.log)"
grep -q "lmt: exit code 0" "$TMP/job.log" || fail "the job script did not finish with code 0"
grep -q "2 rank(s)" "$TMP/job.log" || fail "srun did not start one world of 2 ranks"

$PY "$HERE/check_run.py" metrics "$RUN" 60 2 || fail "metrics.jsonl"
CKPT="$RUN/checkpoints/step-000060"
[ -d "$CKPT" ] || fail "no final checkpoint $CKPT: $(ls "$RUN/checkpoints")"
[ "$(ls -d "$RUN"/checkpoints/step-* | wc -l)" -eq 3 ] || fail "expected checkpoints at 20, 40, 60"
$PY "$HERE/check_run.py" manifest "$CKPT" || fail "checkpoint does not match its MANIFEST"
"$LMT_BIN" export --checkpoint "$CKPT" --format safetensors --out "$TMP/ckpt.safetensors" \
  --bound false >/dev/null || fail "export of the checkpoint"
"$LMT_BIN" export --model-file "$RUN/model.pt" --format safetensors --out "$TMP/final.safetensors" \
  --bound false >/dev/null || fail "export of the final model"
$PY "$HERE/check_run.py" same-weights "$TMP/ckpt.safetensors" "$TMP/final.safetensors" ||
  fail "the step-60 checkpoint differs from the final model"
echo "PASS"
