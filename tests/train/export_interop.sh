# Interop: Debian's /usr/bin/python3 reads the exports with its own code. lmt-mnist (a short
# training run): an independent safetensors reader, torch.load into a Python re-definition of the
# network, logits of 16 test images within 1e-5. resnet18 with the ImageNet stem (BN running
# statistics from 3 batches): strict load into torchvision's resnet18, logits within 1e-5.
source "$(dirname "$0")/lib.sh"
$PY -c "import torch, torchvision, numpy" 2>/dev/null || { echo "SKIP: python3-torch/torchvision missing"; exit 77; }
[ -x "$HELPER" ] || fail "interop_helper not built at $HELPER"
"$LMT_BIN" train --data "$FM" --model lmt-mnist --batch-size 100 --max-steps 40 --threads 1 \
  --log-every 1000 --checkpoint-every 40 --out "$TMP/mnist" > "$TMP/train.log" 2>&1 \
  || fail "training (see $TMP/train.log)"
"$LMT_BIN" export --model-file "$TMP/mnist/model.pt" --format safetensors --out "$TMP/mnist.safetensors" \
  > /dev/null || fail "safetensors export"
"$LMT_BIN" export --model-file "$TMP/mnist/model.pt" --format torch --out "$TMP/mnist.pth" \
  > /dev/null || fail "torch export"
"$HELPER" logits "$TMP/mnist/model.pt" "$FM/test.h5" 16 "$TMP/mnist" || fail "lmt logits"
(cd "$HERE" && $PY interop_mnist.py "$TMP/mnist.safetensors" "$TMP/mnist.pth" "$FMNIST_DIR" "$TMP/mnist" 16) \
  || fail "lmt-mnist interop"

# The checkpoint of the last step exports the same tensors, with the class names from config.ini.
"$LMT_BIN" export --checkpoint "$TMP/mnist/checkpoints/step-000040" --format safetensors \
  --out "$TMP/ckpt.safetensors" > /dev/null || fail "export from a checkpoint"
(cd "$HERE" && $PY -c "
import json, sys
from safetensors_read import read_safetensors
ma, a = read_safetensors(sys.argv[1]); mb, b = read_safetensors(sys.argv[2])
assert sorted(a) == sorted(b) and all(a[k].tobytes() == b[k].tobytes() for k in a)
assert json.loads(mb['class_names'])[9] == 'Ankle boot', mb.get('class_names')
" "$TMP/mnist.safetensors" "$TMP/ckpt.safetensors") || fail "checkpoint export differs"

"$HELPER" resnet "$TMP/resnet.pt" "$TMP/resnet" || fail "resnet model"
"$LMT_BIN" export --model-file "$TMP/resnet.pt" --format safetensors --out "$TMP/resnet.safetensors" \
  --bound false > /dev/null || fail "resnet safetensors export"
"$LMT_BIN" export --model-file "$TMP/resnet.pt" --format torch --out "$TMP/resnet.pth" > /dev/null \
  || fail "resnet torch export"
(cd "$HERE" && $PY interop_resnet.py "$TMP/resnet.safetensors" "$TMP/resnet.pth" "$TMP/resnet") \
  || fail "resnet18 interop"
echo "PASS"
