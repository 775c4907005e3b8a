"""Checks of the EMA and --keep-best runs (tests/train/ema_keep_best.sh) on safetensors exports:
  check_ema.py same A.safetensors B.safetensors
      every tensor bitwise equal
  check_ema.py formula DIR DECAY N
      DIR/live-K.safetensors and DIR/ema-K.safetensors (checkpoint step K's model.pt and ema.pt,
      K = 1..N, --ema-warmup): ema_K = d ema_(K-1) + (1 - d) live_K with d = min(DECAY,
      (1 + n) / (10 + n)), n = K - 1, for every parameter and floating-point buffer; the
      power-iteration vectors *.pi_u and integer buffers are live_K's exactly
  check_ema.py best METRICS BEST.safetensors EPOCH_EMA_PATTERN FINAL.safetensors
      metrics.jsonl's epoch lines: best_epoch is the first epoch of the highest metric so far
      (test_accuracy, or certified_accuracy for certified@: then certified_accuracy_sound, <=
      certified_accuracy, is on exactly the lines that became the best); BEST (model_best.pt)
      records that epoch and holds the EMA weights of the checkpoint at its end
      (EPOCH_EMA_PATTERN % epoch; *.pi_u aside: refreshed by power iteration before a bound),
      which differ from FINAL's (model.pt) when it is not the last epoch"""
import json
import sys

import numpy as np

from safetensors_read import read_safetensors


def same(a_path, b_path):
    _, a = read_safetensors(a_path)
    _, b = read_safetensors(b_path)
    assert sorted(a) == sorted(b), sorted(set(a) ^ set(b))
    differing = [k for k in a if a[k].dtype != b[k].dtype or a[k].tobytes() != b[k].tobytes()]
    assert not differing, f"{len(differing)} tensors differ, e.g. {differing[:5]}"
    print(f"identical: {len(a)} tensors")


def formula(directory, decay, n):
    decay, n = float(decay), int(n)
    live = [read_safetensors(f"{directory}/live-{k}.safetensors")[1] for k in range(1, n + 1)]
    ema = [read_safetensors(f"{directory}/ema-{k}.safetensors")[1] for k in range(1, n + 1)]
    worst = 0.0
    for k in range(2, n + 1):
        d = min(decay, k / (9.0 + k))  # n = k - 1: (1 + n) / (10 + n)
        prev, w, e = ema[k - 2], live[k - 1], ema[k - 1]
        for name in e:
            if name.endswith("pi_u") or e[name].dtype.kind != "f":
                assert e[name].tobytes() == w[name].tobytes(), f"step {k}: {name} not copied"
                continue
            a, x = prev[name].astype(np.float64), w[name].astype(np.float64)
            want = d * a + (1 - d) * x
            # float32: e.mul_(d) and .add_(w, 1 - d) round twice (2^-24 relative each) and d,
            # 1 - d are rounded to float32 (2^-24 each): 4 * 2^-24 of the terms' magnitudes
            # bounds the difference (plus the smallest normal, for zeros).
            bound = 4 * 2.0**-24 * (np.abs(d * a) + np.abs((1 - d) * x)) + 1.2e-38
            err = np.abs(e[name].astype(np.float64) - want)
            assert (err <= bound).all(), f"step {k}: {name} off by {err.max()} (bound {bound.max()})"
            worst = max(worst, float((err / np.maximum(bound, 1e-300)).max()))
        assert any(e[m].tobytes() != w[m].tobytes() for m in e if not m.endswith("pi_u")), \
            f"step {k}: the EMA equals the live weights"
    print(f"EMA formula holds for steps 2..{n} (worst error {worst:.2f} of its bound)")


def best(metrics_path, best_path, epoch_pattern, final_path):
    meta, saved = read_safetensors(best_path)
    certified = meta["train.keep_best"].startswith("certified@")
    key = "certified_accuracy" if certified else "test_accuracy"
    lines = [json.loads(line) for line in open(metrics_path)]
    epochs = [x for x in lines if x.get("type") == "epoch"]
    assert epochs, lines
    top, top_epoch = -1.0, 0
    for x in epochs:
        assert x["evaluated"] == "ema", x
        if x[key] > top:
            top, top_epoch = x[key], x["epoch"]
            if certified:
                assert 0 <= x["certified_accuracy_sound"] <= x["certified_accuracy"], x
        else:
            assert "certified_accuracy_sound" not in x, x
        assert (x["best_epoch"], x["best_value"]) == (top_epoch, top), (x, top_epoch, top)
    assert meta["train.best_epoch"] == str(top_epoch), meta
    assert meta["train.weights"] == "ema", meta
    _, at_epoch = read_safetensors(epoch_pattern % top_epoch if "%" in epoch_pattern
                                   else epoch_pattern)
    names = [k for k in saved if not k.endswith("pi_u")]
    assert sorted(names) == sorted(k for k in at_epoch if not k.endswith("pi_u"))
    differing = [k for k in names if saved[k].tobytes() != at_epoch[k].tobytes()]
    assert not differing, f"model_best differs from epoch {top_epoch}'s EMA: {differing[:5]}"
    _, final = read_safetensors(final_path)
    if top_epoch < epochs[-1]["epoch"]:
        assert any(saved[k].tobytes() != final[k].tobytes() for k in names), "model_best is final"
    print(f"best epoch {top_epoch} of {len(epochs)} by {key} ({top}), model_best.pt holds its EMA "
          f"weights")


if __name__ == "__main__":
    {"same": same, "formula": formula, "best": best}[sys.argv[1]](*sys.argv[2:])
