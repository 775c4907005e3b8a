#!/usr/bin/env bash
# Progress as a user sees it. --log-every N: a metrics.jsonl step line at exactly every N-th step
# whose loss and accuracy are the means of the steps since the previous one (checked against a
# --log-every 1 run of the same seed), and off a terminal one plain line per step line. On a
# pseudo-terminal (tests/cli/pty_run.py) of 60 and 200 columns the bar is redrawn in place and
# never reaches the last column, for train (and its evaluation), eval, certify and attack; under
# mpirun the bar is drawn by rank 0 too; LMT_PROGRESS overrides the choice.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
PTY="$PY $(dirname "$0")/pty_run.py"
convert_fmnist data
TRAIN=(--data data --model lmt-mnist --loss lmt --batch-size 100 --threads 1 --seed 3)

# Step lines every 4 steps of 26 (the last, 26, is not a multiple: no line), plain lines with them.
"$LMT_BIN" train "${TRAIN[@]}" --out every4 --max-steps 26 --log-every 4 >/dev/null 2>every4.err \
  || { cat every4.err; fail "train --log-every 4"; }
"$LMT_BIN" train "${TRAIN[@]}" --out every1 --max-steps 26 --log-every 1 >/dev/null 2>every1.err \
  || { cat every1.err; fail "train --log-every 1"; }
$PY - every4/metrics.jsonl every1/metrics.jsonl every4.err <<'PY' || fail "step lines"
import json, math, re, sys
four = [json.loads(l) for l in open(sys.argv[1])]
one = {l["step"]: l for l in map(json.loads, open(sys.argv[2])) if l["type"] == "step"}
steps = [l for l in four if l["type"] == "step"]
assert [l["step"] for l in steps] == [4, 8, 12, 16, 20, 24], [l["step"] for l in steps]
assert sorted(one) == list(range(1, 27)), sorted(one)
for l in steps:
    for key in ("epoch", "loss", "train_accuracy", "lr", "lipschitz_bound", "images_per_s",
                "wall_s"):
        assert key in l, f"step line lacks {key}: {l}"
    assert l["epoch"] == 1 and l["images_per_s"] > 0, l
    window = [one[s] for s in range(l["step"] - 3, l["step"] + 1)]
    # The same seed trains the same steps (--log-every changes no result): the 4-step line is the
    # mean of the four 1-step lines; 1e-9 relative is far above the rounding of a 4-term double
    # sum and far below any real difference.
    for key in ("loss", "train_accuracy"):
        mean = sum(w[key] for w in window) / 4
        assert math.isclose(l[key], mean, rel_tol=1e-9), (key, l[key], mean)
    assert l["lipschitz_bound"] == one[l["step"]]["lipschitz_bound"], l
    assert l["lr"] == one[l["step"]]["lr"], l
plain = [int(m) for m in re.findall(r"^train: (\d+)/26 ", open(sys.argv[3]).read(), re.M)]
assert plain == [4, 8, 12, 16, 20, 24], f"plain progress lines at steps {plain}"
assert "\r" not in open(sys.argv[3]).read(), "a bar drawn into a file"
print("step lines and plain lines every 4 steps")
PY

# bar_check OUT COLS [MIN_BARS]: every redrawn bar in OUT (text between \r and clear-to-end) is
# at most COLS-1 wide; prints the bars' labels and the widest one.
bar_check() {
  $PY - "$@" <<'PY'
import re, sys
data = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
cols, need = int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 1
bars = re.findall(r"\r([^\r\n]*?)\x1b\[K", data)
bars = [b for b in bars if b]
assert len(bars) >= need, f"{len(bars)} bars drawn, expected {need}: {data[-2000:]!r}"
widest = max(bars, key=len)
assert len(widest) <= cols - 1, f"a {len(widest)}-column bar on {cols} columns: {widest!r}"
print(f"{cols} columns: {len(bars)} bars ({', '.join(sorted({b.split()[0] for b in bars}))}), "
      f"widest {len(widest)}: {widest}")
PY
}

