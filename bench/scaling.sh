#!/usr/bin/env bash
# scaling.sh - slotgate throughput with 1 and 2 workers on a core of its own.
#
#   bench/scaling.sh [--rounds N] [--quick] [--out FILE] [--no-build]
#
# Starts a 3-master Redis Cluster on $BASE_PORT.. (default 7600) and pins
# every redis-server thread to CPU $LOAD_CPU (default 0) with taskset; the
# load generator (build/slotgate-bench, TLS, one thread) runs on the same
# CPU. slotgate (TLS, $SG_PORT, default 7690) runs pinned to CPU $SG_CPU
# (default 1), once with listen.workers: 1 and once with 2, restarted for
# each; N rounds (default 3) alternate which worker count goes first.
# Workloads: GET 100 B over 100,000 pre-populated keys, -c 50, at -P 16 and
# at -P 1. Reports, per worker count, the median throughput, requests/s per
# worker, p50/p99, and how busy each side's CPU was: the proxy's CPU time
# over the run's wall time (1.00 = all of CPU $SG_CPU) and the same for the
# Redis servers and for the load generator (both on CPU $LOAD_CPU). With 2
# CPUs both workers share CPU $SG_CPU: the 2-worker row shows what a second
# worker costs on the same core, not what a second core would give.
#   --quick      1 round, 1/4 of the requests
#   --no-build   use the binaries already in $BUILD_DIR
# Scratch files and logs: $WORK (default $BUILD_DIR/bench-scaling).
set -euo pipefail

PROG=scaling.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BUILD_DIR=${BUILD_DIR:-build}
BASE_PORT=${BASE_PORT:-7600}
SG_PORT=${SG_PORT:-7690}
LOAD_CPU=${LOAD_CPU:-0}
SG_CPU=${SG_CPU:-1}
CONNS=50

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_args 21 "$@"
command -v taskset >/dev/null 2>&1 || { echo "$PROG: taskset not found" >&2; exit 1; }

WORK=${WORK:-$BIN/bench-scaling}
mkdir -p "$WORK/logs"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

WORKLOADS=(p16 p1)
declare -A WL_N=([p16]=600000 [p1]=150000)
declare -A WL_DESC=([p16]="GET 100 B, -c 50 -P 16" [p1]="GET 100 B, -c 50 -P 1")

# sg_bench ARGS...: slotgate-bench over TLS, on the load CPU.
sg_bench() {
    # shellcheck disable=SC2046
    taskset -c "$LOAD_CPU" "$BIN/slotgate-bench" -h 127.0.0.1 -p "$SG_PORT" $(bench_tls_flags) "$@"
}

