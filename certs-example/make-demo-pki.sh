#!/usr/bin/env bash
# Build a demo PKI for mtlsproxy with the openssl CLI: a root CA (encrypted
# key), an intermediate CA, server certificates and a set of client
# certificates that each exercise one verification outcome.
#
# usage: make-demo-pki.sh OUTDIR
#
# Idempotent: when OUTDIR/.complete exists (and is younger than ~300 days, so
# the CRLs and leaves are still well within their validity), it exits at once.
# Otherwise it builds everything in a fresh directory next to OUTDIR and
# renames it into place, so a half-built OUTDIR is never used.
# See certs-example/README.md for what each step does and why.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
OUT=${1%/}
MAX_AGE=$((300 * 86400))

# fresh: OUTDIR/.complete exists and is younger than MAX_AGE.
fresh() {
	local built
	[ -f "$OUT/.complete" ] || return 1
	built=$(head -n1 "$OUT/.complete" 2>/dev/null || true)
	case $built in
	'' | *[!0-9]*) return 1 ;;
	esac
	[ $(($(date +%s) - built)) -lt "$MAX_AGE" ]
}

if fresh; then
	exit 0
fi
if [ -f "$OUT/.complete" ]; then
	echo "make-demo-pki: $OUT is older than 300 days, rebuilding" >&2
fi
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ] && [ ! -f "$OUT/root-ca.crt" ] && [ ! -f "$OUT/.complete" ]; then
	echo "make-demo-pki: $OUT exists and does not look like a demo PKI; refusing to replace it" >&2
	exit 1
fi

command -v openssl >/dev/null || { echo "make-demo-pki: openssl not found (apt-get install openssl)" >&2; exit 1; }

mkdir -p -- "$(dirname -- "$OUT")"
parent=$(cd -- "$(dirname -- "$OUT")" && pwd)
OUT=$parent/$(basename -- "$OUT")
WORK=$(mktemp -d "$parent/.$(basename -- "$OUT").XXXXXX")
cleanup() { if [ -n "${WORK:-}" ]; then rm -rf -- "$WORK"; fi; }
trap cleanup EXIT
cd -- "$WORK"
umask 077

# openssl prints progress ("Certificate request self-signature ok", "Using
# configuration from ...") on stderr; keep it, but only show it on failure.
LOG=$WORK/.openssl.log
ossl() {
	if ! openssl "$@" >>"$LOG" 2>&1; then
		echo "make-demo-pki: failed: openssl $*" >&2
		tail -n 20 "$LOG" >&2
		exit 1
	fi
}

DAYS_ROOT=3650		# 10 years
DAYS_INT=1825		# 5 years
DAYS_LEAF=825
DAYS_CRL=365

# --------------------------------------------------------------------------
# 0. One small openssl config: [req] for CSRs, [ca] sections for `openssl ca`
#    (used for the expired certificate and the CRLs), and one section of
#    X.509v3 extensions per kind of certificate.
# --------------------------------------------------------------------------
cat >openssl.cnf <<'CNF'
# Written by make-demo-pki.sh. Paths are relative to this directory.
[ req ]
distinguished_name	= req_dn
prompt			= no
string_mask		= utf8only
[ req_dn ]
CN			= unused (every command passes -subj)

[ ca ]
default_ca		= intermediate_ca

[ intermediate_ca ]
dir			= .
certificate		= $dir/intermediate-ca.crt
private_key		= $dir/intermediate-ca.key
database		= $dir/ca-db/intermediate/index.txt
new_certs_dir		= $dir/ca-db/intermediate/newcerts
serial			= $dir/ca-db/intermediate/serial
crlnumber		= $dir/ca-db/intermediate/crlnumber
default_md		= sha256
default_days		= 825
default_crl_days	= 365
crl_extensions		= crl_ext
policy			= policy_any
unique_subject		= no
copy_extensions		= none
email_in_dn		= no
preserve		= yes

[ root_ca ]
dir			= .
certificate		= $dir/root-ca.crt
private_key		= $dir/root-ca.key
database		= $dir/ca-db/root/index.txt
new_certs_dir		= $dir/ca-db/root/newcerts
serial			= $dir/ca-db/root/serial
crlnumber		= $dir/ca-db/root/crlnumber
default_md		= sha256
default_days		= 1825
default_crl_days	= 365
crl_extensions		= crl_ext
policy			= policy_any
unique_subject		= no
copy_extensions		= none
email_in_dn		= no
preserve		= yes

