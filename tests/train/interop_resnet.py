"""resnet18 (ImageNet stem) through torchvision: the torch export loads strictly into
torchvision.models.resnet18(num_classes=10); with (x-mean)/std from the safetensors metadata its
logits must match lmt's within 1e-5. Usage: interop_resnet.py MODEL.safetensors MODEL.pth PREFIX"""
import json
import sys

import numpy as np
import torch
import torchvision

from safetensors_read import read_safetensors


def main(st_path, pth_path, prefix):
    meta, tensors = read_safetensors(st_path)
    assert meta["architecture"] == "resnet18", meta
    state = torch.load(pth_path)
    net = torchvision.models.resnet18(num_classes=10)
    net.load_state_dict(state, strict=True)
    assert state["bn1.num_batches_tracked"].item() == 3
    for name, t in state.items():
        assert np.array_equal(t.numpy(), tensors[name]), name
    net.eval()
    mean = torch.tensor(json.loads(meta["normalization_mean"])).view(1, 3, 1, 1)
    std = torch.tensor(json.loads(meta["normalization_std"])).view(1, 3, 1, 1)
    x = torch.from_numpy(np.fromfile(prefix + ".inputs.f32", dtype="<f4").reshape(16, 3, 64, 64))
    lmt_logits = np.fromfile(prefix + ".logits.f32", dtype="<f4").reshape(16, 10)
    with torch.no_grad():
        logits = net((x - mean) / std).numpy()
    err = np.abs(logits - lmt_logits).max()
    print(f"resnet18: max |logit difference| over 16 inputs = {err:.3g}")
    assert err <= 1e-5, err


if __name__ == "__main__":
    main(*sys.argv[1:4])
