#!/usr/bin/env bash
# latency.sh - latency slotgate adds at half load, at a fixed request rate.
#
#   bench/latency.sh [--rounds N] [--quick] [--out FILE] [--no-build]
#
# Starts a 3-master Redis Cluster on $BASE_PORT.. (default 7600), slotgate
# over TLS on $SG_PORT (default 7690) and a plaintext slotgate on
# $SG_PLAIN_PORT (default SG_PORT + 1), one worker each (SG_WORKERS). All
# three sides use the same load generator, build/slotgate-bench, so they
# share the pacing and latency code:
#   direct:  slotgate-bench --resp (plain RESP GET to the masters, each
#            connection on keys its master owns; no redirections)
#   tls:     slotgate-bench --tls to the TLS slotgate
#   plain:   slotgate-bench to the plaintext slotgate
# Workload: GET of 100 B values over 100,000 keys (pre-populated, not
# measured), 50 connections; every side first gets the same unmeasured
# -P 16 burst (a fresh proxy can sit in a slower state at -P 1).
#  1. Saturation: closed loop, -c 50 -P $SAT_P (default 1: every connection
#     sends one request and waits for it), on each side; N rounds in
#     rotating side order, median throughput.
#  2. Half load: rate R = $LOAD_FRACTION (default 0.5) x the TLS slotgate's
#     saturating throughput. Every side runs open loop at R (slotgate-bench
#     --rate R, at most 16 in flight per connection) for $SECS seconds
#     (default 10), N rounds in rotating order. Latency counts from each
#     request's intended send time, so queueing is not hidden.
# Prints, per side, the medians of saturating throughput, achieved rate,
# p50, p99 and p99.9 at R, the proxy's and Redis's CPU per request, and
# p50/p99 minus direct.
#   --quick      1 round, 3-second paced runs, smaller saturation runs
#   --no-build   use the binaries already in $BUILD_DIR
# Scratch files and logs: $WORK (default $BUILD_DIR/bench-latency).
set -euo pipefail

PROG=latency.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BUILD_DIR=${BUILD_DIR:-build}
BASE_PORT=${BASE_PORT:-7600}
SG_PORT=${SG_PORT:-7690}
SAT_P=${SAT_P:-1}
LOAD_FRACTION=${LOAD_FRACTION:-0.5}
SECS=${SECS:-10}
CONNS=50

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_args 31 "$@"

WORK=${WORK:-$BIN/bench-latency}
mkdir -p "$WORK/logs"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

SIDES=(direct tls plain)
declare -A SIDE_DESC=([direct]="direct (RESP)" [tls]="slotgate TLS" [plain]="slotgate plaintext")
# Requests per saturation run (closed loop; sized for about 2-3 s).
declare -A SAT_N=([direct]=300000 [tls]=150000 [plain]=200000)

# bench SIDE ARGS...: slotgate-bench against that side.
bench() {
    local side=$1
    shift
    case $side in
    direct) "$BIN/slotgate-bench" --resp -h 127.0.0.1 -p "$BASE_PORT" "$@" ;;
    tls | plain) bench_sg "$side" "$@" ;;
    esac
}

proxy_pid() { case $1 in tls) echo "$SG_PID" ;; plain) echo "$SG_PLAIN_PID" ;; *) echo ;; esac; }

