#!/usr/bin/env bash
# compare.sh - measure slotgate and direct Redis Cluster side by side.
#
#   bench/compare.sh [--rounds N] [--quick] [--out FILE] [--no-build]
#
# Builds Release into $BUILD_DIR (default build), starts a 3-master Redis
# Cluster with no replicas on $BASE_PORT.. (default 7600) and slotgate on
# $SG_PORT (default 7690, TLS with the dev certificates), pre-populates the
# key spaces once (not measured), then runs every workload N times (default
# 3), alternating which side goes first in each round:
#   direct:   redis-benchmark --cluster (plain TCP straight to the masters)
#   slotgate: build/slotgate-bench (TLS to slotgate)
# For each run it records throughput, p50 and p99, and the CPU time (utime +
# stime from /proc/PID/stat) of the slotgate process and of the redis-server
# processes during the run. Prints a table of the medians and ratios, checks
# the issue's targets, and with --out also writes the table as markdown.
#   --quick      small request counts and 1 round (smoke run)
#   --no-build   use the binaries already in $BUILD_DIR
# Scratch files, logs and raw results: $WORK (default $BUILD_DIR/bench-compare).
# Every process it starts is stopped on exit.
set -euo pipefail

PROG=compare.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BUILD_DIR=${BUILD_DIR:-build}
BASE_PORT=${BASE_PORT:-7600}
SG_PORT=${SG_PORT:-7690}
ROUNDS=3
ROUNDS_SET=0
QUICK=0
OUT=
NO_BUILD=0
CONNS=50

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) [ $# -ge 2 ] || usage; ROUNDS=$2; ROUNDS_SET=1; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --out) [ $# -ge 2 ] || usage; OUT=$2; shift 2 ;;
    --no-build) NO_BUILD=1; shift ;;
    -h | --help) usage ;;
    *) echo "$PROG: unknown argument $1" >&2; usage ;;
    esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "$PROG: --rounds needs a positive number" >&2; exit 2; }
