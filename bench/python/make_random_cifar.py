"""A random CIFAR-shaped dataset in lmt's dataset file schema (images uint8 [N,S,S,3], labels
int32, attributes as `lmt convert` writes them), for ResNet step timings without CIFAR (S = 32)
or ImageNet (S = 224, scripts/gpu-check.sh).
Usage: make_random_cifar.py OUT_DIR [train_images] [size (32)] [test_images (256)]"""
import os
import sys

import h5py
import numpy as np


def write(path, n, rng, size=32):
    images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.int32)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images, chunks=(1, size, size, 3))
        f.create_dataset("labels", data=labels)
        for k in ("num_classes", "height", "width", "channels"):
            f.attrs[k] = np.int64({"num_classes": 10}.get(k, 3 if k == "channels" else size))
        f.attrs["source"] = "random-cifar-shape"
        f.attrs["class_names"] = [f"class{i}" for i in range(10)]
        f.attrs["mean"] = np.array([0.5] * 3, dtype=np.float32)
        f.attrs["std"] = np.array([0.29] * 3, dtype=np.float32)


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(1)
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    write(os.path.join(out, "train.h5"), int(sys.argv[2]) if len(sys.argv) > 2 else 2048, rng, size)
    write(os.path.join(out, "test.h5"), int(sys.argv[4]) if len(sys.argv) > 4 else 256, rng, size)
