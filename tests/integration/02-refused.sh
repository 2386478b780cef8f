#!/usr/bin/env bash
# Every way a client is refused: the client fails (no bytes reach it from
# the backend) and one log line says why, with the right code=.
# Clients: curl, openssl s_client and the Node.js client, each used several
# times. The backend is a plain HTTP server, so a leak would show its body.
. "$(dirname -- "$0")/lib.sh"

HTTP_PORT=$(free_port)
PORT=$(free_port)
start_http "$HTTP_PORT"
REQ='GET / HTTP/1.0\r\nHost: localhost\r\n\r\n'

write_config() {	# write_config FILE [client_eku]
	{
		config_head
		config_listener api "$PORT" "\"127.0.0.1:$HTTP_PORT\"" "      crl: $PKI/crl.pem
      client_eku: ${2:-if_present}
      allow:
        subject_cn: [orders, billing]"
	} >"$1"
}
write_config "$TMPDIR/refused.yaml"
start_proxy "$TMPDIR/refused.yaml"

# --- control: the same setup lets orders in (so the refusals below mean
# something)
log_mark
s_client_send "$PORT" "$REQ" "$HTTP_BODY" -cert "$PKI/orders.crt" -key "$PKI/orders.key"
grep -q -F -- "$HTTP_BODY" "$SCLIENT_OUT" || fail "control: orders did not get the backend's answer"
assert_log_contains ' access ' 'subject="CN=orders'

