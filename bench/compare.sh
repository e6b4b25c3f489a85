#!/usr/bin/env bash
# compare.sh - measure slotgate (TLS and plaintext) and direct Redis Cluster
# side by side.
#
#   bench/compare.sh [--rounds N] [--quick] [--out FILE] [--no-build]
#
# Builds Release into $BUILD_DIR (default build), starts a 3-master Redis
# Cluster with no replicas on $BASE_PORT.. (default 7600), slotgate over TLS
# (dev certificates) on $SG_PORT (default 7690) and a second slotgate with
# listen.plaintext: true on $SG_PLAIN_PORT (default SG_PORT + 1), both with
# one worker (SG_WORKERS) and otherwise the same config. Pre-populates the
# key spaces once (not measured), then runs every workload on three sides
# per round, N rounds (default 3), rotating which side goes first:
#   direct:   redis-benchmark --cluster (plain TCP straight to the masters)
#   tls:      build/slotgate-bench over TLS to the TLS slotgate
#   plain:    build/slotgate-bench over plain TCP to the plaintext slotgate
# Workloads: GET and SET 100 B at -c 50 -P 16 and -c 50 -P 1; GET and SET
# 64 KiB at -c 50 -P 1; GET 100 B and 100-key MGET at -c 1 (for the MGET p50
# / GET p50 ratio, also taken at -c 50 from the -P 1 GET and the MGET row);
# MGET and MSET of 10 and 100 keys at -c 50.
# Each run records throughput, p50, p99 and the CPU time (exact, from
# /proc/PID/task/*/schedstat) of the proxy under test and of the three
# redis-server processes. Prints a table of medians and ratios against
# direct (throughput, proxy CPU per request / direct Redis CPU per request,
# Redis CPU per request via the proxy / direct), then the issue-11 targets
# for the TLS and plaintext sides; with --out also writes them as markdown.
# The direct rps is the larger of redis-benchmark's own figure (its elapsed
# time can be rounded up to 250 ms) and n over the process's wall time; both
# are lower bounds of the rate.
#   --quick      1/4 of the requests and 1 round (smoke run, under a minute)
#   --no-build   use the binaries already in $BUILD_DIR
# Scratch files, logs and raw results: $WORK (default $BUILD_DIR/bench-compare).
# Every process it starts is stopped on exit.
set -euo pipefail

PROG=compare.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BUILD_DIR=${BUILD_DIR:-build}
BASE_PORT=${BASE_PORT:-7600}
SG_PORT=${SG_PORT:-7690}
CONNS=50

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_args 33 "$@"

WORK=${WORK:-$BIN/bench-compare}
command -v redis-benchmark >/dev/null 2>&1 || bench_die "redis-benchmark not found in PATH"
mkdir -p "$WORK/logs"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# Workloads and requests per run (full run). redis-benchmark --cluster
# rounds its elapsed time up to a 250 ms tick, so each run is sized to take
# one to a few seconds on either side; CPU per request divides by each
# side's own n. The plaintext side uses the slotgate counts.
WORKLOADS=(get_p16 set_p16 get_p1 set_p1 get_64k set_64k get_c1 mget100_c1 mget10 mset10 mget100 mset100)
declare -A WL_N_SG=([get_p1]=100000 [set_p1]=100000 [get_p16]=500000 [set_p16]=500000
    [mget10]=50000 [mset10]=50000 [mget100]=15000 [mset100]=15000
    [get_64k]=12000 [set_64k]=12000 [get_c1]=20000 [mget100_c1]=4000)
declare -A WL_N_DIRECT=([get_p1]=200000 [set_p1]=200000 [get_p16]=2500000 [set_p16]=2500000
    [mget10]=150000 [mset10]=150000 [mget100]=60000 [mset100]=40000
    [get_64k]=50000 [set_64k]=40000 [get_c1]=40000 [mget100_c1]=15000)
declare -A WL_DESC=(
    [get_p1]="GET 100 B, -c 50 -P 1" [set_p1]="SET 100 B, -c 50 -P 1"
    [get_p16]="GET 100 B, -c 50 -P 16" [set_p16]="SET 100 B, -c 50 -P 16"
    [mget10]="MGET 10 keys, -c 50" [mset10]="MSET 10 keys, -c 50"
    [mget100]="MGET 100 keys, -c 50" [mset100]="MSET 100 keys, -c 50"
    [get_64k]="GET 64 KiB, -c 50 -P 1" [set_64k]="SET 64 KiB, -c 50 -P 1"
    [get_c1]="GET 100 B, -c 1" [mget100_c1]="MGET 100 keys, -c 1")
