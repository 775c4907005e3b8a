#!/usr/bin/env bash
# A run stopped on request (here --stop-after-steps, as a signal would) exits 3, and its summary
# line has only what was measured: steps, wall time and the checkpoint, no accuracy or throughput
# (no epoch was evaluated) and no model file (the final model is not saved).
source "$(dirname "$0")/lib.sh"
convert_fmnist data

rc=0
"$LMT_BIN" train --data data --out run --model lmt-mnist --batch-size 32 --threads 1 \
  --stop-after-steps 2 >run.json 2>run.err || rc=$?
[ "$rc" -eq 3 ] || { cat run.err; fail "stopped run: exit $rc, expected 3"; }
line=$(tail -n 1 run.json)
[ "$(json_field run.json steps)" = 2 ] || fail "summary steps: $line"
for key in '"stopped":true' '"checkpoint":' '"wall_s":'; do
  grep -qF "$key" <<<"$line" || fail "summary lacks $key: $line"
done
for key in train_accuracy test_accuracy images_per_s model_file; do
  ! grep -qF "\"$key\"" <<<"$line" || fail "summary has unmeasured $key: $line"
done
echo "stopped run: all checks passed"
