"""State dicts of torchvision's resnet18 for the --init-from test, written by Debian's PyTorch:
conv1 replaced for 1 channel, 10 classes, batch-norm running statistics from 3 training-mode
batches (so buffers are not their defaults), then in OUT_DIR:
  resnet18.pth          torch.save(model.state_dict()) (an OrderedDict with _metadata)
  resnet18.safetensors  the same tensors as safetensors, written here by hand (json + numpy)
  checkpoint.pth        a timm-style training checkpoint: {"epoch", "arch", "state_dict", ...}
  head1000.pth          the same network with torchvision's 1000-class fc (a new head to skip)
  bad.pth               fc of 1000 classes, layer1.0.bn1.running_var removed, "extra.weight" added
  inputs.f32, logits.f32  16 random 1x32x32 inputs and the eval-mode logits [16, 10]
Usage: torchvision_state_dict.py OUT_DIR"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import torchvision


def resnet18(classes):
    net = torchvision.models.resnet18(num_classes=classes)
    net.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return net


def write_safetensors(path, state):
    header, blobs, offset = {}, [], 0
    dtypes = {torch.float32: "F32", torch.int64: "I64"}
    for name, t in state.items():
        data = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main(out):
    torch.manual_seed(0)
    net = resnet18(10)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(8, 1, 32, 32))
    state = net.state_dict()
    torch.save(state, os.path.join(out, "resnet18.pth"))
    write_safetensors(os.path.join(out, "resnet18.safetensors"), state)
    torch.save({"epoch": 3, "arch": "resnet18", "args": argparse.Namespace(lr=0.1),
                "state_dict": state}, os.path.join(out, "checkpoint.pth"))
    head = resnet18(1000).state_dict()
    for name, t in state.items():
        if not name.startswith("fc."):
            head[name] = t
    torch.save(head, os.path.join(out, "head1000.pth"))
    bad = dict(head)
    del bad["layer1.0.bn1.running_var"]
    bad["extra.weight"] = torch.zeros(3)
    torch.save(bad, os.path.join(out, "bad.pth"))
    net.eval()
    x = torch.rand(16, 1, 32, 32)
    with torch.no_grad():
        logits = net(x)
    x.numpy().astype("<f4").tofile(os.path.join(out, "inputs.f32"))
    logits.numpy().astype("<f4").tofile(os.path.join(out, "logits.f32"))


if __name__ == "__main__":
    main(sys.argv[1])
