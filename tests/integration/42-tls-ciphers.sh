#!/usr/bin/env bash
# Cipher suites. By default the proxy picks AES-128-GCM for a client that
# offers the usual OpenSSL list (which puts AES-256 first), ChaCha20 for a
# client that puts it first, and in TLS 1.2 only AEAD suites with forward
# secrecy: a client offering only CBC suites is refused and the log says
# there is no shared cipher. tls.ciphersuites and tls.ciphers override the
# defaults.
. "$(dirname -- "$0")/lib.sh"

ECHO_PORT=$(free_port)
PORT=$(free_port)
PORT2=$(free_port)
start_echo "$ECHO_PORT"
{
	config_head
	config_listener plain "$PORT" "\"127.0.0.1:$ECHO_PORT\""
	config_listener strict "$PORT2" "\"127.0.0.1:$ECHO_PORT\"" "" "      cert: $PKI/server-fullchain.crt
      key: $PKI/server.key
      ciphersuites: TLS_AES_256_GCM_SHA384
      ciphers: ECDHE-ECDSA-AES256-GCM-SHA384"
} >"$TMPDIR/ciphers.yaml"
start_proxy "$TMPDIR/ciphers.yaml" "$PORT"
wait_port "$PORT2" "$PROXY_PID" 5 || fail "listener strict not up"

# cipher_is WHAT PORT WANT [s_client options]: the handshake (with the
# client certificate) agrees on WANT and the echo comes back.
cipher_is() {
	local what=$1 port=$2 want=$3 got
	shift 3
	timeout -k 2 10 openssl s_client -connect "127.0.0.1:$port" -servername localhost \
	    -CAfile "$PKI/root-ca.crt" -verify_return_error -cert "$PKI/orders.crt" \
	    -key "$PKI/orders.key" "$@" </dev/null >"$TMPDIR/c.out" 2>&1
	got=$(sed -n 's/^.*Cipher is \([A-Z0-9_-]*\).*$/\1/p' "$TMPDIR/c.out" | head -n 1)
	[ "$got" = "$want" ] || fail "$what: cipher [$got], want [$want]: $(grep -i -E 'error|cipher' "$TMPDIR/c.out" | head -n 3)"
	s_client_send "$port" "$what\n" "$what" -cert "$PKI/orders.crt" -key "$PKI/orders.key" "$@"
	grep -q -F -- "$what" "$SCLIENT_OUT" || fail "$what: no echo (rc $SCLIENT_RC): $(head -n 3 "$SCLIENT_ERR")"
}

cipher_is "TLS 1.3, OpenSSL's default client list" "$PORT" TLS_AES_128_GCM_SHA256 -tls1_3
cipher_is "TLS 1.3, ChaCha20 first" "$PORT" TLS_CHACHA20_POLY1305_SHA256 -tls1_3 \
    -ciphersuites TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256
cipher_is "TLS 1.3, AES-256 only" "$PORT" TLS_AES_256_GCM_SHA384 -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384
cipher_is "TLS 1.2, OpenSSL's default client list" "$PORT" ECDHE-ECDSA-AES128-GCM-SHA256 -tls1_2
pass "default suites: AES-128-GCM preferred, ChaCha20 for clients that want it, AES-256 when asked"

log_mark
s_client_send "$PORT" "cbc\n" "cbc" -cert "$PKI/orders.crt" -key "$PKI/orders.key" \
    -tls1_2 -cipher 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384'
grep -q -F cbc "$SCLIENT_OUT" && fail "a CBC-only TLS 1.2 client got an echo"
[ "$SCLIENT_RC" -ne 0 ] || fail "CBC-only TLS 1.2 client: s_client exited 0"
assert_log_contains ' refused ' 'listener=plain ' 'code=tls_error' 'reason="[^"]*no shared cipher'
pass "TLS 1.2 with CBC suites only: refused, logged as no shared cipher"

cipher_is "configured TLS 1.3 suite" "$PORT2" TLS_AES_256_GCM_SHA384 -tls1_3
cipher_is "configured TLS 1.2 cipher" "$PORT2" ECDHE-ECDSA-AES256-GCM-SHA384 -tls1_2
pass "tls.ciphersuites and tls.ciphers override the defaults"

stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
