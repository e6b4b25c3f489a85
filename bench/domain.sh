#!/usr/bin/env bash
# domain.sh - measure the game-domain targets (issue 4) through slotgate.
#
#   bench/domain.sh [--rounds N] [--quick] [--out FILE] [--no-build]
#
# Builds Release into $BUILD_DIR (default build), writes a 64 KiB room state
# with bench/roomgen.py, starts a 3-master Redis Cluster with no replicas on
# $BASE_PORT.. (default 7700) and slotgate on $SG_PORT (default 7790, TLS,
# listen.workers 1) with keyspaces room (Snappy, compression auto, threshold
# 1024, TTL 30 min) and roomraw (no compression), then measures:
#   a. storage: the room state SET into room and roomraw (seeds 1-5);
#      STRLEN and MEMORY USAGE on the owning node. Target: room's MEMORY
#      USAGE <= 35 % of the raw size.
#   b. compression CPU: slotgate-bench SET then GET of the room state
#      (-c 10 -r 1000), room vs roomraw alternating, N rounds (default 3);
#      slotgate CPU (utime+stime) per SET+GET pair. Target: room/roomraw
#      < 1.20.
#   c. invalidation under load: 100,000 keys u123:* (to remove) and 100,000
#      u124:* (to keep) spread over all shards; a GET load on other keys
#      (-c 20 -P 1, ~2x the invalidation time) without, then with
#      `slotgate-cli invalidate 'u123:*'` started 0.3 s into the load; N
#      rounds. Target: p99 with / without < 2. Checks afterwards that every
#      u124 key is left and no u123 key.
# Prints markdown tables with medians and met/missed per target.
#   --quick      fewer requests and keys, 1 round (smoke run)
#   --no-build   use the binaries already in $BUILD_DIR
# Scratch files, logs and raw results: $WORK (default $BUILD_DIR/bench-domain).
# Every process it starts is stopped on exit.
set -euo pipefail

PROG=domain.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BUILD_DIR=${BUILD_DIR:-build}
BASE_PORT=${BASE_PORT:-7700}
SG_PORT=${SG_PORT:-7790}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
bench_args 28 "$@"

WORK=${WORK:-$BIN/bench-domain}
command -v python3 >/dev/null 2>&1 || bench_die "python3 not found in PATH"
mkdir -p "$WORK/logs"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

CLK_TCK=$(getconf CLK_TCK)
ROOM_BYTES=65536
CPU_CONNS=10
CPU_KEYS=1000
CPU_N=$(( QUICK ? 2000 : 20000 ))      # SETs, then as many GETs, per run
INV_KEYS=$(( QUICK ? 20000 : 100000 )) # keys of u123 and of u124
GET_KEYS=100000                        # keys the GET load reads
LOAD_CONNS=20
LOAD_LEAD=0.3                          # s between load start and invalidate

LOAD_PID=
INV_PID=
# Stop a load or invalidation still running when the script exits early.
bench_extra_cleanup() {
    local p
    for p in $LOAD_PID $INV_PID; do
        kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null
        wait "$p" 2>/dev/null || true
    done
    return 0
}

write_config() {
    cat >"$WORK/slotgate.yaml" <<EOF
# Written by bench/domain.sh for a benchmark run.
listen:
  address: 127.0.0.1
  port: $SG_PORT
  # One worker: the machine has 2 cores for slotgate, 3 Redis servers and
  # the load generator.
  workers: 1
tls:
  cert: $WORK/tls/server.pem
  key: $WORK/tls/server-key.pem
  client_ca: $WORK/tls/ca.pem
redis:
  seeds: [127.0.0.1:$BASE_PORT, 127.0.0.1:$((BASE_PORT + 1)), 127.0.0.1:$((BASE_PORT + 2))]
limits:
  max_connections: 1000
log:
  level: ${SG_LOG_LEVEL:-warn}
keyspaces:
  room:
    prefix: "room:"
    compression: auto
    compress_threshold: 1024
    default_ttl_ms: 1800000
  roomraw:
    prefix: "roomraw:"
    compression: off
  # slotgate-bench writes key:NNNNNNNN; these prefixes put its keys at
  # u123:key:NNNNNNNN and u124:key:NNNNNNNN, which the default keyspace's
  # INVALIDATE 'u123:*' matches (and 'u124:*' does not).
  u123:
    prefix: "u123:"
  u124:
    prefix: "u124:"
EOF
}

