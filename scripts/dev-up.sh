#!/usr/bin/env bash
# dev-up.sh - the one command to run slotgate locally: installs missing
# packages, builds, writes dev TLS certificates to deploy/local/tls/, starts a
# 3-master/3-replica Redis Cluster on 127.0.0.1:7000-7005 and runs slotgate in
# the foreground on 127.0.0.1:7420 (TLS). Ctrl-C stops slotgate and the cluster.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh
scripts/build.sh Release build
scripts/gen-certs.sh deploy/local/tls
scripts/cluster.sh stop deploy/local/cluster >/dev/null 2>&1 || true
cleanup() { scripts/cluster.sh stop deploy/local/cluster || true; }
trap cleanup EXIT
scripts/cluster.sh start deploy/local/cluster 7000 3 1
cat <<MSG
dev-up: Redis Cluster on 127.0.0.1:7000-7005; starting slotgate on 127.0.0.1:7420.
dev-up: try   build/slotgate-cli -p 7420 --tls --cacert deploy/local/tls/ca.pem ping
dev-up: Ctrl-C stops slotgate and the cluster.
MSG
trap 'true' INT TERM  # the signal goes to slotgate; we clean up after it exits
build/slotgate --config deploy/local/slotgate.yaml || true
