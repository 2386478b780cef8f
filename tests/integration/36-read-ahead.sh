#!/usr/bin/env bash
# The client side reads ahead (one read() takes in several TLS records), so
# records that arrive together must all be delivered even when the socket
# never becomes readable again:
#  - tcp: the client's last handshake flight and five application records
#    of different sizes in one TCP segment, then a second burst of five:
#    every byte echoed back, in order;
#  - http: three GET requests, each in its own record, sent in one segment
#    with the client's Finished: three responses, in order;
#  - 200 requests in 200 records in one segment through keep-alive, each
#    response's bytes logged against its own request;
#  - a backend that sends a good response and then garbage in one write:
#    the client gets the good response, then a 502 for the next request.
. "$(dirname -- "$0")/lib.sh"
. "$(dirname -- "$0")/http-lib.sh"

ECHO_PORT=$(free_port)
BPORT=$(free_port)
PORT=$(free_port)
HPORT=$(free_port)
start_echo "$ECHO_PORT"
start_http_backend "$BPORT"
{
	config_head
	config_listener burst-tcp "$PORT" "\"127.0.0.1:$ECHO_PORT\""
	config_http_listener burst-http "$HPORT" "\"127.0.0.1:$BPORT\""
} >"$TMPDIR/burst.yaml"
start_proxy "$TMPDIR/burst.yaml"

burst() {
	BURST_OUT=$(python3 "$ITEST_DIR/tls-burst.py" "$@" --cert "$PKI/orders.crt" \
	    --key "$PKI/orders.key" --ca "$PKI/root-ca.crt" --timeout 10 2>&1)
	BURST_RC=$?
}

burst "$PORT" --echo 5,300,1,16384,7
[ "$BURST_RC" -eq 0 ] || fail "tcp: records sent together with the Finished: $BURST_OUT"
pass "tcp: 5 records with the Finished, then 5 more in one segment, all echoed"

burst "$PORT" --echo "$(seq -s, 1 60)"
[ "$BURST_RC" -eq 0 ] || fail "tcp: 60 small records in one segment: $BURST_OUT"
pass "tcp: 60 small records in one segment, all echoed"

burst "$HPORT" --http /status/200,/status/201,/status/202
[ "$BURST_RC" -eq 0 ] || fail "http: three requests with the Finished: $BURST_OUT"
got=$(printf '%s\n' "$BURST_OUT" | awk '{print $1}' | tr '\n' ' ')
[ "$got" = "200 201 202 ok " ] || fail "http: want responses 200 201 202 in order, got: $BURST_OUT"
pass "http: three requests sent with the Finished, three responses in order"

paths=$(for i in $(seq 200); do printf '/status/%d,' $((200 + i % 4)); done)
burst "$HPORT" --http "${paths%,}"
[ "$BURST_RC" -eq 0 ] || fail "http: 200 pipelined requests in one segment: $(printf '%s\n' "$BURST_OUT" | tail -n 2)"
n=$(printf '%s\n' "$BURST_OUT" | grep -c '^20[0-3] ')
[ "$n" -eq 200 ] || fail "http: want 200 responses, got $n"
pass "http: 200 requests in 200 records in one segment, 200 responses"
# Responses came back several per read: each request's bytes_out is its
# own response's size (status 200: "status 200\n" = 11 bytes of body).
grep ' request listener=burst-http ' "$PROXY_LOG" | grep -q 'status=200 .*bytes_out=0 ' &&
    fail "http: a request logged with bytes_out=0: responses miscounted"
sizes=$(grep ' request listener=burst-http ' "$PROXY_LOG" | grep ' path=/status/200 ' |
    sed -n 's/.* bytes_out=\([0-9]*\) .*/\1/p' | sort -u)
[ "$(printf '%s\n' "$sizes" | wc -l)" -eq 1 ] ||
    fail "http: one response size, logged for every /status/200; got: $(echo $sizes)"
pass "http: pipelined responses logged with their own sizes ($sizes bytes each)"
stop_proxy

# A backend whose second response is garbage, sent in the same write as
# the first (good) one.
GPORT=$(free_port)
GHPORT=$(free_port)
cat >"$TMPDIR/garbage.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
while True:
    c, _ = s.accept()
    buf = b""
    while buf.count(b"\r\n\r\n") < 2:
        d = c.recv(65536)
        if not d:
            break
        buf += d
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
              b"this is not HTTP\r\n\r\n")
    c.close()
PY
python3 "$TMPDIR/garbage.py" "$GPORT" >"$TMPDIR/garbage.log" 2>&1 &
track $!
wait_port "$GPORT" $! 5 || fail "garbage backend did not start"
{
	config_head
	config_http_listener burst-garbage "$GHPORT" "\"127.0.0.1:$GPORT\""
} >"$TMPDIR/garbage.yaml"
start_proxy "$TMPDIR/garbage.yaml"
burst "$GHPORT" --http /first,/second
got=$(printf '%s\n' "$BURST_OUT" | awk '{print $1}' | tr '\n' ' ')
[ "$got" = "200 502 ok " ] ||
    fail "http: want 200 (the good response) then 502, got: $BURST_OUT"
assert_log_contains 'bad response from backend'
pass "http: a good response then garbage in one read: 200, then 502"
stop_proxy
