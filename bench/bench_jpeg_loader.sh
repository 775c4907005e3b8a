#!/usr/bin/env bash
# The JPEG loader side by side with torchvision, in one run, on the same real photographs
# (bench/prep_jpeg_photos.sh): lmt's loader (bench_loader jpeg: full decode vs the scaled partial
# decode) and torchvision's ImageFolder + RandomResizedCrop(224) + RandomHorizontalFlip +
# ToTensor through a DataLoader (bench/python/torchvision_loader.py), 1 and 2 threads/workers,
# batch 32, one warm-up epoch then EPOCHS timed epochs each. The configurations are interleaved
# REPEATS times (the machine may be shared); the table shows medians (min..max), images/s per
# thread or worker, and ratios of medians.
# Usage: bench/bench_jpeg_loader.sh BUILD_DIR [PHOTO_DIR=bench/photos]
#   env: REPEATS=3 EPOCHS=3 N=384 (photos prepared when PHOTO_DIR/h5 is missing)
set -euo pipefail
build=${1:?usage: bench_jpeg_loader.sh BUILD_DIR [PHOTO_DIR]}
here=$(cd "$(dirname "$0")" && pwd)
photos=${2:-$here/photos}
REPEATS=${REPEATS:-3} EPOCHS=${EPOCHS:-3} N=${N:-384}
py=/usr/bin/python3
[[ -f "$photos/h5/train.h5" ]] || "$here/prep_jpeg_photos.sh" "$build/lmt" "$photos" "$N"
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for ((r = 0; r < REPEATS; ++r)); do
  "$build/bench/bench_loader" jpeg "$photos/h5" "$EPOCHS" | sed 's/^{/{"who":"lmt",/' >>"$results"
  for w in 1 2; do
    "$py" "$here/python/torchvision_loader.py" "$photos/src/train" "$w" "$EPOCHS" |
      sed 's/^{/{"who":"torchvision",/' >>"$results"
  done
done
"$py" - "$results" "$REPEATS" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def rates(who, n, decode=None):
    return [r["images_per_s"] for r in rows if r["who"] == who and
            (r.get("threads") == n or r.get("workers") == n) and
            (decode is None or r.get("decode") == decode)]
print(f"JPEG loader, 224 px, batch 32, real photographs 500x375/375x500 q90; "
      f"{sys.argv[2]} interleaved repeats, {sys.argv[3]} cores, load average {sys.argv[4]}")
print(f"{'pipeline':44} {'n':>2} {'images/s':>20} {'per core':>9} {'vs tv':>6} {'vs full':>8}")
for n in (1, 2):
    tv = statistics.median(rates("torchvision", n))
    full = statistics.median(rates("lmt", n, "full"))
    for label, xs in (("torchvision ImageFolder+RRC+flip+ToTensor", rates("torchvision", n)),
                      ("lmt, full decode + crop + resize", rates("lmt", n, "full")),
                      ("lmt, scaled partial decode", rates("lmt", n, "scaled"))):
        m = statistics.median(xs)
        spread = f"{m:.0f} ({min(xs):.0f}..{max(xs):.0f})"
        vs_full = f"{m / full:.2f}x" if label.startswith("lmt") else ""
        print(f"{label:44} {n:>2} {spread:>20} {m / n:>9.0f} {m / tv:>5.2f}x {vs_full:>8}")
PY