[ policy_any ]
organizationName	= optional
organizationalUnitName	= optional
commonName		= supplied

[ crl_ext ]
authorityKeyIdentifier	= keyid:always

[ root_ca_ext ]
basicConstraints	= critical, CA:true
keyUsage		= critical, keyCertSign, cRLSign
subjectKeyIdentifier	= hash

[ intermediate_ca_ext ]
basicConstraints	= critical, CA:true, pathlen:0
keyUsage		= critical, keyCertSign, cRLSign
subjectKeyIdentifier	= hash
authorityKeyIdentifier	= keyid:always

[ server_ext ]
basicConstraints	= critical, CA:false
keyUsage		= critical, digitalSignature
extendedKeyUsage	= serverAuth
subjectAltName		= DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier	= hash
authorityKeyIdentifier	= keyid:always

[ server_rsa_ext ]
basicConstraints	= critical, CA:false
keyUsage		= critical, digitalSignature, keyEncipherment
extendedKeyUsage	= serverAuth
subjectAltName		= DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier	= hash
authorityKeyIdentifier	= keyid:always

[ client_ext ]
basicConstraints	= critical, CA:false
keyUsage		= critical, digitalSignature
extendedKeyUsage	= clientAuth
subjectKeyIdentifier	= hash
authorityKeyIdentifier	= keyid:always

[ client_orders_ext ]
basicConstraints	= critical, CA:false
keyUsage		= critical, digitalSignature
extendedKeyUsage	= clientAuth
subjectAltName		= URI:spiffe://demo.example/ns/prod/orders, DNS:orders.demo.example
subjectKeyIdentifier	= hash
authorityKeyIdentifier	= keyid:always

[ server_eku_only_ext ]
basicConstraints	= critical, CA:false
keyUsage		= critical, digitalSignature
extendedKeyUsage	= serverAuth
subjectKeyIdentifier	= hash
authorityKeyIdentifier	= keyid:always
CNF
CNF=openssl.cnf

for ca in intermediate root; do
	mkdir -p "ca-db/$ca/newcerts"
	: >"ca-db/$ca/index.txt"
	openssl rand -hex 16 >"ca-db/$ca/serial"
	echo 1000 >"ca-db/$ca/crlnumber"
done

# new_key FILE: an ECDSA P-256 private key, unencrypted.
new_key() {
	ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
}

# sign NAME SUBJECT EXT_SECTION: a CSR for NAME.key, signed by the
# intermediate with `openssl x509 -req` (the usual how-to route).
sign() {
	local name=$1 subj=$2 ext=$3
	ossl req -new -config "$CNF" -key "$name.key" -subj "$subj" -out "$name.csr"
	ossl x509 -req -in "$name.csr" -CA intermediate-ca.crt -CAkey intermediate-ca.key \
	    -CAcreateserial -days "$DAYS_LEAF" -sha256 \
	    -extfile "$CNF" -extensions "$ext" -out "$name.crt"
}

# bundle NAME: NAME.pem (cert + key, for curl --cert / ab -E) and
# NAME-fullchain.crt (leaf + intermediate).
bundle() {
	cat "$1.crt" "$1.key" >"$1.pem"
	cat "$1.crt" intermediate-ca.crt >"$1-fullchain.crt"
}

# --------------------------------------------------------------------------
# 1. Root CA: encrypted key (AES-256), self-signed, 10 years.
# --------------------------------------------------------------------------
openssl rand -hex 24 >root-ca.pass
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -aes-256-cbc -pass file:root-ca.pass -out root-ca.key
ossl req -x509 -new -config "$CNF" -key root-ca.key -passin file:root-ca.pass \
    -subj "/O=Demo Corp/CN=Demo Root CA" -days "$DAYS_ROOT" -sha256 \
    -extensions root_ca_ext -out root-ca.crt

