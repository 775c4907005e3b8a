#!/usr/bin/env bash
# Options come from an INI file, flags override it, and the resolved configuration written beside
# the run reproduces the run when given back with --config, from another directory too (its paths
# are absolute).
source "$(dirname "$0")/lib.sh"
convert_fmnist data

cat > run.ini <<INI
data = data
epochs = 1
batch-size = 32
lr = 0.01
max-steps = 3
seed = 7
model-option = hidden=20
INI
"$LMT_BIN" train --config run.ini --lr 0.002 --out run1 --threads 1 >run1.json 2>run1.err \
  || { cat run1.err; fail "train from config failed"; }
grep -qx "lr = 0.002" run1/config.ini || fail "flag did not override the file (lr)"
grep -qx "batch-size = 32" run1/config.ini || fail "file value missing (batch-size)"
grep -qx "seed = 7" run1/config.ini || fail "file value missing (seed)"
grep -qx "model-option = hidden=20" run1/config.ini || fail "file value missing (model-option)"
grep -qx "momentum = 0.9" run1/config.ini || fail "default missing from the resolved config"
grep -qx "data = $(pwd -P)/data" run1/config.ini || fail "relative --data stored: $(grep ^data run1/config.ini)"
grep -qx "out = $(pwd -P)/run1" run1/config.ini || fail "relative --out stored: $(grep ^out run1/config.ini)"
[ "$(json_field run1.json steps)" = 3 ] || fail "max-steps from the file not honoured"

# The resolved config, given back, trains the same run bit for bit (same seed, data, steps).
sed -i "s|^out = .*|out = $LMT_TEST_TMP/run2|" run1/config.ini
mkdir -p elsewhere
(cd elsewhere && "$LMT_BIN" train --config ../run1/config.ini) >run2.json 2>run2.err ||
  { cat run2.err; fail "rerun"; }
cmp run1/model.pt run2/model.pt >/dev/null || {
  [ "$(json_field run1.json train_accuracy)" = "$(json_field run2.json train_accuracy)" ] \
    || fail "rerun from the resolved config differs"; }
a=$(head -c 200 run1/metrics.jsonl | grep -Eo '"loss":[-0-9.eE+]+'); b=$(head -c 200 run2/metrics.jsonl | grep -Eo '"loss":[-0-9.eE+]+')
[ "$a" = "$b" ] || fail "rerun loss differs: $a vs $b"
echo "config file: all checks passed"
