#!/usr/bin/env bash
# peer.sh - slotgate and a peer proxy, twemproxy (Debian's nutcracker), on
# the same machine, each against direct Redis measured in the same run.
#
#   bench/peer.sh [--rounds N] [--quick] [--out FILE] [--no-build]
#
# twemproxy does not speak Redis Cluster, so it fronts three standalone
# redis-servers (the cluster nodes' config, cluster off) on $BASE_PORT+10..12,
# spreading keys over them (fnv1a_64, ketama, one connection per server), on
# $BASE_PORT+20. slotgate fronts the 3-master cluster on $BASE_PORT.. as in
# compare.sh: TLS on $SG_PORT, plaintext on $SG_PLAIN_PORT, one worker each.
# Five sides per round, N rounds (default 3), rotating which goes first:
#   direct    redis-benchmark --cluster, plain TCP to the cluster's masters
#   tls       slotgate-bench over TLS to the TLS slotgate
#   plain     slotgate-bench over plain TCP to the plaintext slotgate
#   sdirect   three redis-benchmarks at once, one per standalone server
#             (17 + 17 + 16 connections)
#   twem      redis-benchmark to twemproxy
# Workloads: issue 11's CPU rows, GET and SET of 100 B at -c 50 -P 16 and
# -P 1, GET and SET of 64 KiB at -c 50 -P 1. Every server holds every key
# (filled once, not measured), so no side reads misses.
# Per run: the proxy's and the Redis servers' CPU per request
# (/proc/PID/task/*/schedstat) and the rate (requests over wall time).
# Prints each proxy's CPU ÷ its direct Redis CPU per request (slotgate's
# against the cluster, twemproxy's against the standalone servers) and
# slotgate's CPU per request ÷ twemproxy's.
#   --quick      1 round, a quarter of the requests
#   --no-build   use the binaries already in $BUILD_DIR
# Installs nutcracker (scripts/deps.sh) when it is missing. Scratch files
# and logs: $WORK (default $BUILD_DIR/bench-peer).
set -euo pipefail

PROG=peer.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BUILD_DIR=${BUILD_DIR:-build}
BASE_PORT=${BASE_PORT:-7600}
SG_PORT=${SG_PORT:-7690}
PEER_BASE=$((BASE_PORT + 10))
TWEM_PORT=$((BASE_PORT + 20))

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_args 30 "$@"

command -v nutcracker >/dev/null 2>&1 || "$ROOT/scripts/deps.sh" nutcracker
command -v nutcracker >/dev/null 2>&1 || bench_die "nutcracker (twemproxy) not found after scripts/deps.sh"
command -v redis-benchmark >/dev/null 2>&1 || bench_die "redis-benchmark not found in PATH"

WORK=${WORK:-$BIN/bench-peer}
mkdir -p "$WORK/logs"
TWEM_PID=
PEER_STARTED=0
bench_extra_cleanup() {
    [ -z "$TWEM_PID" ] || { kill "$TWEM_PID" 2>/dev/null; wait "$TWEM_PID" 2>/dev/null; } || true
    [ "$PEER_STARTED" = 0 ] || "$ROOT/scripts/cluster.sh" stop "$WORK/peer" >/dev/null 2>&1 || true
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

WORKLOADS=(get_p16 set_p16 get_p1 set_p1 get_64k set_64k)
declare -A WL_N=([get_p16]=1000000 [set_p16]=1000000 [get_p1]=150000 [set_p1]=150000
    [get_64k]=20000 [set_64k]=20000)
declare -A WL_DESC=([get_p16]="GET 100 B, -c 50 -P 16" [set_p16]="SET 100 B, -c 50 -P 16"
    [get_p1]="GET 100 B, -c 50 -P 1" [set_p1]="SET 100 B, -c 50 -P 1"
    [get_64k]="GET 64 KiB, -c 50 -P 1" [set_64k]="SET 64 KiB, -c 50 -P 1")
SIDES=(direct tls plain sdirect twem)
declare -A SIDE_DESC=([direct]="direct (cluster)" [tls]="slotgate TLS" [plain]="slotgate plaintext"
    [sdirect]="direct (3 standalone)" [twem]="twemproxy")
# Each proxy's direct side: the same Redis servers without the proxy.
declare -A BASE_OF=([tls]=direct [plain]=direct [twem]=sdirect)

# Fill ARGS with workload $1's arguments for side $2 (bench_workload_args:
# the keys of the direct cluster side carry a tag, as in compare.sh).
workload_args() {
    case $2 in
    sdirect | twem) bench_workload_args "$1" standalone ;;
    *) bench_workload_args "$1" "$2" ;;
    esac
}