now_ns() { date +%s%N; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

sgb() { # slotgate-bench against our slotgate
    # shellcheck disable=SC2046
    "$BIN/slotgate-bench" -h 127.0.0.1 -p "$SG_PORT" $(bench_tls_flags) "$@"
}
sgcli() {
    # shellcheck disable=SC2046
    "$BIN/slotgate-cli" -h 127.0.0.1 -p "$SG_PORT" $(bench_tls_flags) --timeout 60000 "$@"
}
rcli() { redis-cli -c -h 127.0.0.1 -p "$BASE_PORT" "$@"; }

# masters: the ports of the cluster's masters.
masters() { cat "$WORK/cluster/masters"; }

# dbsize_sum: DBSIZE summed over the masters.
dbsize_sum() {
    local p s=0 n
    for p in $(masters); do
        n=$(redis-cli -h 127.0.0.1 -p "$p" DBSIZE) || bench_die "DBSIZE on $p failed"
        s=$((s + n))
    done
    echo "$s"
}

# count_keys PATTERN: keys matching PATTERN over all masters (a Lua SCAN loop).
count_keys() {
    local p s=0 n
    local lua="local c='0' local n=0 repeat local r=redis.call('SCAN',c,'MATCH',ARGV[1],'COUNT',10000) c=r[1] n=n+#r[2] until c=='0' return n"
    for p in $(masters); do
        n=$(redis-cli -h 127.0.0.1 -p "$p" EVAL "$lua" 0 "$1") || bench_die "key count on $p failed"
        s=$((s + n))
    done
    echo "$s"
}

# cmdstat CMDS: "calls usec" of INFO commandstats for the commands CMDS
# (a sed alternation, e.g. 'eval\|evalsha'), summed over them and the masters.
cmdstat() {
    local p
    for p in $(masters); do
        redis-cli -h 127.0.0.1 -p "$p" INFO commandstats | tr -d '\r' |
            sed -n "s/^cmdstat_\($1\):calls=\([0-9]*\),usec=\([0-9]*\),.*/\2 \3/p"
    done | awk '{c += $1; u += $2} END {print c + 0, u + 0}'
}

# verdict VALUE OP LIMIT (OP: le, lt)
verdict() {
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        if (v == "-" || v == "") { print "no data"; exit }
        ok = (op == "le") ? (v <= l) : (v < l); print ok ? "met" : "missed" }'
}
# csv_field FILE TEST COLUMN: a column of slotgate-bench --csv output
# (2 rps, 4 p50, 5 p99, 6 p99.9, 7 max, 8 errors).
csv_field() { awk -F, -v t="$2" -v c="$3" '$1 == t {v = $c} END {print (v == "" ? "-" : v)}' "$1"; }

# check_slotgate WHAT: record it as a problem if slotgate has exited.
check_slotgate() {
    local how
    if how=$(bench_slotgate_exit); then
        PROBLEMS+=("$how during $1; log tail: $(tail -5 "$WORK/slotgate.log" | tr '\n' ' ')")
        bench_die "$how during $1 (log: $WORK/slotgate.log)"
    fi
}

# note_errors WHAT FILE: a non-empty stderr of a client is recorded.
note_errors() {
    if [ -s "$2" ]; then
        PROBLEMS+=("$1: $(tr '\n' ' ' <"$2" | cut -c1-400)")
    fi
}

# ---------------------------------------------------------------------------
bench_binaries slotgate slotgate-cli slotgate-bench
PROBLEMS=()
LOAD_START=$(loadavg)
START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
for s in 1 2 3 4 5; do
    python3 "$ROOT/bench/roomgen.py" --size "$ROOM_BYTES" --seed "$s" --out "$WORK/room-$s.json" ||
        bench_die "roomgen.py failed"
    [ "$(stat -c %s "$WORK/room-$s.json")" = "$ROOM_BYTES" ] || bench_die "roomgen.py: wrong size"
done
ROOM=$WORK/room-1.json

