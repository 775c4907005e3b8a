"""lmt's architectures in plain PyTorch, for running an `lmt export` without lmt.

    from lmt_models import load_lmt_model
    net = load_lmt_model("model.safetensors")   # or "model.pth" (reads "model.pth.json")
    logits = net(images)                          # pixels in [0, 1], [N, C, H, W]

`load_lmt_model` reads the export's metadata (architecture, the resolved model options, input
shape, normalization), builds the network below and loads the weights with strict=True. The
module computes what `lmt eval` computes: the input normalization (x - mean) / std is part of it,
and images smaller than the model input are zero-padded at the centre, as `lmt train --pad-to`
does. Defined here: lmt-mnist, resnet18/34/50 (every stem, width and norm; with the ImageNet stem,
width 64 and batch norm it is torchvision's network), lipshift / lipshift-cifar and liresnet.
Needs only torch (1.13 or later); safetensors files are read with json and struct.
"""
import json
import os
import struct
import zipfile

import torch
from torch import nn
import torch.nn.functional as F

__all__ = ["load_lmt_model", "build_lmt_model", "read_lmt_export", "read_safetensors",
           "center_pad"]

_SAFETENSORS_DTYPES = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16,
                       "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32,
                       "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}


def read_safetensors(path):
    """(metadata dict str -> str, dict name -> tensor) of a safetensors file."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    data = blob[8 + n:]
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        dtype = _SAFETENSORS_DTYPES[entry["dtype"]]
        raw = bytearray(data[begin:end])  # writable, so torch.frombuffer does not warn
        t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(entry["shape"])
    return metadata, tensors


def read_lmt_export(path, metadata=None):
    """(metadata, state dict) of an lmt export. A torch export (a zip) carries no metadata: it is
    read from `metadata` (a dict, or the path of a .json or .safetensors export) or else from the
    PATH.json that `lmt export --format torch` writes beside it."""
    if zipfile.is_zipfile(path):
        state = torch.load(path, map_location="cpu", weights_only=True)
        if metadata is None:
            metadata = path + ".json"
            if not os.path.exists(metadata):
                raise ValueError(f"{path}: a torch export has no metadata; give metadata= or keep "
                                 f"the {metadata} that lmt export writes beside it")
    else:
        meta, state = read_safetensors(path)
        metadata = meta if metadata is None else metadata
    if isinstance(metadata, str):
        if metadata.endswith(".safetensors"):
            metadata = read_safetensors(metadata)[0]
        else:
            with open(metadata) as f:
                metadata = json.load(f)
    return metadata, state


def load_lmt_model(path, metadata=None):
    """The network of an lmt export with its weights, in eval mode (see the module docstring)."""
    metadata, state = read_lmt_export(path, metadata)
    net = build_lmt_model(metadata)
    # lmt's power-iteration vectors (*.pi_u) only serve its bound; the network does not use them.
    state = {k: v for k, v in state.items() if not (k == "pi_u" or k.endswith(".pi_u"))}
    net.load_state_dict(state, strict=True)
    return net.eval()


def build_lmt_model(metadata):
    """An untrained network from an export's metadata (architecture, model_options, ...)."""
    name = metadata["architecture"]
    options = json.loads(metadata.get("model_options", "{}"))
    shape = json.loads(metadata["input_shape"])
    mean = json.loads(metadata["normalization_mean"]) if "normalization_mean" in metadata else None
    std = json.loads(metadata["normalization_std"]) if "normalization_std" in metadata else None
    common = dict(num_classes=int(metadata["num_classes"]), input_shape=shape, mean=mean, std=std)
    if name == "lmt-mnist":
        return LmtMnist(options, **common)
    if name in _RESNET_LAYERS:
        return ResNet(name, options, **common)
    if name in ("lipshift", "lipshift-cifar"):
        return LipShift(options, **common)
    if name == "liresnet":
        return LiResNet(options, **common)
    raise ValueError(f"architecture '{name}' is not defined in lmt_models.py")


def _option(options, key):
    if key not in options:
        raise ValueError(f"model option '{key}' missing from the export's model_options (an "
                         "export written before lmt recorded resolved options?)")
    return options[key]


