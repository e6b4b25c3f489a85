#!/usr/bin/env bash
# check_systemd.sh SRC_DIR SLOTGATE_BIN - deploy/systemd/slotgate.service:
# `systemd-analyze verify` passes with no message at all (it only warns, and
# exits 0, on unknown keys and bad values, so any output fails the test), on
# a copy whose binary path points at the built slotgate (verify checks that
# the executables exist); and the settings docs/OPERATIONS.md promises are
# there, with the stop timeout above the drain timeout and the descriptor
# limit above the connection limit.
set -euo pipefail
src=$1 bin=$2
unit=$src/deploy/systemd/slotgate.service
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s#/usr/local/bin/slotgate#$bin#g" "$unit" >"$tmp/slotgate.service"
fail() { echo "check_systemd: $*" >&2; exit 1; }

out=$(cd "$tmp" && systemd-analyze verify ./slotgate.service 2>&1) || fail "verify failed: $out"
[ -z "$out" ] || fail "verify printed messages: $out"

get() { sed -n "s/^$1=//p" "$unit" | tail -1; }
for kv in "ExecReload=/bin/kill -HUP \$MAINPID" "NoNewPrivileges=yes" "ProtectSystem=strict" \
          "ProtectHome=yes" "PrivateTmp=yes" "KillSignal=SIGTERM"; do
  grep -qxF "$kv" "$unit" || fail "missing $kv"
done
grep -q '^RestrictAddressFamilies=AF_INET AF_INET6' "$unit" || fail "RestrictAddressFamilies"
{ grep -q '^DynamicUser=yes' "$unit" || grep -q '^User=slotgate' "$unit"; } || fail "no dedicated or dynamic user"
grep -q -- '--check-config' "$unit" || fail "ExecStartPre does not check the config"

# TimeoutStopSec above the default drain timeout (and the example's).
stop=$(get TimeoutStopSec); stop=${stop%s}
drain_ms=$(sed -n 's/^ *drain_timeout_ms: *\([0-9]*\).*/\1/p' "$src/deploy/slotgate.example.yaml")
[ -n "$drain_ms" ] || fail "no drain_timeout_ms in deploy/slotgate.example.yaml"
[ $((stop * 1000)) -gt "$drain_ms" ] || fail "TimeoutStopSec=${stop}s is not above drain_timeout_ms=$drain_ms"
# LimitNOFILE above limits.max_connections plus links.
nofile=$(get LimitNOFILE)
maxconn=$(sed -n 's/^ *max_connections: *\([0-9]*\).*/\1/p' "$src/deploy/slotgate.example.yaml")
[ "$nofile" -ge $((maxconn + 1024)) ] || fail "LimitNOFILE=$nofile is too low for max_connections=$maxconn"

echo "check_systemd: ok (verify clean; stop ${stop}s > drain ${drain_ms} ms; nofile $nofile)"
