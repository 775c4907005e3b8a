# Resume refuses what would silently change the run: a different learning rate, model option,
# seed, eps or mixup (the message names the option), a different number of ranks, and a missing directory.
source "$(dirname "$0")/lib.sh"
RUN="$TMP/run"
ARGS=(--data "$FM" --model lmt-mnist --batch-size 500 --epochs 1 --max-steps 6 --threads 1
      --out "$RUN")
mpi 2 train "${ARGS[@]}" --stop-after-steps 2 > "$TMP/first.log" 2>&1
expect_code 3 $? "first run (see $TMP/first.log)"
refused() {  # refused PATTERN NP extra-args...: the resume fails and the message matches
  local pattern=$1 np=$2; shift 2
  mpi "$np" train "${ARGS[@]}" "$@" > "$TMP/refused.log" 2>&1
  local code=$?
  [ $code -ne 0 ] && [ $code -ne 3 ] || fail "resume with $* was accepted"
  grep -q -- "$pattern" "$TMP/refused.log" || fail "resume with $*: message lacks '$pattern': $(cat "$TMP/refused.log")"
}
refused "different run: --lr: checkpoint has 0.001, this run has 0.002" 2 --resume auto --lr 0.002
refused "different run: --seed: checkpoint has 0, this run has 1" 2 --resume auto --seed 1
refused "different run: --model-option: checkpoint has (none), this run has hidden=50" 2 \
  --resume auto --model-option hidden=50
# Every run-defining option of the schema is compared (train/options.h), not a hand-kept list:
# the adversarial budget, the augmentations.
refused "different run: --eps: checkpoint has 0, this run has 0.1" 2 --resume auto --eps 0.1
refused "different run: --mixup: checkpoint has 0, this run has 0.2" 2 --resume auto --mixup 0.2
refused "written by 2 rank(s), this job has 1" 1 --resume auto
refused "$TMP/nowhere: checkpoint directory not found" 2 --resume "$TMP/nowhere"
# Operational options may change: threads, log interval, checkpoint interval.
mpi 2 train "${ARGS[@]}" --resume auto --log-every 7 --checkpoint-every 5 > "$TMP/ok.log" 2>&1
expect_code 0 $? "compatible resume (see $TMP/ok.log)"
echo "PASS"