class _LmtNet(nn.Module):
    """Input handling shared by every network: centre zero-padding to the model's input size,
    then (x - mean) / std in float32 (not in the state dict, as in lmt)."""

    def __init__(self, input_shape, mean, std):
        super().__init__()
        self.input_shape = tuple(input_shape)
        if mean is not None:
            self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        else:
            self.mean = self.std = None

    def prepare(self, x):
        x = center_pad(x, *self.input_shape[1:])
        return x if self.mean is None else (x - self.mean) / self.std


def center_pad(x, height, width):
    """Zero-pads [..., h, w] to height x width with the image at ((H - h) / 2, (W - w) / 2), as
    lmt's --pad-to places it."""
    dy, dx = height - x.shape[-2], width - x.shape[-1]
    if dy > 0 or dx > 0:
        x = F.pad(x, (dx // 2, dx - dx // 2, dy // 2, dy - dy // 2))
    return x


class HypersphereHead(nn.Module):
    """model option head=he: s * cos(angle between the features and each class weight)."""

    def __init__(self, features, classes, scale):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(classes, features))
        self.scale = scale

    def forward(self, z):
        z = z / z.norm(2, 1, True).clamp_min(1e-12)
        w = self.weight / self.weight.norm(2, 1, True).clamp_min(1e-12)
        return self.scale * z.matmul(w.t())


def _head(options, features, classes, linear_name="fc"):
    if _option(options, "head") == "he":
        return "he_head", HypersphereHead(features, classes, float(_option(options, "he_s")))
    return linear_name, nn.Linear(features, classes)


class LmtMnist(_LmtNet):
    """models/lmt_mnist.cpp: conv 4x4/2 (16) - conv 4x4/2 (32) - dense (hidden) - classes."""

    def __init__(self, options, num_classes, input_shape, mean, std):
        super().__init__(input_shape, mean, std)
        c, h, w = input_shape
        hidden = int(_option(options, "hidden"))
        self.softplus = _option(options, "act") == "softplus"
        self.conv1 = nn.Conv2d(c, 16, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 4, stride=2, padding=1)
        for _ in range(2):
            h, w = (h + 2 - 4) // 2 + 1, (w + 2 - 4) // 2 + 1
        self.fc1 = nn.Linear(32 * h * w, hidden)
        name, head = _head(options, hidden, num_classes, "fc2")
        self.head_name = name
        setattr(self, name, head)

    def act(self, x):
        return F.softplus(x) if self.softplus else F.relu(x)

    def forward(self, x):
        x = self.prepare(x)
        x = self.act(self.conv2(self.act(self.conv1(x))))
        return getattr(self, self.head_name)(self.act(self.fc1(x.flatten(1))))


class BatchCentering2d(nn.Module):
    """norm=center: x - mean + bias per channel (running_mean in eval)."""

    def __init__(self, channels, momentum=0.1):
        super().__init__()
        self.momentum = momentum
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))

    def forward(self, x):
        if self.training:
            mean = x.mean((0, 2, 3))
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(mean.detach(), alpha=self.momentum)
        else:
            mean = self.running_mean
        return x - (mean - self.bias).view(1, -1, 1, 1)


def _norm(center, channels):
    return BatchCentering2d(channels) if center else nn.BatchNorm2d(channels)


class _ResNetBlock(nn.Module):
    def __init__(self, bottleneck, inplanes, planes, stride, center):
        super().__init__()
        out = planes * (4 if bottleneck else 1)
        if bottleneck:
            convs = [(inplanes, planes, 1, 1), (planes, planes, 3, stride), (planes, out, 1, 1)]
        else:
            convs = [(inplanes, planes, 3, stride), (planes, out, 3, 1)]
        self.depth = len(convs)
        for i, (a, b, k, s) in enumerate(convs, 1):
            setattr(self, f"conv{i}", nn.Conv2d(a, b, k, s, k // 2, bias=False))
            setattr(self, f"bn{i}", _norm(center, b))
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False),
                                            _norm(center, out))

    def forward(self, x):
        y = x
        for i in range(1, self.depth + 1):
            y = getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(y))
            if i < self.depth:
                y = F.relu(y)
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


