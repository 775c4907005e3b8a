"""python/lmt_models.py against lmt: one architecture's exports (PREFIX.pth with PREFIX.pth.json,
PREFIX.safetensors) load through load_lmt_model, the torch one with torch.load(weights_only=True),
and the module classifies the test set as `lmt eval` did. Also checks that the torch export
uses only what every weights_only unpickler accepts (PyTorch 1.13 and 2.x), since CI has 1.13 only.
Usage: python_loader.py PREFIX TEST_H5 LMT_EVAL_ACCURACY LMT_LOGITS_PREFIX"""
import json
import os
import pickletools
import sys
import zipfile

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../python"))
from lmt_models import center_pad, load_lmt_model, read_safetensors  # noqa: E402

# The opcodes that both torch 1.13's and 2.x's torch/_weights_only_unpickler.py implement (the
# subset that a protocol-2 state dict needs), and the globals both allow for a plain CPU tensor.
SHARED_OPCODES = {"PROTO", "GLOBAL", "MARK", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "EMPTY_TUPLE",
                  "EMPTY_DICT", "SETITEM", "SETITEMS", "BINPERSID", "BINUNICODE", "BININT",
                  "BININT1", "BININT2", "LONG1", "NEWTRUE", "NEWFALSE", "NONE", "REDUCE",
                  "BINPUT", "LONG_BINPUT", "BINGET", "LONG_BINGET", "STOP"}
GLOBALS = {"collections OrderedDict", "torch._utils _rebuild_tensor_v2"}


def check_torch_format(path):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        root = names[0].split("/")[0]
        pkl = z.read(f"{root}/data.pkl")
        assert z.read(f"{root}/byteorder") == b"little"
        assert f"{root}/version" in names, names
        data = {n for n in names if n.startswith(f"{root}/data/")}
    keys = set()
    for op, arg, _ in pickletools.genops(pkl):
        assert op.name in SHARED_OPCODES, f"opcode {op.name} is not read by every weights_only"
        if op.name == "GLOBAL":
            assert arg in GLOBALS or (arg.startswith("torch ") and arg.endswith("Storage")), arg
        if op.name == "PROTO":
            assert arg == 2, arg
    for op, arg, _ in pickletools.genops(pkl):  # storage keys: the BINUNICODE after 'storage'
        if op.name == "BINUNICODE" and arg.isdigit():
            keys.add(f"{root}/data/{arg}")
    assert keys == data, (sorted(keys), sorted(data))


def main(prefix, test_h5, lmt_accuracy, logits_prefix):
    lmt_accuracy = float(lmt_accuracy)
    check_torch_format(prefix + ".pth")
    state = torch.load(prefix + ".pth", weights_only=True)
    assert type(state) is dict and all(isinstance(v, torch.Tensor) for v in state.values())
    net = load_lmt_model(prefix + ".pth")
    net_st = load_lmt_model(prefix + ".safetensors")
    meta, tensors = read_safetensors(prefix + ".safetensors")
    assert json.load(open(prefix + ".pth.json")) == meta, "torch and safetensors metadata differ"
    for name, t in state.items():  # one set of weights; pi_u only in the safetensors file
        assert torch.equal(t, tensors[name]), name
    assert set(tensors) - set(state) == {k for k in tensors if k.endswith(".pi_u")}

    with h5py.File(test_h5, "r") as f:
        images = torch.from_numpy(np.asarray(f["images"])).permute(0, 3, 1, 2)
        labels = torch.from_numpy(np.asarray(f["labels"]).astype(np.int64))
    classes = int(meta["num_classes"])
    lmt_inputs = np.fromfile(logits_prefix + ".inputs.f32", dtype="<f4")
    lmt_logits = torch.from_numpy(np.fromfile(logits_prefix + ".logits.f32", dtype="<f4"))
    lmt_logits = lmt_logits.view(-1, classes)
    n = lmt_logits.shape[0]
    assert n == labels.shape[0], (n, labels.shape)
    logits, logits_st = [], []
    with torch.no_grad():
        for i in range(0, n, 500):
            x = images[i:i + 500].float() / 255  # as lmt's loader (ToTensor)
            if i == 0:  # the padding and scaling lmt applied, before the normalization
                fed = torch.from_numpy(lmt_inputs[: 500 * int(np.prod(net.input_shape))])
                padded = center_pad(x, *net.input_shape[1:])
                assert torch.equal(padded.flatten(), fed), "lmt's input padding differs"
            logits.append(net(x))
            logits_st.append(net_st(x))
    logits, logits_st = torch.cat(logits), torch.cat(logits_st)
    assert torch.equal(logits, logits_st), "the two exports compute different logits"
    err = (logits - lmt_logits).abs().max().item()
    scale = max(1.0, lmt_logits.abs().max().item())
    # float32 through <= 20 layers: different conv/matmul summation orders (LibTorch's kernels
    # against Python torch's, other batch sizes) differ by ~1e-7 relative (measured on these
    # models: at most 2.9e-6 at logit scale 19.5); 1e-4 of the logit scale leaves room for
    # other CPUs' kernels and still catches any wrong layer, which moves logits by >= 1e-2.
    tol = 1e-4 * scale
    acc_lmt_logits = (lmt_logits.argmax(1) == labels).double().mean().item()
    acc = (logits.argmax(1) == labels).double().mean().item()
    name = meta["architecture"]
    print(f"{name}: max |logit difference| {err:.3g} (scale {scale:.3g}); accuracy python {acc} "
          f"lmt eval {lmt_accuracy}")
    assert err <= tol, f"{name}: logits differ by {err} > {tol}"
    assert abs(acc_lmt_logits - lmt_accuracy) < 0.5 / n, "lmt's logits disagree with lmt eval"
    if abs(acc - lmt_accuracy) >= 0.5 / n:
        # Equal predictions are owed only where lmt's top two logits are further apart than
        # the two computations can differ; anything else is a real mismatch.
        top2 = lmt_logits.topk(2, 1).values
        differ = logits.argmax(1) != lmt_logits.argmax(1)
        gaps = (top2[:, 0] - top2[:, 1])[differ]
        assert (gaps <= 2 * tol).all(), f"{name}: accuracy {acc} != lmt eval {lmt_accuracy}"
        print(f"{name}: {int(differ.sum())} near-tie predictions differ (gaps {gaps.tolist()})")


if __name__ == "__main__":
    main(*sys.argv[1:5])
