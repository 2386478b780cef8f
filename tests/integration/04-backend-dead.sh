#!/usr/bin/env bash
# A backend that is down: the client's connection is closed promptly (no
# hang) and the log says the backend connect failed, with the address.
# With an address list [dead, live], connections fail over to the live one.
# A backend that takes no connections (its accept queue full: the kernel
# drops the SYNs) is given up after backend.connect_timeout, said as such,
# in tcp mode (the client is closed; [silent, live] fails over) and in
# http mode (502 Bad Gateway). A connect that completed is never called a
# timeout because the event loop came to it late: with connect_timeout 1ms
# in front of a live loopback backend, 100 requests from 16 clients at once
# all get 200.
. "$(dirname -- "$0")/lib.sh"
. "$ITEST_DIR/http-lib.sh"

DEAD=$(free_port)	# nothing listens here
ECHO_PORT=$(free_port)
PORT=$(free_port)
PORT2=$(free_port)
start_echo "$ECHO_PORT"
port_accepts "$DEAD" && fail "port $DEAD was supposed to be free"

{
	config_head
	config_listener dead "$PORT" "\"127.0.0.1:$DEAD\""
	config_listener failover "$PORT2" "[\"127.0.0.1:$DEAD\", \"127.0.0.1:$ECHO_PORT\"]"
} >"$TMPDIR/dead.yaml"
start_proxy "$TMPDIR/dead.yaml" "$PORT"
wait_port "$PORT2" "$PROXY_PID" 5 || fail "listener on 127.0.0.1:$PORT2 does not accept"

# s_client: the connection must end (EOF), not hang; bounded by timeout 10.
log_mark
t0=$(now_ms)
s_client_send "$PORT" "anyone there?\n" "anyone there?" -cert "$PKI/orders.crt" -key "$PKI/orders.key"
ms=$(($(now_ms) - t0))
[ "$SCLIENT_RC" -ne 124 ] && [ "$SCLIENT_RC" -ne 137 ] ||
    fail "s_client hung: still connected after 10 s with the backend down"
[ "$ms" -lt 5000 ] || fail "closing the client took ${ms} ms with the backend down (connect_timeout is 2 s)"
grep -q -F 'anyone there?' "$SCLIENT_OUT" && fail "bytes came back with no backend: $(head -c 100 "$SCLIENT_OUT")"
assert_log_contains 'backend connect failed' "127\.0\.0\.1:$DEAD"
pass "s_client sees EOF after ${ms} ms"

# Node client: an error, promptly.
log_mark
node_client "$PORT" --cert "$PKI/orders.crt" --key "$PKI/orders.key" --send "ping\n" --echo --timeout 8000
[ "$NODE_RC" -ne 0 ] || fail "node client succeeded with the backend down"
grep -q '^ERROR TIMEOUT' "$NODE_OUT" && fail "node client hung with the backend down"
grep -q -E '^ERROR (EOF|ECONNRESET|CLOSED|EPIPE)' "$NODE_OUT" ||
    fail "node client: unexpected outcome: $(cat "$NODE_OUT")"
assert_log_contains 'backend connect failed' "127\.0\.0\.1:$DEAD"
pass "node client: $(cat "$NODE_OUT")"

# The proxy itself is fine afterwards: the failover listener serves, every
# time, via the live address.
for i in 1 2 3 4; do
	node_client "$PORT2" --cert "$PKI/orders.crt" --key "$PKI/orders.key" --send "failover $i\n" --echo
	[ "$NODE_RC" -eq 0 ] || fail "failover connection $i failed: $(cat "$NODE_OUT"); log: $(new_log_lines | tail -n 3)"
	grep -q -x "failover $i" "$NODE_OUT" || fail "failover connection $i: wrong bytes"
done
s_client_send "$PORT2" "failover s_client\n" "failover s_client" -cert "$PKI/orders.crt" -key "$PKI/orders.key"
grep -q -F 'failover s_client' "$SCLIENT_OUT" || fail "failover via s_client: no echo"
assert_log_contains ' access ' 'listener=failover' "backend=127\.0\.0\.1:$ECHO_PORT"
pass "failover [dead, live]"

kill -0 "$PROXY_PID" 2>/dev/null || fail "mtlsproxy died"
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"

