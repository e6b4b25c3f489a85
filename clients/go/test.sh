#!/usr/bin/env bash
# test.sh - everything the Go client needs, from a fresh machine:
#   1. protoc (Debian's protobuf-compiler) if missing; Go modules;
#      protoc-gen-go at the version go.mod pins;
#   2. the generated code is current: regenerate and diff with slotgatepb/;
#   3. go vet of the client and of bench/go;
#   4. go test -race: unit tests, golden vectors, fault injection and the
#      conformance suite on the in-memory fake;
#   5. the live suite under tests/conformance/run.sh (a real slotgate on a
#      real Redis Cluster): conformance scenarios, GameCache, live tests.
# Exit status non-zero on any failure. GOMAXPROCS and -p are kept low: the
# test machines have 2 cores.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd -P)
TOP=$(cd "$HERE/../.." && pwd -P)
die() { echo "clients/go/test.sh: $*" >&2; exit 1; }
command -v go >/dev/null 2>&1 || die "go not found in PATH"
cd "$HERE"

if ! command -v protoc >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -qq protobuf-compiler >/dev/null 2>&1 ||
        { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq protobuf-compiler >/dev/null; } ||
        die "cannot install protobuf-compiler"
fi

go mod download
PGG=$(go list -m -f '{{.Version}}' google.golang.org/protobuf)
TOOLS=${XDG_CACHE_HOME:-$HOME/.cache}/slotgate-go-tools/protoc-gen-go-$PGG
if [ ! -x "$TOOLS/protoc-gen-go" ]; then
    GOBIN="$TOOLS" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PGG"
fi

echo "== generated code is current (protoc $(protoc --version | awk '{print $2}'), protoc-gen-go $PGG)"
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
PATH="$TOOLS:$PATH" ./gen.sh "$SCRATCH"
diff -u slotgatepb/slotgate.pb.go "$SCRATCH/slotgate.pb.go" ||
    die "slotgatepb/slotgate.pb.go is stale: run PATH=\$PATH:$TOOLS clients/go/gen.sh"

echo "== go vet"
go vet ./...
(cd "$TOP/bench/go" && go mod download && go vet ./...)

export GOMAXPROCS=${GOMAXPROCS:-2}
echo "== go test -race (unit, golden vectors, faults, conformance on the fake)"
go test -race -count=1 -p 1 ./...

echo "== go test -race under tests/conformance/run.sh (live slotgate)"
"$TOP/tests/conformance/run.sh" -- go test -race -count=1 -p 1 -run 'Conformance|GameCache|Live' -v ./... \
    > "$SCRATCH/live.log" 2>&1 || { cat "$SCRATCH/live.log"; die "live suite failed"; }
grep -E '^(--- |ok|FAIL|PASS)' "$SCRATCH/live.log"
echo "clients/go: all tests passed"
