#!/usr/bin/env bash
# http mode: a client's keep-alive connection outlives its backend
# connection, as with nginx. A backend that closes idle connections (here
# after about 1.3 s: keepAliveTimeout 300 ms and the second Node.js adds to
# it; Node.js closes after 5 s by default, gunicorn after 2 s) does not take
# the client's connection down with it:
#  - three requests 1.6 s apart on one client connection all get 200, on
#    three backend connections; the client's connection is never closed
#    (no close=backend_closed), without and with backend.keepalive; the
#    backend's Keep-Alive header (its timeout, a hop-by-hop header) does not
#    reach the client;
#  - the backend gone between two requests: the next request gets 502 and
#    the log says why;
#  - a client that asked to close (HTTP/1.0 without keep-alive), or that
#    ended its side after its request (half-close), is still closed when the
#    backend closes after the answer.
. "$(dirname -- "$0")/lib.sh"
. "$(dirname -- "$0")/http-lib.sh"

BPORT=$(free_port)
PORT=$(free_port)
PORT2=$(free_port)
export HB_KEEPALIVE_MS=300	# the backend closes idle connections after ~1.3 s
start_http_backend "$BPORT"
unset HB_KEEPALIVE_MS
{
	config_head
	config_http_listener plain "$PORT" "\"127.0.0.1:$BPORT\""
	config_http_listener pooled "$PORT2" "\"127.0.0.1:$BPORT\"" "" "      keepalive: 4"
} >"$TMPDIR/reconnect.yaml"
start_proxy "$TMPDIR/reconnect.yaml" "$PORT"

# three PORT NAME: three requests 1.6 s apart on one client connection (a
# raw client: Node's agent would obey the backend's "Keep-Alive: timeout"
# hint and close first)
GET3='GET /headers?i=0 HTTP/1.1\r\nHost: localhost\r\n\r\nGET /headers?i=1 HTTP/1.1\r\nHost: localhost\r\n\r\nGET /headers?i=2 HTTP/1.1\r\nHost: localhost\r\n\r\n'
three() {
	log_mark
	hclient raw "$1" --send "$GET3" --sequential --gap 1600 --responses 3 --wait-close 200
	R=$HCL_OUT
	assert_eq "$(jq_py "$R" '",".join(str(r["status"]) for r in j["responses"])')" 200,200,200 "$2: answers"
	assert_eq "$(jq_py "$R" 'j["closedByServer"]')" False "$2: the client's connection stays open"
	# the backend's "Keep-Alive: timeout=0" hint is hop-by-hop: left out
	assert_eq "$(jq_py "$R" 'sum(len(rh(r, "keep-alive")) for r in j["responses"])')" 0 \
	    "$2: Keep-Alive headers passed on"
	assert_eq "$(jq_py "$R" '",".join(",".join(rh(r, "connection")) for r in j["responses"])')" \
	    keep-alive,keep-alive,keep-alive "$2: Connection headers"
	assert_eq "$(jq_py "$R" 'len(set(json.loads(r["body"])["remotePort"] for r in j["responses"]))')" 3 \
	    "$2: backend connections"
	assert_log_contains "debug session [0-9]+: backend 127\.0\.0\.1:$BPORT closed between requests; the next request connects again"
	assert_log_lacks "close=backend_closed"
}
three "$PORT" "no backend.keepalive"
pass "a backend closing idle connections: 3 requests 1.6 s apart on one client connection, all 200, over 3 backend connections"
three "$PORT2" "backend.keepalive 4"
pass "the same with backend.keepalive"

# HTTP/1.0 without keep-alive: the backend closes after the answer, and so
# does the proxy
hclient raw "$PORT" --send 'GET /headers HTTP/1.0\r\nHost: localhost\r\n\r\n' --responses 1 --wait-close 3000
assert_eq "$(jq_py "$HCL_OUT" 'j["responses"][0]["status"]')" 200 "HTTP/1.0 request"
assert_eq "$(jq_py "$HCL_OUT" 'j["closedByServer"]')" True "HTTP/1.0 without keep-alive: closed after the answer"
pass "an HTTP/1.0 client without keep-alive is still closed after its answer"

# A keep-alive request, then the client ends its side: the answer, then the
# proxy's close (client.js reads until the server closes)
log_mark
node_client "$PORT" --cert "$PKI/orders.crt" --key "$PKI/orders.key" \
    --send 'GET /headers HTTP/1.1\r\nHost: localhost\r\n\r\n' --half-close --timeout 10000
[ "$NODE_RC" = 0 ] && head -n 1 "$NODE_OUT" | grep -q '^HTTP/1.1 200 ' ||
    fail "half-closed client: rc $NODE_RC: $(head -c 200 "$NODE_OUT") $(tail -n 2 "$NODE_ERR")"
# (which end the log names depends on which EOF the proxy reads first: the
# client's, or the backend's, which ends its side on seeing the client's)
assert_log_contains 'info access listener=plain .*close=(backend_closed|client_closed)'
pass "a client that half-closes after its request gets its answer and is closed"

# The backend gone between two requests on one client connection: the next
# one gets 502
log_mark
GET2='GET /headers?i=0 HTTP/1.1\r\nHost: localhost\r\n\r\nGET /headers?i=1 HTTP/1.1\r\nHost: localhost\r\n\r\n'
hclient raw "$PORT" --send "$GET2" --sequential --gap 1000 --responses 2 --wait-close 500 &
CL=$!
sleep 0.5	# the first answer is in; the second request comes at 1 s
kill "$HB_PID"
wait "$CL" || true
R=$HCL_OUT
assert_eq "$(jq_py "$R" '",".join(str(r["status"]) for r in j["responses"])')" 200,502 \
    "answers on one connection, the backend gone between them"
assert_log_contains "debug session [0-9]+: backend 127\.0\.0\.1:$BPORT closed between requests; the next request connects again"
assert_log_contains "warn listener \"plain\": backend connect failed: 127\.0\.0\.1:$BPORT: Connection refused"
assert_log_contains 'info request listener=plain .*path="/headers\?i=1" status=502'
stop_proxy
[ "$PROXY_RC" = 0 ] || fail "mtlsproxy exited with $PROXY_RC"
pass "the backend gone between two requests: the next one gets 502, logged; clean exit"
