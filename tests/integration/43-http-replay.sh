#!/usr/bin/env bash
# http mode: a backend that closes a kept connection just as a request
# arrives on it (its keep-alive timeout striking at that moment) costs the
# client nothing when the request is safe to send again: an idempotent
# request without a body is sent once more on a new connection, as nginx
# does. The backend here answers the first request on each connection and
# drops the connection at the second.
#  - two GETs on one client connection: both 200, the second answered on a
#    new backend connection; the log says it was sent again;
#  - with backend.keepalive, a second client's GET on the kept connection:
#    200 the same way;
#  - a POST with a body is never sent twice: 502;
#  - a request the new connection drops as well: 502, sent twice in all;
#  - a request dropped on a new connection (not a kept one): 502, sent once.
. "$(dirname -- "$0")/lib.sh"
. "$(dirname -- "$0")/http-lib.sh"

BPORT=$(free_port)
PORT=$(free_port)
PORT2=$(free_port)
start_http_backend "$BPORT" --flaky
{
	config_head | sed "s/^workers: 2/workers: 1/"	# one pool
	config_http_listener plain "$PORT" "\"127.0.0.1:$BPORT\""
	config_http_listener pooled "$PORT2" "\"127.0.0.1:$BPORT\"" "" "      keepalive: 4"
} >"$TMPDIR/replay.yaml"
start_proxy "$TMPDIR/replay.yaml" "$PORT"
wait_port "$PORT2" "$PROXY_PID" 5 || fail "listener pooled not up"

# two PORT CURL_ARGS...: one curl, two requests on one connection; sets
# TWO (codes and new connections) and the bodies in $TMPDIR/r1, r2.
two() {
	local port=$1
	shift
	rm -f "$TMPDIR/r1" "$TMPDIR/r2"
	TWO=$(curl -sS --max-time 10 --resolve "localhost:$port:127.0.0.1" --cacert "$PKI/root-ca.crt" \
	    --cert "$PKI/orders.crt" --key "$PKI/orders.key" -w '%{http_code} %{num_connects} ' \
	    "$@" 2>"$TMPDIR/two.err")
}
# sent TEXT: how many times the backend saw a request whose line has TEXT
sent() {
	grep -c -F -- " $1 " "$HB_LOG" || true
}

# --- two GETs on one client connection
log_mark
two "$PORT" -o "$TMPDIR/r1" "https://localhost:$PORT/a1" -o "$TMPDIR/r2" "https://localhost:$PORT/a2"
assert_eq "$TWO" "200 1 200 0 " "two GETs on one connection (status, new client connections)"
grep -q -E '^conn=[0-9]+ req=1 GET /a2$' "$TMPDIR/r2" || fail "second GET: answer [$(cat "$TMPDIR/r2")], want it from a new backend connection"
assert_eq "$(sent 'GET /a2')" 2 "times the backend saw GET /a2 (dropped, then answered)"
assert_log_contains ' info ' 'backend 127\.0\.0\.1:[0-9]+ closed a kept connection as request "GET /a2" went out; sending it again on a new connection'
assert_log_contains ' request ' 'path="?/a2' 'status=200'
assert_log_lacks 'status=502'
pass "GET dropped by the backend on a kept connection: sent again, 200"

# --- backend.keepalive: the second client gets the kept connection
log_mark
hcurl "$PORT2" /b1
assert_eq "$HC_CODE" 200 "first client on the pooled listener"
hcurl "$PORT2" /b2
assert_eq "$HC_CODE" 200 "second client on the pooled listener (kept connection dropped)"
grep -q -E '^conn=[0-9]+ req=1 GET /b2$' "$HC_OUT" || fail "pooled: answer [$(cat "$HC_OUT")]"
assert_eq "$(sent 'GET /b2')" 2 "times the backend saw GET /b2"
assert_log_contains 'listener "pooled": backend .* closed a kept connection as request "GET /b2" went out'
pass "backend.keepalive: a dropped kept connection costs the next client nothing"

# --- POST with a body (curl --data: both requests): never sent twice
log_mark
two "$PORT" --data "x=1" -o "$TMPDIR/r1" "https://localhost:$PORT/c1" -o "$TMPDIR/r2" "https://localhost:$PORT/c2"
assert_eq "$TWO" "200 1 502 0 " "two POSTs with a body on one connection (status)"
assert_eq "$(sent 'POST /c2')" 1 "times the backend saw POST /c2"
assert_log_contains ' request ' 'method=POST' 'path="?/c2' 'status=502'
assert_log_lacks 'sending it again'
pass "a POST dropped by the backend is not sent again: 502"

# --- dropped again on the new connection: 502, twice in all
log_mark
two "$PORT" -o "$TMPDIR/r1" "https://localhost:$PORT/d1" -o "$TMPDIR/r2" "https://localhost:$PORT/d2?drop=always"
assert_eq "$TWO" "200 1 502 0 " "GET, then a GET the backend always drops (status)"
assert_eq "$(sent 'GET /d2?drop=always')" 2 "times the backend saw the always-dropped GET"
assert_log_contains ' request ' 'path="?/d2' 'status=502'
pass "a request dropped on the new connection too: 502 after one more try"

# --- dropped on a new connection: 502 at once, sent once
log_mark
hcurl "$PORT" "/e1?drop=always"
assert_eq "$HC_CODE" 502 "a GET dropped on a new backend connection"
assert_eq "$(sent 'GET /e1?drop=always')" 1 "times the backend saw it"
assert_log_lacks 'sending it again'
pass "a request dropped on a new connection is not sent again: 502"

stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
