# A run directory that holds a run (issue 14, item 1): a new run there is refused without --resume
# or --overwrite (exit 2, nothing written); a refused --resume leaves config.ini as it was; with
# --overwrite the new run's announced checkpoint survives its own --keep-last, and --resume auto
# continues from it.
source "$(dirname "$0")/lib.sh"
R="$TMP/run"
ARGS=(--data "$FM" --model lmt-mnist --batch-size 32 --max-steps 20 --checkpoint-every 5
      --threads 1 --log-every 1000 --out "$R")
"$LMT_BIN" train "${ARGS[@]}" --seed 1 > "$TMP/a.log" 2>&1
expect_code 0 $? "run A (see $TMP/a.log)"
snapshot() { tar -C "$R" -cf - . | md5sum; }
before=$(snapshot)

"$LMT_BIN" train "${ARGS[@]}" --seed 2 --stop-after-steps 7 > "$TMP/b.log" 2>&1
expect_code 2 $? "run B into A's directory (see $TMP/b.log)"
grep -q -- "--out $R already holds a run ($R/model.pt): give --resume auto to continue it or --overwrite to replace it" \
  "$TMP/b.log" || fail "refusal message: $(cat "$TMP/b.log")"
[ "$(snapshot)" = "$before" ] || fail "the refused run changed $R"

"$LMT_BIN" train "${ARGS[@]}" --seed 2 --resume auto > "$TMP/refused.log" 2>&1
expect_code 1 $? "resume with another seed (see $TMP/refused.log)"
grep -q "different run: --seed: checkpoint has 1, this run has 2" "$TMP/refused.log" ||
  fail "resume refusal: $(cat "$TMP/refused.log")"
[ "$(snapshot)" = "$before" ] || fail "the refused resume changed $R (config.ini?)"

"$LMT_BIN" train "${ARGS[@]}" --seed 2 --resume auto --overwrite > "$TMP/both.log" 2>&1
expect_code 2 $? "--resume with --overwrite"

"$LMT_BIN" train "${ARGS[@]}" --seed 2 --stop-after-steps 7 --keep-last 1 --overwrite \
  > "$TMP/b.log" 2>&1
expect_code 3 $? "run B with --overwrite (see $TMP/b.log)"
grep -q "checkpoint $R/checkpoints/step-000007 (continue with --resume auto)" "$TMP/b.log" ||
  fail "no announced checkpoint: $(cat "$TMP/b.log")"
[ "$(ls "$R/checkpoints")" = "step-000007" ] || fail "checkpoints after B: $(ls "$R/checkpoints")"
[ ! -e "$R/model.pt" ] || fail "A's model.pt survived --overwrite"
grep -q "^seed = 2$" "$R/config.ini" || fail "config.ini is not B's"

"$LMT_BIN" train "${ARGS[@]}" --seed 2 --resume auto > "$TMP/resumed.log" 2>&1
expect_code 0 $? "resume of B (see $TMP/resumed.log)"
grep -q "resuming from $R/checkpoints/step-000007" "$TMP/resumed.log" ||
  fail "resume did not start at step 7: $(cat "$TMP/resumed.log")"
[ -f "$R/model.pt" ] || fail "no model after the resumed run"
echo PASS