SIDES=(direct tls plain)
declare -A SIDE_DESC=([direct]="direct" [tls]="slotgate TLS" [plain]="slotgate plaintext")

# conns_for WORKLOAD: connections (-c) of the workload, on every side.
conns_for() { case $1 in *_c1) echo 1 ;; *) echo "$CONNS" ;; esac; }

requests_for() { # requests_for WORKLOAD SIDE
    local n
    if [ "$2" = direct ]; then n=${WL_N_DIRECT[$1]}; else n=${WL_N_SG[$1]}; fi
    if [ "$QUICK" = 1 ]; then n=$((n / 4)); fi
    echo "$n"
}

run_sg() { # run_sg SIDE CONNS N ARGS... -> stdout: the CSV line
    bench_sg "$1" -c "$2" -n "$3" --csv "${@:4}"
}

run_direct() { # run_direct CONNS N ARGS...
    redis-benchmark --cluster -h 127.0.0.1 -p "$BASE_PORT" -c "$1" -n "$2" --csv "${@:3}"
}

# proxy_pids SIDE: the proxy measured on that side (both on the direct side,
# where they should be idle).
proxy_pids() {
    case $1 in
    tls) echo "$SG_PID" ;;
    plain) echo "$SG_PLAIN_PID" ;;
    *) echo "$SG_PID $SG_PLAIN_PID" ;;
    esac
}