# run SIDE N ARGS...: N requests of that side's generator, -c 50 in all.
run() {
    local side=$1 n=$2
    shift 2
    case $side in
    direct) redis-benchmark --cluster -h 127.0.0.1 -p "$BASE_PORT" -c 50 -n "$n" -q "$@" ;;
    tls | plain) bench_sg "$side" -c 50 -n "$n" -q "$@" ;;
    twem) redis-benchmark -h 127.0.0.1 -p "$TWEM_PORT" -c 50 -n "$n" -q "$@" ;;
    sdirect)
        local i rc=0 pids=()
        for i in 0 1 2; do
            local c=$((i < 2 ? 17 : 16))
            redis-benchmark -h 127.0.0.1 -p $((PEER_BASE + i)) -c $c -n $((n * c / 50)) -q "$@" &
            pids+=($!)
        done
        for i in "${pids[@]}"; do wait "$i" || rc=$?; done
        return $rc ;;
    esac
}

# measure ROUND WORKLOAD SIDE: one run; appends "round workload side n rps
# proxy_ns redis_ns" to $RESULTS.
measure() {
    local round=$1 w=$2 side=$3 n rc=0 log=$WORK/logs/r$1-$2-$3
    n=${WL_N[$w]}
    [ "$QUICK" = 0 ] || n=$((n / 4))
    [ "$side" != sdirect ] || n=$((n / 50 * 50)) # splits evenly by connections
    workload_args "$w" "$side"
    local proxy=() redis=("${REDIS_PIDS[@]}")
    case $side in
    tls) proxy=("$SG_PID") ;;
    plain) proxy=("$SG_PLAIN_PID") ;;
    twem) proxy=("$TWEM_PID") redis=("${PEER_PIDS[@]}") ;;
    sdirect) redis=("${PEER_PIDS[@]}") ;;
    esac
    local p0 r0 t0 p1 r1 t1
    p0=$(bench_cpu_ns "${proxy[@]}")
    r0=$(bench_cpu_ns "${redis[@]}")
    t0=$(date +%s%N)
    run "$side" "$n" "${ARGS[@]}" >"$log.out" 2>"$log.err" || rc=$?
    t1=$(date +%s%N)
    p1=$(bench_cpu_ns "${proxy[@]}")
    r1=$(bench_cpu_ns "${redis[@]}")
    # redis-benchmark (7.x) stops at the first error reply, saying so on
    # stderr; slotgate-bench exits non-zero when a request fails.
    if [ "$rc" != 0 ] || grep -qi error "$log.err"; then
        PROBLEMS+=("$w ($side) round $round: exit $rc: $(cat "$log.err" "$log.out" | grep -i -m1 error)")
        bench_log "  $w $side: failed (exit $rc), see $log.err"
        return 0
    fi
    local rps
    rps=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n * 1e9 / (b - a)}')
    echo "$round $w $side $n $rps $((p1 - p0)) $((r1 - r0))" >>"$RESULTS"
    bench_log "  $w $side: $rps req/s  cpu µs/req proxy $(awk -v c=$((p1 - p0)) -v n="$n" 'BEGIN {printf "%.2f", c / 1000 / n}') redis $(awk -v c=$((r1 - r0)) -v n="$n" 'BEGIN {printf "%.2f", c / 1000 / n}')"
}

# col W SIDE FIELD: median of rps, or of cpu_proxy / cpu_redis (µs/request).
col() {
    local f
    case $3 in rps) f='$5' ;; cpu_proxy) f='$6 / 1000 / $4' ;; cpu_redis) f='$7 / 1000 / $4' ;; esac
    awk -v w="$1" -v s="$2" "\$2 == w && \$3 == s {print $f}" "$RESULTS" | bench_median
}

# ---------------------------------------------------------------------------
bench_binaries slotgate slotgate-cli slotgate-bench
T_START=$(date +%s)
bench_start_sides
PROBLEMS=()

bench_log "starting three standalone Redis servers on $PEER_BASE-$((PEER_BASE + 2)) and twemproxy on $TWEM_PORT"
PEER_STARTED=1
rm -rf "$WORK/peer"
for i in 0 1 2; do
    "$ROOT/scripts/cluster.sh" start-plain "$WORK/peer" $((PEER_BASE + i)) >>"$WORK/peer.log" 2>&1 ||
        { cat "$WORK/peer.log" >&2; bench_die "cluster.sh start-plain failed"; }
done
PEER_PIDS=()
for i in 0 1 2; do PEER_PIDS+=("$(cat "$WORK/peer/$((PEER_BASE + i))/redis.pid")"); done
cat >"$WORK/nutcracker.yml" <<EOF
# Written by bench/peer.sh: twemproxy in front of three standalone servers.
pool:
  listen: 127.0.0.1:$TWEM_PORT
  redis: true
  hash: fnv1a_64
  distribution: ketama
  preconnect: true
  auto_eject_hosts: false
  server_connections: 1
  timeout: 5000
  servers:
   - 127.0.0.1:$PEER_BASE:1
   - 127.0.0.1:$((PEER_BASE + 1)):1
   - 127.0.0.1:$((PEER_BASE + 2)):1
