"""The Python peer of the JPEG loader benchmark (bench/bench_jpeg_loader.sh): the pipeline a
PyTorch user runs, torchvision ImageFolder + RandomResizedCrop(224) + RandomHorizontalFlip +
ToTensor through a DataLoader (batch 32, shuffled, drop_last, persistent workers), over the same
JPEG files lmt's shards hold. One warm-up epoch (worker start-up, page cache), then EPOCHS timed
epochs. Prints one JSON line: workers, images, seconds, images_per_s.
Run with Debian's /usr/bin/python3 (python3-torch, python3-torchvision, python3-pil).
Usage: torchvision_loader.py TRAIN_DIR WORKERS [EPOCHS=3] [BATCH=32]"""
import json
import sys
import time

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


def main():
    root, workers = sys.argv[1], int(sys.argv[2])
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 32
    torch.set_num_threads(1)
    tf = transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor()])
    loader = DataLoader(datasets.ImageFolder(root, tf), batch_size=batch, shuffle=True,
                        drop_last=True, num_workers=workers, persistent_workers=workers > 0)
    for _ in loader:  # warm-up epoch
        pass
    images = 0
    t0 = time.perf_counter()
    for _ in range(epochs):
        for x, _ in loader:
            images += x.shape[0]
    seconds = time.perf_counter() - t0
    print(json.dumps({"workers": workers, "images": images, "seconds": round(seconds, 3),
                      "images_per_s": round(images / seconds, 1)}))


if __name__ == "__main__":
    main()
