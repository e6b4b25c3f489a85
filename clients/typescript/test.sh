#!/usr/bin/env bash
# test.sh - build and test the TypeScript client from a fresh checkout:
#   1. npm ci (from the committed package-lock.json; needs Node >= 18 and npm)
#   2. build: code generation from proto/slotgate.proto (buf + protoc-gen-es,
#      both from npm) and tsc
#   3. unit tests, golden vectors, and the conformance scenarios that need no
#      cluster against the in-memory fake (node --test)
#   4. the whole conformance suite, then examples/game-server.mjs, against a
#      live slotgate and Redis Cluster, through tests/conformance/run.sh
#      (which builds slotgate unless SLOTGATE_BIN is set)
# Exits non-zero if any step fails. SG_CONF_ONLY (comma-separated scenario
# names) is passed through to the adapter.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
TOP=$(cd "$HERE/../.." && pwd -P)
cd "$HERE"

die() { echo "clients/typescript/test.sh: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || die "node not found (Node.js >= 18 is required)"
command -v npm >/dev/null 2>&1 || die "npm not found"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || die "Node.js $(node --version) is too old (>= 18 required)"

echo "== npm ci"
npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed"
echo "== build (codegen + tsc)"
npm run --silent build || die "build failed"

rc=0
echo "== type declarations, as a TypeScript user sees them"
npx --no-install tsc -p test/types/tsconfig.json || rc=1
echo "== unit tests, golden vectors, in-memory conformance"
node --test --test-reporter=spec test/unit/*.test.mjs test/conformance/memory.test.mjs || rc=1
echo "== example (in-memory)"
node examples/game-server.mjs --memory || rc=1

echo "== conformance suite and the example against a live slotgate"
"$TOP/tests/conformance/run.sh" -- sh -c '
    node --test --test-reporter=spec "$1/test/conformance/proxy.test.mjs" || exit 1
    echo "== example (live slotgate)"
    node "$1/examples/game-server.mjs"' sh "$HERE" || rc=1

if [ "$rc" -eq 0 ]; then
    echo "clients/typescript/test.sh: all passed"
else
    echo "clients/typescript/test.sh: FAILED" >&2
fi
exit "$rc"
