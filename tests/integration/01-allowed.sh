#!/usr/bin/env bash
# The allowed client (orders) reaches the backend with openssl s_client, the
# Node.js TLS client and curl; the access line names it.
. "$(dirname -- "$0")/lib.sh"

ECHO_PORT=$(free_port)
HTTP_PORT=$(free_port)
PORT=$(free_port)
PORT2=$(free_port)
PORT3=$(free_port)
start_echo "$ECHO_PORT"
start_http "$HTTP_PORT"

ALLOW="      crl: $PKI/crl.pem
      allow:
        subject_cn: [orders, billing]"
{
	config_head
	config_listener echo "$PORT" "\"127.0.0.1:$ECHO_PORT\"" "$ALLOW"
	config_listener web "$PORT2" "\"127.0.0.1:$HTTP_PORT\"" "$ALLOW"
	config_listener partner "$PORT3" "\"127.0.0.1:$ECHO_PORT\"" "      trusted_certs: [$PKI/partner.crt]"
} >"$TMPDIR/allowed.yaml"
start_proxy "$TMPDIR/allowed.yaml" "$PORT"
wait_port "$PORT2" "$PROXY_PID" 5 || fail "second listener 127.0.0.1:$PORT2 does not accept"
wait_port "$PORT3" "$PROXY_PID" 5 || fail "third listener 127.0.0.1:$PORT3 does not accept"

# openssl s_client: a line goes through and comes back.
log_mark
MSG="hello through mtlsproxy $$"
s_client_send "$PORT" "$MSG\n" "$MSG" -cert "$PKI/orders.crt" -key "$PKI/orders.key"
grep -q -F -- "$MSG" "$SCLIENT_OUT" ||
    fail "s_client: the echo did not come back (rc $SCLIENT_RC): $(tail -n 3 "$SCLIENT_ERR")"
[ "$SCLIENT_RC" -eq 0 ] || fail "s_client exited $SCLIENT_RC after a successful echo"
assert_log_contains ' access ' 'listener=echo' 'subject="CN=orders,OU=payments,O=Demo Corp"' \
    'issuer="CN=Demo Intermediate CA,O=Demo Corp"' 'bytes_in=[1-9]' 'bytes_out=[1-9]'
assert_log_lacks 'refused.*CN=orders'
SHA=$(openssl x509 -in "$PKI/orders.crt" -outform DER | sha256sum | cut -d' ' -f1)
assert_log_contains ' access ' "sha256=$SHA"
pass "s_client echo"

# The client sends the full chain instead of the leaf alone.
s_client_send "$PORT" "chain $MSG\n" "chain $MSG" -cert "$PKI/orders-fullchain.crt" -key "$PKI/orders.key"
grep -q -F -- "chain $MSG" "$SCLIENT_OUT" || fail "s_client with orders-fullchain.crt: no echo"
pass "s_client with the full chain"

# Node.js client: bytes echoed, compared by length and SHA-256.
node_client "$PORT" --cert "$PKI/orders.crt" --key "$PKI/orders.key" --send "node says hi\n" --echo
[ "$NODE_RC" -eq 0 ] || fail "node client failed: $(cat "$NODE_OUT")"
grep -q -x 'node says hi' "$NODE_OUT" || fail "node client: unexpected bytes: $(head -c 200 "$NODE_OUT")"
# and with a PKCS#12 bundle, as browsers import it
node_client "$PORT" --pfx "$PKI/orders.p12" --passphrase-file "$PKI/orders-p12.pass" --send "p12\n" --echo
[ "$NODE_RC" -eq 0 ] || fail "node client with orders.p12 failed: $(cat "$NODE_OUT")"
grep -q -x 'p12' "$NODE_OUT" || fail "node client (p12): unexpected bytes"
pass "node echo"

# curl through the proxy to a plain HTTP backend: the body arrives.
log_mark
curl_get "$PORT2" --cert "$PKI/orders.crt" --key "$PKI/orders.key"
[ "$CURL_RC" -eq 0 ] || fail "curl failed ($CURL_RC): $(cat "$CURL_ERR")"
grep -q -F -- "$HTTP_BODY" "$CURL_OUT" || fail "curl: unexpected body: $(head -c 200 "$CURL_OUT")"
curl_get "$PORT2" --cert "$PKI/billing.pem"
[ "$CURL_RC" -eq 0 ] || fail "curl --cert billing.pem failed ($CURL_RC): $(cat "$CURL_ERR")"
grep -q -F -- "$HTTP_BODY" "$CURL_OUT" || fail "curl (billing): unexpected body"
assert_log_contains ' access ' 'listener=web' 'subject="CN=orders,OU=payments,O=Demo Corp"'
assert_log_contains ' access ' 'listener=web' 'subject="CN=billing,O=Demo Corp"'
pass "curl GET"

# A self-signed client listed in trusted_certs gets in there (and only
# there); orders still gets in alongside it.
log_mark
node_client "$PORT3" --cert "$PKI/partner.crt" --key "$PKI/partner.key" --send "partner\n" --echo
[ "$NODE_RC" -eq 0 ] || fail "partner (trusted_certs) was not let in: $(cat "$NODE_OUT"); $(new_log_lines | grep refused | tail -n 1)"
grep -q -x 'partner' "$NODE_OUT" || fail "partner: wrong bytes back"
assert_log_contains ' access ' 'listener=partner' 'subject="CN=partner,O=Partner Ltd"'
node_client "$PORT3" --cert "$PKI/orders.crt" --key "$PKI/orders.key" --send "orders too\n" --echo
[ "$NODE_RC" -eq 0 ] || fail "orders refused on the trusted_certs listener: $(cat "$NODE_OUT")"
log_mark
node_client "$PORT" --cert "$PKI/partner.crt" --key "$PKI/partner.key" --send "partner\n" --echo
[ "$NODE_RC" -ne 0 ] || fail "partner got in on a listener without trusted_certs"
assert_log_contains 'refused' 'listener=echo' 'code=unknown_ca' 'CN=partner'
pass "trusted_certs: self-signed partner"

stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