bench_start_cluster
mapfile -t REDIS_PIDS < <(bench_redis_pids)
write_config
bench_start_slotgate 4096

# ---- a. storage -------------------------------------------------------------
bench_log "a. storage of a ${ROOM_BYTES}-byte room state (seeds 1-5)"
STORAGE=$WORK/storage.txt   # seed keyspace raw strlen memory pttl
: >"$STORAGE"
for s in 1 2 3 4 5; do
    f=$WORK/room-$s.json
    for ks in room roomraw; do
        sgcli -k "$ks" set "state-$s" "$(cat "$f")" >"$WORK/logs/set-$ks-$s.out" 2>&1 ||
            bench_die "slotgate-cli set ($ks) failed: $(cat "$WORK/logs/set-$ks-$s.out")"
        # The value must come back byte for byte (the CLI adds a newline).
        sgcli -k "$ks" get "state-$s" >"$WORK/logs/get-$ks-$s.out" 2>&1 ||
            bench_die "slotgate-cli get ($ks) failed"
        if ! { cat "$f"; echo; } | cmp -s - "$WORK/logs/get-$ks-$s.out"; then
            PROBLEMS+=("storage: GET of $ks:state-$s did not return the bytes SET")
        fi
        strlen=$(rcli STRLEN "$ks:state-$s")
        mem=$(rcli MEMORY USAGE "$ks:state-$s" SAMPLES 0)
        pttl=$(rcli PTTL "$ks:state-$s")
        echo "$s $ks $ROOM_BYTES $strlen $mem $pttl" >>"$STORAGE"
        bench_log "  seed $s $ks: STRLEN $strlen, MEMORY USAGE $mem, PTTL $pttl"
    done
done
check_slotgate "storage"

# ---- b. compression CPU -------------------------------------------------------
bench_log "b. compression CPU: SET+GET of the room state, -c $CPU_CONNS -r $CPU_KEYS -n $CPU_N"
for ks in room roomraw; do
    sgb -c "$CPU_CONNS" -k "$ks" -t fill -r "$CPU_KEYS" --value-file "$ROOM" \
        >"$WORK/logs/fill-$ks.out" 2>&1 || bench_die "fill $ks failed: $(tail -3 "$WORK/logs/fill-$ks.out")"
done
CPU_RES=$WORK/cpu.txt   # round ks n set_rps get_rps set_p99 get_p99 sg_ticks redis_ticks secs errors
: >"$CPU_RES"
cpu_run() { # cpu_run ROUND KEYSPACE
    local round=$1 ks=$2 out=$WORK/logs/cpu-r$1-$2.out err=$WORK/logs/cpu-r$1-$2.err rc=0
    local sg0 rd0 sg1 rd1 t0 t1
    sg0=$(bench_cpu_ticks "$SG_PID"); rd0=$(bench_cpu_ticks "${REDIS_PIDS[@]}"); t0=$(now_ns)
    sgb -c "$CPU_CONNS" -k "$ks" -t set,get --no-prefill -r "$CPU_KEYS" -n "$CPU_N" \
        --value-file "$ROOM" --csv >"$out" 2>"$err" || rc=$?
    t1=$(now_ns); sg1=$(bench_cpu_ticks "$SG_PID"); rd1=$(bench_cpu_ticks "${REDIS_PIDS[@]}")
    check_slotgate "compression CPU run ($ks, round $round)"
    [ "$rc" = 0 ] || PROBLEMS+=("compression CPU $ks round $round: slotgate-bench exit $rc")
    note_errors "compression CPU $ks round $round" "$err"
    local e1 e2 errs
    e1=$(csv_field "$out" SET 8); e2=$(csv_field "$out" GET 8)
    [[ $e1 =~ ^[0-9]+$ ]] || e1=0
    [[ $e2 =~ ^[0-9]+$ ]] || e2=0
    errs=$((e1 + e2))
    echo "$round $ks $CPU_N $(csv_field "$out" SET 2) $(csv_field "$out" GET 2)" \
        "$(csv_field "$out" SET 5) $(csv_field "$out" GET 5) $((sg1 - sg0)) $((rd1 - rd0))" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}') $errs" >>"$CPU_RES"
    bench_log "  round $round $ks: SET $(csv_field "$out" SET 2)/s GET $(csv_field "$out" GET 2)/s," \
        "slotgate $((sg1 - sg0)) ticks, redis $((rd1 - rd0)) ticks, errors $errs"
}
for ((round = 1; round <= ROUNDS; round++)); do
    if ((round % 2)); then cpu_run "$round" room; cpu_run "$round" roomraw
    else cpu_run "$round" roomraw; cpu_run "$round" room; fi
