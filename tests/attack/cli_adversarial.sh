#!/usr/bin/env bash
# lmt train --loss pgd-at / trades (and PGD-AT with the HE head) a few steps on Fashion-MNIST,
# then lmt attack (AutoAttack's standard suite, shortened) on the results (1 and 2 ranks) and on a
# briefly LMT-trained model; asserts the JSON fields and their consistency (each attack runs on the
# survivors of the ones before: attacked = survivors, robust accuracy cumulative, worst case = the
# last; certified <= attacked).
source "$(dirname "$0")/../cli/lib.sh"  # LMT_TEST_TMP (fresh), fail, convert_fmnist
set +e  # this script checks exit codes itself
TMP="$LMT_TEST_TMP"
convert_fmnist "$TMP/fm" || { echo "FAIL: convert"; exit 1; }
COMMON="--data $TMP/fm --epochs 1 --max-steps 20 --batch-size 50 --threads 1 --seed 1"
status=0
fail() { echo "FAIL: $*"; status=1; }

train() {  # name, flags...
  local name=$1; shift
  # shellcheck disable=SC2086
  "$LMT_BIN" train $COMMON --out "$TMP/$name" "$@" >"$TMP/$name.log" 2>&1 \
    || { fail "$name: lmt train exited non-zero"; tail -5 "$TMP/$name.log"; return 1; }
}
train pgdat --loss pgd-at --norm Linf --eps 0.1 --attack-steps 3 --eps-warmup 0.01
train trades --loss trades --trades-beta 6 --norm L2 --eps 1.0 --attack-steps 3
train pgdat_he --loss pgd-at --norm Linf --eps 0.1 --attack-steps 3 \
  --model-option head=he --model-option he_s=10 --he-m 0.2
train lmt --loss lmt --lmt-c 0.5
train augmented --loss ce --mixup 0.2 --cutmix 1.0 --randaugment 2 --random-erasing 0.5

check() {  # json file, expect_certified(0/1), expected count
  python3 - "$@" <<'PY'
import json, sys
line = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
cert, n = sys.argv[2] == "1", int(sys.argv[3])
for key in ["command", "norm", "eps", "count", "clean_accuracy", "robust_accuracy",
            "worst_case_accuracy", "square_only_broken", "outputs_look_like_probabilities"]:
    assert key in line, f"missing {key}: {line}"
assert line["command"] == "attack" and line["count"] == n, line
rob = line["robust_accuracy"]
assert list(rob) == ["apgd-ce", "apgd-t", "fab-t", "square"], rob
assert line["version"] == "custom", line  # shortened budgets
survivors = round(line["clean_accuracy"] * n)
for step in line["attacks"]:
    assert step["attacked"] == survivors, (step, line)
    survivors -= step["flipped"]
    assert abs(step["robust_accuracy"] - survivors / n) < 1e-9, (step, line)
    assert rob[step["attack"]] == step["robust_accuracy"] and step["seconds"] >= 0, (step, line)
assert abs(line["worst_case_accuracy"] - survivors / n) < 1e-9, line
assert line["outputs_look_like_probabilities"] is False, line
if cert:
    assert "certified_accuracy" in line and line["certified_broken"] == 0, line
    assert line["certified_accuracy"] <= line["worst_case_accuracy"] + 1e-12, line
else:
    assert "certified_accuracy" not in line, line
PY
}

ATTACK="--n 40 --batch-size 20 --apgd-iterations 20 --target-classes 3 --fab-iterations 10"
ATTACK="$ATTACK --square-queries 100 --threads 1"
# Bounded models attacked in L2 also report (and cross-check) the certified accuracy.
for run in pgdat:Linf:0.1:0 trades:L2:1.0:1 pgdat_he:Linf:0.1:0 lmt:L2:0.3:1; do
  IFS=: read -r name norm eps cert <<<"$run"
  [ -f "$TMP/$name/model.pt" ] || continue
  # shellcheck disable=SC2086
  if "$LMT_BIN" attack --model-file "$TMP/$name/model.pt" --data "$TMP/fm/test.h5" --norm "$norm" \
      --eps "$eps" $ATTACK >"$TMP/$name.attack.json" 2>"$TMP/$name.attack.err"; then
    check "$TMP/$name.attack.json" "$cert" 40 || fail "$name: attack JSON"
  else
    fail "$name: lmt attack exited non-zero"; cat "$TMP/$name.attack.err"
  fi
done

# Data-parallel: two ranks attack halves of the same 40 points; the counts add up.
if [ -f "$TMP/pgdat/model.pt" ]; then
  # shellcheck disable=SC2086
  mpirun --allow-run-as-root -np 2 --bind-to none "$LMT_BIN" attack --model-file "$TMP/pgdat/model.pt" \
    --data "$TMP/fm/test.h5" --norm Linf --eps 0.1 $ATTACK >"$TMP/mpi.attack.json" 2>"$TMP/mpi.attack.err" \
    || { fail "2-rank attack exited non-zero"; cat "$TMP/mpi.attack.err"; }
  check "$TMP/mpi.attack.json" 0 40 || fail "2-rank attack JSON"
  python3 -c "import json,sys; l=json.loads(open(sys.argv[1]).read()); assert l['world_size']==2, l" \
    "$TMP/mpi.attack.json" || fail "2-rank world_size"
fi

# --version standard refuses flags that change the suite, naming the flag (exit 2); untargeted
# FAB is refused, not silently skipped.
"$LMT_BIN" attack --model-file "$TMP/pgdat/model.pt" --data "$TMP/fm/test.h5" --norm L2 --eps 1 \
  --version standard --square-queries 100 >/dev/null 2>"$TMP/standard.err"
[ $? -eq 2 ] && grep -q "'--square-queries'.*--version custom" "$TMP/standard.err" \
  || { fail "--version standard --square-queries 100 should be a usage error"; cat "$TMP/standard.err"; }
"$LMT_BIN" attack --model-file "$TMP/pgdat/model.pt" --data "$TMP/fm/test.h5" --norm L2 --eps 1 \
  --attacks apgd-ce,fab >/dev/null 2>&1
[ $? -eq 2 ] || fail "untargeted fab should be a usage error"
exit $status