for cols in 60 200; do
  rc=0
  $PTY --cols $cols --out train$cols.out -- "$LMT_BIN" train "${TRAIN[@]}" --out bar$cols \
    --max-steps 30 --log-every 10 || rc=$?
  [ "$rc" -eq 0 ] || { cat train$cols.out; fail "train on a $cols-column pty: exit $rc"; }
  bar_check train$cols.out $cols || fail "train bar on $cols columns"
  grep -qa "train \[" train$cols.out || fail "no train bar on $cols columns"
  grep -qa "bound: the network's Lipschitz bound L" train$cols.out || fail "no legend"
done
# 200 columns hold every item: epoch, mean loss, bound, throughput, ETA.
grep -aEq "train \[#+\] 100% 30/30  epoch 1/1  loss [0-9.]+  bound [0-9.e+]+  [0-9]+ img/s  ETA" \
  train200.out || fail "the 200-column bar lacks an item: $(tr '\r' '\n' <train200.out | tail -3)"

model=bar200/model.pt
for cols in 60 200; do
  $PTY --cols $cols --out eval$cols.out -- "$LMT_BIN" eval --model-file $model --data data/test.h5 \
    --batch-size 100 || fail "eval on a pty"
  bar_check eval$cols.out $cols || fail "eval bar on $cols columns"
  grep -qa "eval \[" eval$cols.out || fail "no eval bar"
  $PTY --cols $cols --out certify$cols.out -- "$LMT_BIN" certify --model-file $model \
    --data data/test.h5 --batch-size 100 || fail "certify on a pty"
  bar_check certify$cols.out $cols || fail "certify bar on $cols columns"
  $PTY --cols $cols --out attack$cols.out -- "$LMT_BIN" attack --model-file $model \
    --data data/test.h5 --norm L2 --eps 0.1 --attacks pgd --n 40 --batch-size 10 \
    || fail "attack on a pty"
  bar_check attack$cols.out $cols || fail "attack bar on $cols columns"
  grep -qa "attack \[" attack$cols.out || fail "no attack bar"
done
grep -aEq "eval \[[#.]+\] +[0-9]+% +[0-9]+/10000  acc 0\.[0-9]{4}" eval200.out \
  || fail "eval bar items"

# Under mpirun the ranks' stderr is a pipe, yet rank 0 draws the bar (its launcher's stderr is
# the terminal), and only rank 0.
$PTY --cols 60 --out mpi.out -- mpirun -np 2 "$LMT_BIN" train "${TRAIN[@]}" --out mpi \
  --max-steps 30 --log-every 10 || { cat mpi.out; fail "mpirun train on a pty"; }
bar_check mpi.out 60 || fail "bar under mpirun"
grep -qa "loss: the mean over the last 10 steps" mpi.out \
  || fail "no rank-0 legend under mpirun"

# LMT_PROGRESS: off draws nothing, bar draws into a file at $COLUMNS (no terminal to ask: setsid),
# a bad value is an error naming it.
LMT_PROGRESS=off "$LMT_BIN" train "${TRAIN[@]}" --out off --max-steps 4 --log-every 2 \
  >/dev/null 2>off.err || fail "LMT_PROGRESS=off"
! grep -q "^train: [0-9]*/4 " off.err || fail "LMT_PROGRESS=off printed progress"
[ "$(grep -c '"type":"step"' off/metrics.jsonl)" = 2 ] || fail "LMT_PROGRESS=off lost step lines"
LMT_PROGRESS=bar COLUMNS=50 setsid -w "$LMT_BIN" train "${TRAIN[@]}" --out forced --max-steps 4 \
  >/dev/null 2>forced.err || fail "LMT_PROGRESS=bar"
bar_check forced.err 50 || fail "LMT_PROGRESS=bar at COLUMNS=50"
expect_exit 2 "LMT_PROGRESS: expected bar, plain or off, got 'fancy'" -- \
  env LMT_PROGRESS=fancy "$LMT_BIN" train "${TRAIN[@]}" --out bad --max-steps 1
echo "progress: all checks passed"
