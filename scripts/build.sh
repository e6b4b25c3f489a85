#!/usr/bin/env bash
# build.sh [BUILD_TYPE] [DIR] - configure and build slotgate with CMake+Ninja.
# BUILD_TYPE: Release (default), Debug, Asan (ASan+UBSan), Tsan.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
type=${1:-Release}
dir=${2:-$top/build}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { cmake -S "$top" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" -DSG_WERROR=ON &&
       ninja -C "$dir"; } >"$log" 2>&1; then
  grep -E -B2 -A6 'error|Error|FAILED' "$log" | head -80 >&2 || tail -40 "$log" >&2
  echo "build.sh: $type build in $dir FAILED" >&2
  exit 1
fi
echo "build.sh: $type build in $dir"
