#!/usr/bin/env bash
# test.sh - the one command that installs what is missing, builds, and runs
# the whole test suite:
#   1. unit and integration tests (real Redis Cluster, real slotgate over TLS)
#      and the C client's conformance run, on a Release build;
#   2. every other client's suite (TypeScript, Python, Go): unit tests, golden
#      vectors, and the conformance scenarios against a live slotgate;
#   3. the C suite again under ASan+UBSan, then under ThreadSanitizer (the
#      proxy runs two worker threads in every test).
# SG_TEST_QUICK=1 skips the sanitizer passes (for local iteration only).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:exitcode=66}
total=0
run_suite() {
  local type=$1 dir=$2 log
  scripts/build.sh "$type" "$dir"
  log=$(mktemp)
  (cd "$dir" && ctest --output-on-failure --timeout 600) | tee "$log"
  local rc=${PIPESTATUS[0]} n
  n=$(sed -n 's/.*tests passed, 0 tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -1)
  rm -f "$log"
  [ "$rc" -eq 0 ] || exit "$rc"
  total=$((total + ${n:-0}))
}
# A client's test.sh installs its own toolchain dependencies (npm ci, a
# Python venv, Go modules) and runs its conformance suite through
# tests/conformance/run.sh, which reuses the Release slotgate in build-test.
run_client() {
  local name=$1 log n
  echo "== client: $name"
  log=$(mktemp)
  SLOTGATE_BIN="$top/build-test/slotgate" "clients/$name/test.sh" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  # Tests counted from the runner's own summary where it prints one.
  case $name in
    typescript) n=$(awk '/^ℹ pass [0-9]+$/ {s += $3} END {print s + 0}' "$log") ;;
    python) n=$(awk '/^[0-9]+ passed/ {s += $1} END {print s + 0}' "$log") ;;
    go) n=$(grep -c -- '--- PASS' "$log" || true) ;;
  esac
  rm -f "$log"
  [ "$rc" -eq 0 ] || { echo "test.sh: client suite $name failed" >&2; exit "$rc"; }
  total=$((total + ${n:-1}))
}
run_suite Release build-test
run_client typescript
run_client python
run_client go
if [ "${SG_TEST_QUICK:-0}" != 1 ]; then
  run_suite Asan build-asan
  run_suite Tsan build-tsan
fi
echo "test.sh: all suites passed (Release, clients, ASan+UBSan, TSan unless SG_TEST_QUICK=1)"
echo "$total passed, 0 failed"