# A listener that never accepts, its accept queue filled: a connect to it
# gets no answer.
SILENT=$(free_port)
start_silent "$SILENT"
HTTP_BP=$(free_port)
start_http_backend "$HTTP_BP"
PS=$(free_port)
PS2=$(free_port)
PH=$(free_port)
{
	config_head
	config_listener silent "$PS" "\"127.0.0.1:$SILENT\""
	config_listener failover2 "$PS2" "[\"127.0.0.1:$SILENT\", \"127.0.0.1:$ECHO_PORT\"]"
	config_http_listener web "$PH" "\"127.0.0.1:$SILENT\""
} | sed "s/connect_timeout: 2s/connect_timeout: 300ms/" >"$TMPDIR/silent.yaml"
start_proxy "$TMPDIR/silent.yaml" "$PS"
log_mark
t0=$(now_ms)
s_client_send "$PS" "anyone there?\n" "anyone there?" -cert "$PKI/orders.crt" -key "$PKI/orders.key"
ms=$(($(now_ms) - t0))
[ "$SCLIENT_RC" -ne 124 ] && [ "$SCLIENT_RC" -ne 137 ] || fail "s_client hung with a backend that does not answer"
[ "$ms" -lt 4000 ] || fail "closing the client took ${ms} ms (connect_timeout is 300 ms)"
assert_log_contains "warn listener \"silent\": backend connect failed: 127\.0\.0\.1:$SILENT: no answer within 300 ms \(backend\.connect_timeout\)"
assert_log_contains ' access ' 'listener=silent' 'close=backend_unavailable'
pass "a backend that does not answer: the client is closed after ${ms} ms, the log says no answer within 300 ms"

log_mark
node_client "$PS2" --cert "$PKI/orders.crt" --key "$PKI/orders.key" --send "failover past silence\n" --echo
[ "$NODE_RC" -eq 0 ] || fail "failover past a silent backend: $(cat "$NODE_OUT")"
assert_log_contains "warn listener \"failover2\": backend connect failed: 127\.0\.0\.1:$SILENT: no answer within 300 ms"
assert_log_contains ' access ' 'listener=failover2' "backend=127\.0\.0\.1:$ECHO_PORT"
pass "[silent, live]: served by the live address after 300 ms"

log_mark
wait_port "$PH" "$PROXY_PID" 5 || fail "listener on 127.0.0.1:$PH does not accept"
hcurl "$PH" /headers
[ "$HC_CODE" = 502 ] || fail "http mode, a backend that does not answer: $HC_CODE, want 502 $(cat "$HC_ERR")"
assert_log_contains "warn listener \"web\": backend connect failed: 127\.0\.0\.1:$SILENT: no answer within 300 ms"
assert_log_contains ' request ' 'listener=web' 'status=502'
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
pass "http mode, a backend that does not answer: 502 Bad Gateway, the reason logged"

# connect_timeout 1ms, a live backend: loopback connects complete at once,
# though a busy loop may only see them after the timer has run out
PL=$(free_port)
{
	config_head
	config_http_listener late "$PL" "\"127.0.0.1:$HTTP_BP\""
} | sed "s/connect_timeout: 2s/connect_timeout: 1ms/" >"$TMPDIR/late.yaml"
start_proxy "$TMPDIR/late.yaml" "$PL"
log_mark
seq 100 | xargs -P 16 -I{} curl -s -o /dev/null -w '%{http_code}\n' --max-time 20 \
    --resolve "localhost:$PL:127.0.0.1" --cacert "$PKI/root-ca.crt" \
    --cert "$PKI/orders.crt" --key "$PKI/orders.key" "https://localhost:$PL/headers" \
    >"$TMPDIR/late.codes"
n200=$(grep -c '^200$' "$TMPDIR/late.codes")
[ "$n200" = 100 ] || fail "connect_timeout 1ms, live backend: $n200 of 100 got 200 ($(sort "$TMPDIR/late.codes" | uniq -c | tr '\n' ' ')); $(new_log_lines | grep -m1 'backend connect failed')"
assert_log_lacks 'backend connect failed'
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
pass "connect_timeout 1ms in front of a live backend: 100 of 100 requests from 16 clients at once answered 200"