# measure ROUND WORKLOAD SIDE: one run; appends a line to $RESULTS:
# round workload side n rps p50 p99 proxy_ns redis_ns errors wall_ns
# generator_ns other_ns (other_ns: the machine's busy time during the run
# minus that of both proxies, the Redis servers and the load generator)
measure() {
    local round=$1 w=$2 side=$3 n c out err rc=0 line rps p50 p99 errs
    n=$(requests_for "$w" "$side")
    c=$(conns_for "$w")
    bench_workload_args "$w" "$side"
    out=$WORK/logs/r$round-$w-$side.out
    err=$WORK/logs/r$round-$w-$side.err
    local sg0 rd0 sg1 rd1 t0 t1 all0 all1 m0 m1
    # shellcheck disable=SC2046
    sg0=$(bench_cpu_ns $(proxy_pids "$side"))
    all0=$(bench_cpu_ns "$SG_PID" "$SG_PLAIN_PID" "${REDIS_PIDS[@]}")
    rd0=$(bench_cpu_ns "${REDIS_PIDS[@]}")
    m0=$(bench_machine_busy_ns)
    t0=$(date +%s.%N)
    # The generator's own CPU (user and system seconds) from bash's time.
    local TIMEFORMAT='%3U %3S'
    {
        time if [ "$side" = direct ]; then
            run_direct "$c" "$n" "${ARGS[@]}" >"$out" 2>"$err" || rc=$?
        else
            run_sg "$side" "$c" "$n" "${ARGS[@]}" >"$out" 2>"$err" || rc=$?
        fi
    } 2>"$out.time"
    t1=$(date +%s.%N)
    m1=$(bench_machine_busy_ns)
    # shellcheck disable=SC2046
    sg1=$(bench_cpu_ns $(proxy_pids "$side"))
    all1=$(bench_cpu_ns "$SG_PID" "$SG_PLAIN_PID" "${REDIS_PIDS[@]}")
    rd1=$(bench_cpu_ns "${REDIS_PIDS[@]}")
    local gen wall other
    gen=$(awk '{printf "%.0f", ($1 + $2) * 1e9}' "$out.time")
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", (b - a) * 1e9}')
    other=$((m1 - m0 - (all1 - all0) - ${gen:-0}))
    ((other > 0)) || other=0
    local how which
    for which in tls plain; do
        local arg=
        [ "$which" = plain ] && arg=plain
        if how=$(bench_slotgate_exit $arg); then
            # Recorded as a problem; the proxy is restarted and the run
            # repeated once, so one outside signal does not void the whole
            # comparison.
            PROBLEMS+=("$how during $w ($side), round $round")
            bench_log "$how during $w ($side); restarting it and repeating the run"
            [ "${RETRIED:-0}" = 0 ] || bench_die "slotgate exited twice in a row"
            bench_start_slotgate 4096 $arg
            RETRIED=1
            measure "$@"
            RETRIED=0
            return 0
        fi
    done
    if [ "$side" != direct ]; then
        line=$(grep -E '^(GET|SET|MGET|MSET),' "$out" | tail -1 || true)
        IFS=, read -r _ rps _ p50 p99 _ _ errs <<<"$line"
    else
        line=$(grep -v '^"test"' "$out" | grep '^"' | tail -1 | tr -d '"' || true)
        # "test","rps","avg","min","p50","p95","p99","max", counted from the
        # end: the custom command's name holds spaces but no commas.
        rps=$(awk -F, '{print $(NF-6)}' <<<"$line")
        p50=$(awk -F, '{print $(NF-3)}' <<<"$line")
        p99=$(awk -F, '{print $(NF-1)}' <<<"$line")
        errs=$(grep -ci 'error' "$err" || true)
        # redis-benchmark --cluster can round its elapsed time up to a
        # 250 ms tick; n over the process's wall time (start-up included)
        # is another lower bound of the rate: keep the tighter one.
        if [ -n "$rps" ]; then
            rps=$(awk -v r="$rps" -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN {
                w = n / (b - a); printf "%.2f", (w > r ? w : r) }')
        fi
    fi
    if [ "$rc" != 0 ] || [ -z "${rps:-}" ]; then
        echo "$PROG: $w ($side) round $round failed (exit $rc); see $out and $err" >&2
        tail -5 "$err" >&2 || true
        PROBLEMS+=("$w ($side) round $round: run failed, exit $rc: $(tail -1 "$err" 2>/dev/null)")
        return 0
    fi
    if [ -s "$err" ] && [ "$side" != direct ]; then
        PROBLEMS+=("$w ($side) round $round: $(tr '\n' ' ' <"$err" | cut -c1-300)")
    elif [ "${errs:-0}" != 0 ]; then
        PROBLEMS+=("$w ($side) round $round: $errs errors: $(tr '\n' ' ' <"$err" | cut -c1-300)")
    fi
    echo "$round $w $side $n $rps $p50 $p99 $((sg1 - sg0)) $((rd1 - rd0)) ${errs:-0} $wall ${gen:-0} $other" >>"$RESULTS"
    bench_log "  $w $side: $rps req/s  p50 $p50 ms  p99 $p99 ms  cpu ms proxy $(((sg1 - sg0) / 1000000)) redis $(((rd1 - rd0) / 1000000))  $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s  other jobs $(awk -v o="$other" -v w="$wall" 'BEGIN {printf "%.2f", o / w}') CPUs  errors ${errs:-0}"
}


# col W SIDE FIELD: the median of one column (5 rps, 6 p50, 7 p99) or of a
# derived CPU figure (cpu_proxy, cpu_redis: µs per request).
col() {
    local w=$1 side=$2 f=$3
    case $f in
    cpu_proxy) awk -v w="$w" -v s="$side" '$2 == w && $3 == s {print $8 / 1000 / $4}' "$RESULTS" | bench_median ;;
    cpu_redis) awk -v w="$w" -v s="$side" '$2 == w && $3 == s {print $9 / 1000 / $4}' "$RESULTS" | bench_median ;;
    *) awk -v w="$w" -v s="$side" -v f="$f" '$2 == w && $3 == s {print $f}' "$RESULTS" | bench_median ;;
    esac
}


# ---------------------------------------------------------------------------
bench_binaries slotgate slotgate-cli slotgate-bench
T_START=$(date +%s)
bench_start_sides
PROBLEMS=()
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

bench_log "pre-populating (not measured)"
fill_n=$(( QUICK ? 20000 : 100000 ))
# Both proxies front the same cluster and keyspaces: one fill serves both.
run_sg tls "$CONNS" 1 -t fill -r 100000 -d 100 -P 16 >"$WORK/logs/fill-sg.out" 2>&1 ||
    bench_die "slotgate fill failed: $(tail -3 "$WORK/logs/fill-sg.out")"
run_sg tls "$CONNS" 1 -k big -t fill -r 1000 -d 65536 -P 4 >"$WORK/logs/fill-sg-big.out" 2>&1 ||
    bench_die "slotgate fill (64 KiB) failed: $(tail -3 "$WORK/logs/fill-sg-big.out")"
run_direct "$CONNS" $((3 * fill_n)) -t set -d 100 -r 100000 -P 16 >"$WORK/logs/fill-direct.out" 2>&1 ||
    bench_die "direct fill failed: $(tail -3 "$WORK/logs/fill-direct.out")"
