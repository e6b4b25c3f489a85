#!/usr/bin/env bash
# check_exports.sh LIB INCLUDE_DIR - the dynamic symbols libslotgate.so
# defines are exactly the functions its public headers declare with SG_API
# (and every one starts with sg_): no internals (sg_xmalloc, sg_transport_*),
# no protobuf-c, no test hooks.
set -euo pipefail
lib=$1 inc=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort -u >"$tmp/exported"
cat "$inc/slotgate.h" "$inc/slotgate/async.h" | grep -v "^#" | tr '\n' ' ' | grep -oE 'SG_API [^;{]*\(' |
  grep -oE '[A-Za-z_0-9]+ *\($' | tr -d ' (' | sort -u >"$tmp/declared"
status=0
if grep -v '^sg_' "$tmp/exported"; then
  echo "check_exports: exported names without the sg_ prefix (above)" >&2
  status=1
fi
if ! diff -u "$tmp/declared" "$tmp/exported"; then
  echo "check_exports: exports differ from the public headers (- declared only, + exported only)" >&2
  status=1
fi
[ $status -eq 0 ] && echo "check_exports: $(wc -l <"$tmp/exported") public names, nothing else"
exit $status
