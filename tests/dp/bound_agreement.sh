# Ranks agree on the Lipschitz bound (and on clipped gradients, at the end): with --loss lmt, after 50 steps on 2 and 3 ranks, every
# rank's final model (power-iteration vectors included) and the bound L it trained with are
# bitwise identical to rank 0's, for both --pi-sync average and --pi-sync split (the same
# all-reduce result on every rank: that is the exactness this test is for); and the weights and
# L equal the 1-rank run's within 1e-4 relative. That comparison only catches a broken sync (a
# sum for a mean, a vector not shared: > 1e-2 off after one step); float rounding of the gradient
# sums, amplified over 50 LMT steps (the bound feeds the loss), measured with softplus (see
# equivalence.sh for why not ReLU) at most 5.6e-6 on the weights and 1.4e-6 on L over 2-3 ranks
# and both sync modes (Intel Xeon; 1.3e-6 / 2.3e-6 for L on AMD EPYC), 18x below 1e-4.
# Per-rank models come from the test hook LMT_TEST_RANK_DIR of lmt-hooked (each rank saves DIR/rank-R.pt
# with its last training bound in hex). SGD: see equivalence.sh for Adam's amplification.
source "$(dirname "$0")/lib.sh"
LMT_BIN="$LMT_HOOKED_BIN"  # lmt with the test hooks as Trainer listeners (tests/train/lmt_hooked.cpp)
ARGS=(train --data "$FM" --model lmt-mnist --model-option act=softplus --loss lmt --optimizer sgd
      --lr 0.01 --batch-size 48
      --max-steps 50 --seed 7
      --threads "$THREADS" --log-every 1000)
export LMT_TEST_RANK_DIR
LMT_TEST_RANK_DIR="$TMP/ranks1" && mkdir -p "$LMT_TEST_RANK_DIR"
"$LMT_BIN" "${ARGS[@]}" --out "$TMP/run1" >"$TMP/run1.log" 2>&1
expect_code 0 $? "1 rank (see $TMP/run1.log)"
for sync in average split; do
  for np in 2 3; do
    name="$sync-$np"
    LMT_TEST_RANK_DIR="$TMP/ranks-$name" && mkdir -p "$LMT_TEST_RANK_DIR"
    mpi $np -x LMT_TEST_RANK_DIR -- "${ARGS[@]}" --pi-sync $sync --out "$TMP/run-$name" \
      >"$TMP/run-$name.log" 2>&1
    expect_code 0 $? "$np ranks, --pi-sync $sync (see $TMP/run-$name.log)"
    for ((r = 1; r < np; ++r)); do
      compare "$name rank $r vs rank 0" "$LMT_TEST_RANK_DIR/rank-$r.pt" \
        "$LMT_TEST_RANK_DIR/rank-0.pt" --bitwise
    done
    compare "$name vs 1 rank" "$LMT_TEST_RANK_DIR/rank-0.pt" "$TMP/ranks1/rank-0.pt" \
      --rtol 1e-4 --bound-rtol 1e-4
  done
done
# --grad-clip-norm clips the averaged gradients after the all-reduce: every rank clips the same
# bits (ranks bitwise identical), and 2 ranks equal 1 rank within the tolerance above (the clip's
# scale max/||g|| moves by the rounding of ||g||, ~1e-7 relative, which it does not amplify). The
# clip must act: 0.05 is below these steps' gradient norms, so the clipped 1-rank run differs from
# the unclipped one by more than 1e-2.
CLIP=(--grad-clip-norm 0.05)
LMT_TEST_RANK_DIR="$TMP/clip1" && mkdir -p "$LMT_TEST_RANK_DIR"
"$LMT_BIN" "${ARGS[@]}" "${CLIP[@]}" --out "$TMP/clip-run1" >"$TMP/clip-run1.log" 2>&1
expect_code 0 $? "1 rank with ${CLIP[*]} (see $TMP/clip-run1.log)"
LMT_TEST_RANK_DIR="$TMP/clip2" && mkdir -p "$LMT_TEST_RANK_DIR"
mpi 2 -x LMT_TEST_RANK_DIR -- "${ARGS[@]}" "${CLIP[@]}" --out "$TMP/clip-run2" \
  >"$TMP/clip-run2.log" 2>&1
expect_code 0 $? "2 ranks with ${CLIP[*]} (see $TMP/clip-run2.log)"
compare "clip rank 1 vs rank 0" "$TMP/clip2/rank-1.pt" "$TMP/clip2/rank-0.pt" --bitwise
compare "clip 2 ranks vs 1 rank" "$TMP/clip2/rank-0.pt" "$TMP/clip1/rank-0.pt" \
  --rtol 1e-4 --bound-rtol 1e-4
"$COMPARE" "$TMP/clip1/rank-0.pt" "$TMP/ranks1/rank-0.pt" --rtol 1e-2 >"$TMP/clip-effect.txt"
[ $? -eq 1 ] || fail "--grad-clip-norm 0.05 left the run within 1e-2 of the unclipped one: $(tail -1 "$TMP/clip-effect.txt")"
# A small LiResNet with EMMA: its merged residual operators (I + alpha W, one persistent vector
# each) are synced like every other operator, so on 2 and 3 ranks every rank's model and its
# training L are bitwise rank 0's. center=0: batch centring keeps per-rank running means (as batch
# norm does, docs/data-parallel.md), which would differ by design, though L does not depend on them.
LIRES=(train --data "$FM" --model liresnet --model-option depth=3 --model-option width=8
       --model-option neck_features=32 --model-option center=0 --loss emma --emma-eps 0.5
       --lmt-head pairwise --optimizer sgd --lr 0.01 --batch-size 48 --max-steps 20 --seed 7
       --threads "$THREADS" --log-every 1000)
for np in 2 3; do
  LMT_TEST_RANK_DIR="$TMP/lires-$np" && mkdir -p "$LMT_TEST_RANK_DIR"
  mpi $np -x LMT_TEST_RANK_DIR -- "${LIRES[@]}" --out "$TMP/lires-run-$np" \
    >"$TMP/lires-run-$np.log" 2>&1
  expect_code 0 $? "liresnet on $np ranks (see $TMP/lires-run-$np.log)"
  for ((r = 1; r < np; ++r)); do
    compare "liresnet $np ranks: rank $r vs rank 0" "$LMT_TEST_RANK_DIR/rank-$r.pt" \
      "$LMT_TEST_RANK_DIR/rank-0.pt" --bitwise
  done
done
echo "PASS"
