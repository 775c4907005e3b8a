"""Python PyTorch reference for the GPU step time of `lmt train --model resnet50` (the same wheel's
kernels): torchvision's resnet50 (ImageNet stem, 10 classes as lmt's synthetic set), synthetic
uint8 images scaled to [0,1] on the device, cross-entropy, SGD (momentum 0.9), one optimizer step
per batch; fp32 and bf16 autocast (forward and loss under autocast, backward outside it, as
torch.autocast is meant), optionally channels-last.
Step time: CUDA events around each step, median over --steps after --warmup; the data stays on
the GPU (no loader), so this is the model's step alone.
Prints one JSON line per precision: {"precision", "batch", "size", "step_ms", "images_per_s",
"device"}. Without a CUDA device it prints {"error": "no CUDA device"} and exits 77.
Usage: resnet50_step.py [--batch-size 64] [--size 224] [--steps 30] [--warmup 10]
                        [--precision fp32,bf16] [--channels-last] [--classes 10]"""
import argparse
import json
import statistics
import sys

import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--precision", default="fp32,bf16")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--lr", type=float, default=0.01)
    args = ap.parse_args()

    if not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA device", "torch": torch.__version__}))
        return 77
    try:
        import torchvision
    except ImportError as e:
        print(json.dumps({"error": f"no torchvision: {e}"}))
        return 1

    device = torch.device("cuda")
    torch.manual_seed(0)
    g = torch.Generator(device="cpu").manual_seed(1)
    images = torch.randint(0, 256, (args.batch_size, 3, args.size, args.size), dtype=torch.uint8,
                           generator=g).to(device)
    labels = torch.randint(0, args.classes, (args.batch_size,), generator=g).to(device)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format

    for precision in args.precision.split(","):
        if precision not in ("fp32", "bf16", "fp16"):
            print(json.dumps({"precision": precision, "error": "unknown precision"}))
            continue
        model = torchvision.models.resnet50(num_classes=args.classes).to(device, memory_format=fmt)
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")

        def step():
            x = (images.float() / 255.0).contiguous(memory_format=fmt)
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = F.cross_entropy(model(x), labels)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

        for _ in range(args.warmup):
            step()
        torch.cuda.synchronize()
        times = []
        for _ in range(args.steps):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        ms = statistics.median(times)
        print(json.dumps({"precision": precision, "batch": args.batch_size, "size": args.size,
                          "channels_last": args.channels_last, "step_ms": round(ms, 3),
                          "images_per_s": round(args.batch_size * 1000.0 / ms, 1),
                          "device": torch.cuda.get_device_name(0), "torch": torch.__version__}),
              flush=True)
        del model, opt
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