bench_workload_args mset100 direct
run_direct "$CONNS" $((fill_n / 10)) -P 4 "${ARGS[@]}" >"$WORK/logs/fill-direct-tagged.out" 2>&1 ||
    bench_die "direct fill (tagged) failed"
bench_workload_args set_64k direct
run_direct "$CONNS" $(( QUICK ? 3000 : 6000 )) "${ARGS[@]}" >"$WORK/logs/fill-direct-big.out" 2>&1 ||
    bench_die "direct fill (64 KiB) failed"

for ((round = 1; round <= ROUNDS; round++)); do
    bench_log "round $round of $ROUNDS"
    for w in "${WORKLOADS[@]}"; do
        # Rotate the order: round 1 direct, tls, plain; round 2 tls, plain,
        # direct; round 3 plain, direct, tls; ...
        for ((k = 0; k < 3; k++)); do
            measure "$round" "$w" "${SIDES[$(((round - 1 + k) % 3))]}"
        done
    done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
T_END=$(date +%s)

# ---------------------------------------------------------------------------
MD=$WORK/table.md
{
    echo "| workload | side | rps | rps ÷ direct | p50 ms | p99 ms | proxy CPU µs/req | proxy CPU ÷ direct Redis CPU | Redis CPU µs/req | Redis CPU ÷ direct |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for w in "${WORKLOADS[@]}"; do
        d_rps=$(col "$w" direct 5)
        d_red=$(col "$w" direct cpu_redis)
        for side in "${SIDES[@]}"; do
            rps=$(col "$w" "$side" 5)
            p50=$(col "$w" "$side" 6)
            p99=$(col "$w" "$side" 7)
            red=$(col "$w" "$side" cpu_redis)
            if [ "$side" = direct ]; then
                echo "| ${WL_DESC[$w]} | direct | $(bench_fmt "$rps" 0) | | $(bench_fmt "$p50" 3) | $(bench_fmt "$p99" 3) | | | $(bench_fmt "$red" 2) | |"
            else
                cpu=$(col "$w" "$side" cpu_proxy)
                echo "| | ${SIDE_DESC[$side]} | $(bench_fmt "$rps" 0) | $(bench_ratio "$rps" "$d_rps") | $(bench_fmt "$p50" 3) | $(bench_fmt "$p99" 3) | $(bench_fmt "$cpu" 2) | $(bench_ratio "$cpu" "$d_red") | $(bench_fmt "$red" 2) | $(bench_ratio "$red" "$d_red") |"
            fi
        done
    done
} >"$MD"

MG=$WORK/mget.md
{
    echo "| 100-key MGET p50 ÷ GET p50 | direct | slotgate TLS | slotgate plaintext |"
    echo "|---|---:|---:|---:|"
    for c in c1 c50; do
        if [ $c = c1 ]; then mw=mget100_c1 gw=get_c1; else mw=mget100 gw=get_p1; fi
        row="| -${c/c/c } ($(bench_fmt "$(col $gw direct 6)" 3) ms direct GET p50)"
        for side in "${SIDES[@]}"; do
            row="$row | $(bench_ratio "$(col $mw "$side" 6)" "$(col $gw "$side" 6)")"
        done
        echo "$row |"
    done
} >"$MG"

# check LABEL SIDE VALUE OP LIMIT: one target line.
TARGETS=$WORK/targets.md
check() {
    local label=$1 side=$2 v=$3 op=$4 lim=$5 verdict
    verdict=$(awk -v v="$v" -v op="$op" -v l="$lim" 'BEGIN {
        if (v == "-") { print "no data"; exit }
        ok = (op == "le") ? (v <= l) : (v >= l); print ok ? "met" : "MISSED" }')
    echo "| $label | $side | $v | $([ "$op" = le ] && echo "≤" || echo "≥") $lim | $verdict |" >>"$TARGETS"
}
cpu_ratio() { bench_ratio "$(col "$1" "$2" cpu_proxy)" "$(col "$1" direct cpu_redis)"; }
rps_ratio() { bench_ratio "$(col "$1" "$2" 5)" "$(col "$1" direct 5)"; }
{
    echo "| issue-11 target | side | measured | limit | verdict |"
    echo "|---|---|---:|---:|---|"
} >"$TARGETS"
for w in get_p16 set_p16; do
    op=${w%%_*}; op=${op^^}
    check "$op 100 B -c 50 -P 16: proxy CPU ÷ direct Redis CPU" TLS "$(cpu_ratio $w tls)" le 0.8
    check "$op 100 B -c 50 -P 16: throughput ÷ direct" TLS "$(rps_ratio $w tls)" ge 0.8
    check "$op 100 B -c 50 -P 16: proxy CPU ÷ direct Redis CPU" plaintext "$(cpu_ratio $w plain)" le 0.6
    check "$op 100 B -c 50 -P 16: throughput ÷ direct" plaintext "$(rps_ratio $w plain)" ge 0.9
