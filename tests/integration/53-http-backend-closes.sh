#!/usr/bin/env bash
# http mode: backends that close their connection after every answer
# (gunicorn's sync workers and many small servers answer HTTP/1.1 with
# "Connection: close"; Python's http.server answers HTTP/1.0 and closes).
# As with nginx, the client keeps its connection, and with it its mTLS
# session, when the answer has a length: the backend's close is not passed
# on, and the next request connects to the backend again.
#  - curl, Node's https keep-alive agent and a raw client each make several
#    requests on one client connection, over as many backend connections;
#    no answer carries Connection: close; chunked, HEAD, 204 and a 300 KB
#    body the same;
#  - an HTTP/1.0 answer reaches the client as HTTP/1.1 (RFC 9110 6.2);
#  - an answer that ends only with the close (no length) still closes the
#    client's connection, now saying so (Connection: close);
#  - a request sent while the answer before it is still coming waits, and
#    then goes to the new backend connection;
#  - a client that asks to close, or pipelined requests behind such an
#    answer, are closed as before; the requests left without an answer
#    get their request line (status=0, close=backend_closed).
. "$(dirname -- "$0")/lib.sh"
. "$(dirname -- "$0")/http-lib.sh"

PY_BACKEND=$(dirname -- "$0")/py-backend.py
B11=$(free_port)
B10=$(free_port)
P11=$(free_port)
P10=$(free_port)
start_py() {
	python3 "$PY_BACKEND" "$1" "$2" >>"$TMPDIR/py-$2.log" 2>&1 &
	track $!
	wait_port "$1" $! 5 || fail "python backend ($2) did not start: $(tail -n 5 "$TMPDIR/py-$2.log")"
}
start_py "$B11" close11
start_py "$B10" http10
{
	config_head
	config_http_listener c11 "$P11" "\"127.0.0.1:$B11\""
	config_http_listener h10 "$P10" "\"127.0.0.1:$B10\""
} >"$TMPDIR/closes.yaml"
start_proxy "$TMPDIR/closes.yaml" "$P11"
wait_port "$P10" "$PROXY_PID" 5 || fail "listener h10 does not accept"

# --------------------------------------------------------------- curl
# three URLs in one curl run: it reuses its connection when it can
for P in "$P11" "$P10"; do
	log_mark
	out=$(curl -sS --max-time 20 --resolve "localhost:$P:127.0.0.1" \
	    --cacert "$PKI/root-ca.crt" --cert "$PKI/orders.crt" --key "$PKI/orders.key" \
	    -w '%{http_code} %{num_connects} %{http_version}\n' -o /dev/null -o /dev/null -o /dev/null \
	    "https://localhost:$P/len?i=1" "https://localhost:$P/len?i=2" "https://localhost:$P/len?i=3" 2>"$TMPDIR/curl.err") ||
	    fail "curl to port $P: $(cat "$TMPDIR/curl.err")"
	assert_eq "$(echo $out)" "200 1 1.1 200 0 1.1 200 0 1.1" "curl, 3 requests (status, new connections, version)"
	assert_log_contains "debug session [0-9]+: backend 127\.0\.0\.1:[0-9]+ closes its connection after each answer; the client's connection stays"
	assert_log_lacks "close=backend_closed"
done
pass "curl: 3 requests on one mTLS connection to a backend that closes after each answer (HTTP/1.1 Connection: close, and HTTP/1.0)"

# ------------------------------------------------- Node's keep-alive agent
hclient keepalive "$P11" --count 4 --path /len
[ "$HCL_RC" = 0 ] || fail "node keepalive: $(cat "$HCL_OUT") $(cat "$HCL_ERR")"
assert_eq "$(jq_py "$HCL_OUT" 'len(j["localPorts"])')" 1 "Node agent: TCP connections the client used"
assert_eq "$(jq_py "$HCL_OUT" 'len(set(j["backendPorts"]))')" 4 "Node agent: backend connections"
assert_eq "$(jq_py "$HCL_OUT" 'sum(len(x) == 1 and x[0].startswith("CN=orders,") for x in j["subjects"])')" \
    4 "Node agent: one X-Client-Subject of orders on each request"
pass "Node's https keep-alive agent keeps one connection for 4 requests, over 4 backend connections, identity on each"

