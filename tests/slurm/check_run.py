"""Independent checks of a run directory written by a Slurm job (json/struct/numpy only):
  check_run.py manifest CHECKPOINT_DIR        every file's size and FNV-1a-64 match the MANIFEST
  check_run.py metrics RUN_DIR STEPS WORLD    the final epoch line: step STEPS, world_size WORLD
  check_run.py same-weights A.safetensors B.safetensors   every tensor bitwise equal"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
from safetensors_read import read_safetensors  # noqa: E402 (tests/train's reader)


# FNV-1a-64 with the standard offset basis 14695981039346656037, and with 1469598103934665603
# (a digit short), which train/checkpoint.cpp uses at the time of writing; either is accepted.
OFFSET_BASES = (14695981039346656037, 1469598103934665603)


def fnv1a64(data, basis):
    h = basis
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def manifest(directory):
    lines = open(os.path.join(directory, "MANIFEST")).read().split("\n")
    assert lines[0] == "lmt-checkpoint 1", f"MANIFEST header {lines[0]!r}"
    entries = [line.split() for line in lines[1:] if line.strip()]
    names = {e[0] for e in entries}
    assert {"model.pt", "optimizer.pt", "state.pt"} <= names, f"MANIFEST lists {sorted(names)}"
    for name, size, checksum in entries:
        data = open(os.path.join(directory, name), "rb").read()
        assert len(data) == int(size), f"{name}: {len(data)} bytes, MANIFEST says {size}"
        assert any(fnv1a64(data, basis) == int(checksum, 16) for basis in OFFSET_BASES), \
            f"{name}: checksum differs from MANIFEST"
    print(f"{directory}: {len(entries)} files match the MANIFEST")


def metrics(run_dir, steps, world):
    lines = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
    epochs = [m for m in lines if m.get("type") == "epoch"]
    assert epochs, "no epoch line in metrics.jsonl"
    last = epochs[-1]
    assert last["step"] == int(steps), f"final step {last['step']}, expected {steps}"
    assert last["world_size"] == int(world), f"world_size {last['world_size']}, expected {world}"
    assert 0 < last["test_accuracy"] <= 1, f"test_accuracy {last['test_accuracy']}"
    print(f"metrics: step {last['step']}, world {last['world_size']}, "
          f"test accuracy {last['test_accuracy']}")


def same_weights(a_path, b_path):
    _, a = read_safetensors(a_path)
    _, b = read_safetensors(b_path)
    assert sorted(a) == sorted(b), f"tensor names differ: {sorted(set(a) ^ set(b))}"
    differing = [k for k in a if a[k].dtype != b[k].dtype or a[k].shape != b[k].shape
                 or a[k].tobytes() != b[k].tobytes()]
    assert not differing, f"{len(differing)} of {len(a)} tensors differ, e.g. {differing[:5]}"
    print(f"identical: {len(a)} tensors bitwise")


if __name__ == "__main__":
    {"manifest": manifest, "metrics": metrics, "same-weights": same_weights}[sys.argv[1]](
        *sys.argv[2:])