# --------------------------------------------------------------------------
# 2. Intermediate CA, signed by the root; pathlen:0 (signs leaves only).
# --------------------------------------------------------------------------
new_key intermediate-ca.key
ossl req -new -config "$CNF" -key intermediate-ca.key \
    -subj "/O=Demo Corp/CN=Demo Intermediate CA" -out intermediate-ca.csr
ossl x509 -req -in intermediate-ca.csr -CA root-ca.crt -CAkey root-ca.key \
    -passin file:root-ca.pass -CAcreateserial -days "$DAYS_INT" -sha256 \
    -extfile "$CNF" -extensions intermediate_ca_ext -out intermediate-ca.crt

# What client_auth.ca points at: the intermediate and the root.
cat intermediate-ca.crt root-ca.crt >client-ca.pem
cp client-ca.pem ca-chain.pem

# --------------------------------------------------------------------------
# 3. Server certificates (CN=localhost; SAN localhost, 127.0.0.1, ::1).
# --------------------------------------------------------------------------
new_key server.key
sign server "/O=Demo Corp/CN=localhost" server_ext
cat server.crt intermediate-ca.crt >server-fullchain.crt

ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out server-rsa.key
sign server-rsa "/O=Demo Corp/CN=localhost" server_rsa_ext
cat server-rsa.crt intermediate-ca.crt >server-rsa-fullchain.crt

# The same server key, encrypted: PKCS#8 with AES-256, and the traditional
# "Proc-Type: 4,ENCRYPTED" PEM with DES3 that `openssl genrsa -des3` era
# guides produce.
openssl rand -hex 16 >server-key.pass
ossl pkey -in server.key -aes-256-cbc -passout file:server-key.pass -out server-enc.key
ossl ec -in server.key -des3 -passout file:server-key.pass -out server-des3.key

# PKCS#12 bundle: key + leaf + intermediate, modern AES-256 / SHA-256 PBE.
openssl rand -hex 16 >server-p12.pass
ossl pkcs12 -export -name localhost -inkey server.key -in server.crt \
    -certfile intermediate-ca.crt \
    -keypbe AES-256-CBC -certpbe AES-256-CBC -macalg sha256 \
    -passout file:server-p12.pass -out server.p12

# --------------------------------------------------------------------------
# 4. Client certificates, signed by the intermediate.
# --------------------------------------------------------------------------
# orders: the allowed client.
new_key orders.key
sign orders "/O=Demo Corp/OU=payments/CN=orders" client_orders_ext
bundle orders

# billing: also allowed.
new_key billing.key
sign billing "/O=Demo Corp/CN=billing" client_ext
bundle billing

# mallory: a valid chain, denied by the allow list.
new_key mallory.key
sign mallory "/O=Demo Corp/CN=mallory" client_ext
bundle mallory

# revoked: valid chain, listed in the intermediate's CRL (step 6).
new_key revoked.key
sign revoked "/O=Demo Corp/CN=revoked" client_ext
bundle revoked

# server-eku: CN=billing but EKU serverAuth only: wrong purpose.
new_key server-eku.key
sign server-eku "/O=Demo Corp/CN=billing" server_eku_only_ext
bundle server-eku

# noeku: CN=billing, a v1 certificate without any extension, as
# `openssl x509 -req` makes it when no -extfile is given.
new_key noeku.key
ossl req -new -config "$CNF" -key noeku.key -subj "/O=Demo Corp/CN=billing" -out noeku.csr
ossl x509 -req -in noeku.csr -CA intermediate-ca.crt -CAkey intermediate-ca.key \
    -CAcreateserial -days "$DAYS_LEAF" -sha256 -out noeku.crt
bundle noeku

# expired: validity entirely in the past. `openssl x509 -req` cannot
# backdate; `openssl ca` can.
new_key expired.key
ossl req -new -config "$CNF" -key expired.key -subj "/O=Demo Corp/CN=expired" -out expired.csr
ossl ca -batch -config "$CNF" -name intermediate_ca -notext \
    -startdate 20230101000000Z -enddate 20240101000000Z \
    -extfile "$CNF" -extensions client_ext -in expired.csr -out expired.crt
bundle expired