EOF
nutcracker -c "$WORK/nutcracker.yml" -s $((TWEM_PORT + 1)) -o "$WORK/nutcracker.log" &
TWEM_PID=$!
for i in $(seq 100); do
    kill -0 "$TWEM_PID" 2>/dev/null || { cat "$WORK/nutcracker.log" >&2; bench_die "nutcracker exited during startup"; }
    [ "$(redis-cli -p "$TWEM_PORT" set peer:ready 1 2>/dev/null)" = OK ] && break
    [ "$i" -lt 100 ] || bench_die "twemproxy not ready within 20 s (log: $WORK/nutcracker.log)"
    sleep 0.2
done

bench_log "filling every server (not measured)"
# 300,000 random SETs over 100,000 keys leave 95 % of them set: the cluster
# holds each key once, each standalone server holds all of them.
declare -A FILL_N=([direct]=$((QUICK ? 60000 : 300000)) [sdirect]=$((QUICK ? 180000 : 900000)))
run tls 1 -t fill -r 100000 -d 100 -P 16 >"$WORK/logs/fill-sg.out" 2>&1 &&
    run tls 1 -k big -t fill -r 1000 -d 65536 -P 4 >>"$WORK/logs/fill-sg.out" 2>&1 ||
    bench_die "slotgate fill failed: $(tail -3 "$WORK/logs/fill-sg.out")"
for side in direct sdirect; do
    workload_args set_64k "$side"
    { run "$side" "${FILL_N[$side]}" -t set -d 100 -r 100000 -P 16 &&
        run "$side" 15000 "${ARGS[@]}"; } >"$WORK/logs/fill-$side.out" 2>&1 ||
        bench_die "$side fill failed: $(tail -3 "$WORK/logs/fill-$side.out")"
done

for ((round = 1; round <= ROUNDS; round++)); do
    bench_log "round $round of $ROUNDS"
    for w in "${WORKLOADS[@]}"; do
        for ((k = 0; k < ${#SIDES[@]}; k++)); do
            measure "$round" "$w" "${SIDES[$(((round - 1 + k) % ${#SIDES[@]}))]}"
        done
    done
done
T_END=$(date +%s)

# ---------------------------------------------------------------------------
MD=$WORK/table.md
{
    echo "| workload | side | rps | rps ÷ its direct | proxy CPU µs/req | proxy CPU ÷ its direct Redis CPU | Redis CPU µs/req |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    for w in "${WORKLOADS[@]}"; do
        first="${WL_DESC[$w]}"
        for side in "${SIDES[@]}"; do
            rps=$(col "$w" "$side" rps)
            red=$(col "$w" "$side" cpu_redis)
            if [ -z "${BASE_OF[$side]:-}" ]; then
                echo "| $first | ${SIDE_DESC[$side]} | $(bench_fmt "$rps" 0) | | | | $(bench_fmt "$red" 2) |"
            else
                b=${BASE_OF[$side]}
                cpu=$(col "$w" "$side" cpu_proxy)
                echo "| $first | ${SIDE_DESC[$side]} | $(bench_fmt "$rps" 0) | $(bench_ratio "$rps" "$(col "$w" "$b" rps)") | $(bench_fmt "$cpu" 2) | $(bench_ratio "$cpu" "$(col "$w" "$b" cpu_redis)") | $(bench_fmt "$red" 2) |"
            fi
            first=
        done
    done
} >"$MD"

HEAD=$WORK/head.md
{
    echo "| workload | proxy CPU per request: slotgate plaintext ÷ twemproxy | slotgate TLS ÷ twemproxy |"
    echo "|---|---:|---:|"
    for w in "${WORKLOADS[@]}"; do
        t=$(col "$w" twem cpu_proxy)
        echo "| ${WL_DESC[$w]} | $(bench_ratio "$(col "$w" plain cpu_proxy)" "$t") | $(bench_ratio "$(col "$w" tls cpu_proxy)" "$t") |"
    done
} >"$HEAD"

NOTES="Medians of $ROUNDS round(s), five sides in rotating order, -c 50. slotgate (one worker) fronts the 3-master cluster; twemproxy ($(nutcracker --version 2>&1 | head -1 | sed "s/^This is //")) fronts three standalone servers, one connection to each. Each proxy's CPU per request is divided by the Redis CPU per request of its own direct side: the cluster driven by redis-benchmark --cluster for slotgate, the three standalone servers driven by three redis-benchmarks at once for twemproxy. slotgate's clients speak protobuf (slotgate-bench), the others RESP (redis-benchmark); twemproxy has no TLS. CPU from /proc/PID/task/*/schedstat over each run. Run time $(((T_END - T_START) / 60)) min $(((T_END - T_START) % 60)) s, $(nproc) CPUs shared by every process."

echo
echo "slotgate and twemproxy, each against direct Redis - $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
bench_show "$MD"
echo
bench_show "$HEAD"
echo
bench_print_notes
echo "Raw results: $RESULTS (round workload side n rps proxy_ns redis_ns)"
bench_write_out "$MD" "$HEAD"
