# Interop: Debian's /usr/bin/python3 reads the exports with its own code. lmt-mnist (a short
# training run): an independent safetensors reader, torch.load into a Python re-definition of the
# network, logits of 16 test images within 1e-5. resnet18 with the ImageNet stem (BN running
# statistics from 3 batches): strict load into torchvision's resnet18, logits within 1e-5.
source "$(dirname "$0")/lib.sh"
$PY -c "import torch, torchvision, numpy" 2>/dev/null || { echo "SKIP: python3-torch/torchvision missing"; exit 77; }
[ -x "$HELPER" ] || fail "interop_helper not built at $HELPER"
"$LMT_BIN" train --data "$FM" --model lmt-mnist --batch-size 100 --max-steps 40 --threads 1 \
  --log-every 1000 --out "$TMP/mnist" > "$TMP/train.log" 2>&1 || fail "training (see $TMP/train.log)"
"$LMT_BIN" export --model-file "$TMP/mnist/model.pt" --format safetensors --out "$TMP/mnist.safetensors" \
  > /dev/null || fail "safetensors export"
"$LMT_BIN" export --model-file "$TMP/mnist/model.pt" --format torch --out "$TMP/mnist.pth" \
  > /dev/null || fail "torch export"
"$HELPER" logits "$TMP/mnist/model.pt" "$FM/test.h5" 16 "$TMP/mnist" || fail "lmt logits"
(cd "$HERE" && $PY interop_mnist.py "$TMP/mnist.safetensors" "$TMP/mnist.pth" "$FMNIST_DIR" "$TMP/mnist" 16) \
  || fail "lmt-mnist interop"

"$HELPER" resnet "$TMP/resnet.pt" "$TMP/resnet" || fail "resnet model"
"$LMT_BIN" export --model-file "$TMP/resnet.pt" --format safetensors --out "$TMP/resnet.safetensors" \
  --bound false > /dev/null || fail "resnet safetensors export"
"$LMT_BIN" export --model-file "$TMP/resnet.pt" --format torch --out "$TMP/resnet.pth" > /dev/null \
  || fail "resnet torch export"
(cd "$HERE" && $PY interop_resnet.py "$TMP/resnet.safetensors" "$TMP/resnet.pth" "$TMP/resnet") \
  || fail "resnet18 interop"
echo "PASS"
