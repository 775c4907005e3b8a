#!/usr/bin/env bash
# Every bad command line ends with exit code 2 and one line naming the option; --help works.
source "$(dirname "$0")/lib.sh"

for cmd in convert train eval certify; do
  "$LMT_BIN" "$cmd" --help > help.txt || fail "lmt $cmd --help exited non-zero"
  grep -q "usage: lmt $cmd" help.txt || fail "lmt $cmd --help prints no usage"
done
expect_exit 2 "unknown command 'frobnicate'" -- "$LMT_BIN" frobnicate
expect_exit 2 "unrecognised option '--bogus'" -- "$LMT_BIN" train --data d --out o --bogus 1
expect_exit 2 "option '--data' is required" -- "$LMT_BIN" train --out o
expect_exit 2 "option '--out' is required" -- "$LMT_BIN" train --data d
expect_exit 2 "'--epochs' is invalid" -- "$LMT_BIN" train --data d --out o --epochs two
expect_exit 2 "'--lr' is invalid" -- "$LMT_BIN" train --data d --out o --lr 1e-3x
expect_exit 2 "'--optimizer' is invalid.*sgd, adam" -- "$LMT_BIN" train --data d --out o --optimizer rmsprop
expect_exit 2 "'--loss' is invalid" -- "$LMT_BIN" train --data d --out o --loss hinge
expect_exit 2 "'--batch-size' must be in \\[1, " -- "$LMT_BIN" train --data d --out o --batch-size 0
expect_exit 2 "'--model-option' is invalid" -- "$LMT_BIN" train --data d --out o --model-option width
expect_exit 2 "'--eps' is invalid" -- "$LMT_BIN" certify --model-file m --data d --eps 0.1,abc
expect_exit 2 "'--dataset' is invalid" -- "$LMT_BIN" convert svhn --src s --out o
expect_exit 2 "option '--src' is required" -- "$LMT_BIN" convert fashion-mnist --out o
expect_exit 2 "--config: cannot open 'missing.ini'" -- "$LMT_BIN" train --config missing.ini
printf 'data = d\nout = o\nlearning-rate = 0.1\n' > bad.ini
expect_exit 2 "--config bad.ini: unrecognised option 'learning-rate'" -- "$LMT_BIN" train --config bad.ini
printf 'data = d\nout = o\nepochs = many\n' > bad2.ini
expect_exit 2 "--config bad2.ini: .*option '--epochs' is invalid" -- "$LMT_BIN" train --config bad2.ini
# Not a usage error: a missing dataset is a run-time failure naming the file (exit 1).
expect_exit 1 "nowhere/train.h5" -- "$LMT_BIN" train --data nowhere --out o
expect_exit 1 "no-such-model.pt" -- "$LMT_BIN" eval --model-file no-such-model.pt --data x.h5
echo "usage errors: all checks passed"