# run ROUND WORKERS WORKLOAD: one run, appended to $RESULTS:
# round workers workload n rps p50 p99 wall_s proxy_ns redis_ns errors generator_ns
# cpu_load_busy_ns cpu_sg_busy_ns (each CPU's busy time, every process)
run() {
    local round=$1 workers=$2 w=$3 n out err rc=0
    n=${WL_N[$w]}
    [ "$QUICK" = 0 ] || n=$((n / 4))
    out=$WORK/logs/r$round-w$workers-$w.out
    err=$WORK/logs/r$round-w$workers-$w.err
    local sg0 rd0 sg1 rd1 t0 t1
    sg0=$(bench_cpu_ns "$SG_PID")
    rd0=$(bench_cpu_ns "${REDIS_PIDS[@]}")
    local ml0 ml1 ms0 ms1
    ml0=$(bench_machine_busy_ns "$LOAD_CPU")
    ms0=$(bench_machine_busy_ns "$SG_CPU")
    t0=$(date +%s.%N)
    # The generator's own CPU (user and system seconds) from bash's time.
    local TIMEFORMAT='%3U %3S'
    { time sg_bench -c "$CONNS" -n "$n" -t get -d 100 -r 100000 --no-prefill -P "${w#p}" --csv \
        >"$out" 2>"$err" || rc=$?; } 2>"$out.time"
    t1=$(date +%s.%N)
    ml1=$(bench_machine_busy_ns "$LOAD_CPU")
    ms1=$(bench_machine_busy_ns "$SG_CPU")
    sg1=$(bench_cpu_ns "$SG_PID")
    rd1=$(bench_cpu_ns "${REDIS_PIDS[@]}")
    local how
    if how=$(bench_slotgate_exit); then bench_die "$how during $w, $workers worker(s), round $round"; fi
    local line rps p50 p99 errs
    line=$(grep -E '^GET,' "$out" | tail -1 || true)
    IFS=, read -r _ rps _ p50 p99 _ _ errs <<<"$line"
    if [ "$rc" != 0 ] || [ -z "${rps:-}" ]; then
        tail -5 "$err" >&2 || true
        bench_die "$w ($workers worker(s)) round $round failed (exit $rc); see $out and $err"
    fi
    [ "${errs:-0}" = 0 ] || PROBLEMS+=("$w, $workers worker(s), round $round: $errs errors: $(tr '\n' ' ' <"$err" | cut -c1-200)")
    local wall
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
    local gen
    gen=$(awk '{printf "%.0f", ($1 + $2) * 1e9}' "$out.time")
    echo "$round $workers $w $n $rps $p50 $p99 $wall $((sg1 - sg0)) $((rd1 - rd0)) ${errs:-0} ${gen:-0} $((ml1 - ml0)) $((ms1 - ms0))" >>"$RESULTS"
    bench_log "  $w, $workers worker(s): $rps req/s  p50 $p50 ms  p99 $p99 ms  proxy CPU $(awk -v c=$((sg1 - sg0)) -v w="$wall" 'BEGIN {printf "%.2f", c / 1e9 / w}') of a core"
}

# col WORKERS WORKLOAD FIELD: median of a column (5 rps, 6 p50, 7 p99) or of
# busy_proxy / busy_redis (CPU seconds per wall second) or cpu_proxy (µs/req).
col() {
    case $3 in
    busy_proxy) awk -v k="$1" -v w="$2" '$2 == k && $3 == w {print $9 / 1e9 / $8}' "$RESULTS" | bench_median ;;
    busy_redis) awk -v k="$1" -v w="$2" '$2 == k && $3 == w {print $10 / 1e9 / $8}' "$RESULTS" | bench_median ;;
    busy_gen) awk -v k="$1" -v w="$2" '$2 == k && $3 == w {print $12 / 1e9 / $8}' "$RESULTS" | bench_median ;;
    other_load) awk -v k="$1" -v w="$2" '$2 == k && $3 == w {o = ($13 - $10 - $12) / 1e9 / $8; print (o > 0 ? o : 0)}' "$RESULTS" | bench_median ;;
    other_sg) awk -v k="$1" -v w="$2" '$2 == k && $3 == w {o = ($14 - $9) / 1e9 / $8; print (o > 0 ? o : 0)}' "$RESULTS" | bench_median ;;
    cpu_proxy) awk -v k="$1" -v w="$2" '$2 == k && $3 == w {print $9 / 1000 / $4}' "$RESULTS" | bench_median ;;
    *) awk -v k="$1" -v w="$2" -v f="$3" '$2 == k && $3 == w {print $f}' "$RESULTS" | bench_median ;;
    esac
}

# start_proxy WORKERS: (re)start slotgate with that many workers, pinned.
start_proxy() {
    bench_stop_slotgate
    SG_WORKERS=$1 bench_write_config 1000
    SG_WORKERS=$1 SG_TASKSET=$SG_CPU bench_start_slotgate 4096
    # Every thread of the proxy (workers included) on SG_CPU.
    taskset -a -p -c "$SG_CPU" "$SG_PID" >/dev/null
}

