"""The Python PyTorch reference of one `lmt train` step (same LibTorch kernels): the same model
(lmt-mnist, or ResNet-18 with the CIFAR stem), batch, Adam, cross-entropy and intra-op threads,
data from the same train.h5 (gathered, scaled and normalized per step, as lmt's loader does).
Prints one JSON line: per-step median (after --warmup steps) and loop_images_per_s over all
steps, warm-up included, as `lmt train` reports images_per_s for its loop. Run with Debian's /usr/bin/python3 (python3-torch).
Under mpirun with more than one rank it is PyTorch DDP over Gloo, the data-parallel reference
(Debian's torchrun fails on Python 3.11): rank and size from OMPI_COMM_WORLD_RANK/SIZE, the
rendezvous at 127.0.0.1:--port, each rank takes its slice of every global --batch-size batch, DDP's
default 25 MiB buckets overlap the all-reduce with backward; rank 0 prints the line.
Usage: step_reference.py --data DIR [--model lmt-mnist|resnet18] [--batch-size B] [--steps S]
       [--warmup W] [--threads T]"""
import argparse
import json
import statistics
import time

import h5py
import torch
import torch.nn as nn
import torch.nn.functional as F


class Normalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


def lmt_mnist(channels, size, classes, hidden=100):
    """The LMT paper's MNIST network: two 4x4 stride-2 convs (16, 32), fc hidden, fc classes."""
    flat = 32 * ((size // 2) // 2) ** 2
    return nn.Sequential(nn.Conv2d(channels, 16, 4, 2, 1), nn.ReLU(),
                         nn.Conv2d(16, 32, 4, 2, 1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, classes))


def resnet18_cifar(classes):
    import torchvision
    m = torchvision.models.resnet18(num_classes=classes)
    m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    return m


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--model", default="lmt-mnist")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--port", type=int, default=29533)
    a = p.parse_args()
    import os
    world = int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1"))
    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
    if world > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{a.port}",
                                rank=rank, world_size=world)
    if a.batch_size % world:
        raise SystemExit(f"step_reference.py: --batch-size {a.batch_size} is not a multiple of "
                         f"the {world} ranks")
    local = a.batch_size // world
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    with h5py.File(a.data + "/train.h5", "r") as f:
        images = torch.from_numpy(f["images"][()])  # uint8 [N,H,W,C]
        labels = torch.from_numpy(f["labels"][()]).long()
        mean = [float(v) for v in f.attrs["mean"]]
        std = [float(v) for v in f.attrs["std"]]
        classes = int(f.attrs["num_classes"])
    n, h, _, c = images.shape
    body = lmt_mnist(c, h, classes) if a.model == "lmt-mnist" else resnet18_cifar(classes)
    model = nn.Sequential(Normalize(mean, std), body)
    model.train()
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(n)
    times, last = [], time.perf_counter()
    loop_start = last
    for step in range(a.warmup + a.steps):
        idx = order[(step * a.batch_size) % (n - a.batch_size):][:a.batch_size]
        idx = idx[rank * local:(rank + 1) * local]
        # NCHW contiguous, as torchvision's ToTensor and lmt's loader give it: the permuted view
        # alone would make the whole network run channels-last (lmt's --channels-last).
        x = images[idx].permute(0, 3, 1, 2).contiguous().float().div_(255)
        y = labels[idx]
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
        logits.argmax(1).eq(y).sum().item()
        now = time.perf_counter()
        if step >= a.warmup:
            times.append(now - last)
        last = now
    loop_s = time.perf_counter() - loop_start
    med = statistics.median(times)
    if rank != 0:
        return
    print(json.dumps({"bench": "step", "impl": "python-ddp-gloo" if world > 1 else "python",
                      "model": a.model, "world_size": world,
                      "threads": a.threads, "batch_size": a.batch_size, "steps": len(times),
                      "median_step_s": round(med, 6), "min_step_s": round(min(times), 6),
                      "max_step_s": round(max(times), 6), "steps_per_s": round(1 / med, 3),
                      "images_per_s": round(a.batch_size / med, 1),
                      "loop_images_per_s": round((a.warmup + a.steps) * a.batch_size / loop_s, 1),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