# orders.p12 for browsers and OS key stores.
openssl rand -hex 16 >orders-p12.pass
ossl pkcs12 -export -name orders -inkey orders.key -in orders.crt \
    -certfile intermediate-ca.crt \
    -keypbe AES-256-CBC -certpbe AES-256-CBC -macalg sha256 \
    -passout file:orders-p12.pass -out orders.p12

# --------------------------------------------------------------------------
# 5. Outsiders: a client from an unknown CA, and a self-signed client.
# --------------------------------------------------------------------------
new_key unknown-ca.key
ossl req -x509 -new -config "$CNF" -key unknown-ca.key \
    -subj "/O=Stranger Inc/CN=Unknown CA" -days "$DAYS_ROOT" -sha256 \
    -extensions root_ca_ext -out unknown-ca.crt
new_key stranger.key
ossl req -new -config "$CNF" -key stranger.key -subj "/O=Stranger Inc/CN=orders" -out stranger.csr
ossl x509 -req -in stranger.csr -CA unknown-ca.crt -CAkey unknown-ca.key \
    -CAcreateserial -days "$DAYS_LEAF" -sha256 \
    -extfile "$CNF" -extensions client_ext -out stranger.crt
cat stranger.crt stranger.key >stranger.pem
cat stranger.crt unknown-ca.crt >stranger-fullchain.crt

# partner: one self-signed certificate, trusted as it is (trusted_certs).
# This is the one-liner most guides give; it uses the system openssl.cnf
# (on Debian its v3_ca section: CA:true, subject/authority key ids).
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout partner.key -out partner.crt -days "$DAYS_LEAF" -sha256 \
    -subj "/O=Partner Ltd/CN=partner"
cat partner.crt partner.key >partner.pem

# --------------------------------------------------------------------------
# 6. CRLs: the intermediate revokes `revoked`; the root revokes nothing but
#    still publishes a CRL, so that `crl:` covers every CA of the chain.
# --------------------------------------------------------------------------
ossl ca -batch -config "$CNF" -name intermediate_ca -revoke revoked.crt -crl_reason keyCompromise
ossl ca -batch -config "$CNF" -name intermediate_ca -gencrl -crldays "$DAYS_CRL" -out intermediate-ca.crl.pem
ossl ca -batch -config "$CNF" -name root_ca -passin file:root-ca.pass -gencrl -crldays "$DAYS_CRL" -out root-ca.crl.pem
cat intermediate-ca.crl.pem root-ca.crl.pem >crl.pem
ossl crl -in intermediate-ca.crl.pem -outform DER -out crl.der

# --------------------------------------------------------------------------
# 7. Check what we built, then move it into place.
# --------------------------------------------------------------------------
ossl verify -CAfile client-ca.pem server.crt server-rsa.crt orders.crt billing.crt mallory.crt noeku.crt
ossl verify -CAfile client-ca.pem -CRLfile crl.pem -crl_check_all orders.crt
if openssl verify -CAfile client-ca.pem -CRLfile crl.pem -crl_check_all revoked.crt >/dev/null 2>&1; then
	echo "make-demo-pki: revoked.crt is not revoked by crl.pem" >&2
	exit 1
fi

rm -f ./*.csr .openssl.log
date +%s >.complete
# Certificates and CRLs are public; keys, bundles holding a key, passphrases
# and PKCS#12 files are for the owner only.
chmod 0644 ./*.crt ./*.pem crl.der openssl.cnf .complete 2>/dev/null || true
chmod 0600 ./*.key ./*.pass ./*.p12
for f in ./*.pem; do
	if grep -q 'PRIVATE KEY' "$f"; then chmod 0600 "$f"; fi
done
chmod 0755 .
# Another run may have finished while we worked: keep its result.
if fresh; then
	exit 0
fi
if [ -e "$OUT" ]; then
	old=$(mktemp -d "$parent/.$(basename -- "$OUT").old.XXXXXX")
	mv -T -- "$OUT" "$old/x" 2>/dev/null || true
	rm -rf -- "$old"
fi
if mv -T -- "$WORK" "$OUT" 2>/dev/null; then
	WORK=
elif [ -f "$OUT/.complete" ]; then
	: # another run finished first; use its result
else
	echo "make-demo-pki: could not move $WORK to $OUT" >&2
	exit 1
fi
echo "make-demo-pki: demo PKI written to $OUT" >&2
