#!/usr/bin/env bash
# syscalls.sh - where a request's cost goes: the proxy's socket reads and
# writes per request, and the CPU of the proxy, Redis and the load generator.
#
#   bench/syscalls.sh [--rounds N] [--quick] [--out FILE] [--no-build]
#
# Starts a 3-master Redis Cluster on $BASE_PORT.. (default 7600), slotgate
# over TLS on $SG_PORT (default 7690) and a plaintext slotgate on
# $SG_PLAIN_PORT (default SG_PORT + 1), one worker each (SG_WORKERS), and
# drives both with build/slotgate-bench, -c 50, in N rounds (default 3):
#   GET 100 B -P 16, GET 100 B -P 1, GET 64 KiB -P 1, SET 64 KiB -P 1
# ($WORKLOADS, a subset of "get_p16 get_p1 get_64k set_64k", picks some).
# Per run: the proxy's read and write system calls (syscr and syscw of
# /proc/PID/io: client and Redis sockets together) per request, its
# voluntary and involuntary context switches, and CPU per request of the
# proxy, the three Redis servers and slotgate-bench (from bash's time).
# Prints the medians. To compare two builds, run it once per BUILD_DIR.
#   --quick      1 round, a tenth of the requests
#   --no-build   use the binaries already in $BUILD_DIR
# Scratch files and logs: $WORK (default $BUILD_DIR/bench-syscalls).
set -euo pipefail

PROG=syscalls.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BUILD_DIR=${BUILD_DIR:-build}
BASE_PORT=${BASE_PORT:-7600}
SG_PORT=${SG_PORT:-7690}
WORKLOADS=${WORKLOADS:-get_p16 get_p1 get_64k set_64k}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_args 20 "$@"

WORK=${WORK:-$BIN/bench-syscalls}
mkdir -p "$WORK/logs"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# workload -> slotgate-bench arguments and request count
declare -A ARGS=([get_p16]="-P 16 -d 100 -r 10000 -t get" [get_p1]="-P 1 -d 100 -r 10000 -t get"
    [get_64k]="-P 1 -k big -d 65536 -r 1000 -t get" [set_64k]="-P 1 -k big -d 65536 -r 1000 -t set")
declare -A N=([get_p16]=400000 [get_p1]=100000 [get_64k]=10000 [set_64k]=10000)
declare -A DESC=([get_p16]="GET 100 B, -P 16" [get_p1]="GET 100 B, -P 1"
    [get_64k]="GET 64 KiB, -P 1" [set_64k]="SET 64 KiB, -P 1")

# io PID: syscr syscw voluntary involuntary (context switches, all threads).
io() {
    local r w
    r=$(awk '/^syscr/ {print $2}' "/proc/$1/io")
    w=$(awk '/^syscw/ {print $2}' "/proc/$1/io")
    echo "$r $w $(cat /proc/"$1"/task/*/status | awk '/^voluntary_ctxt/ {v += $2}
        /^nonvoluntary_ctxt/ {n += $2} END {print v, n}')"
}

