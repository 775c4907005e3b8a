"""Asserts two runs ended identically: every tensor of two safetensors exports bitwise equal, and
the metrics.jsonl lines equal except timing fields. Usage: compare_runs.py A.safetensors
B.safetensors A/metrics.jsonl B/metrics.jsonl"""
import json
import sys

from safetensors_read import read_safetensors

TIMING = {"wall_s", "images_per_s"}


def main(a_st, b_st, a_metrics, b_metrics):
    _, a = read_safetensors(a_st)
    _, b = read_safetensors(b_st)
    assert sorted(a) == sorted(b), f"tensor names differ: {sorted(set(a) ^ set(b))}"
    differing = [k for k in a if a[k].dtype != b[k].dtype or a[k].shape != b[k].shape
                 or a[k].tobytes() != b[k].tobytes()]
    assert not differing, f"{len(differing)} tensors differ, e.g. {differing[:5]}"
    la = [json.loads(line) for line in open(a_metrics)]
    lb = [json.loads(line) for line in open(b_metrics)]
    assert len(la) == len(lb) and la, f"metrics line counts differ: {len(la)} vs {len(lb)}"
    for x, y in zip(la, lb):
        x = {k: v for k, v in x.items() if k not in TIMING}
        y = {k: v for k, v in y.items() if k not in TIMING}
        assert x == y, f"metrics lines differ:\n{x}\n{y}"
    print(f"identical: {len(a)} tensors bitwise, {len(la)} metrics lines")


if __name__ == "__main__":
    main(*sys.argv[1:5])
