#!/usr/bin/env bash
# backend.keepalive (http mode): idle backend connections are handed from
# one client to the next (of the same worker; one worker here).
#  - three clients one after the other (orders, billing, orders) use one
#    backend connection, and the backend sees each request with its own
#    client's identity;
#  - after keepalive_timeout the kept connection is closed: the next client
#    gets a new one;
#  - a backend that closes idle connections sooner than keepalive_timeout:
#    the next client is still answered (200, never 502), on a new
#    connection;
#  - a response with Connection: close ends the backend connection: it is
#    not handed on; a client that closes after its request (Connection:
#    close, HTTP/1.0) gets its answer and is closed by the proxy, while the
#    backend connection is handed on (nothing it sent after the close is
#    forwarded);
#  - keepalive with mode: tcp is a configuration error (file:line:col);
#  - a reload closes the kept connections of the old configuration, and
#    at most keepalive are kept afterwards.
. "$(dirname -- "$0")/lib.sh"
. "$(dirname -- "$0")/http-lib.sh"

BPORT=$(free_port)
BPORT2=$(free_port)
PORT_E=$(free_port)
PORT=$(free_port)
PORT2=$(free_port)
start_http_backend "$BPORT"
LOG1=$HB_LOG
export HB_KEEPALIVE_MS=300	# this backend closes idle connections after 300 ms
start_http_backend "$BPORT2"
unset HB_KEEPALIVE_MS
LOG2=$HB_LOG
# One worker: each worker keeps its own idle connections.
{
	config_head | sed 's/^workers: .*/workers: 1/'
	config_http_listener pooled "$PORT" "\"127.0.0.1:$BPORT\"" "" "      keepalive: 4
      keepalive_timeout: 30s"
	config_http_listener expiring "$PORT_E" "\"127.0.0.1:$BPORT\"" "" "      keepalive: 4
      keepalive_timeout: 700ms"
	config_http_listener quick "$PORT2" "\"127.0.0.1:$BPORT2\"" "" "      keepalive: 4
      keepalive_timeout: 5s"
} >"$TMPDIR/ka.yaml"
start_proxy "$TMPDIR/ka.yaml" "$PORT"
wait_port "$PORT2" "$PROXY_PID" 5 || fail "second listener does not accept"
wait_port "$PORT_E" "$PROXY_PID" 5 || fail "third listener does not accept"

conns() { grep -c '^conn$' "$1"; }
# get PORT CLIENT [curl options]: one TLS connection, one GET /headers.
get() {
	local port=$1 who=$2
	shift 2
	hcurl "$port" /headers --cert "$PKI/$who.crt" --key "$PKI/$who.key" "$@"
	[ "$HC_CODE" = 200 ] || fail "GET /headers as $who on port $port: $HC_CODE (rc $HC_RC): $(cat "$HC_ERR")"
}

# Counts are differences: starting a backend probes its port once.
N1=$(conns "$LOG1")
N2=$(conns "$LOG2")

# -------------------------------------------- handed from client to client
get "$PORT" orders
get "$PORT" billing
get "$PORT" orders
assert_eq "$(($(conns "$LOG1") - N1))" 1 "backend connections for three clients in a row"
assert_eq "$(grep '^req GET /headers' "$LOG1" | sed 's/.* subject=//' | tr '\n' '|')" \
    "CN=orders,OU=payments,O=Demo Corp verify=SUCCESS|CN=billing,O=Demo Corp verify=SUCCESS|CN=orders,OU=payments,O=Demo Corp verify=SUCCESS|" \
    "identity the backend saw on each request of the shared connection"
pass "three clients in a row share one backend connection, each request with its own identity"

# ---------------------------------------------------- keepalive_timeout
# (a listener of its own: the others keep theirs for 30 s, which a busy
# machine's slow clients never outwait)
n0=$(conns "$LOG1")
get "$PORT_E" orders
sleep 1.2
get "$PORT_E" billing
assert_eq "$(($(conns "$LOG1") - n0))" 2 "backend connections for two clients 1.2 s apart (keepalive_timeout 700ms)"
pass "an idle kept connection is closed after keepalive_timeout"

# ------------------------------------ the backend closes idle ones first
get "$PORT2" orders
sleep 1.8	# the backend closes it after 300 ms (Node adds 1 s to that)
log_mark
get "$PORT2" billing
assert_eq "$(($(conns "$LOG2") - N2))" 2 "backend connections when the backend closed the kept one"
assert_log_lacks ' status=502'
pass "a kept connection the backend closed is dropped; the next client gets 200 on a new one"

# ---------------------------------- Connection: close in a response ends it
hcurl "$PORT" "/big?n=10&mode=close"
[ "$HC_CODE" = 200 ] || fail "GET /big?mode=close: $HC_CODE"
n0=$(conns "$LOG1")
get "$PORT" orders
assert_eq "$(($(conns "$LOG1") - n0))" 1 "new backend connections for the client after a response with Connection: close"
pass "a response with Connection: close: the backend connection is not handed on"

# ------------- a client that closes after its request: the backend stays
# (as with nginx's upstream keepalive): the request goes on as keep-alive,
# the proxy closes the client connection after the answer, and the next
# client gets the same backend connection.
n0=$(conns "$LOG1")
log_mark
get "$PORT" orders -H 'Connection: close'
get "$PORT" billing
assert_eq "$(($(conns "$LOG1") - n0))" 0 "new backend connections for a request with Connection: close and the client after it"
assert_log_contains ' access listener=pooled .*subject="CN=orders,OU=payments,O=Demo Corp".* close=connection_close'
pass "a request with Connection: close: the client connection closes after its answer, the backend connection is handed on"

