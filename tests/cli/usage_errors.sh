#!/usr/bin/env bash
# Every bad command line ends with exit code 2 and one line naming the option; --help works.
source "$(dirname "$0")/lib.sh"

# --help starts no MPI: where Open MPI cannot start (no such pml), a command that joins the ranks
# fails in MPI_Init (not at its missing model file), and every --help still prints its usage.
no_mpi=(env OMPI_MCA_pml=no-such-pml)
"${no_mpi[@]}" "$LMT_BIN" eval --model-file none.pt --data none.h5 > mpi.txt 2>&1 || true
if grep -q "none.pt" mpi.txt; then
  echo "usage errors: this MPI ignores OMPI_MCA_pml; --help without MPI not checked"
  no_mpi=()
fi
commands=(convert train eval attack export certify)
"$LMT_BIN" --help > lmt-help.txt || fail "lmt --help exited non-zero"
for cmd in "${commands[@]}"; do
  grep -Eq "^  $cmd " lmt-help.txt || fail "lmt --help does not list $cmd"
  "${no_mpi[@]}" "$LMT_BIN" "$cmd" --help > help.txt 2>&1 ||
    fail "lmt $cmd --help exited non-zero (starts MPI?): $(tail -n 3 help.txt)"
  grep -q "usage: lmt $cmd" help.txt || fail "lmt $cmd --help prints no usage"
done
"${no_mpi[@]}" "$LMT_BIN" train -h > help.txt 2>&1 && grep -q "usage: lmt train" help.txt ||
  fail "lmt train -h: $(tail -n 3 help.txt)"
for dataset in fashion-mnist cifar10 cifar100 tiny-imagenet imagenet; do
  grep -Eq "^  convert .*$dataset" lmt-help.txt || fail "lmt --help omits $dataset"
done
# --version: the number of CMake's project(), exit 0, and what the binary was built with.
version=$(grep -Po 'project\(lmt VERSION \K[0-9.]+' "${LMT_SOURCE_DIR:?}/CMakeLists.txt")
"$LMT_BIN" --version > version.txt || fail "lmt --version exited non-zero"
[ "$(head -n 1 version.txt)" = "lmt $version" ] || fail "lmt --version: $(head -n 1 version.txt), expected lmt $version"
for word in LibTorch NCCL MPI; do grep -q "^$word" version.txt || fail "lmt --version names no $word"; done
# launch/lmt-mpirun --help: its usage on stdout, exit 0; no command is a usage error (exit 2).
mpirun_script="${LMT_SOURCE_DIR:?}/launch/lmt-mpirun"
"$mpirun_script" --help > help.txt || fail "lmt-mpirun --help exited non-zero"
grep -q "^Usage: lmt-mpirun" help.txt || fail "lmt-mpirun --help prints no usage"
! grep -q "set -euo" help.txt || fail "lmt-mpirun --help prints its code"
rc=0; "$mpirun_script" >/dev/null 2>err.txt || rc=$?
[ "$rc" -eq 2 ] && grep -q "^Usage: lmt-mpirun" err.txt || fail "lmt-mpirun without a command: exit $rc"
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
# --device (train, eval, certify, attack): a LibTorch without CUDA refuses cuda in one line naming
# the flag (exit 2), before any file is opened; a malformed value names the flag; fp16 is CUDA's.
model_cmds=("train --data d --out o" "eval --model-file m.pt --data d.h5"
            "certify --model-file m.pt --data d.h5" "attack --model-file m.pt --data d.h5 --norm L2 --eps 0.1")
if grep -q "^LibTorch .*(without CUDA)" version.txt; then
  for cmd in "${model_cmds[@]}"; do
    for device in cuda cuda:1; do
      expect_exit 2 "--device $device: this lmt was built against a LibTorch without CUDA" \
        -- "$LMT_BIN" $cmd --device $device
    done
  done
  expect_exit 2 "--precision fp16: needs a CUDA device" -- "$LMT_BIN" train --data d --out o \
    --precision fp16
fi
for cmd in "${model_cmds[@]}"; do
  expect_exit 2 "--device 'gpu0': expected cpu, cuda, cuda:K or auto" -- "$LMT_BIN" $cmd --device gpu0
done
expect_exit 2 "--precision fp16: needs a CUDA device \(this run is on cpu\)" -- "$LMT_BIN" train \
  --data d --out o --device cpu --precision fp16
expect_exit 2 "option '--precision'" -- "$LMT_BIN" train --data d --out o --precision fp8
# --grad-backend: NCCL reduces CUDA tensors only, named in one line before any file is opened.
expect_exit 2 "--grad-backend nccl: NCCL reduces CUDA tensors and this run is on cpu" -- \
  "$LMT_BIN" train --data d --out o --device cpu --grad-backend nccl
expect_exit 2 "option '--grad-backend'" -- "$LMT_BIN" train --data d --out o --grad-backend gloo
echo "usage errors: all checks passed"