# run ROUND SIDE WORKLOAD: one measured run, a line of $RESULTS:
# round side workload n rps proxy_ns redis_ns gen_ns reads writes vcs ivcs
run() {
    local round=$1 side=$2 wl=$3 n=${N[$3]} pid=$SG_PID out rc=0
    [ "$side" = plain ] && pid=$SG_PLAIN_PID
    [ "$QUICK" = 1 ] && n=$((n / 10))
    out=$WORK/logs/r$round-$side-$wl.out
    local io0 io1 sg0 sg1 rd0 rd1
    io0=$(io "$pid") sg0=$(bench_cpu_ns "$pid") rd0=$(bench_cpu_ns "${REDIS_PIDS[@]}")
    local TIMEFORMAT='%3U %3S'
    # shellcheck disable=SC2086
    { time bench_sg "$side" -c 50 -n "$n" ${ARGS[$wl]} --no-prefill >"$out" 2>&1 || rc=$?; } 2>"$out.time"
    io1=$(io "$pid") sg1=$(bench_cpu_ns "$pid") rd1=$(bench_cpu_ns "${REDIS_PIDS[@]}")
    [ "$rc" = 0 ] || { tail -5 "$out" >&2; bench_die "$wl ($side) round $round failed (exit $rc)"; }
    local rps gen d
    rps=$(awk '/throughput:/ {print $2}' "$out")
    gen=$(awk '{printf "%.0f", ($1 + $2) * 1e9}' "$out.time")
    d=$(paste <(tr ' ' '\n' <<<"$io0") <(tr ' ' '\n' <<<"$io1") | awk '{printf "%d ", $2 - $1}')
    echo "$round $side $wl $n $rps $((sg1 - sg0)) $((rd1 - rd0)) $gen $d" >>"$RESULTS"
    bench_log "  $wl $side: $rps req/s"
}

# col SIDE WORKLOAD FIELD DIVIDE: median of FIELD (÷ n and DIVIDE when DIVIDE is set).
col() {
    awk -v s="$1" -v w="$2" -v f="$3" -v d="${4:-}" '$2 == s && $3 == w {
        print d == "" ? $f : $f / $4 / d }' "$RESULTS" | bench_median
}

# ---------------------------------------------------------------------------
bench_binaries slotgate slotgate-cli slotgate-bench
bench_start_sides
bench_log "filling keys (not measured)"
for side in tls plain; do
    bench_sg "$side" -c 50 -n 20000 -d 100 -r 10000 -t set -q >/dev/null
    bench_sg "$side" -c 50 -n 2000 -k big -d 65536 -r 1000 -t set -q >/dev/null
done
for r in $(seq "$ROUNDS"); do
    bench_log "round $r of $ROUNDS"
    sides=(tls plain)
    ((r % 2)) || sides=(plain tls)
    for side in "${sides[@]}"; do
        for wl in $WORKLOADS; do
            run "$r" "$side" "$wl"
        done
    done
done

TABLE=$WORK/table.md
{
    echo "## Proxy system calls and CPU per request ($(date -u '+%Y-%m-%d %H:%M') UTC)"
    echo
    echo "| workload | side | rps | proxy reads/req | proxy writes/req | proxy switches/req (vol + invol) | proxy CPU µs/req | Redis CPU µs/req | generator CPU µs/req |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    for wl in $WORKLOADS; do
        for side in tls plain; do
            vcs=$(col "$side" "$wl" 11 1) ivcs=$(col "$side" "$wl" 12 1)
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${DESC[$wl]}" \
                "$([ "$side" = tls ] && echo TLS || echo plaintext)" \
                "$(bench_fmt "$(col "$side" "$wl" 5)" 0)" \
                "$(bench_fmt "$(col "$side" "$wl" 9 1)" 3)" "$(bench_fmt "$(col "$side" "$wl" 10 1)" 3)" \
                "$(bench_fmt "$(awk -v a="$vcs" -v b="$ivcs" 'BEGIN {print a + b}')" 3)" \
                "$(bench_fmt "$(col "$side" "$wl" 6 1000)" 2)" "$(bench_fmt "$(col "$side" "$wl" 7 1000)" 2)" \
                "$(bench_fmt "$(col "$side" "$wl" 8 1000)" 2)"
        done
    done
} >"$TABLE"
cat "$TABLE"
PROBLEMS=()
NOTES="Medians of $ROUNDS round(s), sides in alternating order; slotgate-bench -c 50 with one worker per slotgate. Reads and writes: the proxy's read and write system calls (/proc/PID/io syscr, syscw: readv and writev count, epoll_wait does not), client and Redis sockets together. Generator CPU: slotgate-bench's user + system time."
echo
bench_print_notes
bench_write_out "$TABLE"