done
LOAD_AFTER_B=$(loadavg)

# ---- c. invalidation under load -----------------------------------------------
bench_log "c. invalidation of $INV_KEYS keys under a GET load (-c $LOAD_CONNS -P 1)"
sgb -c 20 -t fill -r "$GET_KEYS" -d 100 >"$WORK/logs/fill-get.out" 2>&1 ||
    bench_die "fill (GET load keys) failed: $(tail -3 "$WORK/logs/fill-get.out")"
sgb -c 20 -k u124 -t fill -r "$INV_KEYS" -d 100 >"$WORK/logs/fill-u124.out" 2>&1 ||
    bench_die "fill u124 failed: $(tail -3 "$WORK/logs/fill-u124.out")"
# Warm-up (not reported): a GET load with one INVALIDATE, to size the
# measured runs. The p99 of a run covers all of it, so a load much longer
# than the invalidation would dilute its effect: each load run lasts about
# twice (lead + warm-up INVALIDATE time), at least 1 s, so the invalidation
# overlaps about half of it.
sgb -c 20 -k u123 -t fill -r "$INV_KEYS" -d 100 >"$WORK/logs/fill-u123-warmup.out" 2>&1 ||
    bench_die "fill u123 failed: $(tail -3 "$WORK/logs/fill-u123-warmup.out")"
sgb -c "$LOAD_CONNS" -P 1 -t get --no-prefill -r "$GET_KEYS" -n 100000 --csv \
    >"$WORK/logs/warmup.out" 2>"$WORK/logs/warmup.err" &
LOAD_PID=$!
sleep "$LOAD_LEAD"
i0=$(now_ns)
sgcli invalidate 'u123:*' >"$WORK/logs/warmup-cli.out" 2>&1 || bench_die "warm-up invalidate failed: $(cat "$WORK/logs/warmup-cli.out")"
i1=$(now_ns)
wait "$LOAD_PID" || bench_die "warm-up GET load failed: $(cat "$WORK/logs/warmup.err")"
LOAD_PID=
check_slotgate "warm-up"
warm_rps=$(csv_field "$WORK/logs/warmup.out" GET 2)
LOAD_SECS=$(awk -v a="$i0" -v b="$i1" -v l="$LOAD_LEAD" 'BEGIN {s = 2 * (l + (b - a) / 1e9); printf "%.2f", s < 1 ? 1 : s}')
LOAD_N=$(awk -v r="$warm_rps" -v s="$LOAD_SECS" 'BEGIN {n = int(r * s / 1000) * 1000; print (n < 10000 ? 10000 : n)}')
bench_log "  warm-up: $warm_rps GET/s, INVALIDATE $(awk -v a="$i0" -v b="$i1" 'BEGIN {printf "%.3f", (b - a) / 1e9}') s;" \
    "load runs of $LOAD_N GETs (~$LOAD_SECS s)"

