#!/usr/bin/env bash
# Install the Debian packages slotgate needs, only those that are missing.
# Idempotent: a second run installs nothing and takes a second.
#   scripts/deps.sh [PACKAGE...]   also those packages (a benchmark's extras)
set -euo pipefail

PKGS=(build-essential cmake ninja-build pkg-config
      libevent-dev libssl-dev openssl libhiredis-dev
      libprotobuf-c-dev protobuf-c-compiler libsnappy-dev libyaml-dev
      libcmocka-dev libjansson-dev redis-server redis-tools procps
      python3 python3-venv python3-yaml protobuf-compiler
      prometheus systemd haproxy)
# python3-venv: the Python client's test venv; protobuf-compiler: the Go
# client's generated-code check; prometheus: promtool (itest_metrics lints a
# live /metrics scrape); systemd: systemd-analyze (deploy_systemd_verify);
# python3-yaml: deploy_manifests; haproxy: itest_haproxy puts Debian's haproxy
# in front of two slotgates.
# The clients' toolchains: Node.js (TypeScript client) and Go come with the
# machine image; take Debian's only where they are missing.
command -v node >/dev/null 2>&1 || PKGS+=(nodejs npm)
command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ] || PKGS+=(golang-go)
PKGS+=("$@")

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
