# Equivalence: from the same seed, 20 steps at global batch 64 on 1 rank (plain start), 2 and 4
# ranks (mpirun) end with the same weights within 1e-5 relative (float rounding of the gradient
# all-reduce only). Control: one step fewer differs beyond that tolerance, so it is meaningful.
# SGD (momentum 0.9): Adam's first steps divide near-zero gradient entries by |g| + 1e-8, which
# amplifies their rounding by up to lr/eps = 1e5 (measured 1e-5..5e-5 after 20 steps, by seed).
source "$(dirname "$0")/lib.sh"
ARGS=(train --data "$FM" --model lmt-mnist --optimizer sgd --lr 0.01 --batch-size 64 --seed 11
      --threads 1 --log-every 1000)
"$LMT_BIN" "${ARGS[@]}" --max-steps 20 --out "$TMP/w1" >"$TMP/w1.log" 2>&1
expect_code 0 $? "1 rank (see $TMP/w1.log)"
for np in 2 4; do
  mpi $np -- "${ARGS[@]}" --max-steps 20 --out "$TMP/w$np" >"$TMP/w$np.log" 2>&1
  expect_code 0 $? "$np ranks (see $TMP/w$np.log)"
  grep -q '"world_size":'$np "$TMP/w$np.log" || fail "$np-rank run did not report world_size $np"
  compare "1 vs $np ranks" "$TMP/w1/model.pt" "$TMP/w$np/model.pt" --rtol 1e-5
done
"$LMT_BIN" "${ARGS[@]}" --max-steps 19 --out "$TMP/w1-19" >"$TMP/w1-19.log" 2>&1
expect_code 0 $? "1 rank, 19 steps (see $TMP/w1-19.log)"
"$COMPARE" "$TMP/w1/model.pt" "$TMP/w1-19/model.pt" --rtol 1e-5 >"$TMP/control.txt"
[ $? -eq 1 ] || { cat "$TMP/control.txt"; fail "19 vs 20 steps not told apart at 1e-5"; }
echo "PASS"
