#!/usr/bin/env bash
# lmt convert imagenet --jpeg on a generated tree (torchvision-written JPEGs, one corrupt, one
# grayscale): skip/fail behaviour, the index read back with h5py, then lmt train on the JPEG
# shards unchanged, on 1 and on 2 ranks (mpirun).
set -euo pipefail
: "${LMT_BIN:?}" "${LMT_TEST_TMP:?}"
rm -rf "$LMT_TEST_TMP" && mkdir -p "$LMT_TEST_TMP" && cd "$LMT_TEST_TMP"
fail() { echo "FAIL: $*" >&2; exit 1; }
PY=/usr/bin/python3
$PY -c "import torchvision.io, h5py" 2>/dev/null || { echo "torchvision/h5py missing"; exit 77; }

$PY - <<'PYEOF'
import os, torch
from torchvision.io import encode_jpeg, write_file
torch.manual_seed(0)
for split, n in (("train", 12), ("val", 3)):
    for c in range(3):
        d = f"src/{split}/n0{c}"
        os.makedirs(d, exist_ok=True)
        for i in range(n):
            img = (torch.rand(3, 40 + i, 52) * 30).to(torch.uint8)
            img[c] += 180
            write_file(f"{d}/{i:02d}.JPEG", encode_jpeg(img, quality=90))
write_file("src/train/n01/gray.JPEG", encode_jpeg(torch.full((1, 30, 30), 120, dtype=torch.uint8)))
good = open("src/train/n00/00.JPEG", "rb").read()
open("src/train/n00/zz_bad.JPEG", "wb").write(good[: len(good) // 3])
PYEOF

rc=0
"$LMT_BIN" convert imagenet --src src --out fail_out --jpeg --threads 2 >/dev/null 2>err.txt || rc=$?
[ "$rc" -ne 0 ] || fail "a corrupt JPEG did not fail the conversion"
grep -q "zz_bad.JPEG" err.txt || { cat err.txt; fail "the error does not name the corrupt file"; }
[ ! -e fail_out/train.h5 ] || fail "a failed conversion left train.h5"

"$LMT_BIN" convert imagenet --src src --out data --jpeg --threads 2 --on-bad-image skip \
  --shard-bytes 20000 >convert.json 2>convert.err || { cat convert.err; fail "convert failed"; }
grep -q "skipped" convert.err || fail "no skipped line in the progress"
$PY - <<'PYEOF'
import h5py
f = h5py.File("data/train.h5", "r")
text = lambda v: v.decode() if isinstance(v, bytes) else v  # fixed-length strings read as bytes
assert text(f.attrs["layout"]) == "shards" and text(f.attrs["storage"]) == "jpeg", dict(f.attrs)
assert int(f.attrs["skipped_images"]) == 1, f.attrs["skipped_images"]
labels = f["labels"][:]
assert len(labels) == 37, len(labels)  # 36 + gray, minus the corrupt one
assert list(labels).count(1) == 13, labels
assert len(f.attrs["shard_files"]) > 1
t = h5py.File("data/test.h5", "r")
assert len(t["labels"][:]) == 9
print("index ok:", len(labels), "train,", len(f.attrs["shard_files"]), "shards")
PYEOF

common=(--data data --model lmt-mnist --epochs 2 --batch-size 8 --pad-to 32 --hflip true
        --seed 3 --threads 1 --loader-threads 2 --log-every 1)
"$LMT_BIN" train "${common[@]}" --out run1 >train1.json 2>train1.err \
  || { cat train1.err; fail "1-rank train on JPEG shards failed"; }
grep -q '"test_accuracy":' run1/metrics.jsonl || fail "no test accuracy (1 rank)"
command -v mpirun >/dev/null || { echo "mpirun missing: 2-rank part skipped"; exit 0; }
mpirun --allow-run-as-root -np 2 --bind-to none "$LMT_BIN" train "${common[@]}" --out run2 \
  >train2.json 2>train2.err || { cat train2.err; fail "2-rank train on JPEG shards failed"; }
grep -q '"test_accuracy":' run2/metrics.jsonl || fail "no test accuracy (2 ranks)"
# Same global batches on 1 and 2 ranks (DDP semantics): epoch 1's test loss agrees.
test_loss() { grep -m 1 '"type":"epoch"' "$1" | grep -Eo '"test_loss":[-0-9.eE+]+' | cut -d: -f2; }
l1=$(test_loss run1/metrics.jsonl)
l2=$(test_loss run2/metrics.jsonl)
awk -v a="$l1" -v b="$l2" 'BEGIN { d = a - b; exit !(a != "" && d < 1e-3 && d > -1e-3) }' \
  || fail "epoch-1 test loss differs: 1 rank $l1, 2 ranks $l2"
echo "imagenet cli: all checks passed"