# HTTP/1.0 without keep-alive: the whole answer, then the proxy closes; the
# backend saw a keep-alive request (so it answered with a length).
hclient raw "$PORT" --send 'GET /headers HTTP/1.0\r\nHost: localhost\r\n\r\n' --responses 1 --wait-close 3000
assert_eq "$(jq_py "$HCL_OUT" "[len(j['responses']), j['responses'][0]['status'] if j['responses'] else None, j['closedByServer'], j['timedOut']]" | tr '\n' ' ')" \
    "1 200 True False " "HTTP/1.0 request: [responses, status, closed by the proxy, timed out]"
jq_py "$HCL_OUT" "j['responses'][0]['body']" >"$TMPDIR/h10.json"
assert_eq "$(jq_py "$TMPDIR/h10.json" "[j['httpVersion']] + h(j, 'connection')" | tr '\n' ' ')" "1.0 keep-alive " \
    "HTTP/1.0 request: the version and Connection the backend saw"
# Connection: close, then a second request in the same write: only the first
# is answered and forwarded.
hclient raw "$PORT" --send 'GET /first HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\nGET /second HTTP/1.1\r\nHost: localhost\r\n\r\n' --responses 2 --wait-close 3000
assert_eq "$(jq_py "$HCL_OUT" "[len(j['responses']), j['closedByServer']]" | tr '\n' ' ')" "1 True " \
    "requests after Connection: close: [responses, closed by the proxy]"
grep -q '^req GET /first ' "$LOG1" || fail "the request with Connection: close did not reach the backend"
grep -q '^req GET /second ' "$LOG1" && fail "a request sent after Connection: close was forwarded"
get "$PORT" orders
assert_eq "$(($(conns "$LOG1") - n0))" 0 "new backend connections after the HTTP/1.0 and Connection: close clients"
pass "HTTP/1.0 and Connection: close clients: answered in full, closed by the proxy, nothing after the close forwarded, one backend connection throughout"

stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"

# ------------------------------------------------------------ tcp mode
{
	config_head
	config_listener tcp "$(free_port)" "\"127.0.0.1:$BPORT\""
} | sed 's/^      mode: tcp$/      mode: tcp\n      keepalive: 8/' >"$TMPDIR/tcp.yaml"
"$MTLSPROXY" -t -c "$TMPDIR/tcp.yaml" >"$TMPDIR/t.out" 2>&1 && fail "mtlsproxy -t accepted keepalive with mode: tcp"
line=$(grep -n 'keepalive: 8' "$TMPDIR/tcp.yaml" | cut -d: -f1)
grep -q -E "^$TMPDIR/tcp\\.yaml:$line:[0-9]+: keepalive applies to mode: http" "$TMPDIR/t.out" ||
    fail "keepalive with mode: tcp: no 'FILE:$line:COL: keepalive applies to mode: http': $(cat "$TMPDIR/t.out")"
pass "keepalive with mode: tcp: a configuration error naming the line"

# ------------------------------- kept connections across a reload
# keepalive: 2, one worker. Four clients at once (slow answers, so four
# backend connections) leave two kept. After a SIGHUP the kept ones belong
# to the old configuration: new clients cannot use them, so they are
# closed at the reload, and again at most two are kept after the next four
# clients (before: the old two stayed until keepalive_timeout, and more
# with every reload).
BPORT3=$(free_port)
PORT3=$(free_port)
start_http_backend "$BPORT3"
{
	config_head | sed 's/^workers: .*/workers: 1/'
	config_http_listener reloaded "$PORT3" "\"127.0.0.1:$BPORT3\"" "" "      keepalive: 2
      keepalive_timeout: 30s"
} >"$TMPDIR/ka-reload.yaml"
start_proxy "$TMPDIR/ka-reload.yaml" "$PORT3"
kept() { ss -Htn state established "( dport = :$BPORT3 )" | wc -l; }
four_at_once() {
	local i pids=()
	for i in 1 2 3 4; do
		curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 \
		    --cacert "$PKI/root-ca.crt" --cert "$PKI/orders.crt" --key "$PKI/orders.key" \
		    --resolve "localhost:$PORT3:127.0.0.1" "https://localhost:$PORT3/slow?ms=1000" \
		    >"$TMPDIR/four-$i.code" 2>/dev/null &
		pids+=($!)
	done
	wait "${pids[@]}"
	for i in 1 2 3 4; do
		[ "$(cat "$TMPDIR/four-$i.code")" = 200 ] || fail "one of four parallel requests got $(cat "$TMPDIR/four-$i.code")"
	done
	sleep 0.2
}
four_at_once
assert_eq "$(kept)" 2 "backend connections kept after four clients at once (keepalive: 2)"
for round in 1 2 3; do
	log_mark
	kill -HUP "$PROXY_PID"
	for i in $(seq 50); do
		log_has_line 'info reloaded: generation [0-9]+ in use' && break
		sleep 0.1
	done
	log_has_line 'info reloaded: generation [0-9]+ in use' || fail "no reload after SIGHUP"
	sleep 0.2
	assert_eq "$(kept)" 0 "kept backend connections right after reload $round (they belong to the old configuration)"
	four_at_once
	assert_eq "$(kept)" 2 "backend connections kept after reload $round and four more clients (keepalive: 2)"
done
pass "kept backend connections: closed at a reload, never more than keepalive afterwards (three reloads)"
