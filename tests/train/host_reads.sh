#!/usr/bin/env bash
# No host read per training step: the trainer keeps each step's loss, correct count and bound on
# the device and reads them (train::host_reads(), one read_to_host each) only at the --log-every
# step lines, epoch ends and checkpoints (and an evaluation pass reads its counts once). With --log-every 5 a read happens exactly at steps
# 5, 10, ...; and the figures it reads are those of the per-step version exactly: the window
# means and epoch means of a --log-every 5 run equal the ones recomputed from a --log-every 1
# run's per-step values in the same double operations, bit for bit (%a).
source "$(dirname "$0")/lib.sh"
HOOKED="$(dirname "$LMT_BIN")/lmt-hooked"
WEIGHTS="${LMT_BUILD_DIR}/tests/train/weights_helper"
# 1000 images, batch 50: 20 steps an epoch, 2 epochs (seconds on one thread).
"$WEIGHTS" subset "$FM" 1000 200 "$TMP/small" || fail "subset"
ARGS=(--data "$TMP/small" --model lmt-mnist --loss lmt --batch-size 50 --epochs 2 --threads 1)
for every in 1 5; do
  LMT_TEST_FIGURES="$TMP/figures$every.txt" "$HOOKED" train "${ARGS[@]}" --log-every $every \
    --out "$TMP/run$every" > "$TMP/run$every.log" 2>&1 || { cat "$TMP/run$every.log"; fail "run $every"; }
done
# A checkpoint reads what the device holds: every 3 steps, between two step lines.
LMT_TEST_FIGURES="$TMP/figures_ckpt.txt" "$HOOKED" train "${ARGS[@]}" --log-every 5 \
  --checkpoint-every 3 --out "$TMP/run_ckpt" > "$TMP/run_ckpt.log" 2>&1 || fail "run with checkpoints"

$PY - "$TMP" <<'PY' || fail "figures"
import sys
tmp = sys.argv[1]
def load(name):
    steps, epochs = {}, {}
    for line in open(f"{tmp}/{name}"):
        kind, *f = line.split()
        if kind == "step":
            steps[int(f[0])] = (int(f[1]),
                                None if f[2] == "-" else float.fromhex(f[2]),
                                None if f[3] == "-" else float.fromhex(f[3]))
        else:
            epochs[int(f[0])] = (float.fromhex(f[1]), float.fromhex(f[2]))
    return steps, epochs
one, one_epochs = load("figures1.txt")
five, five_epochs = load("figures5.txt")
ckpt, _ = load("figures_ckpt.txt")
n, per_epoch = 50.0, 20
assert sorted(one) == sorted(five) == list(range(1, 41)), (sorted(one), sorted(five))

# Reads: --log-every 1 reads once a step; --log-every 5 once every 5 steps, at the step line;
# with checkpoints every 3 steps, also there. The epoch end after step 20 finds nothing of the
# steps unread; its evaluation reads its counts once (evaluate(), one read per pass).
evaluations = lambda s: 1 if s > per_epoch else 0
assert [one[s][0] for s in one] == [s + evaluations(s) for s in one], [one[s][0] for s in one]
for s in range(1, 41):
    expected = s // 5 + evaluations(s)
    assert five[s][0] == expected, f"step {s}: {five[s][0]} reads with --log-every 5, expected {expected}"
    # A step line reads before the step's listeners; a checkpoint after them (run()), and finds
    # nothing unread after a step line.
    expected += len([k for k in range(1, s) if k % 3 == 0 and k % 5 != 0])
    assert ckpt[s][0] == expected, f"step {s}: {ckpt[s][0]} reads with checkpoints, expected {expected}"

# The per-step values: with --log-every 1 a window is one step, its mean (0 + l*n)/n is l exactly
# (a float32 loss times n <= 2^29 is exact in double) and c/n gives back c = round(acc * n).
loss = {s: one[s][1] for s in one}
hits = {s: round(one[s][2] * n) for s in one}
for s in range(5, 41, 5):  # the host version's sums, in its order, in double
    lsum = csum = 0.0
    for k in range(s - 4, s + 1):
        lsum += loss[k] * n
        csum += hits[k]
    assert five[s][1] == lsum / (5 * n), f"step {s}: window loss {five[s][1]!r} != {lsum / (5 * n)!r}"
    assert five[s][2] == csum / (5 * n), f"step {s}: window accuracy {five[s][2]!r}"
    assert ckpt[s][1] == five[s][1], f"step {s}: checkpoints changed the window loss"
for s in five:
    assert (five[s][1] is None) == (s % 5 != 0), f"step {s}: a window figure off a step line"
for e in (1, 2):
    lsum = csum = 0.0
    for k in range((e - 1) * per_epoch + 1, e * per_epoch + 1):
        lsum += loss[k] * n
        csum += hits[k]
    want = (lsum / (per_epoch * n), csum / (per_epoch * n))
    assert one_epochs[e] == five_epochs[e] == want, (e, one_epochs[e], five_epochs[e], want)
print("host reads: 8 in 40 steps at --log-every 5 (40 at 1), plus 1 per evaluation; window and "
      "epoch figures equal bit for bit")
PY
grep -q "device cpu" "$TMP/run5.log" || fail "the start-up line names no device: $(head -3 "$TMP/run5.log")"
echo "PASS"
