#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer: builds the fuzz targets with clang
# (-fsanitize=fuzzer,address,undefined) in build-fuzz/ and runs each for
# SECONDS (default 60) on a scratch copy of its seed corpus.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]      e.g. run.sh 30 fuzz_resp
#
# Findings land in build-fuzz/findings/<target>/ (crash-*, leak-*, oom-*);
# new interesting inputs in build-fuzz/corpus/<target>/ (copy the small ones
# worth keeping into tests/fuzz/corpus/<target>/). Exit status 1 if any
# target found something.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_frame fuzz_envelope fuzz_resp fuzz_config fuzz_proxyproto fuzz_replymap fuzz_fastpb fuzz_tlsrec)
build="$top/build-fuzz"

# clang and its fuzzer runtime, only if missing (as scripts/deps.sh does).
missing=()
for p in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fuzz: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake -S "$top" -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Asan \
  -DSG_FUZZ=ON >/dev/null
ninja -C "$build" "${targets[@]}" >/dev/null

status=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  findings="$build/findings/$t"
  mkdir -p "$corpus" "$findings"
  cp -n "$top/tests/fuzz/corpus/$t"/* "$corpus/" 2>/dev/null || true
  echo "fuzz: $t for ${secs}s" >&2
  # fuzz_config opens the TLS paths a config names: run it from an empty dir.
  if ! (cd "$findings" && "$build/tests/fuzz/$t" -max_total_time="$secs" -max_len=65536 \
          -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$findings/" \
          "$corpus" >"$build/$t.log" 2>&1); then
    status=1
    echo "fuzz: $t FOUND A PROBLEM, see $build/$t.log and $findings/" >&2
    grep -m1 -E "^==[0-9]+==ERROR|property violated|runtime error|out-of-memory|Test unit written" \
      "$build/$t.log" >&2 || true
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$build/$t.log" | tr '\n' ' ' >&2
  echo >&2
done
exit $status