# ---------------------------------------------------------------------------
[ "$(nproc)" -ge 2 ] || bench_die "needs 2 CPUs (has $(nproc))"
bench_binaries slotgate slotgate-cli slotgate-bench
T_START=$(date +%s)
bench_start_cluster
mapfile -t REDIS_PIDS < <(bench_redis_pids)
for p in "${REDIS_PIDS[@]}"; do
    taskset -a -p -c "$LOAD_CPU" "$p" >/dev/null || bench_die "taskset on redis-server $p failed"
done
RESULTS=$WORK/results.txt
: >"$RESULTS"
PROBLEMS=()

start_proxy 1
bench_log "pre-populating (not measured)"
sg_bench -c "$CONNS" -t fill -r 100000 -d 100 >"$WORK/logs/fill.out" 2>&1 ||
    bench_die "fill failed: $(tail -3 "$WORK/logs/fill.out")"

for ((round = 1; round <= ROUNDS; round++)); do
    if ((round % 2)); then order=(1 2); else order=(2 1); fi
    for workers in "${order[@]}"; do
        bench_log "round $round of $ROUNDS: $workers worker(s)"
        start_proxy "$workers"
        for w in "${WORKLOADS[@]}"; do
            run "$round" "$workers" "$w"
        done
    done
done
T_END=$(date +%s)

MD=$WORK/table.md
{
    echo "| workload | workers | rps | rps per worker | 2 workers ÷ 1 | p50 ms | p99 ms | proxy CPU µs/req | proxy busy (CPU $SG_CPU) | Redis busy (CPU $LOAD_CPU) | generator busy (CPU $LOAD_CPU) | other jobs busy on CPU $LOAD_CPU | other jobs busy on CPU $SG_CPU |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for w in "${WORKLOADS[@]}"; do
        r1=$(col 1 "$w" 5)
        for workers in 1 2; do
            rps=$(col "$workers" "$w" 5)
            sc=
            [ "$workers" = 1 ] || sc=$(bench_ratio "$rps" "$r1")
            echo "| ${WL_DESC[$w]} | $workers | $(bench_fmt "$rps" 0) | $(awk -v a="$rps" -v k="$workers" 'BEGIN { if (a == "-") print "-"; else printf "%.0f", a / k }') | $sc | $(bench_fmt "$(col "$workers" "$w" 6)" 3) | $(bench_fmt "$(col "$workers" "$w" 7)" 3) | $(bench_fmt "$(col "$workers" "$w" cpu_proxy)" 2) | $(bench_fmt "$(col "$workers" "$w" busy_proxy)" 2) | $(bench_fmt "$(col "$workers" "$w" busy_redis)" 2) | $(bench_fmt "$(col "$workers" "$w" busy_gen)" 2) | $(bench_fmt "$(col "$workers" "$w" other_load)" 2) | $(bench_fmt "$(col "$workers" "$w" other_sg)" 2) |"
        done
    done
} >"$MD"
NOTES="TLS, one load-generator thread; redis-server (all threads) and slotgate-bench pinned to CPU $LOAD_CPU, slotgate (all threads) pinned to CPU $SG_CPU; medians of $ROUNDS round(s), worker counts alternating which goes first; slotgate restarted for each worker count. *busy* = CPU seconds over wall seconds of the run (from /proc/PID/task/*/schedstat; the wall time includes the generator's 50 TLS handshakes); *other jobs* = the CPU's busy time from /proc/stat minus this benchmark's processes on it (taskset pins only this benchmark: other jobs on the machine still run on both CPUs). Run time $(((T_END - T_START) / 60)) min $(((T_END - T_START) % 60)) s."

echo
echo "slotgate worker scaling - $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs"
echo
bench_show "$MD"
echo
bench_print_notes
echo "Raw results: $RESULTS (round workers workload n rps p50 p99 wall_s proxy_ns redis_ns errors generator_ns cpu${LOAD_CPU}_busy_ns cpu${SG_CPU}_busy_ns)"
bench_write_out "$MD"