# ------------------------------------------------ raw: framing and headers
# answers with a length of each kind, one after the other on one connection
SEQ='GET /len HTTP/1.1\r\nHost: localhost\r\n\r\nGET /chunked HTTP/1.1\r\nHost: localhost\r\n\r\nHEAD /len HTTP/1.1\r\nHost: localhost\r\n\r\nGET /status/204 HTTP/1.1\r\nHost: localhost\r\n\r\nGET /big?n=300000 HTTP/1.1\r\nHost: localhost\r\n\r\nGET /len HTTP/1.1\r\nHost: localhost\r\n\r\n'
hclient raw "$P11" --send "$SEQ" --sequential --methods GET,GET,HEAD,GET,GET,GET --responses 6 --wait-close 500
R=$HCL_OUT
assert_eq "$(jq_py "$R" '",".join(str(r["status"]) for r in j["responses"])')" 200,200,200,204,200,200 "raw: answers"
assert_eq "$(jq_py "$R" 'j["closedByServer"]')" False "raw: the client's connection stays open"
assert_eq "$(jq_py "$R" 'sum(len(rh(r, "connection")) for r in j["responses"])')" 0 "raw: Connection headers passed on"
assert_eq "$(jq_py "$R" 'j["responses"][4]["bodyLen"]')" 300000 "raw: the 300 KB body"
assert_eq "$(jq_py "$R" 'json.loads(j["responses"][1]["body"])["url"]')" /chunked "raw: the chunked body"
assert_eq "$(jq_py "$R" 'json.loads(j["responses"][5]["body"])["conn"] - json.loads(j["responses"][0]["body"])["conn"]')" 5 \
    "raw: backend connections between the 1st and the 6th request"
pass "Content-Length, chunked, HEAD, 204 and a 300 KB body: 6 answers on one client connection, no Connection: close"

# POSTs with bodies (curl sends both on one connection)
out=$(curl -sS --max-time 20 --resolve "localhost:$P11:127.0.0.1" \
    --cacert "$PKI/root-ca.crt" --cert "$PKI/orders.crt" --key "$PKI/orders.key" \
    --data-binary "hello" -w '%{http_code} %{num_connects}\n' -o /dev/null -o /dev/null \
    "https://localhost:$P11/len?post=1" "https://localhost:$P11/len?post=2" 2>"$TMPDIR/curl.err") ||
    fail "curl POST: $(cat "$TMPDIR/curl.err")"
assert_eq "$(echo $out)" "200 1 200 0" "curl, 2 POSTs (status, new connections)"
grep -q '^req [0-9]* POST /len?post=2$' "$TMPDIR/py-close11.log" || fail "the second POST did not reach the backend"
pass "POSTs with bodies: both on one client connection"

# ------------------------------------------------------- HTTP/1.0 answers
hclient raw "$P10" --send 'GET /len HTTP/1.1\r\nHost: localhost\r\n\r\nHEAD /len HTTP/1.1\r\nHost: localhost\r\n\r\n' \
    --sequential --methods GET,HEAD --responses 2 --wait-close 500
R=$HCL_OUT
assert_eq "$(jq_py "$R" 'j["raw"].split("\r\n")[0]')" "HTTP/1.1 200 OK" "HTTP/1.0 backend: status line"
assert_eq "$(jq_py "$R" 'j["closedByServer"]')" False "HTTP/1.0 backend: the client's connection stays open"
assert_eq "$(jq_py "$R" 'j["raw"].count("HTTP/1.0")')" 0 "HTTP/1.0 backend: an HTTP/1.0 status line passed on"
pass "an HTTP/1.0 answer with a length goes on as HTTP/1.1 and the client's connection stays"

# an HTTP/1.0 client asking for keep-alive (as ab -k does) is told it has it
hclient raw "$P11" --send 'GET /len HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\nGET /len HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n' \
    --sequential --responses 2 --wait-close 500
R=$HCL_OUT
assert_eq "$(jq_py "$R" '",".join(str(r["status"]) for r in j["responses"])')" 200,200 "HTTP/1.0 keep-alive client: answers"
assert_eq "$(jq_py "$R" '",".join(",".join(rh(r, "connection")) for r in j["responses"]).lower()')" keep-alive,keep-alive \
    "HTTP/1.0 keep-alive client: Connection headers"
assert_eq "$(jq_py "$R" 'j["closedByServer"]')" False "HTTP/1.0 keep-alive client: the connection stays open"
pass "an HTTP/1.0 client asking for keep-alive gets Connection: keep-alive and keeps its connection"

