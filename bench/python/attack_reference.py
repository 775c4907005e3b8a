"""An independent reference for `lmt attack`: torchattacks' ports of AutoAttack's attacks (FAB with
9 target classes, Square with AutoAttack's settings, and the standard suite) on a model exported
with `lmt export --format safetensors` (loaded by python/lmt_models.py), over the first N points of
a test.h5. Prints one JSON line with the clean and robust accuracy and the wall time per attack
(each attack alone on all points, and the standard suite in its order). Run with a venv over Debian's /usr/bin/python3 (python3-torch,
python3-h5py, python3-scipy) with torchattacks installed (bench/attack_reference.sh makes one).
Usage: attack_reference.py --model FILE.safetensors --data test.h5 --norm Linf|L2 --eps X [--n N]
       [--attacks fab-t,square,standard] [--threads T]"""
import argparse
import json
import os
import sys
import time

import h5py
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from lmt_models import load_lmt_model  # noqa: E402


def robust_accuracy(model, x, y, adv):
    with torch.no_grad():
        return (model(adv).argmax(1) == y).float().mean().item()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--norm", required=True, choices=["Linf", "L2"])
    p.add_argument("--eps", type=float, required=True)
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--attacks", default="fab-t,square,standard")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    import torchattacks

    model = load_lmt_model(a.model)
    with h5py.File(a.data, "r") as f:
        x = torch.from_numpy(f["images"][: a.n]).permute(0, 3, 1, 2).float().div(255)
        y = torch.from_numpy(f["labels"][: a.n]).long()
    with torch.no_grad():
        classes = model(x[:1]).shape[1]
    out = {"reference": f"torchattacks {torchattacks.__version__}", "norm": a.norm,
           "eps": a.eps, "count": int(y.numel()),
           "clean_accuracy": robust_accuracy(model, x, y, x), "robust_accuracy": {},
           "seconds": {}}
    for name in a.attacks.split(","):
        if name == "fab-t":  # AutoAttack's fab-t: 100 steps, 1 restart, 9 targets
            attack = torchattacks.FAB(model, norm=a.norm, eps=a.eps, steps=100, n_restarts=1,
                                      multi_targeted=True, n_classes=classes, seed=0)
        elif name == "square":  # AutoAttack's settings
            attack = torchattacks.Square(model, norm=a.norm, eps=a.eps, n_queries=5000,
                                         n_restarts=1, p_init=0.8, resc_schedule=False, seed=0)
        elif name == "standard":
            attack = torchattacks.AutoAttack(model, norm=a.norm, eps=a.eps, version="standard",
                                             n_classes=classes, seed=0)
        else:
            raise SystemExit(f"--attacks: unknown '{name}'")
        start = time.time()
        adv = attack(x, y)
        out["seconds"][name] = round(time.time() - start, 1)
        delta = (adv - x).flatten(1)
        size = delta.abs().amax(1) if a.norm == "Linf" else delta.norm(dim=1)
        if size.max().item() > a.eps * (1 + 1e-5) + 1e-6:
            raise SystemExit(f"{name}: perturbation {size.max().item()} exceeds eps {a.eps}")
        out["robust_accuracy"][name] = robust_accuracy(model, x, y, adv)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