# run KIND ROUND SIDE ARGS...: one slotgate-bench run (human-readable
# output), parsed into a line of $RESULTS:
# kind round side n rps p50 p99 p999 lag_ms proxy_ns redis_ns errors wall_ns
# generator_ns other_ns (other jobs' CPU on the machine during the run)
run() {
    local kind=$1 round=$2 side=$3 out err rc=0
    shift 3
    out=$WORK/logs/$kind-r$round-$side.out
    err=$WORK/logs/$kind-r$round-$side.err
    local pp sg0=0 sg1=0 rd0 rd1 all0 all1 m0 m1 t0 t1
    pp=$(proxy_pid "$side")
    [ -z "$pp" ] || sg0=$(bench_cpu_ns "$pp")
    rd0=$(bench_cpu_ns "${REDIS_PIDS[@]}")
    all0=$(bench_cpu_ns "$SG_PID" "$SG_PLAIN_PID" "${REDIS_PIDS[@]}")
    m0=$(bench_machine_busy_ns)
    t0=$(date +%s.%N)
    local TIMEFORMAT='%3U %3S'
    { time bench "$side" "$@" >"$out" 2>"$err" || rc=$?; } 2>"$out.time"
    t1=$(date +%s.%N)
    m1=$(bench_machine_busy_ns)
    [ -z "$pp" ] || sg1=$(bench_cpu_ns "$pp")
    rd1=$(bench_cpu_ns "${REDIS_PIDS[@]}")
    all1=$(bench_cpu_ns "$SG_PID" "$SG_PLAIN_PID" "${REDIS_PIDS[@]}")
    local gen wall other
    gen=$(awk '{printf "%.0f", ($1 + $2) * 1e9}' "$out.time")
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", (b - a) * 1e9}')
    other=$((m1 - m0 - (all1 - all0) - ${gen:-0}))
    ((other > 0)) || other=0
    local how
    if how=$(bench_slotgate_exit) || how=$(bench_slotgate_exit plain); then
        bench_die "$how during $kind ($side), round $round"
    fi
    local n rps p50 p99 p999 lag errs
    n=$(awk '/requests completed/ {print $1}' "$out")
    rps=$(awk '/throughput:/ {print $2}' "$out")
    read -r p50 p99 p999 < <(awk '/latency \(ms\)/ {print $4, $6, $8}' "$out")
    lag=$(awk '/behind schedule/ {for (i = 1; i <= NF; i++) if ($i == "ms") print $(i - 1)}' "$out")
    errs=$(awk '/errors:/ {print $2}' "$out")
    if [ "$rc" != 0 ] || [ -z "$rps" ]; then
        tail -5 "$err" >&2 || true
        bench_die "$kind ($side) round $round failed (exit $rc); see $out and $err"
    fi
    [ "${errs:-0}" = 0 ] || PROBLEMS+=("$kind ($side) round $round: $errs errors: $(tr '\n' ' ' <"$err" | cut -c1-200)")
    echo "$kind $round $side $n $rps $p50 $p99 $p999 ${lag:--} $((sg1 - sg0)) $((rd1 - rd0)) ${errs:-0} $wall ${gen:-0} $other" >>"$RESULTS"
    bench_log "  $kind $side: $rps req/s  p50 $p50 ms  p99 $p99 ms  p99.9 $p999 ms${lag:+  lag $lag ms}  other jobs $(awk -v o="$other" -v w="$wall" 'BEGIN {printf "%.2f", o / w}') CPUs  errors ${errs:-0}"
}

# col KIND SIDE FIELD: median of a column (5 rps, 6 p50, 7 p99, 8 p99.9,
# 9 lag) or of CPU per request (cpu_proxy, cpu_redis, µs).
col() {
    case $3 in
    cpu_proxy) awk -v k="$1" -v s="$2" '$1 == k && $3 == s {print $10 / 1000 / $4}' "$RESULTS" | bench_median ;;
    cpu_redis) awk -v k="$1" -v s="$2" '$1 == k && $3 == s {print $11 / 1000 / $4}' "$RESULTS" | bench_median ;;
    cpu_gen) awk -v k="$1" -v s="$2" '$1 == k && $3 == s {print $14 / 1000 / $4}' "$RESULTS" | bench_median ;;
    other) awk -v k="$1" -v s="$2" '$1 == k && $3 == s {print $15 / $13}' "$RESULTS" | bench_median ;;
    *) awk -v k="$1" -v s="$2" -v f="$3" '$1 == k && $3 == s && $f != "-" {print $f}' "$RESULTS" | bench_median ;;
    esac
}
diff_ms() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%+.3f", a - b }'; }

# ---------------------------------------------------------------------------
bench_binaries slotgate slotgate-cli slotgate-bench
T_START=$(date +%s)
bench_start_sides
PROBLEMS=()

bench_log "pre-populating (not measured)"
bench tls -c "$CONNS" -t fill -r 100000 -d 100 >"$WORK/logs/fill-sg.out" 2>&1 ||
    bench_die "slotgate fill failed: $(tail -3 "$WORK/logs/fill-sg.out")"
bench direct -c "$CONNS" -t fill -r 100000 -d 100 >"$WORK/logs/fill-direct.out" 2>&1 ||
    bench_die "direct fill failed: $(tail -3 "$WORK/logs/fill-direct.out")"