_RESNET_LAYERS = {"resnet18": (False, [2, 2, 2, 2]), "resnet34": (False, [3, 4, 6, 3]),
                  "resnet50": (True, [3, 4, 6, 3])}


class ResNet(_LmtNet):
    """models/resnet.cpp, torchvision's layout and key names: stem cifar (3x3/1, no max-pool) or
    imagenet (7x7/2 + 3x3/2 max-pool), base width `width`, norm batch or center."""

    def __init__(self, name, options, num_classes, input_shape, mean, std):
        super().__init__(input_shape, mean, std)
        bottleneck, layers = _RESNET_LAYERS[name]
        base = int(_option(options, "width"))
        center = _option(options, "norm") == "center"
        imagenet = _option(options, "stem") == "imagenet"
        k = 7 if imagenet else 3
        self.conv1 = nn.Conv2d(input_shape[0], base, k, 2 if imagenet else 1, k // 2, bias=False)
        self.bn1 = _norm(center, base)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if imagenet else nn.Identity()
        inplanes = base
        for stage, count in enumerate(layers):
            planes = base << stage
            blocks = []
            for i in range(count):
                blocks.append(_ResNetBlock(bottleneck, inplanes, planes,
                                           2 if stage > 0 and i == 0 else 1, center))
                inplanes = planes * (4 if bottleneck else 1)
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        self.head_name, head = _head(options, inplanes, num_classes)
        setattr(self, self.head_name, head)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(self.prepare(x)))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return getattr(self, self.head_name)(x.mean((2, 3)))


def _min_max(x):
    """GroupSort-2 over the channel pairs (2i, 2i+1): (min, max)."""
    pairs = x.unflatten(1, (x.shape[1] // 2, 2))
    a, b = pairs.select(2, 0), pairs.select(2, 1)
    return torch.stack((torch.minimum(a, b), torch.maximum(a, b)), 2).flatten(1, 2)


class CenterNorm(nn.Module):
    """gamma * (x - mean over the C channels) * C / (C - 1) + beta."""

    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        c = x.shape[1]
        shape = (1, c, 1, 1)
        return (self.weight.view(shape) * (x - x.mean(1, keepdim=True)) * (c / (c - 1)) +
                self.bias.view(shape))


def _shift(x, n_div):
    """Channel groups 0..3 (of C / n_div channels) move one pixel left, right, up, down."""
    c, h, w = x.shape[1:]
    g = c // n_div
    if g == 0 or h < 2 or w < 2:
        return x
    group = [x[:, i * g:(i + 1) * g] for i in range(4)]
    left = F.pad(group[0][..., 1:], (0, 1))
    right = F.pad(group[1][..., :-1], (1, 0))
    up = F.pad(group[2][..., 1:, :], (0, 0, 0, 1))
    down = F.pad(group[3][..., :-1, :], (0, 0, 1, 0))
    return torch.cat((left, right, up, down, x[:, 4 * g:]), 1)


class NormalizedLinear(nn.Module):
    """The LLN head: rows of the weight scaled to unit l2 norm in the forward pass."""

    def __init__(self, features, classes):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(classes, features))
        self.bias = nn.Parameter(torch.zeros(classes))

    def forward(self, x):
        return F.linear(x, self.weight / self.weight.norm(2, 1, True).clamp_min(1e-12), self.bias)


class _ShiftBlock(nn.Module):
    def __init__(self, dim, n_div):
        super().__init__()
        self.n_div = n_div
        self.norm = CenterNorm(dim)
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)
        self.conv_scale = nn.Parameter(torch.zeros(dim))
        self.scale = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        s = _shift(x, self.n_div)
        z = self.norm(s)
        y = _min_max(z + self.conv_scale.view(1, -1, 1, 1) * self.conv(z))
        return s + self.scale.view(1, -1, 1, 1) * y


