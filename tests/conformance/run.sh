#!/usr/bin/env bash
# run.sh -- COMMAND [ARGS...]: run one client's conformance adapter against a
# throwaway slotgate and Redis Cluster (see tests/conformance/README.md).
#
# Builds slotgate if SLOTGATE_BIN is unset (Release, build-test/, serialised
# with flock), writes dev TLS certificates into a scratch directory, starts a
# 3-master, no-replica Redis Cluster (cluster-require-full-coverage no) and
# slotgate (TLS, auth token, the keyspaces of deploy/local/slotgate.yaml, the
# admin port) on free loopback ports, runs COMMAND with the SG_CONF_*
# environment, and stops every process it started on exit, INT or TERM.
# Exit status: COMMAND's (or 1 if the environment could not be started).
#
# Environment (optional): SLOTGATE_BIN (the proxy to test), SG_CONF_ONLY
# (passed through), SG_CONF_KEEP=1 (keep the scratch directory; it is kept
# anyway when COMMAND fails), SG_CONF_TMP (parent of the scratch directory,
# default ${TMPDIR:-/tmp}/slotgate-conformance).
set -euo pipefail

PROG=conformance/run.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
TOP=$(cd "$HERE/../.." && pwd -P)

die() { echo "$PROG: $*" >&2; exit 1; }
log() { echo "$PROG: $*" >&2; }

# stray_kill DIR: SIGKILL every redis-server/slotgate (first word of its
# command line) whose command line names DIR/. Works without any file in DIR.
stray_kill() {
    local dir=$1 p pid cmd first left
    for _ in 1 2 3 4 5; do
        left=""
        for p in /proc/[0-9]*; do
            pid=${p#/proc/}
            cmd=$(tr '\0' ' ' 2>/dev/null < "$p/cmdline") || continue
            [[ $cmd == *"$dir/"* ]] || continue
            first=${cmd%% *}
            case "${first##*/}" in redis-server|slotgate) left="$left $pid" ;; esac
        done
        [ -z "$left" ] && return 0
        # shellcheck disable=SC2086
        kill -CONT $left 2>/dev/null || true
        # shellcheck disable=SC2086
        kill -KILL $left 2>/dev/null || true
        sleep 0.1
    done
}

# Internal: run.sh --teardown DIR (the watchdog's cleanup).
if [ "${1:-}" = --teardown ]; then
    if [ -s "$2/command.pgid" ]; then
        pg=$(cat "$2/command.pgid")
        kill -TERM -- "-$pg" 2>/dev/null && sleep 1
        kill -KILL -- "-$pg" 2>/dev/null || true
    fi
    [ -f "$2/ctl.env" ] && SG_CONF_DIR=$2 "$HERE/ctl" teardown >/dev/null 2>&1
    stray_kill "$2"
    exit 0
fi

