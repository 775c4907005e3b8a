#!/usr/bin/env bash
# `lmt train --trace FILE --trace-steps A:B` on 2 real ranks: a Chrome/Perfetto trace-event file
# that check_trace.py validates (schema, every rank, one step event per traced step with its
# phases inside it, every bucket all-reduce as a span with its bytes, buckets launched during
# backward when there are several and from finish() when one); a run shorter than B still
# writes it, a bad range is a usage error naming the flag, and without --trace nothing is written.
source "$(dirname "$0")/lib.sh"
BASE=(train --data "$FM" --model lmt-mnist --loss lmt --batch-size 64 --threads "$THREADS"
      --log-every 1000)
ARGS=("${BASE[@]}" --bucket-cap-mb 0.25)
mpi 2 -- "${ARGS[@]}" --max-steps 30 --trace "$TMP/t.json" --trace-steps 5:24 --out "$TMP/run" \
  >"$TMP/run.log" 2>&1
expect_code 0 $? "2-rank traced run (see $TMP/run.log)"
grep -q "trace of steps 5:24 written" "$TMP/run.log" || fail "no message naming the trace"
/usr/bin/python3 "$(dirname "$0")/check_trace.py" "$TMP/t.json" 2 5 24 backward || exit 1
# lmt-mnist's 650 KiB of gradients fit the default 1 MiB first bucket: nothing can overlap, so
# finish() launches it (GradSync) and no span says launched_during_backward.
mpi 2 -- "${BASE[@]}" --max-steps 8 --trace "$TMP/one.json" --trace-steps 2:6 \
  --out "$TMP/one" >"$TMP/one.log" 2>&1
expect_code 0 $? "2-rank one-bucket traced run (see $TMP/one.log)"
/usr/bin/python3 "$(dirname "$0")/check_trace.py" "$TMP/one.json" 2 2 6 finish || exit 1

# The run ends at step 12, inside the range: the steps done are written.
"$LMT_BIN" "${ARGS[@]}" --max-steps 12 --trace "$TMP/short.json" --trace-steps 10:50 \
  --out "$TMP/short" >"$TMP/short.log" 2>&1
expect_code 0 $? "1-rank short traced run (see $TMP/short.log)"
/usr/bin/python3 "$(dirname "$0")/check_trace.py" "$TMP/short.json" 1 10 12 || exit 1

"$LMT_BIN" "${ARGS[@]}" --max-steps 2 --trace "$TMP/bad.json" --trace-steps 9:3 --out "$TMP/bad" \
  >"$TMP/bad.log" 2>&1
expect_code 2 $? "--trace-steps 9:3"
grep -q "'--trace-steps' must be A:B" "$TMP/bad.log" || fail "bad range: $(cat "$TMP/bad.log")"
[ ! -e "$TMP/bad.json" ] || fail "a refused run wrote its trace"
"$LMT_BIN" "${ARGS[@]}" --max-steps 3 --out "$TMP/off" >"$TMP/off.log" 2>&1
expect_code 0 $? "untraced run"
! grep -q "trace of steps" "$TMP/off.log" || fail "an untraced run reported a trace"
echo "trace: all checks passed"