class _PatchMerging(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = CenterNorm(dim)
        self.reduction = nn.Conv2d(dim, 2 * dim, 2, stride=2, bias=False)

    def forward(self, x):
        return self.reduction(self.norm(x))


class LipShift(_LmtNet):
    """models/lipshift.cpp (eval mode: dropout and drop-path are the identity)."""

    def __init__(self, options, num_classes, input_shape, mean, std):
        super().__init__(input_shape, mean, std)
        depths = [int(d) for d in _option(options, "depths")]
        width, patch = int(_option(options, "width")), int(_option(options, "patch"))
        n_div = int(_option(options, "n_div"))
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(input_shape[0], width, patch, stride=patch)
        self.patch_embed.norm = CenterNorm(width)
        self.layers = nn.ModuleList()
        dim = width
        for stage, depth in enumerate(depths):
            layer = nn.Module()
            layer.blocks = nn.ModuleList(_ShiftBlock(dim, n_div) for _ in range(depth))
            layer.downsample = None
            if stage + 1 < len(depths):
                layer.downsample = _PatchMerging(dim)
                dim *= 2
            self.layers.append(layer)
        self.norm = CenterNorm(dim)
        self.head = NormalizedLinear(dim, num_classes)

    def forward(self, x):
        x = self.patch_embed.norm(self.patch_embed.proj(self.prepare(x)))
        for layer in self.layers:
            for block in layer.blocks:
                x = block(x)
            if layer.downsample is not None:
                x = layer.downsample(x)
        return self.head(self.norm(x).mean((2, 3)))


class _ResidualConv(nn.Conv2d):
    """LiResNet's merged operator x + alpha (W * x) + b as one conv: alpha W + I at the centre."""

    def __init__(self, width, alpha, bias):
        super().__init__(width, width, 3, padding=1, bias=bias)
        self.alpha = alpha

    def forward(self, x):
        c = self.in_channels
        identity = F.pad(torch.eye(c, dtype=self.weight.dtype).view(c, c, 1, 1), (1, 1, 1, 1))
        return F.conv2d(x, self.alpha * self.weight + identity, self.bias, padding=1)


class _MinMax(nn.Module):
    def forward(self, x):
        return _min_max(x)


class LiResNet(_LmtNet):
    """models/liresnet.cpp: stem conv (3x3, or patch x patch stride patch), MinMax; `depth`
    blocks MinMax(center(x + alpha W x)); neck conv (kernel = stride), MinMax, flatten, dense,
    MinMax; the LLN (or linear) head. Key names under body.* as lmt registers them."""

    def __init__(self, options, num_classes, input_shape, mean, std):
        super().__init__(input_shape, mean, std)
        c, h, w = input_shape
        depth, width = int(_option(options, "depth")), int(_option(options, "width"))
        alpha = float(_option(options, "alpha"))
        center = int(_option(options, "center")) != 0
        body = nn.Sequential()
        if _option(options, "stem") == "patch":
            patch = int(_option(options, "patch"))
            body.add_module("stem", nn.Conv2d(c, width, patch, stride=patch))
            h, w = (h - patch) // patch + 1, (w - patch) // patch + 1
        else:
            body.add_module("stem", nn.Conv2d(c, width, 3, padding=1))
        body.add_module("stem_act", _MinMax())
        for i in range(depth):
            block = nn.Sequential()
            block.add_module("conv", _ResidualConv(width, alpha, bias=not center))
            if center:
                block.add_module("center", BatchCentering2d(width))
            block.add_module("act", _MinMax())
            body.add_module(f"block{i}", block)
        neck_width = int(_option(options, "neck_width"))
        stride = int(_option(options, "neck_stride"))
        body.add_module("neck_conv", nn.Conv2d(width, neck_width, stride, stride=stride))
        h, w = (h - stride) // stride + 1, (w - stride) // stride + 1
        features = int(_option(options, "neck_features"))
        body.add_module("neck_act", _MinMax())
        body.add_module("flatten", nn.Flatten())
        body.add_module("dense", nn.Linear(neck_width * h * w, features))
        body.add_module("dense_act", _MinMax())
        self.body = body
        lln = _option(options, "head") == "lln"
        self.head = NormalizedLinear(features, num_classes) if lln else nn.Linear(features,
                                                                                   num_classes)

    def forward(self, x):
        return self.head(self.body(self.prepare(x)))
