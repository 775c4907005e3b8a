"""lmt-mnist through Python: the torch export loaded with torch.load into a re-definition of the
network, inputs decoded from the original Fashion-MNIST IDX file, normalization from the
safetensors metadata; logits must match lmt's within 1e-5. Usage: interop_mnist.py
MODEL.safetensors MODEL.pth FMNIST_DIR LMT_PREFIX N"""
import gzip
import json
import sys

import numpy as np
import torch
from torch import nn

from safetensors_read import read_safetensors


class LmtMnist(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.conv1 = nn.Conv2d(1, 16, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 4, stride=2, padding=1)
        self.fc1 = nn.Linear(1568, 100)
        self.fc2 = nn.Linear(100, 10)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def main(st_path, pth_path, fmnist_dir, prefix, n):
    n = int(n)
    meta, tensors = read_safetensors(st_path)
    assert meta["architecture"] == "lmt-mnist", meta
    assert len(json.loads(meta["class_names"])) == 10, meta.get("class_names")
    assert float(meta["lipschitz_bound"]) > 0
    state = torch.load(pth_path)
    assert isinstance(state, dict)
    for name, t in state.items():  # the two exports agree, and pi_u is only in safetensors
        assert np.array_equal(t.numpy(), tensors[name]), name
    assert set(tensors) - set(state) == {k for k in tensors if k.endswith(".pi_u")}
    net = LmtMnist(json.loads(meta["normalization_mean"]), json.loads(meta["normalization_std"]))
    net.load_state_dict(state, strict=True)
    with gzip.open(f"{fmnist_dir}/t10k-images-idx3-ubyte.gz") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16)[: n * 784]
    x = torch.from_numpy(raw.astype(np.float32).reshape(n, 1, 28, 28) / 255.0)
    lmt_inputs = np.fromfile(prefix + ".inputs.f32", dtype="<f4").reshape(n, 1, 28, 28)
    assert np.array_equal(x.numpy(), lmt_inputs), "lmt's inputs differ from the IDX images"
    lmt_logits = np.fromfile(prefix + ".logits.f32", dtype="<f4").reshape(n, 10)
    with torch.no_grad():
        logits = net(x).numpy()
    err = np.abs(logits - lmt_logits).max()
    print(f"lmt-mnist: max |logit difference| over {n} images = {err:.3g}")
    assert err <= 1e-5, err


if __name__ == "__main__":
    main(*sys.argv[1:6])
