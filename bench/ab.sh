#!/usr/bin/env bash
# ab.sh - two slotgate binaries against each other: the proxy's CPU per
# request, TLS and plaintext, the binaries alternating on one cluster.
#
#   bench/ab.sh [--rounds N] [--quick] [--out FILE] [--no-build] A B
#
# A and B are slotgate executables (e.g. the slotgate of two build
# directories, or copies kept aside). Starts a 3-master Redis Cluster on
# $BASE_PORT.. (default 7600); then, N rounds (default 3), A then B (B then
# A in even rounds): that binary as a TLS slotgate on $SG_PORT (default
# 7690) and a plaintext one on $SG_PLAIN_PORT (default SG_PORT + 1), one
# worker each, and slotgate-bench -c 50 from $BUILD_DIR against both:
#   GET 100 B -P 16, SET 100 B -P 16, GET 100 B -P 1
# ($WORKLOADS, a subset of "get_p16 set_p16 get_p1", picks some).
# Per run, the proxy's CPU per request (/proc/PID/task/*/schedstat). Prints
# the medians per binary and B's ÷ A's. The machine's noise between runs is
# shared by both binaries this way; compare the ratio, not the µs, across
# runs of this script.
#   --quick      1 round, a tenth of the requests
#   --no-build   use slotgate-bench and slotgate-cli already in $BUILD_DIR
# Scratch files and logs: $WORK (default $BUILD_DIR/bench-ab).
set -euo pipefail

PROG=ab.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BUILD_DIR=${BUILD_DIR:-build}
BASE_PORT=${BASE_PORT:-7600}
SG_PORT=${SG_PORT:-7690}
WORKLOADS=${WORKLOADS:-get_p16 set_p16 get_p1}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
BINS=() ARGV=()
while [ $# -gt 0 ]; do
    case $1 in
    --rounds | --out) ARGV+=("$1" "${2:-}"); shift 2 || shift ;;
    -*) ARGV+=("$1"); shift ;;
    *) BINS+=("$1"); shift ;;
    esac
done
bench_args 21 "${ARGV[@]}"
[ ${#BINS[@]} = 2 ] || { echo "$PROG: give two slotgate binaries, A and B" >&2; bench_usage 21; }
for b in "${BINS[@]}"; do [ -x "$b" ] || bench_die "$b: not an executable"; done

WORK=${WORK:-$BIN/bench-ab}
mkdir -p "$WORK/logs"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

declare -A ARGS=([get_p16]="-P 16 -d 100 -r 10000 -t get" [set_p16]="-P 16 -d 100 -r 10000 -t set"
    [get_p1]="-P 1 -d 100 -r 10000 -t get")
declare -A N=([get_p16]=400000 [set_p16]=400000 [get_p1]=100000)
declare -A DESC=([get_p16]="GET 100 B, -P 16" [set_p16]="SET 100 B, -P 16" [get_p1]="GET 100 B, -P 1")

# Each binary gets a directory of its own that bench_start_slotgate starts
# it from, next to this build's slotgate-cli.
for i in 0 1; do
    d=$WORK/bin-$i
    mkdir -p "$d"
    ln -sf "$(readlink -f "${BINS[$i]}")" "$d/slotgate"
    ln -sf "$BIN/slotgate-cli" "$d/slotgate-cli"
done

# run ROUND LABEL SIDE WORKLOAD: one measured run, a line of $RESULTS.
run() {
    local round=$1 label=$2 side=$3 wl=$4 n=${N[$4]} pid=$SG_PID rc=0
    [ "$side" = plain ] && pid=$SG_PLAIN_PID
    [ "$QUICK" = 1 ] && n=$((n / 10))
    local out=$WORK/logs/r$round-$label-$side-$wl.out c0 c1
    c0=$(bench_cpu_ns "$pid")
    # shellcheck disable=SC2086
    bench_sg "$side" -c 50 -n "$n" ${ARGS[$wl]} --no-prefill >"$out" 2>&1 || rc=$?
    c1=$(bench_cpu_ns "$pid")
    [ "$rc" = 0 ] || { tail -5 "$out" >&2; bench_die "$wl ($label, $side) round $round failed"; }
    echo "$round $label $side $wl $n $((c1 - c0)) $(awk '/throughput:/ {print $2}' "$out")" >>"$RESULTS"
}

bench_binaries slotgate-cli slotgate-bench
bench_start_cluster
bench_write_config 1000
bench_write_config 1000 plain
RESULTS=$WORK/results.txt
: >"$RESULTS"
KEEP_BIN=$BIN
for r in $(seq "$ROUNDS"); do
    order=(0 1)
    ((r % 2)) || order=(1 0)
    for i in "${order[@]}"; do
        label=$([ "$i" = 0 ] && echo A || echo B)
        bench_log "round $r of $ROUNDS: $label"
        BIN=$WORK/bin-$i
        bench_start_slotgate 4096
        bench_start_slotgate 4096 plain
        BIN=$KEEP_BIN
        bench_sg plain -c 50 -n 20000 -d 100 -r 10000 -t set -q >/dev/null
        for wl in $WORKLOADS; do
            run "$r" "$label" tls "$wl"
            run "$r" "$label" plain "$wl"
        done
        bench_stop_slotgate
        bench_stop_slotgate plain
    done
done

# med LABEL SIDE WORKLOAD: median proxy µs per request.
med() {
    awk -v l="$1" -v s="$2" -v w="$3" '$2 == l && $3 == s && $4 == w {print $6 / $5 / 1000}' "$RESULTS" |
        bench_median
}
TABLE=$WORK/table.md
{
    echo "## slotgate A against B: proxy CPU per request ($(date -u '+%Y-%m-%d %H:%M') UTC)"
    echo
    echo "| workload | side | A µs/req | B µs/req | B ÷ A |"
    echo "|---|---|---:|---:|---:|"
    for wl in $WORKLOADS; do
        for side in tls plain; do
            a=$(med A "$side" "$wl") b=$(med B "$side" "$wl")
            printf '| %s | %s | %s | %s | %s |\n' "${DESC[$wl]}" \
                "$([ "$side" = tls ] && echo TLS || echo plaintext)" "$(bench_fmt "$a" 3)" \
                "$(bench_fmt "$b" 3)" "$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b / a}')"
        done
    done
} >"$TABLE"
cat "$TABLE"
PROBLEMS=()
NOTES="A: ${BINS[0]}; B: ${BINS[1]}. Medians of $ROUNDS round(s), A and B alternating which goes first; slotgate-bench -c 50 from $BIN; one worker per slotgate; CPU from /proc/PID/task/*/schedstat over each run."
echo
bench_print_notes
bench_write_out "$TABLE"
