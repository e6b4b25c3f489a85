#!/usr/bin/env bash
# idle-conns.sh - slotgate's memory with many idle TLS client connections.
#
#   bench/idle-conns.sh [--conns N] [--no-build]
#
# Builds Release into $BUILD_DIR (default build), starts a 3-master Redis
# Cluster with no replicas on $BASE_PORT.. (default 7600) and slotgate on
# $SG_PORT (default 7690) with limits.max_connections above N and a high
# open-file limit, then opens N (default 10000) TLS connections with
# slotgate-idle, each of which completes Hello and stays idle. Prints
# slotgate's VmRSS before and with the connections held, and the RSS per
# connection. Scratch files: $WORK (default $BUILD_DIR/bench-idle).
# Every process it starts is stopped on exit.
set -euo pipefail

PROG=idle-conns.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BUILD_DIR=${BUILD_DIR:-build}
BASE_PORT=${BASE_PORT:-7600}
SG_PORT=${SG_PORT:-7690}
CONNS=10000
NO_BUILD=0

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --conns) [ $# -ge 2 ] || usage; CONNS=$2; shift 2 ;;
    --no-build) NO_BUILD=1; shift ;;
    -h | --help) usage ;;
    *) echo "$PROG: unknown argument $1" >&2; usage ;;
    esac
done
[[ $CONNS =~ ^[1-9][0-9]*$ ]] || { echo "$PROG: --conns needs a positive number" >&2; exit 2; }

case $BUILD_DIR in /*) BIN=$BUILD_DIR ;; *) BIN=$ROOT/$BUILD_DIR ;; esac
WORK=${WORK:-$BIN/bench-idle}
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
mkdir -p "$WORK"

IDLE_PID=
bench_extra_cleanup() {
    if [ -n "$IDLE_PID" ] && kill -0 "$IDLE_PID" 2>/dev/null; then
        kill -TERM "$IDLE_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$IDLE_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$IDLE_PID" 2>/dev/null || true
        wait "$IDLE_PID" 2>/dev/null || true
    fi
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$SG_PID/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$SG_PID/status"; }

bench_binaries slotgate slotgate-cli slotgate-idle
bench_start_cluster
bench_write_config $((CONNS + 1000))
bench_start_slotgate $((CONNS * 2 + 1024))
sleep 1
RSS0=$(rss_kb)
bench_log "slotgate VmRSS before: $RSS0 kB; opening $CONNS TLS connections"

# A "ready" line left by an earlier run must not be taken for this one's.
rm -f "$WORK/idle.out" "$WORK/idle.err"
# The helper needs one descriptor per connection too.
# shellcheck disable=SC2046
(
    ulimit -Hn $((CONNS + 1024)) 2>/dev/null || true
    ulimit -n $((CONNS + 1024)) 2>/dev/null || true
    exec "$BIN/slotgate-idle" -h 127.0.0.1 -p "$SG_PORT" $(bench_tls_flags) -n "$CONNS"
) >"$WORK/idle.out" 2>"$WORK/idle.err" &
IDLE_PID=$!

START=$(date +%s)
while ! grep -q '^ready' "$WORK/idle.out" 2>/dev/null; do
    kill -0 "$IDLE_PID" 2>/dev/null || { cat "$WORK/idle.err" >&2; bench_die "slotgate-idle exited early"; }
    if how=$(bench_slotgate_exit); then bench_die "$how while connections were opening"; fi
    [ $(($(date +%s) - START)) -lt 180 ] || bench_die "connections not established within 180 s"
    sleep 0.5
done
SECS=$(($(date +%s) - START))
READY=$(grep '^ready' "$WORK/idle.out")
# Let the proxy settle (handshake buffers released, timers quiet).
sleep 3
RSS1=$(rss_kb)
HWM=$(hwm_kb)
sleep 2
RSS2=$(rss_kb)
if how=$(bench_slotgate_exit); then bench_die "$how while holding connections"; fi
kill -0 "$IDLE_PID" 2>/dev/null || bench_die "slotgate-idle exited while holding: $(cat "$WORK/idle.err")"

HELD=$(sed -n 's/.*connected=\([0-9]*\).*/\1/p' <<<"$READY")
echo
echo "idle TLS connections: $READY (took ${SECS} s)"
echo "slotgate VmRSS before:        $RSS0 kB"
echo "slotgate VmRSS with $HELD held: $RSS1 kB ($(awk -v k="$RSS1" 'BEGIN {printf "%.1f", k / 1024}') MiB); 2 s later: $RSS2 kB"
echo "slotgate VmHWM (peak):        $HWM kB"
awk -v a="$RSS0" -v b="$RSS1" -v n="$HELD" 'BEGIN { if (n > 0) printf "per connection:               %.1f kB\n", (b - a) / n }'
awk -v b="$RSS1" 'BEGIN { printf "target (issue 11): 10,000 idle TLS connections in at most 100 MB RSS: %s\n", (b * 1024 <= 100e6) ? "met" : "missed" }'
[ "$HELD" = "$CONNS" ] || { cat "$WORK/idle.err" >&2; exit 1; }