# ------------------------------------------------- answers ending at close
for P in "$P11" "$P10"; do
	log_mark
	hclient raw "$P" --send 'GET /nolen HTTP/1.1\r\nHost: localhost\r\n\r\n' --responses 1 --wait-close 3000
	R=$HCL_OUT
	assert_eq "$(jq_py "$R" 'j["raw"].split("\r\n")[0]')" "HTTP/1.1 200 OK" "no length: status line"
	assert_eq "$(jq_py "$R" '",".join(rh(j["responses"][0], "connection")).lower()')" close "no length: Connection"
	assert_eq "$(jq_py "$R" 'json.loads(j["responses"][0]["body"])["url"]')" /nolen "no length: body"
	assert_eq "$(jq_py "$R" 'j["closedByServer"]')" True "no length: closed after the answer"
	assert_log_contains 'info access listener=[a-z0-9]+ .*close=backend_closed'
done
pass "an answer without a length (it ends at the close) closes the client's connection, with Connection: close"

# ------------------------------------- a request while the answer is coming
# Python's ssl (a client of its own): GET of 4 MB; once its head is in,
# a second GET; both answered in full on the one connection.
python3 - "$P11" "$PKI" >"$TMPDIR/overlap.out" 2>&1 <<'PY' || fail "overlapping request: $(cat "$TMPDIR/overlap.out")"
import socket, ssl, sys, json
port, pki = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=pki + "/root-ca.crt")
ctx.load_cert_chain(pki + "/orders.crt", pki + "/orders.key")
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20), server_hostname="localhost")
s.sendall(b"GET /big?n=4000000 HTTP/1.1\r\nHost: localhost\r\n\r\n")
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(65536)
s.sendall(b"GET /len?second HTTP/1.1\r\nHost: localhost\r\n\r\n")
def answer(buf):
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, _, rest = buf.partition(b"\r\n\r\n")
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0])
    while len(rest) < n:
        d = s.recv(65536)
        if not d:
            sys.exit("closed after %d of %d bytes" % (len(rest), n))
        rest += d
    return head, rest[:n], rest[n:]
h1, b1, buf = answer(buf)
h2, b2, buf = answer(buf)
assert len(b1) == 4000000 and b1[:10] == b"0123456789", "first body"
assert json.loads(b2)["url"] == "/len?second", b2
assert b"connection:" not in h1.lower() + h2.lower(), (h1, h2)
s.settimeout(0.5)
try:
    print("closed" if s.recv(1) == b"" else "extra bytes")
except socket.timeout:
    print("open")
PY
assert_eq "$(tail -n 1 "$TMPDIR/overlap.out")" open "overlapping request: the connection after both answers"
pass "a request sent while a 4 MB answer is coming waits, then goes to a new backend connection; both answered, connection open"

# ----------------------------------------------- closes that still happen
hclient raw "$P11" --send 'GET /len HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' --responses 1 --wait-close 3000
assert_eq "$(jq_py "$HCL_OUT" '",".join(rh(j["responses"][0], "connection")).lower()')" close "client's Connection: close: answer"
assert_eq "$(jq_py "$HCL_OUT" 'j["closedByServer"]')" True "client's Connection: close: closed"
# three pipelined in one write: the second and third went to a backend
# connection that closes after the first answer; the client is told to
# close and send them again (RFC 9112 9.3.2); each gets its request line
log_mark
hclient raw "$P11" --send 'GET /len?p=1 HTTP/1.1\r\nHost: localhost\r\n\r\nGET /len?p=2 HTTP/1.1\r\nHost: localhost\r\n\r\nGET /len?p=3 HTTP/1.1\r\nHost: localhost\r\n\r\n' \
    --responses 3 --wait-close 3000
R=$HCL_OUT
assert_eq "$(jq_py "$R" 'len(j["responses"]) >= 1 and j["responses"][0]["status"]')" 200 "pipelined: first answer"
assert_eq "$(jq_py "$R" '",".join(rh(j["responses"][-1], "connection")).lower()')" close "pipelined: the last answer says close"
assert_eq "$(jq_py "$R" 'j["closedByServer"]')" True "pipelined: closed"
assert_eq "$(jq_py "$R" '[r["status"] for r in j["responses"]].count(502)')" 0 "pipelined: 502 answers"
if [ "$(jq_py "$R" 'len(j["responses"])')" = 1 ]; then
	assert_log_contains 'info request listener=c11 .*path="/len\?p=1" status=200 '
	assert_log_contains 'info request listener=c11 .*path="/len\?p=2" status=0 .*close=backend_closed'
	assert_log_contains 'info request listener=c11 .*path="/len\?p=3" status=0 .*close=backend_closed'
fi
pass "a client asking to close, and requests pipelined behind an answer that closes: closed with Connection: close, never a 502"

stop_proxy
[ "$PROXY_RC" = 0 ] || fail "mtlsproxy exited with $PROXY_RC"
check_sanitizers
pass "clean exit"
