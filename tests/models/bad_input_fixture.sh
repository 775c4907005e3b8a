# The fuzzer's model file with one flipped bit in the archive's embedded code (it segfaulted the
# TorchScript parser): eval, certify, attack and export refuse it before parsing, exit 1, one line
# naming the file.
source "$(dirname "$0")/../cli/lib.sh"
FIX="$LMT_SOURCE_DIR/../shared/fixtures/bad-input"
[ -f "$FIX/model-segv-1bit.pt" ] || { echo "SKIP: no fixtures at $FIX"; exit 77; }
convert_fmnist fm
# Every command that reads a model file: eval, certify, attack, export.
BAD="model-segv-1bit\.pt: damaged archive \(entry .* fails its CRC-32 check\)"
expect_exit 1 "$BAD" -- timeout 120 "$LMT_BIN" eval --model-file "$FIX/model-segv-1bit.pt" --data fm/test.h5
expect_exit 1 "$BAD" -- timeout 120 "$LMT_BIN" certify --model-file "$FIX/model-segv-1bit.pt" \
  --data fm/test.h5
expect_exit 1 "$BAD" -- timeout 120 "$LMT_BIN" attack --model-file "$FIX/model-segv-1bit.pt" \
  --data fm/test.h5 --norm L2 --eps 0.5 --attacks pgd
expect_exit 1 "$BAD" -- timeout 120 "$LMT_BIN" export --model-file "$FIX/model-segv-1bit.pt" \
  --format torch --out exported.pt
[ ! -e exported.pt ] || fail "export of a damaged model wrote exported.pt"
# The intact model it was made from loads.
timeout 120 "$LMT_BIN" eval --model-file "$FIX/seed-model.pt" --data fm/test.h5 >/dev/null 2>&1 ||
  fail "eval of seed-model.pt"
echo PASS
