#!/usr/bin/env bash
# lmt attack against an independent implementation: trains a PGD-AT lmt-mnist on Fashion-MNIST
# (Linf 0.1), then attacks the first N test points with lmt (FAB-T alone, Square alone, the
# standard suite) and with torchattacks 3.5.1 (PyPI: AutoAttack's code ported; FAB with 9
# targets, Square, AutoAttack "standard") in Linf 0.1 and L2 1.0; prints both JSON lines per norm.
# Not a test: torchattacks comes from PyPI, not Debian. Needs Debian's python3-torch,
# python3-h5py, python3-scipy, python3-tqdm and python3-requests; the venv is made here.
# Usage: bench/attack_reference.sh LMT_BIN [WORK_DIR] [N] [EPOCHS]
set -euo pipefail
LMT=$(realpath "$1")
WORK=${2:-/tmp/lmt-attack-reference}
N=${3:-500}
EPOCHS=${4:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
FMNIST=${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
mkdir -p "$WORK"
VENV="$WORK/venv"
if [ ! -x "$VENV/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
  "$VENV/bin/pip" install --quiet --no-deps torchattacks==3.5.1
fi
[ -f "$WORK/fm/test.h5" ] || "$LMT" convert fashion-mnist --src "$FMNIST" --out "$WORK/fm" >/dev/null
if [ ! -f "$WORK/pgdat/model.pt" ]; then
  "$LMT" train --data "$WORK/fm" --out "$WORK/pgdat" --loss pgd-at --norm Linf --eps 0.1 \
    --attack-steps 10 --attack-step-size 0.025 --eps-warmup 1 --epochs "$EPOCHS" --seed 1 \
    >"$WORK/pgdat.log" 2>&1
fi
"$LMT" export --model-file "$WORK/pgdat/model.pt" --format safetensors \
  --out "$WORK/pgdat/model.safetensors" >/dev/null
for run in Linf:0.1 L2:1.0; do
  IFS=: read -r norm eps <<<"$run"
  for attacks in fab-t square apgd-ce,apgd-t,fab-t,square; do
    echo "lmt attack --norm $norm --eps $eps --attacks $attacks:"
    "$LMT" attack --model-file "$WORK/pgdat/model.pt" --data "$WORK/fm/test.h5" --norm "$norm" \
      --eps "$eps" --attacks "$attacks" --n "$N" --threads 2 2>/dev/null
  done
  echo "torchattacks, $norm $eps:"
  "$VENV/bin/python" "$HERE/python/attack_reference.py" --model "$WORK/pgdat/model.safetensors" \
    --data "$WORK/fm/test.h5" --norm "$norm" --eps "$eps" --n "$N" --threads 2
done
