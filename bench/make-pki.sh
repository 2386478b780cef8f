#!/usr/bin/env bash
# The benchmark's PKI, with the openssl CLI: ECDSA P-256 everywhere.
#   ca.crt/.key          root CA (signs the server and the client directly)
#   server.crt/.key      CN=localhost, SAN localhost + 127.0.0.1, serverAuth
#   client.crt/.key      CN=bench-client, clientAuth; client.pem = cert + key (ab -E)
#   stranger.crt/.key    a client from another CA (must be refused); stranger.pem
# usage: bench/make-pki.sh DIR   (does nothing when DIR/.complete exists)
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
DIR=$1
[ -f "$DIR/.complete" ] && exit 0
mkdir -p -- "$DIR"
cd -- "$DIR"
umask 077
LOG=openssl.log
: >"$LOG"
ossl() {
	openssl "$@" >>"$LOG" 2>&1 || {
		echo "bench/make-pki.sh: failed: openssl $*" >&2
		tail -n 20 "$LOG" >&2
		exit 1
	}
}
cat >ext.cnf <<'CNF'
[ ca_ext ]
basicConstraints	= critical, CA:true
keyUsage		= critical, keyCertSign, cRLSign
subjectKeyIdentifier	= hash
[ server_ext ]
basicConstraints	= critical, CA:false
keyUsage		= critical, digitalSignature
extendedKeyUsage	= serverAuth
subjectAltName		= DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier	= hash
authorityKeyIdentifier	= keyid:always
[ client_ext ]
basicConstraints	= critical, CA:false
keyUsage		= critical, digitalSignature
extendedKeyUsage	= clientAuth
subjectKeyIdentifier	= hash
authorityKeyIdentifier	= keyid:always
CNF
key() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"; }
root() { # NAME SUBJECT
	key "$1"
	ossl req -x509 -new -key "$1.key" -subj "$2" -days 3650 -sha256 \
	    -config ext.cnf -extensions ca_ext -out "$1.crt"
}
leaf() { # NAME SUBJECT EXT CA
	key "$1"
	ossl req -new -key "$1.key" -subj "$2" -config ext.cnf -out "$1.csr"
	ossl x509 -req -in "$1.csr" -CA "$4.crt" -CAkey "$4.key" -CAcreateserial \
	    -days 825 -sha256 -extfile ext.cnf -extensions "$3" -out "$1.crt"
	cat "$1.crt" "$1.key" >"$1.pem"
}
root ca "/O=mtlsproxy bench/CN=Bench Root CA"
leaf server "/O=mtlsproxy bench/CN=localhost" server_ext ca
leaf client "/O=mtlsproxy bench/CN=bench-client" client_ext ca
root other-ca "/O=Elsewhere/CN=Other CA"
leaf stranger "/O=Elsewhere/CN=bench-client" client_ext other-ca
ossl verify -CAfile ca.crt server.crt client.crt
rm -f ./*.csr ./*.srl
chmod 0644 ./*.crt
date +%s >.complete
