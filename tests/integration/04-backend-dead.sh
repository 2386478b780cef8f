#!/usr/bin/env bash
# A backend that is down: the client's connection is closed promptly (no
# hang) and the log says the backend connect failed, with the address.
# With an address list [dead, live], connections fail over to the live one.
. "$(dirname -- "$0")/lib.sh"

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
