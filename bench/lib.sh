# lib.sh - shared setup for bench/compare.sh and bench/idle-conns.sh.
#
# Sourced, not run. Builds the needed targets (Release) in $BUILD_DIR,
# generates dev certificates, starts a 3-master Redis Cluster with no
# replicas and one slotgate in front of it, and tears all of it down from an
# EXIT trap. Everything lives under $WORK. The caller sets ROOT, BUILD_DIR,
# BIN (the build directory, absolute), WORK, BASE_PORT, SG_PORT before
# calling these functions.
#
# A second slotgate with `listen.plaintext: true` can run next to the TLS one
# (bench_write_config N plain; bench_start_slotgate NOFILE plain) on
# $SG_PLAIN_PORT (default SG_PORT + 1); its pid is SG_PLAIN_PID. SG_TASKSET
# (a CPU list) pins every slotgate started, SG_WORKERS sets listen.workers,
# SG_GATHER_US limits.write_gather_us (unset: slotgate's default).

# bench_args LAST "$@": the options compare.sh, domain.sh, latency.sh and
# scaling.sh share: --rounds N, --quick, --out FILE, --no-build, -h (the
# caller's header comment, lines 2..LAST, is the usage). Sets ROUNDS (3,
# or 1 with --quick unless --rounds is given), QUICK, OUT (absolute),
# NO_BUILD, and BIN (the absolute $BUILD_DIR).
bench_args() {
    local last=$1 rounds_set=0
    shift
    ROUNDS=3 QUICK=0 OUT= NO_BUILD=0
    while [ $# -gt 0 ]; do
        case $1 in
        --rounds) [ $# -ge 2 ] || bench_usage "$last"; ROUNDS=$2; rounds_set=1; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --out) [ $# -ge 2 ] || bench_usage "$last"; OUT=$2; shift 2 ;;
        --no-build) NO_BUILD=1; shift ;;
        -h | --help) bench_usage "$last" ;;
        *) echo "$PROG: unknown argument $1" >&2; bench_usage "$last" ;;
        esac
    done
    [[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "$PROG: --rounds needs a positive number" >&2; exit 2; }
    if [ "$QUICK" = 1 ] && [ "$rounds_set" = 0 ]; then ROUNDS=1; fi
    case $OUT in "" | /*) ;; *) OUT=$PWD/$OUT ;; esac
    case $BUILD_DIR in /*) BIN=$BUILD_DIR ;; *) BIN=$ROOT/$BUILD_DIR ;; esac
}
# bench_print_notes: $NOTES, then the PROBLEMS array if any (terminal form).
bench_print_notes() {
    echo "$NOTES"
    if [ ${#PROBLEMS[@]} -gt 0 ]; then
        echo
        echo "Problems seen:"
        printf '  - %s\n' "${PROBLEMS[@]}"
    fi
}

# bench_write_out FILE...: with --out, the markdown FILEs, $NOTES and the
# PROBLEMS array into $OUT.
bench_write_out() {
    [ -n "$OUT" ] || return 0
    {
        local f
        for f in "$@"; do
            cat "$f"
            echo
        done
        echo "$NOTES"
        if [ ${#PROBLEMS[@]} -gt 0 ]; then
            echo
            printf -- '- %s\n' "${PROBLEMS[@]}"
        fi
    } >"$OUT"
    echo "Markdown written to $OUT"
}

bench_usage() { sed -n "2,${1}p" "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

bench_log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
bench_die() { echo "${PROG:-bench}: $*" >&2; exit 1; }

SG_PID=
SG_PLAIN_PID=
SG_PLAIN_PORT=${SG_PLAIN_PORT:-$((SG_PORT + 1))}
CLUSTER_STARTED=0

# bench_build [TARGET...]: configure (Release, Ninja) and build the targets.
# Only the targets the benchmark needs are built, so a half-finished test
# elsewhere in the tree cannot block a benchmark run.
bench_build() {
    bench_log "building $* in $BUILD_DIR (Release)"
    (cd "$ROOT" && cmake -S . -B "$BIN" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$WORK/cmake.log" 2>&1) ||
        { tail -20 "$WORK/cmake.log" >&2; bench_die "cmake failed (log: $WORK/cmake.log)"; }
    (cd "$ROOT" && ninja -C "$BIN" "$@" >"$WORK/ninja.log" 2>&1) ||
        { tail -30 "$WORK/ninja.log" >&2; bench_die "build failed (log: $WORK/ninja.log)"; }
}

# bench_binaries TARGET...: build them (unless --no-build), then check that
# each is in $BIN.
bench_binaries() {
    [ "$NO_BUILD" = 1 ] || bench_build "$@"
    local b
    for b in "$@"; do
        [ -x "$BIN/$b" ] || bench_die "$BIN/$b missing (build first)"
    done
}

# bench_median: the median of the numbers on stdin ("-" if none).
bench_median() {
    sort -g | awk '{a[NR] = $1} END {
        if (NR == 0) { print "-"; exit }
        if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# bench_fmt VALUE DECIMALS: VALUE rounded, or "-" when it is "-" or empty.
bench_fmt() { awk -v a="$1" -v d="$2" 'BEGIN { if (a == "-" || a == "") print "-"; else printf "%.*f", d, a }'; }

# bench_ratio A B [DECIMALS]: A ÷ B, 2 decimals unless told, or "-" when
# either is missing ("-" or empty) or B is 0.
bench_ratio() {
    awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN {
        if (a == "-" || a == "" || b == "-" || b == "" || b + 0 == 0) print "-"; else printf "%.*f", d, a / b }'
}

# bench_show FILE: a markdown table as aligned columns, for the terminal.
bench_show() { sed -e 's/^| //' -e 's/ |$//' -e '/^|---/d' "$1" | column -t -s '|'; }

# bench_cleanup: EXIT trap. Stops slotgate (SIGTERM, bounded wait, SIGKILL)
# and the cluster. Only kills the processes this script started.
bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    bench_extra_cleanup 2>/dev/null || true
    bench_stop_slotgate
    bench_stop_slotgate plain
    if [ "$CLUSTER_STARTED" = 1 ]; then
        "$ROOT/scripts/cluster.sh" stop "$WORK/cluster" >/dev/null 2>&1 ||
            echo "${PROG:-bench}: cluster.sh stop failed" >&2
    fi
    exit "$rc"
}
bench_extra_cleanup() { :; }

# bench_stop_slotgate [plain]: SIGTERM, bounded wait, SIGKILL.
bench_stop_slotgate() {
    local var=SG_PID
    [ "${1:-}" = plain ] && var=SG_PLAIN_PID
    local pid=${!var}
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    printf -v "$var" '%s' ""
}

# bench_start_cluster: certs in $WORK/tls, 3 masters / 0 replicas from BASE_PORT.
bench_start_cluster() {
    "$ROOT/scripts/gen-certs.sh" "$WORK/tls" || bench_die "gen-certs.sh failed"
    if [ -s "$WORK/cluster/ports" ]; then
        "$ROOT/scripts/cluster.sh" stop "$WORK/cluster" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK/cluster"
    bench_log "starting Redis Cluster (3 masters, 0 replicas) on $BASE_PORT-$((BASE_PORT + 2))"
    CLUSTER_STARTED=1
    "$ROOT/scripts/cluster.sh" start "$WORK/cluster" "$BASE_PORT" 3 0 >"$WORK/cluster.log" 2>&1 ||
        { cat "$WORK/cluster.log" >&2; bench_die "cluster.sh start failed"; }
}

# bench_start_sides: the cluster (REDIS_PIDS: its servers' pids), a TLS
# and a plaintext slotgate (1000 connections each), and an empty RESULTS
# file ($WORK/results.txt): what compare.sh, latency.sh and syscalls.sh
# measure against.
bench_start_sides() {
    bench_start_cluster
    mapfile -t REDIS_PIDS < <(bench_redis_pids)
    bench_write_config 1000
    bench_write_config 1000 plain
    bench_start_slotgate 4096
    bench_start_slotgate 4096 plain
    RESULTS=$WORK/results.txt
    : >"$RESULTS"
}

# bench_write_config MAX_CONNECTIONS: slotgate config with TLS (client certs
# from the dev CA), the cluster as seeds, a "big" keyspace for large values.
# One worker by default (SG_WORKERS): on the 2-core benchmark machine the
# proxy shares the cores with three Redis servers and the load generator,
# and a second worker only adds wake-ups and smaller per-shard batches.
# With a second argument "plain": the same for the plaintext listener
# ($WORK/slotgate-plain.yaml, port $SG_PLAIN_PORT, no tls section).
bench_write_config() {
    local file=$WORK/slotgate.yaml port=$SG_PORT tls
    tls="tls:
  cert: $WORK/tls/server.pem
  key: $WORK/tls/server-key.pem
  client_ca: $WORK/tls/ca.pem"
    if [ "${2:-}" = plain ]; then
        file=$WORK/slotgate-plain.yaml port=$SG_PLAIN_PORT
        tls=
    fi
    cat >"$file" <<EOF
# Written by bench/lib.sh for a benchmark run.
listen:
  address: 127.0.0.1
  port: $port
  workers: ${SG_WORKERS:-1}
$([ -n "$tls" ] && echo "$tls" || echo "  plaintext: true")
redis:
  seeds: [127.0.0.1:$BASE_PORT, 127.0.0.1:$((BASE_PORT + 1)), 127.0.0.1:$((BASE_PORT + 2))]
limits:
  max_connections: $1
${SG_GATHER_US:+  write_gather_us: $SG_GATHER_US}
log:
  level: ${SG_LOG_LEVEL:-warn}
keyspaces:
  big:
    prefix: "big:"
EOF
}

# Client TLS flags shared by slotgate-cli, slotgate-bench and slotgate-idle.
bench_tls_flags() {
    echo "--tls --cacert $WORK/tls/ca.pem --cert $WORK/tls/client.pem --key $WORK/tls/client-key.pem"
}

# bench_sg tls|plain ARGS...: $BIN/slotgate-bench against the TLS slotgate
# (with the dev client certificates) or the plaintext one.
bench_sg() {
    local side=$1
    shift
    # shellcheck disable=SC2046
    case $side in
    plain) "$BIN/slotgate-bench" -h 127.0.0.1 -p "$SG_PLAIN_PORT" "$@" ;;
    tls) "$BIN/slotgate-bench" -h 127.0.0.1 -p "$SG_PORT" $(bench_tls_flags) "$@" ;;
    *) bench_die "bench_sg: no side $side" ;;
    esac
}

# bench_workload_args WORKLOAD SIDE: set ARGS to the generator's arguments
# for one of compare.sh's workloads (get_p16 set_p16 get_p1 set_p1 get_64k
# set_64k get_c1 mget100_c1 mget10 mset10 mget100 mset100). SIDE: tls or
# plain (slotgate-bench; 64 KiB values in the "big" keyspace), direct
# (redis-benchmark --cluster: the MGET/MSET/64 KiB custom commands tag their
# keys with {tag}, which it replaces by a tag of the node each client talks
# to, so a command's keys share one slot) or standalone (redis-benchmark to
# a server without cluster mode or to a proxy: the same commands, untagged).
bench_workload_args() {
    local w=$1 side=$2 tag=
    case $side in
    tls | plain)
        case $w in
        get_c1 | get_p1) ARGS=(-t get -d 100 -r 100000 -P 1 --no-prefill) ;;
        mget100_c1 | mget100) ARGS=(-t mget --keys 100 -d 100 -r 100000 --no-prefill) ;;
        set_p1) ARGS=(-t set -d 100 -r 100000 -P 1) ;;
        get_p16) ARGS=(-t get -d 100 -r 100000 -P 16 --no-prefill) ;;
        set_p16) ARGS=(-t set -d 100 -r 100000 -P 16) ;;
        mget10) ARGS=(-t mget --keys 10 -d 100 -r 100000 --no-prefill) ;;
        mset10) ARGS=(-t mset --keys 10 -d 100 -r 100000) ;;
        mset100) ARGS=(-t mset --keys 100 -d 100 -r 100000) ;;
        get_64k) ARGS=(-k big -t get -d 65536 -r 1000 --no-prefill) ;;
        set_64k) ARGS=(-k big -t set -d 65536 -r 1000) ;;
        *) bench_die "bench_workload_args: no workload $w" ;;
        esac
        return ;;
    direct) tag='{tag}:' ;;
    standalone) ;;
    *) bench_die "bench_workload_args: no side $side" ;;
    esac
    local k="key:${tag}__rand_int__"
    # The values, made once per script.
    [ -n "${BENCH_VAL64K:-}" ] || {
        BENCH_VAL100=$(printf '%*s' 100 '' | tr ' ' x)
        BENCH_VAL64K=$(printf '%*s' 65536 '' | tr ' ' x)
    }
    case $w in
    get_p1 | get_c1) ARGS=(-t get -d 100 -r 100000 -P 1) ;;
    set_p1) ARGS=(-t set -d 100 -r 100000 -P 1) ;;
    get_p16) ARGS=(-t get -d 100 -r 100000 -P 16) ;;
    set_p16) ARGS=(-t set -d 100 -r 100000 -P 16) ;;
    mget10) ARGS=(-r 100000 MGET) && bench_repeat 10 "$k" ;;
    mget100 | mget100_c1) ARGS=(-r 100000 MGET) && bench_repeat 100 "$k" ;;
    mset10) ARGS=(-r 100000 MSET) && bench_repeat 10 "$k" "$BENCH_VAL100" ;;
    mset100) ARGS=(-r 100000 MSET) && bench_repeat 100 "$k" "$BENCH_VAL100" ;;
    get_64k) ARGS=(-r 1000 GET "big:${tag}__rand_int__") ;;
    set_64k) ARGS=(-r 1000 SET "big:${tag}__rand_int__" "$BENCH_VAL64K") ;;
    *) bench_die "bench_workload_args: no workload $w" ;;
    esac
}

# bench_repeat N WORD...: append the words to ARGS, N times over.
bench_repeat() {
    local n=$1 i
    shift
    for ((i = 0; i < n; i++)); do ARGS+=("$@"); done
}

# bench_start_slotgate NOFILE [plain]: start the proxy in the background
# with a raised descriptor limit and wait (bounded) until it answers PING.
# Sets SG_PID (SG_PLAIN_PID for the plaintext one).
bench_start_slotgate() {
    local nofile=$1 var=SG_PID conf=$WORK/slotgate.yaml port=$SG_PORT log=$WORK/slotgate.log flags
    flags=$(bench_tls_flags)
    if [ "${2:-}" = plain ]; then
        var=SG_PLAIN_PID conf=$WORK/slotgate-plain.yaml port=$SG_PLAIN_PORT log=$WORK/slotgate-plain.log flags=
    fi
    local -a pin=()
    [ -z "${SG_TASKSET:-}" ] || pin=(taskset -c "$SG_TASKSET")
    bench_log "starting slotgate on 127.0.0.1:$port (${2:-tls}${SG_TASKSET:+, pinned to CPU $SG_TASKSET}, ${SG_WORKERS:-1} worker(s))"
    : >>"$log"
    (
        ulimit -Hn "$nofile" 2>/dev/null || true
        ulimit -n "$nofile" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
        # Own session: no signal meant for this script's process group.
        exec setsid "${pin[@]}" "$BIN/slotgate" --config "$conf"
    ) >>"$log" 2>&1 &
    local pid=$!
    printf -v "$var" '%s' "$pid"
    local i
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null ||
            { cat "$log" >&2; bench_die "slotgate exited during startup"; }
        # shellcheck disable=SC2086
        if "$BIN/slotgate-cli" -h 127.0.0.1 -p "$port" $flags \
            --timeout 1000 ping >/dev/null 2>&1; then
            bench_log "slotgate ready (pid $pid, open-file limit $(awk '/Max open files/ {print $4}' /proc/$pid/limits))"
            return 0
        fi
        sleep 0.2
    done
    bench_die "slotgate not ready within 20 s (log: $log)"
}

# bench_slotgate_exit [plain]: if that slotgate has exited, print how and
# return 0.
bench_slotgate_exit() {
    local var=SG_PID
    [ "${1:-}" = plain ] && var=SG_PLAIN_PID
    local pid=${!var}
    kill -0 "$pid" 2>/dev/null && return 1
    local st=0
    wait "$pid" 2>/dev/null || st=$?
    if [ "$st" -gt 128 ]; then
        echo "slotgate ${1:-tls} (pid $pid) was killed by signal $((st - 128)) ($(kill -l $((st - 128)) 2>/dev/null))"
    else
        echo "slotgate ${1:-tls} (pid $pid) exited with status $st"
    fi
    printf -v "$var" '%s' ""
    return 0
}

# bench_redis_pids: pids of the cluster's redis-server processes.
bench_redis_pids() {
    local p
    for p in $(cat "$WORK/cluster/ports"); do
        cat "$WORK/cluster/$p/redis.pid"
    done
}

# bench_cpu_ticks PID...: utime+stime (clock ticks) summed over the pids.
# Fields 14 and 15 of /proc/PID/stat, counted after the ")" that ends comm.
bench_cpu_ticks() {
    local pid sum=0 t
    for pid in "$@"; do
        t=$(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}') || t=0
        sum=$((sum + t))
    done
    echo "$sum"
}

# bench_cpu_ns PID...: CPU time (ns) used so far, summed over every thread
# of the pids: the first field of /proc/PID/task/TID/schedstat (exact run
# time). Falls back to utime+stime ticks (10 ms steps) where schedstat is
# missing. Threads that have exited are not counted; the proxy's workers
# and Redis's threads live as long as the process.
bench_cpu_ns() {
    local pid
    if [ -r "/proc/self/schedstat" ]; then
        for pid in "$@"; do
            cat /proc/"$pid"/task/*/schedstat 2>/dev/null
        done | awk '{s += $1} END {printf "%.0f\n", s}'
    else
        echo $(($(bench_cpu_ticks "$@") * 1000000000 / $(getconf CLK_TCK)))
    fi
}

# bench_machine_busy_ns [CPU]: CPU time (ns) the whole machine (or one CPU)
# has spent busy since boot, every process counted: user + nice + system +
# irq + softirq + steal from /proc/stat. The difference over a run minus
# what the benchmark's own processes used is what other jobs on the machine
# took meanwhile.
bench_machine_busy_ns() {
    local line=cpu
    [ -z "${1:-}" ] || line=cpu$1
    awk -v l="$line" -v hz="$(getconf CLK_TCK)" '$1 == l {
        printf "%.0f\n", ($2 + $3 + $4 + $7 + $8 + $9) * 1e9 / hz }' /proc/stat
}
