#!/usr/bin/env bash
# gen.sh [--check] - regenerate vectors.json from cases.json with Python's
# official protobuf runtime (not protobuf-c), in a throwaway venv.
# --check: regenerate into a temporary file and fail if vectors.json differs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
"$tmp/venv/bin/python" -m grpc_tools.protoc -I"$here/.." --python_out="$tmp" "$here/../slotgate.proto"
out=$here/vectors.json
[ "${1:-}" = --check ] && out=$tmp/vectors.json
"$tmp/venv/bin/python" "$here/gen_vectors.py" "$here/cases.json" "$tmp" "$out"
if [ "${1:-}" = --check ]; then
  diff -u "$here/vectors.json" "$out" >&2 || { echo "gen.sh: vectors.json is stale; run proto/testdata/gen.sh" >&2; exit 1; }
  echo "gen.sh: vectors.json is up to date"
fi
