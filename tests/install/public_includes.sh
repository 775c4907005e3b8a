#!/bin/bash
# The lmt CLI (launch/) and the example are users of the public API: each #include is a public
# header <lmt/ROOM/x.h> that exists in ROOM/include/lmt/ROOM/, a file of the including folder
# itself ("x.h", no path), or an outside header (never <torch/torch.h>, never a room's private one).
set -uo pipefail
SRC="${LMT_SOURCE_DIR:?}"
TMP="${LMT_TEST_TMP:-/tmp/lmt-public-includes}"
rm -rf "$TMP" && mkdir -p "$TMP"
fail() { echo "FAIL: $*"; exit 1; }

# Private headers of the rooms: ROOM/*.h outside ROOM/include.
private_names=$(cd "$SRC" && ls -1 {lipschitz,data,dist,models,attack,train}/*.h 2>/dev/null \
  | xargs -r -n1 basename | sort -u)

# check_dir DIR: prints one line per offending include; exit status = number of them (capped).
check_dir() {
  local dir=$1 bad=0 file line target
  for file in "$dir"/*.cpp "$dir"/*.h; do
    [ -f "$file" ] || continue
    while IFS= read -r line; do
      if [[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]]; then
        target=${BASH_REMATCH[1]}
        if [[ $target == */* || ! -f $dir/$target ]]; then
          echo "$file: $line (a quoted include must name a file of $(basename "$dir")/)"; bad=$((bad + 1))
        fi
      elif [[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\<([^\>]+)\> ]]; then
        target=${BASH_REMATCH[1]}
        if [[ $target == lmt/* ]]; then
          local room=${target#lmt/}; room=${room%%/*}
          [ -f "$SRC/$room/include/$target" ] \
            || { echo "$file: $line (not a public header of $room/)"; bad=$((bad + 1)); }
        elif [[ $target == torch/torch.h ]]; then
          echo "$file: $line (the torch include policy: narrow headers only)"; bad=$((bad + 1))
        elif [[ $target != */* ]] && grep -qxF "$target" <<<"$private_names"; then
          echo "$file: $line (a room's private header)"; bad=$((bad + 1))
        elif [[ $target =~ ^(lipschitz|data|dist|models|attack|train)/ ]]; then
          echo "$file: $line (a room's source folder)"; bad=$((bad + 1))
        fi
      fi
    done < "$file"
  done
  return $((bad > 100 ? 100 : bad))
}

# The checker itself finds planted private includes (by path, by name, by source folder) and a
# missing public header, and lets an outside header pass.
mkdir -p "$TMP/planted"
printf '#include <lmt/dist/runtime.h>\n#include "../dist/collective_watchdog.h"\n' > "$TMP/planted/a.cpp"
printf '#include <lmt/dist/collective_watchdog.h>\n#include <spectral.h>\n' > "$TMP/planted/b.cpp"
printf '#include <models/model_parts.h>\n#include <boost/program_options.hpp>\n' > "$TMP/planted/c.h"
check_dir "$TMP/planted" > "$TMP/planted.txt"; planted=$?
[ "$planted" -eq 4 ] || { cat "$TMP/planted.txt"; fail "checker found $planted of 4 planted violations"; }

[ -f "$SRC/launch/main.cpp" ] || fail "no launch/main.cpp under $SRC"
check_dir "$SRC/launch" || fail "launch/ includes something other than public headers (above)"
if [ -d "$SRC/examples" ]; then
  check_dir "$SRC/examples" || fail "examples/ includes something other than public headers (above)"
fi
echo "PASS: launch/ and examples/ include only public lmt headers"