INV_RES=$WORK/inval.txt # round mode rps p50 p99 p999 max errors inv_count inv_secs load_secs
: >"$INV_RES"
: >"$WORK/after.txt"
: >"$WORK/evalstat.txt"
get_load() { # get_load OUT ERR: the GET load (foreground)
    sgb -c "$LOAD_CONNS" -P 1 -t get --no-prefill -r "$GET_KEYS" -n "$LOAD_N" --csv >"$1" 2>"$2"
}
for ((round = 1; round <= ROUNDS; round++)); do
    bench_log " round $round: populating $INV_KEYS keys of u123 (not measured)"
    sgb -c 20 -k u123 -t fill -r "$INV_KEYS" -d 100 >"$WORK/logs/fill-u123-r$round.out" 2>&1 ||
        bench_die "fill u123 failed: $(tail -3 "$WORK/logs/fill-u123-r$round.out")"
    n123=$(count_keys 'u123:*')
    [ "$n123" = "$INV_KEYS" ] || PROBLEMS+=("round $round: $n123 u123 keys after the fill, not $INV_KEYS")
    db_before=$(dbsize_sum)

    # Without invalidation.
    out=$WORK/logs/inv-r$round-base.out; err=$WORK/logs/inv-r$round-base.err
    t0=$(now_ns); rc=0; get_load "$out" "$err" || rc=$?; t1=$(now_ns)
    check_slotgate "GET load without invalidation, round $round"
    [ "$rc" = 0 ] || PROBLEMS+=("GET load (no invalidation) round $round: exit $rc")
    note_errors "GET load (no invalidation) round $round" "$err"
    echo "$round base $(csv_field "$out" GET 2) $(csv_field "$out" GET 4) $(csv_field "$out" GET 5)" \
        "$(csv_field "$out" GET 6) $(csv_field "$out" GET 7) $(csv_field "$out" GET 8) - -" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')" >>"$INV_RES"
    bench_log "  base: $(csv_field "$out" GET 2) GET/s p99 $(csv_field "$out" GET 5) ms"

    # With invalidation started just after the load.
    out=$WORK/logs/inv-r$round-inval.out; err=$WORK/logs/inv-r$round-inval.err
    # Redis time in INVALIDATE's SCAN+UNLINK pages: the only scripts run
    # here, EVAL the first time on a node, EVALSHA from then on.
    read -r ec0 eu0 <<<"$(cmdstat 'eval\|evalsha')"
    t0=$(now_ns)
    get_load "$out" "$err" &
    LOAD_PID=$!
    sleep "$LOAD_LEAD"
    i0=$(now_ns); irc=0
    sgcli invalidate 'u123:*' >"$WORK/logs/inv-r$round-cli.out" 2>&1 || irc=$?
    i1=$(now_ns)
    load_alive=0; kill -0 "$LOAD_PID" 2>/dev/null && load_alive=1
    rc=0; wait "$LOAD_PID" || rc=$?
    LOAD_PID=
    t1=$(now_ns)
    read -r ec1 eu1 <<<"$(cmdstat 'eval\|evalsha')"
    echo "$round $((ec1 - ec0)) $((eu1 - eu0))" >>"$WORK/evalstat.txt"
    check_slotgate "GET load with invalidation, round $round"
    [ "$rc" = 0 ] || PROBLEMS+=("GET load (with invalidation) round $round: exit $rc")
    note_errors "GET load (with invalidation) round $round" "$err"
    [ "$irc" = 0 ] || PROBLEMS+=("invalidate round $round: exit $irc: $(tr '\n' ' ' <"$WORK/logs/inv-r$round-cli.out")")
    [ "$load_alive" = 1 ] || PROBLEMS+=("round $round: the GET load ended before the invalidation did")
    inv_count=$(sed -n 's/^(integer) //p' "$WORK/logs/inv-r$round-cli.out")
    inv_secs=$(awk -v a="$i0" -v b="$i1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
    echo "$round inval $(csv_field "$out" GET 2) $(csv_field "$out" GET 4) $(csv_field "$out" GET 5)" \
        "$(csv_field "$out" GET 6) $(csv_field "$out" GET 7) $(csv_field "$out" GET 8) ${inv_count:--}" \
        "$inv_secs $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')" >>"$INV_RES"
    bench_log "  with invalidation: $(csv_field "$out" GET 2) GET/s p99 $(csv_field "$out" GET 5) ms;" \
        "invalidate removed ${inv_count:-?} keys in $inv_secs s"

    # What is left.
    db_after=$(dbsize_sum)
    n123=$(count_keys 'u123:*'); n124=$(count_keys 'u124:*'); nget=$(count_keys 'key:*')
    echo "$round $db_before $db_after $n123 $n124 $nget" >>"$WORK/after.txt"
    bench_log "  DBSIZE sum $db_before -> $db_after; left: u123 $n123, u124 $n124, key: $nget"
    [ "$n123" = 0 ] || PROBLEMS+=("round $round: $n123 u123 keys left after invalidate")
    [ "$n124" = "$INV_KEYS" ] || PROBLEMS+=("round $round: $n124 u124 keys left, not $INV_KEYS")
    [ "$nget" = "$GET_KEYS" ] || PROBLEMS+=("round $round: $nget GET-load keys left, not $GET_KEYS")
    [ "$((db_before - db_after))" = "${inv_count:-x}" ] ||
        PROBLEMS+=("round $round: DBSIZE fell by $((db_before - db_after)), invalidate reported ${inv_count:-nothing}")
done
LOAD_END=$(loadavg)
grep -E '\b(ERROR|WARN|error|warn)' "$WORK/slotgate.log" >"$WORK/slotgate-warnings.txt" 2>/dev/null || true
if [ -s "$WORK/slotgate-warnings.txt" ]; then
    PROBLEMS+=("slotgate log: $(wc -l <"$WORK/slotgate-warnings.txt") warning/error line(s), first: $(head -3 "$WORK/slotgate-warnings.txt" | tr '\n' ' ' | cut -c1-400)")
fi

# ---------------------------------------------------------------------------
MD=$WORK/table.md
st() { awk -v k="$1" -v f="$2" '$2 == k {print $f}' "$STORAGE" | bench_median; }
stseed() { awk -v s="$1" -v k="$2" -v f="$3" '$1 == s && $2 == k {print $f}' "$STORAGE"; }
cpu() { # cpu KEYSPACE FIELD: median; FIELD us_pair | redis_us_pair | pair_rps | column
    case $2 in
    us_pair) awk -v k="$1" -v hz="$CLK_TCK" '$2 == k {print $8 * 1e6 / hz / $3}' "$CPU_RES" | bench_median ;;
    redis_us_pair) awk -v k="$1" -v hz="$CLK_TCK" '$2 == k {print $9 * 1e6 / hz / $3}' "$CPU_RES" | bench_median ;;
    pair_rps) awk -v k="$1" '$2 == k && $4 + 0 > 0 && $5 + 0 > 0 {print 1 / (1 / $4 + 1 / $5)}' "$CPU_RES" | bench_median ;;
    *) awk -v k="$1" -v f="$2" '$2 == k {print $f}' "$CPU_RES" | bench_median ;;
    esac
}
inv() { awk -v m="$1" -v f="$2" '$2 == m && $f != "-" {print $f}' "$INV_RES" | bench_median; }

