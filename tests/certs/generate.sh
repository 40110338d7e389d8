#!/usr/bin/env bash
# Writes the test-only certificates and keys in this folder with the openssl
# command-line tool. The files are checked in so the suites need no openssl at
# run time; rerun this script only to replace them (see README.md here).
#
# Every key is ECDSA P-256 in PKCS#8 PEM ("BEGIN PRIVATE KEY"). Every
# certificate is valid from 2000-01-01 (so a machine with a clock behind the
# one that made them still accepts them) until 2126 (so CI never meets an
# expired one).
set -euo pipefail

DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NOT_BEFORE=20000101000000Z
NOT_AFTER=21260101000000Z
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# `openssl ca` is used for every certificate because it is the command that
# takes explicit validity dates; this is its smallest configuration.
mkdir "$WORK/issued"
touch "$WORK/index.txt"
cat >"$WORK/ca.cnf" <<CNF
[ca]
default_ca = test_ca

[test_ca]
database = $WORK/index.txt
new_certs_dir = $WORK/issued
rand_serial = yes
default_md = sha256
policy = any_name
unique_subject = no
copy_extensions = none

[any_name]
commonName = supplied
CNF

# issue NAME SUBJECT SIGNER EXTENSIONS: writes NAME.key and NAME.pem, signed
# by SIGNER's key ("self" for a self-signed certificate).
issue() {
  local name=$1 subject=$2 signer=$3 extensions=$4
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$DIR/$name.key"
  openssl req -new -key "$DIR/$name.key" -subj "$subject" -out "$WORK/$name.csr"
  printf '%s\n' "$extensions" >"$WORK/$name.ext"
  local signing=(-cert "$DIR/$signer.pem" -keyfile "$DIR/$signer.key")
  if [ "$signer" = self ]; then
    signing=(-selfsign -keyfile "$DIR/$name.key")
  fi
  openssl ca -batch -notext -config "$WORK/ca.cnf" "${signing[@]}" \
    -startdate "$NOT_BEFORE" -enddate "$NOT_AFTER" \
    -extfile "$WORK/$name.ext" -in "$WORK/$name.csr" -out "$DIR/$name.pem" 2>"$WORK/$name.log" ||
    { cat "$WORK/$name.log" >&2; exit 1; }
}

# The certificate authority that signs the server and the trusted client.
issue ca "/CN=nsq-rs test CA" self "basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash"

# nsqd's certificate, valid for 127.0.0.1 and localhost.
issue server "/CN=nsqd-test" ca "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid"

# A client certificate the CA vouches for.
issue client "/CN=test-client" ca "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid"

# A self-signed client certificate the CA knows nothing of.
issue rogue "/CN=rogue-client" self "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectKeyIdentifier=hash"

chmod 644 "$DIR"/*.pem "$DIR"/*.key
openssl verify -CAfile "$DIR/ca.pem" "$DIR/server.pem" "$DIR/client.pem"
if openssl verify -CAfile "$DIR/ca.pem" "$DIR/rogue.pem" >/dev/null 2>&1; then
  echo "rogue.pem must not verify against ca.pem" >&2
  exit 1
fi
