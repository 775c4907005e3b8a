#!/usr/bin/env bash
# Prepares the real-photograph JPEG set of the JPEG loader benchmark (bench/bench_jpeg_loader.sh):
# the 12 nature photographs of Debian's mate-backgrounds package (1280x1024 .. 2560x1920
# camera photos: dune, flowers, meadow, wood, rain drops, ...), fetched with `apt-get download`
# and unpacked with `dpkg -x` into a scratch folder (nothing is installed), cut into N crops
# (random position, 30-100% of the largest 4:3 or 3:4 rectangle, every third one portrait),
# each resized (Lanczos) to ImageNet's typical 500x375 / 375x500 and saved at quality 90 (PIL,
# 4:2:0) as an ImageNet tree (one class per photograph, 2 val images per class), then converted
# with `lmt convert imagenet --jpeg` to HDF5 shards.
# Usage: bench/prep_jpeg_photos.sh LMT_BINARY [OUT_DIR=bench/photos] [N=384]
# Output: OUT_DIR/src/{train,val}/<wnid>/*.JPEG and OUT_DIR/h5/{train,test}.h5 (+ shards).
# OUT_DIR is ignored by git (.gitignore: /bench/photos/). Set PHOTO_DIR to use a folder of your
# own JPEG photographs instead of the package.
set -euo pipefail
lmt=${1:?usage: prep_jpeg_photos.sh LMT_BINARY [OUT_DIR] [N]}
out=${2:-$(dirname "$0")/photos}
n=${3:-384}
py=/usr/bin/python3  # Debian's python3 with PIL (python3-pil)
rm -rf "$out/src" "$out/h5"
mkdir -p "$out"
if [[ -z "${PHOTO_DIR:-}" ]]; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  (cd "$scratch" && apt-get download mate-backgrounds >/dev/null 2>&1 &&
    dpkg -x mate-backgrounds_*.deb unpacked) ||
    { echo "prep_jpeg_photos: cannot fetch mate-backgrounds (set PHOTO_DIR)" >&2; exit 1; }
  PHOTO_DIR=$scratch/unpacked/usr/share/backgrounds/mate/nature
fi
"$py" - "$PHOTO_DIR" "$out/src" "$n" <<'PY'
import os, random, sys
from PIL import Image
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
photos = sorted(f for f in os.listdir(src) if f.lower().endswith(('.jpg', '.jpeg')))
if not photos:
    sys.exit(f"prep_jpeg_photos: no .jpg files in {src}")
rng = random.Random(20)
images = [Image.open(os.path.join(src, f)).convert('RGB') for f in photos]
def crop(im, i):
    portrait = i % 3 == 0
    tw, th = (375, 500) if portrait else (500, 375)
    W, H = im.size
    s = min(W / tw, H / th) * rng.uniform(0.3, 1.0)
    w, h = tw * s, th * s
    x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
    return im.resize((tw, th), Image.LANCZOS, box=(x, y, x + w, y + h))
per_class_val = 2
for i in range(n + per_class_val * len(photos)):
    c = i % len(photos)
    split = 'train' if i < n else 'val'
    d = os.path.join(dst, split, 'n%08d' % (1000 + c))
    os.makedirs(d, exist_ok=True)
    crop(images[c], i).save(os.path.join(d, '%05d.JPEG' % i), quality=90)
print(f"prep_jpeg_photos: {n} train + {per_class_val * len(photos)} val JPEGs from "
      f"{len(photos)} photographs in {dst}")
PY
"$lmt" convert imagenet --src "$out/src" --out "$out/h5" --jpeg >/dev/null
echo "prep_jpeg_photos: HDF5 shards in $out/h5"
