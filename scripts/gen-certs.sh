#!/usr/bin/env bash
# gen-certs.sh OUTDIR - write a development PKI for slotgate into OUTDIR.
#
#   ca.pem, ca-key.pem                 dev CA (trusted by server and clients)
#   server.pem, server-key.pem         server cert: 127.0.0.1, ::1, localhost
#   client.pem, client-key.pem         client cert, CN slotgate-dev-client
#   other-ca.pem, other-client.pem,    a second, untrusted CA and a client
#   other-client-key.pem               cert it signed (negative mTLS tests)
#
# EC P-256 keys, 825 days. Idempotent: if OUTDIR/ca.pem exists, is a valid
# CA cert and every other file is present, nothing is done. For development
# and tests only: the keys are written unencrypted.
set -euo pipefail

die() { echo "gen-certs: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
command -v openssl >/dev/null 2>&1 || die "openssl not found in PATH"
OUT=$1
DAYS=825
FILES=(ca.pem ca-key.pem server.pem server-key.pem client.pem client-key.pem
       other-ca.pem other-client.pem other-client-key.pem)

all_present() {
    local f
    for f in "${FILES[@]}"; do [ -s "$OUT/$f" ] || return 1; done
    # ca.pem must parse and still be valid for a day.
    openssl x509 -in "$OUT/ca.pem" -noout -checkend 86400 >/dev/null 2>&1 || return 1
    openssl verify -CAfile "$OUT/ca.pem" "$OUT/server.pem" "$OUT/client.pem" >/dev/null 2>&1
}

mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd -P)  # absolute: the work below happens in a temp dir
if all_present; then
    exit 0
fi

# Build into a temporary directory and move into place at the end, so an
# interrupted run never leaves a half-written set that looks valid.
TMP=$(mktemp -d "$OUT/.gen-certs.XXXXXX") || die "mktemp failed in $OUT"
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"

run() {
    local log
    if ! log=$("$@" 2>&1); then
        echo "$log" >&2
        die "failed: $*"
    fi
}

newkey() { run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

# make_ca NAME CN
make_ca() {
    newkey "$1-key.pem"
    run openssl req -new -x509 -key "$1-key.pem" -out "$1.pem" -days "$DAYS" \
        -subj "/O=slotgate-dev/CN=$2" -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign"
}

# make_leaf NAME CN CA EXTFILE-CONTENT
make_leaf() {
    local name=$1 cn=$2 ca=$3 ext=$4
    newkey "$name-key.pem"
    run openssl req -new -key "$name-key.pem" -out "$name.csr" -subj "/O=slotgate-dev/CN=$cn"
    printf '%s\n' "$ext" > "$name.ext"
    run openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca-key.pem" \
        -CAcreateserial -out "$name.pem" -days "$DAYS" -sha256 -extfile "$name.ext"
}

make_ca ca "slotgate dev CA"
make_leaf server "localhost" ca "basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1"
make_leaf client "slotgate-dev-client" ca "basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth"

make_ca other-ca "slotgate untrusted CA"
make_leaf other-client "slotgate-dev-client" other-ca "basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth"

run openssl verify -CAfile ca.pem server.pem client.pem
run openssl verify -CAfile other-ca.pem other-client.pem

chmod 600 ./*-key.pem
# ca.pem last: its presence is what marks the set as complete.
for f in "${FILES[@]}"; do
    [ "$f" = ca.pem ] || mv -f "$f" "$OUT/$f"
done
mv -f ca.pem "$OUT/ca.pem"
