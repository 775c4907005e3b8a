#!/usr/bin/env bash
# A real run on Fashion-MNIST through the CLI: convert, train (CE) a few hundred steps, metrics
# lines with the documented keys, eval agrees with the trainer's test accuracy, certify reports.
source "$(dirname "$0")/lib.sh"
convert_fmnist data
[ -f data/train.h5 ] && [ -f data/test.h5 ] || fail "convert wrote no files"

"$LMT_BIN" train --data data --out run --model lmt-mnist --epochs 1 --max-steps 400 \
  --batch-size 50 --lr 1e-3 --optimizer adam --seed 1 --threads 2 >train.json 2>train.err \
  || { cat train.err; fail "train failed"; }
grep -q "parameters" train.err || fail "no parameter count at start-up"
grep -q "train: 400/400" train.err || fail "no progress lines"
for key in epoch step loss train_accuracy test_accuracy lr images_per_s wall_s; do
  grep -q "\"$key\":" run/metrics.jsonl || fail "metrics.jsonl lacks $key"
done
acc=$(json_field run/metrics.jsonl test_accuracy)
awk -v a="$acc" 'BEGIN { exit !(a >= 0.78) }' || fail "test accuracy $acc < 0.78 after 400 steps"

"$LMT_BIN" eval --model-file run/model.pt --data data/test.h5 >eval.json 2>eval.err \
  || { cat eval.err; fail "eval failed"; }
eacc=$(json_field eval.json accuracy)
[ "$eacc" = "$acc" ] || awk -v a="$acc" -v b="$eacc" 'BEGIN { d = a - b; exit !(d < 1e-9 && d > -1e-9) }' \
  || fail "eval accuracy $eacc differs from the trainer's $acc"
[ "$(json_field eval.json count)" = 10000 ] || fail "eval did not see 10000 images"

"$LMT_BIN" certify --model-file run/model.pt --data data/test.h5 --eps 0.1,0.3 --plot cert.png \
  >cert.json 2>cert.err || { cat cert.err; fail "certify failed"; }
cacc=$(json_field cert.json clean_accuracy)
awk -v a="$acc" -v b="$cacc" 'BEGIN { d = a - b; exit !(d < 1e-9 && d > -1e-9) }' \
  || fail "certify clean accuracy $cacc differs from $acc"
grep -q '"certified_accuracy":\[' cert.json || fail "no certified accuracies"
head -c 8 cert.png | od -An -tx1 | grep -q "89 50 4e 47" || fail "plot is not a PNG"
echo "train/eval/certify: all checks passed (test accuracy $acc)"
