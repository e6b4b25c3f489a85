#!/usr/bin/env bash
# build.sh [BUILD_TYPE] [DIR] - configure and build slotgate with CMake+Ninja.
# BUILD_TYPE: Release (default), Debug, Asan (ASan+UBSan), Tsan.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
type=${1:-Release}
dir=${2:-$top/build}
cmake -S "$top" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" -DSG_WERROR=ON >/dev/null
ninja -C "$dir" >/dev/null
echo "build.sh: $type build in $dir"
