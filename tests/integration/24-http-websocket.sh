#!/usr/bin/env bash
# http mode, WebSocket: the Upgrade request carries the identity headers
# (forged ones removed), the backend's 101 reaches the client, then frames
# flow both ways as a byte stream (a greeting from the backend, a text and a
# 100 KB binary echo, a close handshake).
. "$(dirname -- "$0")/lib.sh"
. "$(dirname -- "$0")/http-lib.sh"

BPORT=$(free_port)
PORT=$(free_port)
start_http_backend "$BPORT"
{
	config_head
	config_http_listener web "$PORT" "\"127.0.0.1:$BPORT\""
} >"$TMPDIR/ws.yaml"
start_proxy "$TMPDIR/ws.yaml" "$PORT"
SHA=$(cert_sha256 "$PKI/orders.crt")

log_mark
hclient ws "$PORT" --path /ws --header 'X-Client-Subject: CN=admin' --header 'x-client-verify: FORGED'
R=$HCL_OUT
[ "$HCL_RC" -eq 0 ] || fail "websocket: $(jq_py "$R" 'j["error"]' 2>/dev/null || cat "$HCL_ERR") (status $(jq_py "$R" 'j["status"]' 2>/dev/null))"
assert_eq "$(jq_py "$R" 'j["status"]')" 101 "websocket: status of the Upgrade answer"
assert_eq "$(jq_py "$R" 'j["greeting"]')" "hello subject=$ORDERS_SUBJECT" "websocket: greeting frame from the backend (names the X-Client-Subject it got)"
assert_eq "$(jq_py "$R" 'j["binaryEcho"]["same"]') $(jq_py "$R" 'j["binaryEcho"]["len"]')" "True 100000" "websocket: binary echo"
assert_eq "$(jq_py "$R" 'j["closed"]')" True "websocket: close handshake"
grep -q "^upgrade /ws subject=$ORDERS_SUBJECT\$" "$HB_LOG" || fail "backend log: the Upgrade request did not carry exactly the real subject: $(grep '^upgrade' "$HB_LOG" | tail -n 1)"
pass "websocket: upgrade with identity, frames both ways, close"

assert_log_contains ' request ' 'listener=web' 'method=GET' 'path="?/ws' 'status=101' "sha256=$SHA"
# The request line counts the 101 response's own bytes (its head).
assert_log_contains ' request ' 'listener=web' 'status=101 .*bytes_out=[1-9]'
assert_log_contains ' access ' 'listener=web' "sha256=$SHA"
pass "websocket: request line with status 101, access line at close"

# A larger exchange: 1 MiB binary frame each way.
hclient ws "$PORT" --path /ws --binary-size 1048576
[ "$HCL_RC" -eq 0 ] || fail "websocket 1 MiB: $(jq_py "$HCL_OUT" 'j["error"]' 2>/dev/null || cat "$HCL_ERR")"
assert_eq "$(jq_py "$HCL_OUT" 'j["binaryEcho"]["len"]')" 1048576 "websocket: 1 MiB binary echo length"
pass "websocket: 1 MiB frame echoed"

# A refused upgrade (backend answers 400) leaves a normal HTTP answer.
R2='GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'
hclient raw "$PORT" --send "$R2" --responses 1 --wait-close 2000
assert_eq "$(jq_py "$HCL_OUT" 'j["responses"][0]["status"] if j["responses"] else None')" 400 "upgrade without Sec-WebSocket-Key: the backend's answer"
pass "websocket: a refused upgrade is an ordinary answer"

stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
