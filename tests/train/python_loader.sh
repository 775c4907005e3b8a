# python/lmt_models.py on Debian's /usr/bin/python3 (torch 1.13): each architecture small enough
# for CI trains 30 steps on Fashion-MNIST (a 3000/1000-image subset keeps it short on 2 cores),
# is exported in both formats, loads through load_lmt_model (the torch file with
# torch.load(weights_only=True)) and classifies the test set as `lmt eval` does
# (python_loader.py). Then --torchvision-stem: a 1-channel resnet18 with the ImageNet stem loads
# strictly into torchvision's resnet18 and computes the same logits on the grey images
# replicated to RGB; a CIFAR-stem resnet is refused with the reason.
source "$(dirname "$0")/lib.sh"
$PY -c "import torch, torchvision, numpy, h5py" 2>/dev/null \
  || { echo "SKIP: python3-torch/torchvision/h5py missing"; exit 77; }
[ -x "$HELPER" ] || fail "interop_helper not built at $HELPER"
SMALL="$TMP/fm-small"
mkdir -p "$SMALL"
$PY - "$FM" "$SMALL" <<'PY' || fail "subset of Fashion-MNIST"
import sys, h5py
for split, n in (("train", 3000), ("test", 1000)):
    with h5py.File(f"{sys.argv[1]}/{split}.h5", "r") as src, \
            h5py.File(f"{sys.argv[2]}/{split}.h5", "w") as dst:
        for key in ("images", "labels"):
            dst.create_dataset(key, data=src[key][:n])
        dst.attrs.update(src.attrs)
PY
eval_accuracy() {  # eval_accuracy MODEL_FILE: lmt eval's test accuracy
  "$LMT_BIN" eval --model-file "$1" --data "$SMALL/test.h5" --threads 1 2>/dev/null \
    | $PY -c "import json, sys; print(json.loads(sys.stdin.readline())['accuracy'])"
}

# name|extra flags (option sizes of tests/models/train_each_model.sh)
runs=(
  "lmt-mnist|"
  "lmt-mnist|--model-option act=softplus --model-option hidden=32 --model-option head=he"
  "lipshift|--model-option depths=1,1 --model-option width=16 --model-option patch=2 --pad-to 32"
  "resnet18|--model-option width=8"
  "resnet18|--model-option width=8 --model-option norm=center"
  "liresnet|--model-option depth=2 --model-option width=8 --model-option neck_features=16"
  "liresnet|--model-option depth=1 --model-option width=8 --model-option neck_features=16 --model-option center=0 --model-option head=linear --model-option stem=patch"
)
i=0
for run in "${runs[@]}"; do
  IFS='|' read -r name flags <<<"$run"
  i=$((i + 1))
  out="$TMP/run$i"
  # shellcheck disable=SC2086
  "$LMT_BIN" train --data "$SMALL" --out "$out" --model "$name" --epochs 1 --max-steps 30 \
    --batch-size 32 --threads 1 --seed 1 --log-every 1000 $flags > "$out.log" 2>&1 \
    || fail "$name $flags: training (see $out.log)"
  "$LMT_BIN" export --model-file "$out/model.pt" --format torch --out "$out.pth" > /dev/null \
    || fail "$name: torch export"
  [ -f "$out.pth.json" ] || fail "$name: no metadata beside the torch export"
  "$LMT_BIN" export --model-file "$out/model.pt" --format safetensors --out "$out.safetensors" \
    > /dev/null || fail "$name: safetensors export"
  acc=$(eval_accuracy "$out/model.pt") || fail "$name: lmt eval"
  "$HELPER" logits "$out/model.pt" "$SMALL/test.h5" 1000 "$out" || fail "$name: lmt logits"
  $PY "$HERE/python_loader.py" "$out" "$SMALL/test.h5" "$acc" "$out" || fail "$name $flags: loader"
done

# The auto stem is recorded resolved (28 px: cifar), with every default the model read.
HERE="$HERE" $PY - "$TMP/run4.safetensors" <<'PY' || fail "resolved model_options"
import json, os, sys
sys.path.insert(0, os.environ["HERE"] + "/../../python")
from lmt_models import read_safetensors
meta = read_safetensors(sys.argv[1])[0]
options = json.loads(meta["model_options"])
assert options["stem"] == "cifar" and options["width"] == 8 and options["norm"] == "batch", options
config = json.loads(meta["model_config"])
assert config["options"] == {"width": "8"} and config["channels"] == 1, config
assert float(json.loads(meta["lipschitz_bound"])) > 0
PY

# --torchvision-stem: refused for the CIFAR stem, naming the option; exact for the ImageNet one.
if "$LMT_BIN" export --model-file "$TMP/run4/model.pt" --format torch --out "$TMP/no.pth" \
    --torchvision-stem > "$TMP/refuse.log" 2>&1; then
  fail "--torchvision-stem accepted a CIFAR-stem resnet"
fi
grep -q "stem=\"cifar\"" "$TMP/refuse.log" || fail "refusal does not name the stem: $(cat "$TMP/refuse.log")"
[ -e "$TMP/no.pth" ] && fail "a refused export left a file"
"$LMT_BIN" train --data "$SMALL" --out "$TMP/tv" --model resnet18 --model-option stem=imagenet \
  --epochs 1 --max-steps 5 --batch-size 32 --threads 1 --seed 1 --log-every 1000 > "$TMP/tv.log" 2>&1 \
  || fail "imagenet-stem training (see $TMP/tv.log)"
"$LMT_BIN" export --model-file "$TMP/tv/model.pt" --format torch --out "$TMP/tv.pth" \
  --torchvision-stem > /dev/null || fail "--torchvision-stem export"
"$HELPER" logits "$TMP/tv/model.pt" "$SMALL/test.h5" 1000 "$TMP/tv" || fail "tv logits"
$PY - "$TMP/tv.pth" "$TMP/tv" <<'PY' || fail "torchvision resnet18 from --torchvision-stem"
import json, sys
import numpy as np, torch, torchvision
state = torch.load(sys.argv[1], weights_only=True)
assert state["conv1.weight"].shape == (64, 3, 7, 7), state["conv1.weight"].shape
meta = json.load(open(sys.argv[1] + ".json"))
assert json.loads(meta["input_shape"])[0] == 3 and "torchvision_stem" in meta, meta
net = torchvision.models.resnet18(num_classes=10)
net.load_state_dict(state, strict=True)
net.eval()
mean = torch.tensor(json.loads(meta["normalization_mean"])).view(1, 3, 1, 1)
std = torch.tensor(json.loads(meta["normalization_std"])).view(1, 3, 1, 1)
x = torch.from_numpy(np.fromfile(sys.argv[2] + ".inputs.f32", dtype="<f4")).view(1000, 1, 28, 28)
ref = torch.from_numpy(np.fromfile(sys.argv[2] + ".logits.f32", dtype="<f4")).view(1000, 10)
with torch.no_grad():
    logits = net((x.repeat(1, 3, 1, 1) - mean) / std)
err = (logits - ref).abs().max().item()
print(f"torchvision resnet18 (--torchvision-stem): max |logit difference| {err:.3g}")
# As python_loader.py: float32 summation orders differ by ~1e-7 relative (W/3 summed over three
# channels adds one rounding per tap; measured 6.7e-8); 1e-4 of the logit scale still catches a
# wrong conversion (a missing /3 triples the stem's output).
assert err <= 1e-4 * max(1.0, ref.abs().max().item()), err
PY
echo "PASS"
