#!/usr/bin/env bash
# Install the Debian packages slotgate needs, only those that are missing.
# Idempotent: a second run installs nothing and takes a second.
set -euo pipefail

PKGS=(build-essential cmake ninja-build pkg-config
      libevent-dev libssl-dev openssl libhiredis-dev
      libprotobuf-c-dev protobuf-c-compiler libsnappy-dev libyaml-dev
      libcmocka-dev redis-server redis-tools procps
      prometheus systemd python3 python3-yaml haproxy)
# prometheus: promtool (itest_metrics lints a live /metrics scrape);
# systemd: systemd-analyze (deploy_systemd_verify); python3-yaml: deploy_manifests.
# haproxy: itest_haproxy puts Debian's haproxy in front of two slotgates.

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
