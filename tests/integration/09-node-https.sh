#!/usr/bin/env bash
# Node's https module, as a service client uses it, in front of a plain HTTP
# backend: the allowed client gets the page; a denied client, a client
# without a certificate and a client that does not trust the server fail.
. "$(dirname -- "$0")/lib.sh"

HTTP_PORT=$(free_port)
PORT=$(free_port)
start_http "$HTTP_PORT"
{
	config_head
	config_listener web "$PORT" "\"127.0.0.1:$HTTP_PORT\"" "      allow:
        subject_cn: [orders]"
} >"$TMPDIR/https.yaml"
start_proxy "$TMPDIR/https.yaml" "$PORT"

get() {
	OUT=$(timeout 20 node "$ITEST_DIR/https-get.js" "$PORT" "$@" 2>&1)
	RC=$?
}

log_mark
get "$PKI/root-ca.crt" "$PKI/orders.crt" "$PKI/orders.key"
[ "$RC" -eq 0 ] || fail "allowed client failed: $OUT"
grep -q -x 'status 200' <<<"$OUT" || fail "allowed client: no 200: $OUT"
grep -q -F -- "$HTTP_BODY" <<<"$OUT" || fail "allowed client: wrong body: $OUT"
assert_log_contains ' access ' 'listener=web' 'subject="CN=orders,OU=payments,O=Demo Corp"'
pass "https.get with orders gets the page"

log_mark
get "$PKI/root-ca.crt" "$PKI/billing.crt" "$PKI/billing.key"
[ "$RC" -ne 0 ] || fail "denied client (billing) got through: $OUT"
grep -q '^ERROR' <<<"$OUT" || fail "denied client: no error: $OUT"
assert_log_contains ' refused ' 'code=policy' 'subject CN \\"billing\\"'
pass "https.get with billing is refused by policy"

log_mark
get "$PKI/root-ca.crt"
[ "$RC" -ne 0 ] || fail "client without a certificate got through: $OUT"
grep -q -i 'certificate required\|ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' <<<"$OUT" ||
    fail "no-cert client: expected a certificate_required alert, got: $OUT"
assert_log_contains ' refused ' 'code=no_cert'
pass "https.get without a certificate gets certificate_required"

log_mark
get "$PKI/unknown-ca.crt" "$PKI/orders.crt" "$PKI/orders.key"
[ "$RC" -ne 0 ] || fail "client that does not trust the server got through: $OUT"
assert_log_contains ' refused ' 'code=tls_error' 'trust the server certificate'
pass "a client that does not trust the server certificate is logged as such"