[ "${1:-}" = -- ] && shift
[ $# -ge 1 ] || die "usage: tests/conformance/run.sh -- COMMAND [ARGS...]"

for t in redis-server redis-cli openssl flock setsid; do
    command -v "$t" >/dev/null 2>&1 || die "$t not found in PATH (scripts/deps.sh installs it)"
done

# ---- slotgate binary ---------------------------------------------------------
if [ -z "${SLOTGATE_BIN:-}" ]; then
    mkdir -p "$TOP/build-test"
    log "building slotgate (Release, build-test/)"
    flock "$TOP/build-test/.conformance-build.lock" \
        nice "$TOP/scripts/build.sh" Release "$TOP/build-test" >&2 || die "build failed"
    SLOTGATE_BIN=$TOP/build-test/slotgate
fi
[ -x "$SLOTGATE_BIN" ] || die "SLOTGATE_BIN=$SLOTGATE_BIN is not an executable"
SLOTGATE_BIN=$(cd "$(dirname "$SLOTGATE_BIN")" && pwd -P)/$(basename "$SLOTGATE_BIN")

# ---- scratch directory and teardown -------------------------------------------
TMPROOT=${SG_CONF_TMP:-${TMPDIR:-/tmp}/slotgate-conformance}
mkdir -p "$TMPROOT"
DIR=$(mktemp -d "$TMPROOT/run.XXXXXX")
DIR=$(cd "$DIR" && pwd -P)
CHILD=""
WATCHDOG=""
RC=1
TOKEN=conf-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
cat > "$DIR/ctl.env" <<EOF
SG_CTL_TOP='$TOP'
SG_CTL_BIN='$SLOTGATE_BIN'
SG_CTL_TOKEN='$TOKEN'
EOF

teardown() {
    local deadline
    trap - EXIT INT TERM
    if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
        kill -TERM -- "-$CHILD" 2>/dev/null || kill -TERM "$CHILD" 2>/dev/null || true
        deadline=$(( $(date +%s) + 10 ))
        while kill -0 "$CHILD" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.05; done
        kill -KILL -- "-$CHILD" 2>/dev/null || kill -KILL "$CHILD" 2>/dev/null || true
    fi
    [ -f "$DIR/ctl.env" ] && SG_CONF_DIR=$DIR "$HERE/ctl" teardown || true
    stray_kill "$DIR"
    # A sanitizer build of slotgate reports into its log (it is not our
    # child, so its exit status is not seen): any report fails the run.
    if [ -f "$DIR/slotgate.log" ] &&
        grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$DIR/slotgate.log"; then
        log "slotgate's log has sanitizer reports:"
        grep -E -A12 'ERROR: (Address|Leak|Thread)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$DIR/slotgate.log" | head -60 >&2
        [ "$RC" -eq 0 ] && RC=1
    fi
    [ -n "$WATCHDOG" ] && kill -KILL -- "-$WATCHDOG" 2>/dev/null || true
    if [ "$RC" -eq 0 ] && [ "${SG_CONF_KEEP:-0}" != 1 ]; then
        rm -rf "$DIR"
    else
        log "logs kept in $DIR"
    fi
}
trap 'teardown; exit $RC' EXIT
trap 'RC=130; exit 130' INT
trap 'RC=143; exit 143' TERM

# A watchdog in its own session cleans up if this script dies without running
# its traps (SIGKILL, e.g. a test runner's timeout).
setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 0.5; done; exec "$3" --teardown "$2"' \
    conformance-watchdog $$ "$DIR" "$HERE/run.sh" > /dev/null 2>&1 < /dev/null &
WATCHDOG=$!
disown "$WATCHDOG"

# ---- ports ----------------------------------------------------------------------
# Redis bases in 15000..22000 (bus +10000 stays below the ephemeral range, as
# scripts/cluster.sh recommends); slotgate and admin in 22010..24990.
# in_use PORT: a local socket holds PORT (without ss: only a listener).
if command -v ss >/dev/null 2>&1; then
    in_use() { ss -Htan "( sport = :$1 )" 2>/dev/null | grep -qv '^TIME-WAIT'; }
else
    in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
fi
rnd() { echo $(( ($(od -An -N4 -tu4 /dev/urandom) % $1) )); }

pick_redis_base() {
    local base i ok
    for _ in $(seq 200); do
        base=$(( 15000 + $(rnd 700) * 10 ))
        ok=1
        for i in 0 1 2; do
            if in_use $((base + i)) || in_use $((base + i + 10000)); then ok=0; break; fi
        done
        [ "$ok" = 1 ] && { echo "$base"; return 0; }
    done
    return 1
}

pick_port() {
    local p
    for _ in $(seq 200); do
        p=$(( 22010 + $(rnd 2980) ))
        in_use "$p" || { echo "$p"; return 0; }
    done
    return 1
}

# ---- certificates -----------------------------------------------------------------
"$TOP/scripts/gen-certs.sh" "$DIR/certs" >&2 || die "gen-certs.sh failed"

# ---- Redis Cluster ------------------------------------------------------------------
ok=0
for attempt in 1 2 3 4 5; do
    base=$(pick_redis_base) || die "no free Redis base port"
    if "$TOP/scripts/cluster.sh" start "$DIR/redis" "$base" 3 0 > "$DIR/cluster-start.log" 2>&1; then
        ok=1
        break
    fi
    log "cluster start on $base failed (attempt $attempt), retrying: $(tail -n 1 "$DIR/cluster-start.log")"
    "$TOP/scripts/cluster.sh" stop "$DIR/redis" >&2 || true
    rm -rf "$DIR/redis"
done
[ "$ok" = 1 ] || { cat "$DIR/cluster-start.log" >&2; die "cannot start the Redis Cluster"; }
mapfile -t MASTERS < "$DIR/redis/masters"
# A stopped master must fail only its own slots: no full coverage required,
# now and after a restart of the node (start-shard reuses redis.conf).
for p in "${MASTERS[@]}"; do
    redis-cli -h 127.0.0.1 -p "$p" CONFIG SET cluster-require-full-coverage no >/dev/null ||
        die "CONFIG SET on $p failed"
    sed -i 's/^cluster-require-full-coverage .*/cluster-require-full-coverage no/' "$DIR/redis/$p/redis.conf"
done
REDIS_LIST=$(printf '127.0.0.1:%s,' "${MASTERS[@]}")
REDIS_LIST=${REDIS_LIST%,}

# ---- slotgate -------------------------------------------------------------------------

write_config() { # write_config PORT ADMIN_PORT
    {
        echo "# generated by tests/conformance/run.sh"
        echo "listen:"
        echo "  address: 127.0.0.1"
        echo "  port: $1"
        echo "  workers: 2"
        echo "tls:"
        echo "  cert: \"$DIR/certs/server.pem\""
        echo "  key: \"$DIR/certs/server-key.pem\""
        echo "auth:"
        echo "  tokens: [\"$TOKEN\"]"
        echo "redis:"
        echo "  seeds:"
        for p in "${MASTERS[@]}"; do echo "    - \"127.0.0.1:$p\""; done
        echo "  connect_timeout_ms: 500"
        echo "  topology_refresh_ms: 1000"
        echo "  reconnect_backoff_max_ms: 200"
        echo "admin:"
        echo "  address: 127.0.0.1"
        echo "  port: $2"
        echo "log:"
        echo "  level: info"
        cat <<'EOF'
keyspaces:
  session:
    prefix: "session:"
    default_ttl_ms: 3600000
    max_ttl_ms: 86400000
  room:
    prefix: "room:"
    default_ttl_ms: 1800000
    max_ttl_ms: 86400000
    compression: auto
    compress_threshold: 1024
  asset:
    prefix: "asset:"
    default_ttl_ms: 3600000
  gamesystem:
    prefix: "gamesystem:"
    default_ttl_ms: 7200000
EOF
    } > "$DIR/slotgate.yaml"
}

started=0
for attempt in 1 2 3 4 5; do
    PORT=$(pick_port) || die "no free port for slotgate"
    ADMIN=$(pick_port) || die "no free admin port"
    [ "$PORT" != "$ADMIN" ] || continue
    write_config "$PORT" "$ADMIN"
    printf 'SG_CTL_PORT=%s\nSG_CTL_ADMIN=%s\n' "$PORT" "$ADMIN" > "$DIR/ports.env"
    if SG_CONF_DIR=$DIR "$HERE/ctl" start-proxy; then
        started=1
        break
    fi
    log "slotgate did not start on port $PORT (attempt $attempt), retrying"
    SG_CONF_DIR=$DIR "$HERE/ctl" stop-proxy || true
done
[ "$started" = 1 ] || die "cannot start slotgate (see $DIR/slotgate.log)"

# The control command as the adapter sees it: a wrapper that pins this run's
# directory, so it works even where a test runner scrubs the environment.
cat > "$DIR/ctl" <<EOF
#!/bin/sh
SG_CONF_DIR='$DIR' exec '$HERE/ctl' "\$@"
EOF
chmod +x "$DIR/ctl"

export SG_CONF_HOST=127.0.0.1
export SG_CONF_PORT=$PORT
export SG_CONF_CA=$DIR/certs/ca.pem
export SG_CONF_SERVER_NAME=localhost
export SG_CONF_CERT=$DIR/certs/client.pem
export SG_CONF_KEY=$DIR/certs/client-key.pem
export SG_CONF_TOKEN=$TOKEN
export SG_CONF_SCENARIOS=$HERE/scenarios.json
export SG_CONF_CTL=$DIR/ctl
export SG_CONF_DIR=$DIR
export SG_CONF_REDIS=$REDIS_LIST
export SG_CONF_ADMIN_PORT=$ADMIN
[ -n "${SG_CONF_ONLY:-}" ] && export SG_CONF_ONLY
log "slotgate on 127.0.0.1:$PORT (admin $ADMIN), Redis masters $REDIS_LIST, scratch $DIR"

# COMMAND runs in its own process group (so teardown can stop all of it) and
# in the background (so INT/TERM reach the traps at once).
set +e
setsid "$@" &
CHILD=$!
echo "$CHILD" > "$DIR/command.pgid"
wait "$CHILD"
RC=$?
CHILD=""
set -e
exit "$RC"
