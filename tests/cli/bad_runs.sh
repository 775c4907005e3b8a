#!/usr/bin/env bash
# Issue 14, items 5 and 6: mistakes that used to run silently or end in LibTorch traces now end
# with one line naming the flag, option or file (exit 2 for a bad command line, 1 for a bad run),
# before any training step; a run whose loss explodes stops naming the step.
source "$(dirname "$0")/lib.sh"

# --- command lines (exit 2, nothing started) ---
T=(train --data d --out o)
expect_exit 2 "unrecognised option '--max-step'" -- "$LMT_BIN" "${T[@]}" --max-step 5
expect_exit 2 "unrecognised option '--batch'" -- "$LMT_BIN" "${T[@]}" --batch 5
expect_exit 2 "unrecognised option '--epoch'" -- "$LMT_BIN" "${T[@]}" --epoch 5
expect_exit 2 "'--threads' must be in \[0, 1024\] \(got 100000\)" -- "$LMT_BIN" "${T[@]}" --threads 100000
expect_exit 2 "'--seed' must be in \[0," -- "$LMT_BIN" "${T[@]}" --seed -1
expect_exit 2 "'--max-steps' must be -1 \(off\) or >= 1" -- "$LMT_BIN" "${T[@]}" --max-steps 0
for flag in randaugment mixup warmup-epochs lmt-c image-size; do
  expect_exit 2 "'--$flag' must be in" -- "$LMT_BIN" "${T[@]}" --$flag -1
done
expect_exit 2 "'--lr-steps' must be in" -- "$LMT_BIN" "${T[@]}" --schedule step --lr-steps 3,-2
expect_exit 2 "'--lmt-c' must be in .*got nan" -- "$LMT_BIN" "${T[@]}" --lmt-c nan
expect_exit 2 "'--momentum' must be in \[0, 1\) \(got nan\)" -- "$LMT_BIN" "${T[@]}" --momentum nan
expect_exit 2 "'--weight-decay' must be in" -- "$LMT_BIN" "${T[@]}" --weight-decay -1
expect_exit 2 "'--lr' must be in \(0, inf\) \(got inf\)" -- "$LMT_BIN" "${T[@]}" --lr inf
printf 'data = d\nout = o\nbatch-size = 0\n' > zero.ini
expect_exit 2 "'--batch-size' must be in \[1," -- "$LMT_BIN" train --config zero.ini
expect_exit 2 "'--eps' must be in \[0, inf\) \(got -1\)" -- \
  "$LMT_BIN" certify --model-file m --data d --eps 0.1,-1
expect_exit 2 "'--eps' must be in \[0, inf\) \(got nan\)" -- \
  "$LMT_BIN" certify --model-file m --data d --eps nan
expect_exit 2 "'--n' must be -1 \(off\) or >= 1 \(got 0\)" -- \
  "$LMT_BIN" attack --model-file m --data d --norm L2 --eps 0.5 --n 0
expect_exit 2 "'--batch-size' must be in" -- "$LMT_BIN" eval --model-file m --data d --batch-size 0

# --- runs on real data (exit 1, one line naming what is wrong) ---
convert_fmnist fm
RUN=(train --data fm --batch-size 50 --threads 1)
# An INI file saved with a UTF-8 byte-order mark is read like any other.
printf '\xef\xbb\xbfmax-steps = 2\n' > bom.ini
"$LMT_BIN" "${RUN[@]}" --out bom --config bom.ini > bom.log 2>&1 || { cat bom.log; fail "BOM ini"; }
grep -q '"steps":2' bom.log || { cat bom.log; fail "the BOM ini's max-steps = 2 was not applied"; }
# An architecture option the model does not read: flag and INI.
expect_exit 1 "model option 'widht' is not used by model 'lmt-mnist'.*hidden" -- \
  "$LMT_BIN" "${RUN[@]}" --out typo --max-steps 1 --model-option widht=3
printf 'model-option = hiden=30\n' > typo.ini
expect_exit 1 "model option 'hiden' is not used" -- \
  "$LMT_BIN" "${RUN[@]}" --out typo2 --max-steps 1 --config typo.ini
[ ! -e typo/model.pt ] || fail "a refused model option still wrote typo/model.pt"

# A 100-class, 3-channel test set (CIFAR-100 layout, random pixels) beside Fashion-MNIST.
/usr/bin/python3 - <<'EOF' || fail "could not write the synthetic CIFAR-100 files"
import os, random
os.makedirs("c100/cifar-100-binary", exist_ok=True)
rng = random.Random(3)
for name, n in (("train.bin", 20), ("test.bin", 10)):
    with open("c100/cifar-100-binary/" + name, "wb") as f:
        for i in range(n):
            f.write(bytes([i % 20, i % 100]) + bytes(rng.randrange(256) for _ in range(3072)))
with open("c100/cifar-100-binary/fine_label_names.txt", "w") as f:
    f.write("".join("class%d\n" % i for i in range(100)))
EOF
"$LMT_BIN" convert cifar100 --src c100 --out c100h5 > /dev/null 2>&1 || fail "cifar100 convert"
"$LMT_BIN" "${RUN[@]}" --out small --max-steps 2 > small.log 2>&1 || { cat small.log; fail "train"; }
expect_exit 1 "c100h5/test.h5: num_classes 100 differs from the model's 10" -- \
  "$LMT_BIN" eval --model-file small/model.pt --data c100h5/test.h5
mkdir -p mixed && ln -sf "$PWD/fm/train.h5" mixed/train.h5 && ln -sf "$PWD/c100h5/test.h5" mixed/test.h5
# The other test set is refused before the first step, not after the epoch (train names the files
# by the absolute --data directory).
m=$(pwd -P)/mixed
expect_exit 1 "$m/test.h5: num_classes 100 differs from $m/train.h5 \(10\)" -- \
  "$LMT_BIN" train --data mixed --out mixed-run --batch-size 50 --threads 1
grep -q '"type"' mixed-run/metrics.jsonl 2>/dev/null && fail "the mixed run trained before refusing"

# A test set with no images: certify, eval and attack name the file instead of crashing.
/usr/bin/python3 - <<'EOF' || fail "could not write the empty test set"
import h5py
with h5py.File("fm/test.h5", "r") as s, h5py.File("empty.h5", "w") as d:
    for name in s.attrs:
        d.attrs.create(name, s.attrs[name], dtype=s.attrs.get_id(name).dtype)
    for name in ("images", "labels"):
        d.create_dataset(name, shape=(0,) + s[name].shape[1:], dtype=s[name].dtype)
EOF
for cmd in eval certify; do
  expect_exit 1 "empty.h5" -- "$LMT_BIN" $cmd --model-file small/model.pt --data empty.h5
done
expect_exit 1 "empty.h5" -- "$LMT_BIN" attack --model-file small/model.pt --data empty.h5 \
  --norm L2 --eps 0.5 --attacks pgd

# Adam at lr 1e4 blows the weights up: the run stops naming the step, it does not finish with a
# loss of 1e29 at chance accuracy.
rc=0
"$LMT_BIN" "${RUN[@]}" --out blowup --lr 1e4 --max-steps 300 > blowup.out 2> blowup.err || rc=$?
[ "$rc" -eq 1 ] || { cat blowup.err; fail "lr 1e4: exit $rc, expected 1"; }
grep -Eq "training diverged at step [0-9]+: (the loss is|the largest logit is)" blowup.err || { cat blowup.err; fail "lr 1e4"; }
echo "bad runs: all checks passed"
