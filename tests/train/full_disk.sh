# A full disk while writing, on 1 and 2 ranks: the final model, a checkpoint and an export each
# end in one line naming the file, exit 1, no temporary left behind, the previous good file kept.
# Simulated without mounting: `ulimit -f` with SIGXFSZ ignored makes write() fail with EFBIG past
# the limit, as a full disk fails with ENOSPC (a 300 KiB tmpfs gives the same errors with "No
# space left on device"). PMIx's and Open MPI's shared-memory files would exceed the limit too,
# so PMIx keeps its data in a hash (PMIX_MCA_gds=hash), the ranks talk over TCP, and each rank
# sets the limit itself just before exec.
source "$(dirname "$0")/lib.sh"
LIMIT_KB=200  # lmt-mnist: model.pt 665 KB, optimizer.pt (Adam) 1.3 MB; config and metrics < 2 KB
export PMIX_MCA_gds=hash
limited() { (trap '' XFSZ; ulimit -f $LIMIT_KB; exec "$@"); }
limited_mpi() {  # limited_mpi NP lmt-args...
  local np=$1; shift
  mpirun --oversubscribe --bind-to none --mca btl self,tcp -x PMIX_MCA_gds -x OMP_NUM_THREADS \
    -np "$np" bash -c "trap '' XFSZ; ulimit -f $LIMIT_KB; exec \"\$0\" \"\$@\"" "$LMT_BIN" "$@"
}
ARGS=(--data "$FM" --model lmt-mnist --batch-size 500 --max-steps 4 --threads 1 --log-every 1000)
no_temporaries() {  # no_temporaries DIR
  local left; left=$(find "$1" -name '*.tmp.*' -o -name '.tmp-*' | head -1)
  [ -z "$left" ] || fail "temporary left behind: $left"
}
one_error() {  # one_error LOG PATTERN: exactly one error line, it matches, no abort trace
  grep -q "terminate called\|c10::Error\|Aborted" "$1" && fail "abort in $1: $(cat "$1")"
  [ "$(grep -c "^lmt: rank 0: lmt \|^lmt [a-z]*: " "$1")" -eq 1 ] || fail "not one error line: $(cat "$1")"
  grep -q -- "$2" "$1" || fail "$1 lacks '$2': $(cat "$1")"
}

for np in 1 2; do
  R="$TMP/final-$np"
  if [ "$np" -eq 1 ]; then
    limited "$LMT_BIN" train "${ARGS[@]}" --out "$R" > "$R.log" 2>&1
  else
    limited_mpi 2 train "${ARGS[@]}" --out "$R" > "$R.log" 2>&1
  fi
  expect_code 1 $? "final model on a full disk, $np rank(s) (see $R.log)"
  one_error "$R.log" "lmt train: $R/model.pt: cannot write: File too large"
  [ ! -e "$R/model.pt" ] || fail "$R/model.pt written"
  no_temporaries "$R"
done

# A checkpoint on a full disk keeps the run's earlier checkpoint and model: a run with
# checkpoints 2 and 4 resumed from 2 fails writing checkpoint 4 again.
R="$TMP/ckpt"
"$LMT_BIN" train "${ARGS[@]}" --out "$R" --checkpoint-every 2 > "$R.log" 2>&1
expect_code 0 $? "first run (see $R.log)"
cp "$R/model.pt" "$TMP/model.before"
cp -r "$R/checkpoints/step-000004" "$TMP/step4.before"
for np in 1 2; do
  if [ "$np" -eq 1 ]; then
    limited "$LMT_BIN" train "${ARGS[@]}" --out "$R" --checkpoint-every 2 \
      --resume "$R/checkpoints/step-000002" > "$R.$np.log" 2>&1
  else
    # written by 1 rank: a 2-rank resume is refused, so 2 ranks start their own run here
    limited_mpi 2 train "${ARGS[@]}" --out "$TMP/ckpt2" --checkpoint-every 2 > "$R.$np.log" 2>&1
  fi
  expect_code 1 $? "checkpoint on a full disk, $np rank(s) (see $R.$np.log)"
  one_error "$R.$np.log" "/checkpoints/step-00000[24]: cannot write checkpoint: .*File too large"
done
no_temporaries "$R"
no_temporaries "$TMP/ckpt2"
[ ! -e "$TMP/ckpt2/checkpoints/step-000002" ] || fail "a failed checkpoint was left complete"
cmp -s "$R/model.pt" "$TMP/model.before" || fail "the previous model.pt changed"
diff -r "$R/checkpoints/step-000004" "$TMP/step4.before" >/dev/null || fail "step-000004 changed"
"$LMT_BIN" export --checkpoint "$R/checkpoints/step-000004" --format torch --out "$TMP/ok.pt" \
  >/dev/null 2>&1 || fail "step-000004 no longer loads"

# An export on a full disk keeps the previous export.
"$LMT_BIN" export --model-file "$R/model.pt" --format safetensors --out "$TMP/w.st" --bound false \
  >/dev/null 2>&1 || fail "export"
cp "$TMP/w.st" "$TMP/w.before"
limited "$LMT_BIN" export --model-file "$R/model.pt" --format safetensors --out "$TMP/w.st" \
  --bound false > "$TMP/export.log" 2>&1
expect_code 1 $? "export on a full disk (see $TMP/export.log)"
one_error "$TMP/export.log" "lmt export: $TMP/w.st: cannot write: File too large"
cmp -s "$TMP/w.st" "$TMP/w.before" || fail "the previous export changed"
no_temporaries "$TMP"
echo PASS