raw=$ROOM_BYTES
mem_room=$(st room 5); mem_raw=$(st roomraw 5)
storage_ratio=$(bench_ratio "$mem_room" "$raw" 3)
cpu_ratio=$(bench_ratio "$(cpu room us_pair)" "$(cpu roomraw us_pair)" 3)
p99_ratio=$(bench_ratio "$(inv inval 5)" "$(inv base 5)" 3)
{
    echo "### Targets"
    echo
    echo "| target | measured | limit | verdict |"
    echo "|---|---:|---:|---|"
    echo "| a. room state stored (MEMORY USAGE, keyspace room) / raw bytes | $storage_ratio | ≤ 0.35 | $(verdict "$storage_ratio" le 0.35) |"
    echo "| b. slotgate CPU per SET+GET pair, room / roomraw | $cpu_ratio | < 1.20 | $(verdict "$cpu_ratio" lt 1.20) |"
    echo "| c. GET p99 during INVALIDATE / without | $p99_ratio | < 2.00 | $(verdict "$p99_ratio" lt 2.0) |"
    echo
    echo "### a. Storage of one ${ROOM_BYTES}-byte room state (roomgen seeds 1-5)"
    echo
    echo "| seed | raw bytes | room STRLEN | room MEMORY USAGE | roomraw STRLEN | roomraw MEMORY USAGE | room STRLEN / raw | room MEMORY USAGE / raw | room PTTL ms |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for s in 1 2 3 4 5; do
        echo "| $s | $raw | $(stseed $s room 4) | $(stseed $s room 5) | $(stseed $s roomraw 4) | $(stseed $s roomraw 5) | $(bench_ratio "$(stseed $s room 4)" "$raw" 3) | $(bench_ratio "$(stseed $s room 5)" "$raw" 3) | $(stseed $s room 6) |"
    done
    echo "| median | $raw | $(st room 4) | $mem_room | $(st roomraw 4) | $mem_raw | $(bench_ratio "$(st room 4)" "$raw" 3) | $storage_ratio | |"
    echo
    echo "### b. SET then GET of the room state (seed 1), -c $CPU_CONNS -r $CPU_KEYS, $CPU_N of each per run (medians of $ROUNDS)"
    echo
    echo "| keyspace | SET/s | GET/s | SET+GET pairs/s | SET p99 ms | GET p99 ms | slotgate CPU µs per pair | Redis CPU µs per pair (3 servers) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for ks in room roomraw; do
        echo "| $ks | $(bench_fmt "$(cpu $ks 4)" 0) | $(bench_fmt "$(cpu $ks 5)" 0) | $(bench_fmt "$(cpu $ks pair_rps)" 0) | $(bench_fmt "$(cpu $ks 6)" 2) | $(bench_fmt "$(cpu $ks 7)" 2) | $(bench_fmt "$(cpu $ks us_pair)" 1) | $(bench_fmt "$(cpu $ks redis_us_pair)" 1) |"
    done
    echo "| room / roomraw | $(bench_ratio "$(cpu room 4)" "$(cpu roomraw 4)" 3) | $(bench_ratio "$(cpu room 5)" "$(cpu roomraw 5)" 3) | $(bench_ratio "$(cpu room pair_rps)" "$(cpu roomraw pair_rps)" 3) | | | $cpu_ratio | $(bench_ratio "$(cpu room redis_us_pair)" "$(cpu roomraw redis_us_pair)" 3) |"
    echo
    echo "### c. GET load (-c $LOAD_CONNS -P 1, $LOAD_N GETs of 100 B over $GET_KEYS keys) without and with INVALIDATE 'u123:*' ($INV_KEYS keys; medians of $ROUNDS)"
    echo
    echo "| run | GET/s | p50 ms | p99 ms | p99.9 ms | max ms | errors | keys removed | INVALIDATE s | load s | INVALIDATE s / load s |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for m in base inval; do
        echo "| $([ $m = base ] && echo without || echo "with INVALIDATE") | $(bench_fmt "$(inv $m 3)" 0) | $(bench_fmt "$(inv $m 4)" 3) | $(bench_fmt "$(inv $m 5)" 3) | $(bench_fmt "$(inv $m 6)" 3) | $(bench_fmt "$(inv $m 7)" 3) | $(inv $m 8) | $(inv $m 9) | $(inv $m 10) | $(inv $m 11) | $(bench_fmt "$(awk -v m=$m '$2 == m && $10 != "-" {print $10 / $11}' "$INV_RES" | bench_median)" 2) |"
    done
    echo
    echo "Redis time in INVALIDATE's pages (EVAL or EVALSHA of a SCAN page (redis.invalidate_page_keys, default 200) + UNLINK, from INFO commandstats" \
        "around each run; medians): $(awk '{print $2}' "$WORK/evalstat.txt" | bench_median) pages," \
        "$(bench_fmt "$(awk '$2 > 0 {print $3 / $2}' "$WORK/evalstat.txt" | bench_median)" 0) µs per page," \
        "$(bench_fmt "$(awk '{print $3 / 1000}' "$WORK/evalstat.txt" | bench_median)" 0) ms in all (over 3 masters)."
    echo
    echo "Per round (round, DBSIZE sum before → after, u123 / u124 / key: keys left):"
    echo
    while read -r r b a n3 n4 ng; do
        echo "- round $r: $b → $a; u123 $n3, u124 $n4, key: $ng"
    done <"$WORK/after.txt"
} >"$MD"

NOTES="$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')); slotgate with 1 worker, TLS with client certificates; load average (1/5/15 min) at start $LOAD_START, after b $LOAD_AFTER_B, at end $LOAD_END. CPU from /proc/PID/stat (CLK_TCK=$CLK_TCK)."

echo
echo "slotgate game-domain benchmark - $START_DATE"
echo
cat "$MD"
echo
bench_print_notes
echo "Raw results: $STORAGE, $CPU_RES, $INV_RES, $WORK/after.txt; logs in $WORK/logs"
if [ -n "$OUT" ]; then
    {
        cat "$MD"
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
