# Damaged and non-finite model files at the CLI: a flipped weight byte and a truncated file are
# refused by eval (the zip CRC-32 / structure check); a NaN weight and a +inf bias are refused by
# eval, certify, attack and export, each with one line naming the file and the tensor, exit 1.
source "$(dirname "$0")/../cli/lib.sh"
TOOL="$LMT_BUILD_DIR/tests/models/model_file_tool"
[ -x "$TOOL" ] || fail "model_file_tool not built at $TOOL"
convert_fmnist fm
"$LMT_BIN" train --data fm --out run --batch-size 500 --max-steps 5 --threads 1 \
  --log-every 1000 >train.log 2>&1 || { cat train.log; fail "train"; }
M=run/model.pt
T=(timeout 120)  # a hang fails the test instead of stalling the suite

cp "$M" flipped.pt
size=$(stat -c %s flipped.pt)
offset=$((size / 2))  # inside the weights: they are ~97% of the file
byte=$(od -An -tu1 -j"$offset" -N1 flipped.pt | tr -d ' ')
printf "$(printf '\\%03o' $((byte ^ 1)))" | dd of=flipped.pt bs=1 seek="$offset" conv=notrunc 2>/dev/null
expect_exit 1 "flipped\.pt: damaged archive \(entry .* fails its CRC-32 check\)" -- \
  "${T[@]}" "$LMT_BIN" eval --model-file flipped.pt --data fm/test.h5
head -c $((size / 2)) "$M" > truncated.pt
expect_exit 1 "truncated\.pt: damaged archive" -- \
  "${T[@]}" "$LMT_BIN" eval --model-file truncated.pt --data fm/test.h5

"$TOOL" poison "$M" nan.pt conv1.weight nan || fail "poison nan"
"$TOOL" poison "$M" inf.pt fc2.bias inf || fail "poison inf"
for f in nan.pt inf.pt; do
  what="parameter 'conv1\.weight' holds NaN"
  [ "$f" = inf.pt ] && what="parameter 'fc2\.bias' holds \+inf"
  expect_exit 1 "$f: $what" -- "${T[@]}" "$LMT_BIN" eval --model-file "$f" --data fm/test.h5
  expect_exit 1 "$f: $what" -- "${T[@]}" "$LMT_BIN" certify --model-file "$f" --data fm/test.h5
  expect_exit 1 "$f: $what" -- "${T[@]}" "$LMT_BIN" attack --model-file "$f" --data fm/test.h5 \
    --norm L2 --eps 0.5 --n 10
  expect_exit 1 "$f: $what" -- "${T[@]}" "$LMT_BIN" export --model-file "$f" \
    --format safetensors --out "$f.safetensors"
  [ ! -e "$f.safetensors" ] || fail "export of $f wrote a file"
done
# The intact model still passes every command's check.
"${T[@]}" "$LMT_BIN" eval --model-file "$M" --data fm/test.h5 >/dev/null 2>&1 || fail "eval of $M"
echo PASS