if [ "$QUICK" = 1 ] && [ "$ROUNDS_SET" = 0 ]; then ROUNDS=1; fi
case $OUT in "" | /*) ;; *) OUT=$PWD/$OUT ;; esac

case $BUILD_DIR in /*) BIN=$BUILD_DIR ;; *) BIN=$ROOT/$BUILD_DIR ;; esac
WORK=${WORK:-$BIN/bench-compare}
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
command -v redis-benchmark >/dev/null 2>&1 || bench_die "redis-benchmark not found in PATH"
mkdir -p "$WORK/logs"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

CLK_TCK=$(getconf CLK_TCK)
VAL100=$(printf '%*s' 100 '' | tr ' ' x)
VAL64K=$(printf '%*s' 65536 '' | tr ' ' x)

# Workloads and requests per run (full run). redis-benchmark --cluster
# rounds its elapsed time up to a 250 ms tick, so each run is sized to take a
# few seconds on either side; CPU per request divides by each side's own n.
WORKLOADS=(get_p1 set_p1 get_p16 set_p16 mget10 mset10 mget100 mset100 get_64k set_64k)
declare -A WL_N_SG=([get_p1]=100000 [set_p1]=100000 [get_p16]=500000 [set_p16]=500000
    [mget10]=50000 [mset10]=50000 [mget100]=15000 [mset100]=15000
    [get_64k]=12000 [set_64k]=12000)
declare -A WL_N_DIRECT=([get_p1]=200000 [set_p1]=200000 [get_p16]=2500000 [set_p16]=2500000
    [mget10]=150000 [mset10]=150000 [mget100]=60000 [mset100]=40000
    [get_64k]=50000 [set_64k]=40000)
declare -A WL_DESC=(
    [get_p1]="GET 100 B, -P 1" [set_p1]="SET 100 B, -P 1"
    [get_p16]="GET 100 B, -P 16" [set_p16]="SET 100 B, -P 16"
    [mget10]="MGET 10 keys" [mset10]="MSET 10 keys"
    [mget100]="MGET 100 keys" [mset100]="MSET 100 keys"
    [get_64k]="GET 64 KiB" [set_64k]="SET 64 KiB")

# repeat N WORD...: the words, N times over.
repeat() {
    local n=$1 i
    shift
    for ((i = 0; i < n; i++)); do printf '%s\n' "$@"; done
}

# Fill ARGS with the arguments for workload $1 on side $2 (sg | direct).
# The direct MGET/MSET/64 KiB runs use hash-tagged custom commands: with
# --cluster, redis-benchmark replaces {tag} by a tag of the node each client
# talks to, so every command's keys share one slot (no cross-slot fan-out).
workload_args() {
    local w=$1 side=$2
    ARGS=()
    if [ "$side" = sg ]; then
        case $w in
        get_p1) ARGS=(-t get -d 100 -r 100000 -P 1 --no-prefill) ;;
        set_p1) ARGS=(-t set -d 100 -r 100000 -P 1) ;;
        get_p16) ARGS=(-t get -d 100 -r 100000 -P 16 --no-prefill) ;;
        set_p16) ARGS=(-t set -d 100 -r 100000 -P 16) ;;
        mget10) ARGS=(-t mget --keys 10 -d 100 -r 100000 --no-prefill) ;;
        mset10) ARGS=(-t mset --keys 10 -d 100 -r 100000) ;;
        mget100) ARGS=(-t mget --keys 100 -d 100 -r 100000 --no-prefill) ;;
        mset100) ARGS=(-t mset --keys 100 -d 100 -r 100000) ;;
        get_64k) ARGS=(-k big -t get -d 65536 -r 1000 --no-prefill) ;;
        set_64k) ARGS=(-k big -t set -d 65536 -r 1000) ;;
        esac
        return
    fi
    local -a kv10 kv100 k10 k100
    case $w in
    get_p1) ARGS=(-t get -d 100 -r 100000 -P 1) ;;
    set_p1) ARGS=(-t set -d 100 -r 100000 -P 1) ;;
    get_p16) ARGS=(-t get -d 100 -r 100000 -P 16) ;;
    set_p16) ARGS=(-t set -d 100 -r 100000 -P 16) ;;
    mget10) mapfile -t k10 < <(repeat 10 'key:{tag}:__rand_int__'); ARGS=(-r 100000 MGET "${k10[@]}") ;;
    mget100) mapfile -t k100 < <(repeat 100 'key:{tag}:__rand_int__'); ARGS=(-r 100000 MGET "${k100[@]}") ;;
    mset10) mapfile -t kv10 < <(repeat 10 'key:{tag}:__rand_int__' "$VAL100"); ARGS=(-r 100000 MSET "${kv10[@]}") ;;
    mset100) mapfile -t kv100 < <(repeat 100 'key:{tag}:__rand_int__' "$VAL100"); ARGS=(-r 100000 MSET "${kv100[@]}") ;;
    get_64k) ARGS=(-r 1000 GET 'big:{tag}:__rand_int__') ;;
    set_64k) ARGS=(-r 1000 SET 'big:{tag}:__rand_int__' "$VAL64K") ;;
    esac
}

requests_for() { # requests_for WORKLOAD SIDE
    local n
    if [ "$2" = sg ]; then n=${WL_N_SG[$1]}; else n=${WL_N_DIRECT[$1]}; fi
    if [ "$QUICK" = 1 ]; then n=$((n / 20)); fi
    echo "$n"
}

run_sg() { # run_sg N ARGS... -> stdout: the CSV line
    # shellcheck disable=SC2046
    "$BIN/slotgate-bench" -h 127.0.0.1 -p "$SG_PORT" $(bench_tls_flags) -c "$CONNS" -n "$1" \
        --csv "${@:2}"
}

run_direct() { # run_direct N ARGS...
    redis-benchmark --cluster -h 127.0.0.1 -p "$BASE_PORT" -c "$CONNS" -n "$1" --csv "${@:2}"
}

# measure ROUND WORKLOAD SIDE: one run; appends a line to $RESULTS:
# round workload side n rps p50 p99 proxy_ticks redis_ticks errors
measure() {
    local round=$1 w=$2 side=$3 n out err rc=0 line rps p50 p99 errs
    n=$(requests_for "$w" "$side")
    workload_args "$w" "$side"
    out=$WORK/logs/r$round-$w-$side.out
    err=$WORK/logs/r$round-$w-$side.err
    local sg0 rd0 sg1 rd1
    sg0=$(bench_cpu_ticks "$SG_PID")
    rd0=$(bench_cpu_ticks "${REDIS_PIDS[@]}")
    if [ "$side" = sg ]; then
        run_sg "$n" "${ARGS[@]}" >"$out" 2>"$err" || rc=$?
    else
        run_direct "$n" "${ARGS[@]}" >"$out" 2>"$err" || rc=$?
    fi
    sg1=$(bench_cpu_ticks "$SG_PID")
    rd1=$(bench_cpu_ticks "${REDIS_PIDS[@]}")
    local how
    if how=$(bench_slotgate_exit); then
        # Recorded as a problem; the proxy is restarted and the run repeated
        # once, so one outside signal does not void the whole comparison.
        PROBLEMS+=("$how during $w ($side), round $round; log tail: $(tail -3 "$WORK/slotgate.log" | tr '\n' ' ')")
        bench_log "$how during $w ($side); restarting it and repeating the run"
        [ "${RETRIED:-0}" = 0 ] || bench_die "slotgate exited twice in a row"
        bench_start_slotgate 4096
        RETRIED=1
        measure "$@"
        RETRIED=0
        return 0
    fi
    if [ "$side" = sg ]; then
        line=$(grep -E '^(GET|SET|MGET|MSET),' "$out" | tail -1 || true)
        IFS=, read -r _ rps _ p50 p99 _ _ errs <<<"$line"
    else
        line=$(grep -v '^"test"' "$out" | grep '^"' | tail -1 | tr -d '"' || true)
        # "test","rps","avg","min","p50","p95","p99","max"; the test name may hold commas? no.
        rps=$(awk -F, '{print $(NF-6)}' <<<"$line")
        p50=$(awk -F, '{print $(NF-3)}' <<<"$line")
        p99=$(awk -F, '{print $(NF-1)}' <<<"$line")
        errs=$(grep -ci 'error' "$err" || true)
    fi
    if [ "$rc" != 0 ] || [ -z "${rps:-}" ]; then
        echo "$PROG: $w ($side) round $round failed (exit $rc); see $out and $err" >&2
        tail -5 "$err" >&2 || true
        PROBLEMS+=("$w ($side) round $round: run failed, exit $rc: $(tail -1 "$err" 2>/dev/null)")
        return 0
    fi
    if [ -s "$err" ] && [ "$side" = sg ]; then
        PROBLEMS+=("$w (slotgate) round $round: $(tr '\n' ' ' <"$err" | cut -c1-300)")
    elif [ "${errs:-0}" != 0 ]; then
        PROBLEMS+=("$w ($side) round $round: $errs errors: $(tr '\n' ' ' <"$err" | cut -c1-300)")
    fi
    echo "$round $w $side $n $rps $p50 $p99 $((sg1 - sg0)) $((rd1 - rd0)) ${errs:-0}" >>"$RESULTS"
    bench_log "  $w $side: $rps req/s  p50 $p50 ms  p99 $p99 ms  cpu ticks proxy $((sg1 - sg0)) redis $((rd1 - rd0))  errors ${errs:-0}"
}

# median: median of the numbers on stdin ("-" if none).
median() {
    sort -g | awk '{a[NR] = $1} END {
        if (NR == 0) { print "-"; exit }
        if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# col W SIDE FIELD: the median of one column (5 rps, 6 p50, 7 p99) or of a
# derived CPU figure (cpu_proxy, cpu_redis: µs per request).
col() {
    local w=$1 side=$2 f=$3
    case $f in
    cpu_proxy) awk -v w="$w" -v s="$side" -v hz="$CLK_TCK" '$2 == w && $3 == s {print $8 * 1e6 / hz / $4}' "$RESULTS" | median ;;
    cpu_redis) awk -v w="$w" -v s="$side" -v hz="$CLK_TCK" '$2 == w && $3 == s {print $9 * 1e6 / hz / $4}' "$RESULTS" | median ;;
    *) awk -v w="$w" -v s="$side" -v f="$f" '$2 == w && $3 == s {print $f}' "$RESULTS" | median ;;
    esac
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
fmt() { awk -v a="$1" -v d="$2" 'BEGIN { if (a == "-") print "-"; else printf "%.*f", d, a }'; }

# ---------------------------------------------------------------------------
if [ "$NO_BUILD" = 0 ]; then
    bench_build slotgate slotgate-cli slotgate-bench slotgate-idle
fi
for b in slotgate slotgate-cli slotgate-bench; do
    [ -x "$BIN/$b" ] || bench_die "$BIN/$b missing (build first)"
done
bench_start_cluster
mapfile -t REDIS_PIDS < <(bench_redis_pids)
bench_write_config 1000
bench_start_slotgate 4096
RESULTS=$WORK/results.txt
: >"$RESULTS"
PROBLEMS=()

bench_log "pre-populating (not measured)"
fill_n=$(( QUICK ? 20000 : 100000 ))
run_sg 1 -t fill -r 100000 -d 100 -P 16 >"$WORK/logs/fill-sg.out" 2>&1 ||
    bench_die "slotgate fill failed: $(tail -3 "$WORK/logs/fill-sg.out")"
run_sg 1 -k big -t fill -r 1000 -d 65536 -P 4 >"$WORK/logs/fill-sg-big.out" 2>&1 ||
    bench_die "slotgate fill (64 KiB) failed: $(tail -3 "$WORK/logs/fill-sg-big.out")"
run_direct $((3 * fill_n)) -t set -d 100 -r 100000 -P 16 >"$WORK/logs/fill-direct.out" 2>&1 ||
    bench_die "direct fill failed: $(tail -3 "$WORK/logs/fill-direct.out")"
workload_args mset100 direct
run_direct $((fill_n / 10)) -P 4 "${ARGS[@]}" >"$WORK/logs/fill-direct-tagged.out" 2>&1 ||
    bench_die "direct fill (tagged) failed"
workload_args set_64k direct
run_direct $(( QUICK ? 3000 : 6000 )) "${ARGS[@]}" >"$WORK/logs/fill-direct-big.out" 2>&1 ||
    bench_die "direct fill (64 KiB) failed"

for ((round = 1; round <= ROUNDS; round++)); do
    bench_log "round $round of $ROUNDS"
    for w in "${WORKLOADS[@]}"; do
        if ((round % 2)); then
            measure "$round" "$w" direct
            measure "$round" "$w" sg
        else
            measure "$round" "$w" sg
            measure "$round" "$w" direct
        fi
    done
done

# ---------------------------------------------------------------------------
MD=$WORK/table.md
{
    echo "| workload | direct rps | slotgate rps | ratio | direct p50 ms | slotgate p50 ms | direct p99 ms | slotgate p99 ms | proxy CPU µs/req | Redis CPU µs/req (direct) | proxy / Redis-direct CPU | Redis CPU µs/req (via slotgate) | Redis via / direct CPU |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for w in "${WORKLOADS[@]}"; do
        d_rps=$(col "$w" direct 5); s_rps=$(col "$w" sg 5)
        d_p50=$(col "$w" direct 6); s_p50=$(col "$w" sg 6)
        d_p99=$(col "$w" direct 7); s_p99=$(col "$w" sg 7)
        s_cpu=$(col "$w" sg cpu_proxy)
        d_red=$(col "$w" direct cpu_redis); s_red=$(col "$w" sg cpu_redis)
        echo "| ${WL_DESC[$w]} | $(fmt "$d_rps" 0) | $(fmt "$s_rps" 0) | $(ratio "$s_rps" "$d_rps") | $(fmt "$d_p50" 3) | $(fmt "$s_p50" 3) | $(fmt "$d_p99" 3) | $(fmt "$s_p99" 3) | $(fmt "$s_cpu" 2) | $(fmt "$d_red" 2) | $(ratio "$s_cpu" "$d_red") | $(fmt "$s_red" 2) | $(ratio "$s_red" "$d_red") |"
    done
} >"$MD"

# check LABEL VALUE OP LIMIT: one target line.
TARGETS=$WORK/targets.md
check() {
    local label=$1 v=$2 op=$3 lim=$4 verdict
    verdict=$(awk -v v="$v" -v op="$op" -v l="$lim" 'BEGIN {
        if (v == "-") { print "no data"; exit }
        ok = (op == "le") ? (v <= l) : (v >= l); print ok ? "met" : "missed" }')
    echo "| $label | $v | $([ "$op" = le ] && echo "≤" || echo "≥") $lim | $verdict |" >>"$TARGETS"
}
{
    echo "| target | measured | limit | verdict |"
    echo "|---|---:|---:|---|"
} >"$TARGETS"
check "proxy CPU per GET / direct Redis CPU per GET, -P 16" "$(ratio "$(col get_p16 sg cpu_proxy)" "$(col get_p16 direct cpu_redis)")" le 0.8
check "proxy CPU per GET / direct Redis CPU per GET, -P 1" "$(ratio "$(col get_p1 sg cpu_proxy)" "$(col get_p1 direct cpu_redis)")" le 1.0
check "Redis CPU per GET via slotgate / direct, -P 1" "$(ratio "$(col get_p1 sg cpu_redis)" "$(col get_p1 direct cpu_redis)")" le 0.75
check "GET throughput slotgate / direct, -P 16" "$(ratio "$(col get_p16 sg 5)" "$(col get_p16 direct 5)")" ge 0.8
check "SET throughput slotgate / direct, -P 16" "$(ratio "$(col set_p16 sg 5)" "$(col set_p16 direct 5)")" ge 0.8
check "slotgate 100-key MGET p50 / GET p50 (-P 1)" "$(ratio "$(col mget100 sg 6)" "$(col get_p1 sg 6)")" le 2.0

NOTES="Medians of $ROUNDS round(s); $CONNS connections; slotgate over TLS (slotgate-bench), direct over plain TCP (redis-benchmark --cluster). CPU from /proc/PID/stat (CLK_TCK=$CLK_TCK) over each run. Direct MGET/MSET/64 KiB use hash-tagged custom commands: each command's keys share one slot; slotgate's keys span slots."

echo
echo "slotgate vs direct Redis Cluster - $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs"
echo
sed -e 's/^| //' -e 's/ |$//' -e '/^|---/d' "$MD" | column -t -s '|'
echo
sed -e 's/^| //' -e 's/ |$//' -e '/^|---/d' "$TARGETS" | column -t -s '|'
echo
echo "$NOTES"
if [ ${#PROBLEMS[@]} -gt 0 ]; then
    echo
    echo "Problems seen:"
    printf '  - %s\n' "${PROBLEMS[@]}"
fi
echo "Raw results: $RESULTS (round workload side n rps p50 p99 proxy_ticks redis_ticks errors)"

if [ -n "$OUT" ]; then
    {
        echo "## slotgate vs direct Redis Cluster ($(date -u '+%Y-%m-%d %H:%M UTC'))"
        echo
        cat "$MD"
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