COMMON=(-c "$CONNS" -t get -d 100 -r 100000 --no-prefill)
# Warm-up, not measured: the same pipelined GET burst on every side. A
# slotgate fresh from start-up can sit in a slower steady state at -P 1 (the
# plaintext proxy measured 9.3 µs/req before its first -P 16 burst and 3.3
# after), so every side is brought to the same state first.
for side in "${SIDES[@]}"; do
    bench "$side" "${COMMON[@]}" -P 16 -n $((QUICK ? 100000 : 300000)) >"$WORK/logs/warm-$side.out" 2>&1 ||
        bench_die "warm-up ($side) failed: $(tail -3 "$WORK/logs/warm-$side.out")"
done
for ((round = 1; round <= ROUNDS; round++)); do
    bench_log "saturation, round $round of $ROUNDS (closed loop, -P $SAT_P)"
    for ((k = 0; k < 3; k++)); do
        side=${SIDES[$(((round - 1 + k) % 3))]}
        n=${SAT_N[$side]}
        [ "$QUICK" = 0 ] || n=$((n / 3))
        run sat "$round" "$side" "${COMMON[@]}" -P "$SAT_P" -n "$n"
    done
done
SAT_TLS=$(col sat tls 5)
RATE=$(awk -v s="$SAT_TLS" -v f="$LOAD_FRACTION" 'BEGIN { printf "%d", s * f }')
[ "$RATE" -gt 0 ] || bench_die "no saturating throughput for the TLS side"
N_PACED=$(awk -v r="$RATE" -v s="$SECS" 'BEGIN { printf "%d", r * s }')
bench_log "paced runs at $RATE requests/s ($LOAD_FRACTION x $SAT_TLS), $N_PACED requests each"
for ((round = 1; round <= ROUNDS; round++)); do
    bench_log "paced, round $round of $ROUNDS"
    for ((k = 0; k < 3; k++)); do
        side=${SIDES[$(((round - 1 + k) % 3))]}
        run paced "$round" "$side" "${COMMON[@]}" -P 16 --rate "$RATE" -n "$N_PACED"
    done
done
T_END=$(date +%s)

# ---------------------------------------------------------------------------
MD=$WORK/table.md
d50=$(col paced direct 6)
d99=$(col paced direct 7)
{
    echo "| side | saturating rps (closed loop, -P $SAT_P) | offered rate | achieved rps | p50 ms | p99 ms | p99.9 ms | p50 − direct ms | p99 − direct ms | proxy CPU µs/req | Redis CPU µs/req | generator CPU µs/req | latest send behind schedule ms | other jobs, CPUs |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for side in "${SIDES[@]}"; do
        p50=$(col paced "$side" 6)
        p99=$(col paced "$side" 7)
        pcpu=-
        [ "$side" = direct ] || pcpu=$(bench_fmt "$(col paced "$side" cpu_proxy)" 2)
        echo "| ${SIDE_DESC[$side]} | $(bench_fmt "$(col sat "$side" 5)" 0) | $RATE | $(bench_fmt "$(col paced "$side" 5)" 0) | $(bench_fmt "$p50" 3) | $(bench_fmt "$p99" 3) | $(bench_fmt "$(col paced "$side" 8)" 3) | $([ "$side" = direct ] && echo "" || diff_ms "$p50" "$d50") | $([ "$side" = direct ] && echo "" || diff_ms "$p99" "$d99") | $pcpu | $(bench_fmt "$(col paced "$side" cpu_redis)" 2) | $(bench_fmt "$(col paced "$side" cpu_gen)" 2) | $(bench_fmt "$(col paced "$side" 9)" 3) | $(bench_fmt "$(col paced "$side" other)" 2) |"
    done
} >"$MD"
NOTES="GET 100 B, $CONNS connections, 100,000 keys; medians of $ROUNDS round(s), sides in rotating order. Saturation: closed loop at -P $SAT_P. Paced: slotgate-bench --rate $RATE ($LOAD_FRACTION x the TLS side's saturating rps), at most 16 in flight per connection, $N_PACED requests ($SECS s); latency from each request's intended send time. Every side warmed up first with an unmeasured -P 16 GET burst. One worker per slotgate; all processes share the machine's $(nproc) CPUs; *other jobs* = the machine's busy time (/proc/stat) minus the proxies, Redis and the generator, over the paced run's wall time. Run time $(((T_END - T_START) / 60)) min $(((T_END - T_START) % 60)) s."

echo
echo "Added latency at a fixed rate - $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs"
echo
bench_show "$MD"
echo
bench_print_notes
echo "Raw results: $RESULTS (kind round side n rps p50 p99 p999 lag_ms proxy_ns redis_ns errors wall_ns generator_ns other_ns)"
bench_write_out "$MD"