# refused_s_client NAME [ALERT [s_client options]]: s_client with NAME's
# cert (none if NAME is -) must not get the backend's answer, and must be
# told by a TLS alert (matching ALERT, default any alert).
refused_s_client() {
	local who=$1 alert=${2:-alert}
	shift
	[ $# -gt 0 ] && shift
	if [ "$who" = - ]; then
		s_client_send "$PORT" "$REQ" "$HTTP_BODY" "$@"
	else
		s_client_send "$PORT" "$REQ" "$HTTP_BODY" -cert "$PKI/$who.crt" -key "$PKI/$who.key" "$@"
	fi
	if grep -q -F -- "$HTTP_BODY" "$SCLIENT_OUT"; then
		fail "s_client as $who got the backend's answer; it must be refused"
	fi
	[ "$SCLIENT_RC" -ne 0 ] || fail "s_client as $who exited 0; the handshake should have failed"
	grep -q -E -- "$alert" "$SCLIENT_ERR" ||
	    fail "s_client as $who: expected a TLS alert matching [$alert], got: $(grep -v '^depth=\|^verify' "$SCLIENT_ERR" | head -n 3)"
}

# refused_curl NAME
refused_curl() {
	if [ "$1" = - ]; then
		curl_get "$PORT"
	else
		curl_get "$PORT" --cert "$PKI/$1.crt" --key "$PKI/$1.key"
	fi
	[ "$CURL_RC" -ne 0 ] || fail "curl as $1 succeeded; it must be refused"
	if grep -q -F -- "$HTTP_BODY" "$CURL_OUT"; then
		fail "curl as $1 got the backend's answer"
	fi
	[ "$CURL_RC" -ne 28 ] || fail "curl as $1 timed out instead of being refused promptly"
}

# refused_node NAME
refused_node() {
	if [ "$1" = - ]; then
		node_client "$PORT" --send "$REQ" --timeout 10000
	else
		node_client "$PORT" --cert "$PKI/$1.crt" --key "$PKI/$1.key" --send "$REQ" --timeout 10000
	fi
	[ "$NODE_RC" -ne 0 ] || fail "node client as $1 succeeded; it must be refused"
	grep -q '^ERROR ' "$NODE_OUT" || fail "node client as $1: no ERROR line: $(head -c 200 "$NODE_OUT")"
	grep -q '^ERROR TIMEOUT' "$NODE_OUT" && fail "node client as $1 timed out instead of being refused"
	if grep -q -F -- "$HTTP_BODY" "$NODE_OUT"; then
		fail "node client as $1 got the backend's answer"
	fi
}

# --- no client certificate
log_mark
refused_s_client - 'alert certificate required'
assert_log_contains 'refused' 'listener=api' 'peer=127\.0\.0\.1:' 'code=no_cert'
log_mark
refused_curl -
assert_log_contains 'refused' 'code=no_cert'
log_mark
refused_node -
assert_log_contains 'refused' 'code=no_cert'
pass "no client certificate"

# --- unknown CA (stranger's CN is "orders": the name alone must not help)
log_mark
refused_node stranger
assert_log_contains 'refused' 'code=unknown_ca' 'reason="[^"]*(unknown|issuer)'
assert_log_lacks ' access .*Stranger Inc'
log_mark
refused_s_client stranger 'alert unknown ca'
assert_log_contains 'refused' 'code=unknown_ca'
pass "unknown CA"

# --- expired (valid 2023-01-01 .. 2024-01-01)
log_mark
refused_curl expired
assert_log_contains 'refused' 'code=expired' 'reason="[^"]*expired' \
    'reason="[^"]*(2024-01-01|Jan +1 00:00:00 2024)' 'subject="CN=expired,O=Demo Corp"' \
    'issuer="CN=Demo Intermediate CA,O=Demo Corp"'
log_mark
refused_node expired
assert_log_contains 'refused' 'code=expired'
log_mark
refused_s_client expired 'alert certificate expired' -tls1_2
assert_log_contains 'refused' 'code=expired'
pass "expired"

# --- revoked in crl.pem
log_mark
refused_s_client revoked 'alert certificate revoked'
assert_log_contains 'refused' 'code=revoked' 'reason="[^"]*revoked' 'subject="CN=revoked,O=Demo Corp"'
log_mark
refused_curl revoked
assert_log_contains 'refused' 'code=revoked'
pass "revoked"

# --- serverAuth-only EKU: wrong purpose, whatever its CN (billing is allowed)
log_mark
refused_node server-eku
assert_log_contains 'refused' 'code=wrong_purpose' 'subject="CN=billing,O=Demo Corp"'
log_mark
refused_s_client server-eku
assert_log_contains 'refused' 'code=wrong_purpose'
pass "serverAuth-only EKU"

# --- valid chain, CN not in the allow list
log_mark
refused_curl mallory
assert_log_contains 'refused' 'code=policy' 'reason=.*\\?"mallory\\?"' 'subject="CN=mallory,O=Demo Corp"'
assert_log_lacks ' access .*CN=mallory'
log_mark
refused_s_client mallory
assert_log_contains 'refused' 'code=policy' 'mallory'
log_mark
refused_s_client mallory alert -tls1_2
assert_log_contains 'refused' 'code=policy' 'mallory'
log_mark
refused_node mallory
assert_log_contains 'refused' 'code=policy' 'mallory'
pass "policy (mallory)"

# --- no EKU at all (v1 cert, CN=billing): accepted with if_present ...
log_mark
s_client_send "$PORT" "$REQ" "$HTTP_BODY" -cert "$PKI/noeku.crt" -key "$PKI/noeku.key"
grep -q -F -- "$HTTP_BODY" "$SCLIENT_OUT" ||
    fail "noeku with client_eku: if_present was not let in (rc $SCLIENT_RC): $(tail -n 2 "$SCLIENT_ERR"; new_log_lines | tail -n 2)"
assert_log_contains ' access ' 'subject="CN=billing,O=Demo Corp"'
node_client "$PORT" --cert "$PKI/noeku.crt" --key "$PKI/noeku.key" --send "$REQ"
[ "$NODE_RC" -eq 0 ] && grep -q -F -- "$HTTP_BODY" "$NODE_OUT" ||
    fail "node as noeku with if_present: $(head -c 200 "$NODE_OUT")"
pass "no EKU, if_present: accepted"
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"

# ... and refused with client_eku: required
write_config "$TMPDIR/required.yaml" required
start_proxy "$TMPDIR/required.yaml"
log_mark
refused_curl noeku
assert_log_contains 'refused' 'code=wrong_purpose' 'subject="CN=billing,O=Demo Corp"'
log_mark
refused_s_client noeku
assert_log_contains 'refused' 'code=wrong_purpose'
# billing (EKU clientAuth) still gets in under required
log_mark
curl_get "$PORT" --cert "$PKI/billing.crt" --key "$PKI/billing.key"
[ "$CURL_RC" -eq 0 ] && grep -q -F -- "$HTTP_BODY" "$CURL_OUT" ||
    fail "billing (clientAuth EKU) refused under client_eku: required: $(cat "$CURL_ERR")"
pass "no EKU, required: refused"
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
