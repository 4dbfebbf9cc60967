#!/usr/bin/env bash
# A throwaway PKI for the TLS tests, made at run time (no private key is ever committed):
# DIR/ca.crt (+ ca.key), a server certificate for 127.0.0.1 / 127.0.0.2 / localhost
# (server.crt, server.key), and a client certificate the same CA signed (client.crt,
# client.key). EC P-256 keys, valid one day.
# Usage: make_test_certs.sh DIR
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
key ca.key
openssl req -x509 -new -key ca.key -out ca.crt -days 1 -subj /CN=grinqh-test-ca \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
sign() {  # NAME SUBJECT EXTENSIONS
  key "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "$2"
  printf '%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 1 \
    -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
sign server /CN=localhost $'subjectAltName=IP:127.0.0.1,IP:127.0.0.2,DNS:localhost\nextendedKeyUsage=serverAuth'
sign client /CN=grinqh-test-client 'extendedKeyUsage=clientAuth'
