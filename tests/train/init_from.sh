# --init-from: torchvision's resnet18 state_dict saved by Debian's PyTorch (OrderedDict pickle,
# a timm-style checkpoint dict, and a safetensors copy) loads into lmt's resnet18 (ImageNet stem,
# 1 channel) and gives torchvision's logits; a file that does not fit fails with exit 2 and ONE
# line naming the file and every mismatched, missing and unexpected key; --init-from-skip 'fc.*'
# takes a 1000-class head.
source "$(dirname "$0")/lib.sh"
$PY -c "import torch, torchvision, numpy" 2>/dev/null || { echo "SKIP: python3-torch/torchvision missing"; exit 77; }
WEIGHTS="${LMT_BUILD_DIR}/tests/train/weights_helper"
[ -x "$WEIGHTS" ] || fail "weights_helper not built at $WEIGHTS"
$PY "$HERE/torchvision_state_dict.py" "$TMP" || fail "torchvision state dicts"

# Logits of the loaded network against torchvision's on 16 inputs. Tolerance 1e-5 (logits of
# magnitude ~1): both are float32 through the same LibTorch kernels, differing only where lmt's
# layers order the sums differently; measured 0 (identical, logits up to 0.26; Intel Xeon, 1
# thread), the margin is for other kernels or thread counts.
for f in resnet18.pth checkpoint.pth resnet18.safetensors; do
  "$WEIGHTS" init-logits "$TMP/$f" "$TMP/inputs.f32" 16 "$TMP/$f.logits.f32" > "$TMP/$f.log" 2>&1 \
    || fail "init-logits $f: $(cat "$TMP/$f.log")"
  grep -q "^122 tensors loaded" "$TMP/$f.log" || fail "$f: $(cat "$TMP/$f.log")"
  $PY -c "
import sys, numpy as np
a = np.fromfile(sys.argv[1], dtype='<f4'); b = np.fromfile(sys.argv[2], dtype='<f4')
assert a.shape == b.shape == (160,), (a.shape, b.shape)
err = np.abs(a - b).max()
print(f'{sys.argv[3]}: max |logit difference| vs torchvision = {err:.3g}')
assert err <= 1e-5, err
" "$TMP/$f.logits.f32" "$TMP/logits.f32" "$f" || fail "$f: logits differ from torchvision's"
done

ARGS=(train --data "$FM" --model resnet18 --model-option stem=imagenet --batch-size 32
      --stop-after-steps 1 --threads 1 --log-every 1000)
"$LMT_BIN" "${ARGS[@]}" --init-from "$TMP/bad.pth" --out "$TMP/bad" > "$TMP/bad.log" 2>&1
expect_code 2 $? "a state_dict that does not fit (see $TMP/bad.log)"
[ "$(wc -l < "$TMP/bad.log")" -eq 1 ] || fail "not one line: $(cat "$TMP/bad.log")"
for want in "$TMP/bad.pth" "fc.weight (file [1000, 512], model [10, 512])" "fc.bias (file [1000]"\
    "missing from the file: layer1.0.bn1.running_var [64]" "unexpected (not in the model): extra.weight [3]"; do
  grep -qF -- "$want" "$TMP/bad.log" || fail "no '$want' in: $(cat "$TMP/bad.log")"
done
[ ! -e "$TMP/bad/config.ini" ] || fail "a refused --init-from wrote into the run directory"

"$LMT_BIN" "${ARGS[@]}" --init-from "$TMP/head1000.pth" --init-from-skip 'fcc.*' --out "$TMP/typo" \
  > "$TMP/typo.log" 2>&1
expect_code 2 $? "a skip glob that matches nothing"
grep -qF "glob(s) matching no key: fcc.*" "$TMP/typo.log" || fail "typo glob: $(cat "$TMP/typo.log")"

"$LMT_BIN" "${ARGS[@]}" --init-from "$TMP/head1000.pth" --init-from-skip 'fc.*' --out "$TMP/head" \
  > "$TMP/head.log" 2>&1
expect_code 3 $? "--init-from-skip fc.* (see $TMP/head.log)"
grep -qF "120 tensors loaded; left as initialized (--init-from-skip): fc.weight,fc.bias" \
  "$TMP/head.log" || fail "no load report: $(cat "$TMP/head.log")"
grep -q "^init-from = $TMP/head1000.pth$" "$TMP/head/config.ini" || fail "config.ini lacks init-from"
echo "PASS"
