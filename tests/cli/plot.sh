#!/usr/bin/env bash
# Plots as a user makes them: `certify --plot` and `--curve-csv` on a trained model, `lmt plot` on
# two runs' metrics.jsonl. The PNGs are gnuplot's (pngcairo) at the requested size; the CSV is
# the curve the JSON's certified accuracies are read from; bad input gets one line, a non-zero
# exit and no file.
source "$(dirname "$0")/lib.sh"
command -v gnuplot >/dev/null || { echo "gnuplot missing (scripts/setup.sh installs gnuplot-nox)"; exit 77; }
convert_fmnist data
mkdir scratch && export TMPDIR=$PWD/scratch  # gnuplot's working directories go here

# png_size FILE: "WIDTHxHEIGHT" from the IHDR chunk, after checking the PNG signature.
png_size() {
  [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || return 1
  od -An -tu1 -j16 -N8 "$1" | awk '{ printf "%dx%d", $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8 }'
}

common=(--data data --epochs 2 --max-steps 120 --log-every 20 --threads 2 --seed 3)
"$LMT_BIN" train "${common[@]}" --out ce --model lmt-mnist >ce.json 2>ce.err \
  || { cat ce.err; fail "ce run failed"; }
"$LMT_BIN" train "${common[@]}" --config "$LMT_SOURCE_DIR/configs/fmnist-lmt.ini" --out lmt \
  >lmt.json 2>lmt.err || { cat lmt.err; fail "lmt run failed"; }

# certify: the plot at the requested size, the curve as CSV.
"$LMT_BIN" certify --model-file lmt/model.pt --data data/test.h5 --eps 0.1,0.3,1 \
  --plot cert.png --plot-size 700x450 --curve-csv cert.csv >cert.json 2>cert.err \
  || { cat cert.err; fail "certify --plot failed"; }
[ "$(png_size cert.png)" = 700x450 ] || fail "cert.png is $(png_size cert.png), not a 700x450 PNG"
[ "$(head -n 1 cert.csv)" = "radius,certified_accuracy" ] || fail "CSV header: $(head -n 1 cert.csv)"
# The CSV's curve gives the JSON's figures: at each eps, the first row with radius >= eps. Both
# are counts over the 10000 test images, compared as counts (JSON numbers have 10 digits).
n=$(json_field cert.json count)
clean=$(json_field cert.json clean_accuracy)
accs=$(tail -n 1 cert.json | grep -Eo '"certified_accuracy":\[[^]]*\]' | cut -d'[' -f2 | tr -d ']')
awk -F, -v n="$n" -v clean="$clean" -v eps="0.1,0.3,1" -v accs="$accs" '
  NR == 1 { next }
  { r[NR] = $1; a[NR] = $2; rows = NR }
  END {
    if (rows < 3) { print "too few rows"; exit 1 }
    if (r[2] != 0 || int(a[2] * n + 0.5) != int(clean * n + 0.5)) { print "row 0 is not the clean accuracy"; exit 1 }
    for (i = 3; i <= rows; i++)
      if (!(r[i] > r[i-1]) || a[i] > a[i-1]) { print "not a decreasing curve at row " i; exit 1 }
    k = split(eps, e, ","); split(accs, want, ",")
    for (j = 1; j <= k; j++) {
      got = 0
      for (i = 2; i <= rows; i++) if (r[i] >= e[j]) { got = a[i]; break }
      if (int(got * n + 0.5) != int(want[j] * n + 0.5)) { print "eps " e[j] ": csv " got ", json " want[j]; exit 1 }
    }
  }' cert.csv || fail "the CSV curve disagrees with certify's JSON"

# lmt plot: two runs overlaid, by run directory and by metrics.jsonl path, steps and epochs.
"$LMT_BIN" plot ce lmt/metrics.jsonl --out curves.png --size 900x600 2>plot.err \
  || { cat plot.err; fail "lmt plot failed"; }
[ "$(png_size curves.png)" = 900x600 ] || fail "curves.png is $(png_size curves.png)"
grep -q "2 run(s)" plot.err || fail "plot did not report two runs: $(cat plot.err)"
"$LMT_BIN" plot ce lmt --x epoch --out epochs.png 2>/dev/null || fail "lmt plot --x epoch failed"
[ "$(png_size epochs.png)" = 1200x800 ] || fail "the default size is not 1200x800"
cmp -s curves.png epochs.png && fail "steps and epochs drew the same picture"

# Bad input: one line naming the culprit, a non-zero exit, nothing written.
expect_exit 1 "nosuch: no such run directory" -- "$LMT_BIN" plot nosuch --out bad.png
expect_exit 2 "at least one run" -- "$LMT_BIN" plot --out bad.png
expect_exit 2 "'--size'.*10x10" -- "$LMT_BIN" plot ce --out bad.png --size 10x10
expect_exit 2 "'--plot-size'" -- "$LMT_BIN" certify --model-file lmt/model.pt --data data/test.h5 \
  --plot bad.png --plot-size big
mkdir broken && { head -n 2 ce/metrics.jsonl; echo '{"type":"step","step":'; } >broken/metrics.jsonl
expect_exit 1 "broken/metrics.jsonl:3: malformed JSON" -- "$LMT_BIN" plot broken --out bad.png
LMT_GNUPLOT=/nonexistent/gnuplot expect_exit 1 "not found.*gnuplot" -- "$LMT_BIN" plot ce --out bad.png
[ ! -e bad.png ] || fail "a failed plot left bad.png"
# A failing gnuplot leaves an existing file as it was.
cp curves.png keep.png
LMT_GNUPLOT=false expect_exit 1 "gnuplot failed" -- "$LMT_BIN" plot ce --out keep.png
cmp -s curves.png keep.png || fail "a failed plot changed the existing file"
[ -z "$(ls -A scratch)" ] || fail "temporary files left in \$TMPDIR: $(ls scratch)"
echo "plot: all checks passed"
