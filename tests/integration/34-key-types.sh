#!/usr/bin/env bash
# Client and server key types and TLS variants, with certificates made the
# way the how-to guides make them: an RSA client (v1 certificate from
# `openssl x509 -req`), a P-384 client, a self-signed RSA client trusted on
# its own; every key-share group OpenSSL offers; TLS 1.2 with ECDSA and RSA
# servers. A client certificate whose signature was altered is refused.
. "$(dirname -- "$0")/lib.sh"

ECHO_PORT=$(free_port)
PORT=$(free_port)
PORT_RSA=$(free_port)
PORT_SELF=$(free_port)
start_echo "$ECHO_PORT"

cd "$TMPDIR" || exit 1
CA="-CA $PKI/intermediate-ca.crt -CAkey $PKI/intermediate-ca.key -CAcreateserial -CAserial $TMPDIR/ca.srl -days 2"
# RSA client, v1 certificate (no extensions), as `openssl x509 -req` makes it.
openssl genrsa -out rsa.key 2048 2>/dev/null
openssl req -new -key rsa.key -subj "/O=Demo Corp/CN=rsa-client" -out rsa.csr
openssl x509 -req -in rsa.csr $CA -sha256 -out rsa.crt 2>/dev/null || fail "cannot sign rsa.crt"
# P-384 client.
openssl ecparam -genkey -name secp384r1 -noout -out p384.key
openssl req -new -key p384.key -subj "/O=Demo Corp/CN=p384-client" -out p384.csr
openssl x509 -req -in p384.csr $CA -sha384 -out p384.crt 2>/dev/null || fail "cannot sign p384.crt"
# Self-signed RSA client, trusted as an exact leaf.
openssl req -x509 -newkey rsa:3072 -nodes -keyout self.key -subj "/CN=partner-rsa" \
    -days 2 -out self.crt 2>/dev/null || fail "cannot make self.crt"
# The RSA client's certificate with one bit of its signature flipped.
openssl x509 -in rsa.crt -outform DER -out rsa.der
python3 - rsa.der bad.der <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[-10] ^= 0x01  # inside the signature value, the last field
open(sys.argv[2], 'wb').write(b)
PY
openssl x509 -inform DER -in bad.der -out bad.crt || fail "cannot re-encode bad.crt"

{
	config_head
	config_listener ec "$PORT" "\"127.0.0.1:$ECHO_PORT\""
	config_listener rsa "$PORT_RSA" "\"127.0.0.1:$ECHO_PORT\"" "" "      cert: $PKI/server-rsa-fullchain.crt
      key: $PKI/server-rsa.key"
	config_listener self "$PORT_SELF" "\"127.0.0.1:$ECHO_PORT\"" "      trusted_certs: [$TMPDIR/self.crt]"
} >"$TMPDIR/keys.yaml"
start_proxy "$TMPDIR/keys.yaml" "$PORT"
wait_port "$PORT_RSA" "$PROXY_PID" 5 || fail "listener rsa does not accept"
wait_port "$PORT_SELF" "$PROXY_PID" 5 || fail "listener self does not accept"

# echo_ok WHAT PORT s_client-options...: a line goes through and back.
echo_ok() {
	local what=$1 port=$2 msg="hello $$ $RANDOM"
	shift 2
	s_client_send "$port" "$msg\n" "$msg" "$@"
	grep -q -F -- "$msg" "$SCLIENT_OUT" ||
	    fail "$what: no echo (rc $SCLIENT_RC): $(grep -i -E 'error|alert' "$SCLIENT_ERR" | head -n 3)"
}

echo_ok "RSA client (v1 cert), TLS 1.3" "$PORT" -cert rsa.crt -key rsa.key
echo_ok "RSA client, TLS 1.2 ECDHE-ECDSA" "$PORT" -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256 -cert rsa.crt -key rsa.key
echo_ok "RSA client, TLS 1.2, PKCS#1 signature" "$PORT" -tls1_2 -sigalgs RSA+SHA256:ECDSA+SHA256 -cert rsa.crt -key rsa.key
echo_ok "P-384 client, TLS 1.3" "$PORT" -cert p384.crt -key p384.key
echo_ok "P-384 client, TLS 1.2" "$PORT" -tls1_2 -cert p384.crt -key p384.key
assert_log_contains ' access ' 'subject="CN=rsa-client,O=Demo Corp"'
assert_log_contains ' access ' 'subject="CN=p384-client,O=Demo Corp"'
pass "RSA (v1 certificate) and P-384 clients, TLS 1.3 and 1.2"

for g in X25519 P-256 P-384 P-521 X448 ffdhe2048; do
	echo_ok "key share $g" "$PORT" -groups "$g" -cert "$PKI/orders.crt" -key "$PKI/orders.key"
done
pass "key shares X25519, P-256, P-384, P-521, X448, ffdhe2048"

echo_ok "RSA server, RSA client, TLS 1.3" "$PORT_RSA" -cert rsa.crt -key rsa.key
echo_ok "RSA server, RSA client, TLS 1.2 ECDHE-RSA" "$PORT_RSA" -tls1_2 -cipher ECDHE-RSA-AES256-GCM-SHA384 -cert rsa.crt -key rsa.key
echo_ok "RSA server, EC client, TLS 1.2" "$PORT_RSA" -tls1_2 -cert "$PKI/orders.crt" -key "$PKI/orders.key"
pass "RSA server with RSA and EC clients, TLS 1.3 and 1.2"

echo_ok "self-signed RSA client in trusted_certs" "$PORT_SELF" -cert self.crt -key self.key
pass "self-signed RSA client trusted as an exact leaf"

# Altered signature: refused, and said why.
log_mark
s_client_send "$PORT" "hello\n" "" -cert bad.crt -key rsa.key
grep -q -F "hello" "$SCLIENT_OUT" && fail "a certificate with an altered signature got through"
assert_log_contains ' refused ' 'code=bad_signature' 'reason="bad signature on certificate"' 'subject="CN=rsa-client,O=Demo Corp"'
pass "client certificate with an altered signature refused"

stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
