#!/usr/bin/env bash
# gen.sh [OUTDIR] - generate the Go messages of proto/slotgate.proto with
# protoc and protoc-gen-go (both must be in PATH) into OUTDIR (default
# slotgatepb/, the committed copy). test.sh runs it into a scratch directory
# and diffs, so the committed code is always what the generator produces.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd -P)
OUT=${1:-$HERE/slotgatepb}
mkdir -p "$OUT"
protoc -I "$HERE/../../proto" \
    --go_out="$OUT" --go_opt=paths=source_relative \
    --go_opt=Mslotgate.proto='github.com/slotgate/slotgate/clients/go/slotgatepb;slotgatepb' \
    slotgate.proto
