#!/usr/bin/env bash
# run.sh - the TypeScript client benchmark in one command: installs the Node
# dependencies (npm ci) of the client and of the benchmark, builds the
# client, then runs bench.mjs against a throwaway Redis Cluster and slotgate
# started by tests/conformance/run.sh (SLOTGATE_BIN to use a given proxy).
# Knobs: see the top of bench.mjs (BENCH_OPS, BENCH_ROUNDS, ...).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
TOP=$(cd "$HERE/../.." && pwd -P)
(cd "$TOP/clients/typescript" && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
exec "$TOP/tests/conformance/run.sh" -- node "$HERE/bench.mjs"
