#!/usr/bin/env bash
# --precision bf16 trains on a CPU: autocast forward, the bound in fp32 (test_device.cpp checks
# the dtypes), the loss of the last step line well below the first's; --channels-last trains.
source "$(dirname "$0")/lib.sh"
"${LMT_BUILD_DIR}/tests/train/weights_helper" subset "$FM" 1000 200 "$TMP/small" || fail "subset"
ARGS=(--data "$TMP/small" --model lmt-mnist --loss lmt --batch-size 50 --threads 1 --log-every 5)
"$LMT_BIN" train "${ARGS[@]}" --epochs 2 --precision bf16 --out "$TMP/bf16" > "$TMP/bf16.log" 2>&1 \
  || { cat "$TMP/bf16.log"; fail "bf16 run"; }
grep -q "bf16 autocast (the bound in fp32)" "$TMP/bf16.log" || fail "the start-up line names no bf16"
$PY - "$TMP/bf16/metrics.jsonl" <<'PY' || fail "bf16 loss"
import json, sys
steps = [json.loads(l) for l in open(sys.argv[1]) if '"type":"step"' in l]
first, last = steps[0]["loss"], steps[-1]["loss"]
# Measured here: 3.80 -> 2.99 (ratio 0.79; fp32 0.80) in 40 Adam steps. A run whose autocast
# path does not learn stays near 1.0; 0.9 leaves bf16's rounding room to differ across CPUs.
assert last < 0.9 * first, f"bf16: the loss went from {first} to {last}"
assert all(s["lipschitz_bound"] > 0 for s in steps)
print(f"bf16: loss {first:.4f} -> {last:.4f}")
PY
"$LMT_BIN" train "${ARGS[@]}" --epochs 1 --channels-last --out "$TMP/cl" > "$TMP/cl.log" 2>&1 \
  || { cat "$TMP/cl.log"; fail "--channels-last run"; }
# --precision is run-defining: a resume with another one is refused naming it.
"$LMT_BIN" train "${ARGS[@]}" --max-steps 10 --checkpoint-every 5 --out "$TMP/r" >/dev/null 2>&1 \
  || fail "fp32 run"
rc=0; "$LMT_BIN" train "${ARGS[@]}" --max-steps 10 --precision bf16 --resume auto --out "$TMP/r" \
  > "$TMP/r.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && grep -q -- "--precision: checkpoint has fp32, this run has bf16" "$TMP/r.log" \
  || { cat "$TMP/r.log"; fail "resume with another --precision: exit $rc"; }
echo PASS