done
for w in get_p1 set_p1; do
    op=${w%%_*}; op=${op^^}
    check "$op 100 B -c 50 -P 1: proxy CPU ÷ direct Redis CPU" TLS "$(cpu_ratio $w tls)" le 0.9
    check "$op 100 B -c 50 -P 1: throughput ÷ direct" TLS "$(rps_ratio $w tls)" ge 0.9
done
for w in get_64k set_64k; do
    op=${w%%_*}; op=${op^^}
    check "$op 64 KiB -P 1: proxy CPU ÷ direct Redis CPU" TLS "$(cpu_ratio $w tls)" le 2.0
    check "$op 64 KiB -P 1: throughput ÷ direct" TLS "$(rps_ratio $w tls)" ge 0.6
    check "$op 64 KiB -P 1: proxy CPU ÷ direct Redis CPU" plaintext "$(cpu_ratio $w plain)" le 1.2
    check "$op 64 KiB -P 1: throughput ÷ direct" plaintext "$(rps_ratio $w plain)" ge 0.8
done
for side in tls plain; do
    sd=TLS; [ $side = plain ] && sd=plaintext
    check "100-key MGET p50 ÷ GET p50, -c 1" $sd "$(bench_ratio "$(col mget100_c1 $side 6)" "$(col get_c1 $side 6)")" le 2.0
    check "100-key MGET p50 ÷ GET p50, -c 50" $sd "$(bench_ratio "$(col mget100 $side 6)" "$(col get_p1 $side 6)")" le 2.0
done
for side in tls plain; do
    sd=TLS; [ $side = plain ] && sd=plaintext
    check "no regression: Redis CPU per GET via slotgate ÷ direct, -P 1" $sd "$(bench_ratio "$(col get_p1 $side cpu_redis)" "$(col get_p1 direct cpu_redis)")" le 0.7
done

OTHER=$(awk '{print $13 / $11}' "$RESULTS" | sort -g | awk '{a[NR] = $1} END {
    if (NR) printf "median %.2f, lowest %.2f, highest %.2f", (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), a[1], a[NR] }')
NOTES="Medians of $ROUNDS round(s), sides in rotating order; -c 50 except the -c 1 rows; slotgate with one worker, over TLS (slotgate-bench --tls) and over plaintext (a second slotgate, listen.plaintext: true, slotgate-bench without --tls); direct over plain TCP (redis-benchmark --cluster). CPU per request from /proc/PID/task/*/schedstat over each run (proxy: the slotgate under test; Redis: the three servers). Direct MGET/MSET/64 KiB use hash-tagged custom commands: each command's keys share one slot; slotgate's keys span slots. Run time $(((T_END - T_START) / 60)) min $(((T_END - T_START) % 60)) s; load average $LOAD_START at the start of the rounds, $LOAD_END at the end ($(nproc) CPUs). CPUs used by other jobs on the machine during the runs (machine busy time from /proc/stat minus the proxies, Redis and the load generator, over the run's wall time): $OTHER."

echo
echo "slotgate vs direct Redis Cluster - $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs"
echo
bench_show "$MD"
echo
bench_show "$MG"
echo
bench_show "$TARGETS"
echo
bench_print_notes
echo "Raw results: $RESULTS (round workload side n rps p50 p99 proxy_ns redis_ns errors wall_ns generator_ns other_ns)"

if [ -n "$OUT" ]; then
    {
        echo "## slotgate vs direct Redis Cluster ($(date -u '+%Y-%m-%d %H:%M UTC'))"
        echo
        cat "$MD"
        echo
        cat "$MG"
        echo
        cat "$TARGETS"
        echo
        echo "$NOTES"
        if [ ${#PROBLEMS[@]} -gt 0 ]; then
            echo
            echo "Problems seen:"
            echo
            printf -- '- %s\n' "${PROBLEMS[@]}"
        fi
    } >"$OUT"
    echo "Markdown written to $OUT"
fi
