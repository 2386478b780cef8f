#!/usr/bin/env bash
# SIGTERM in http mode (drain_timeout 20s): keep-alive connections close
# between requests instead of holding the stop up to the deadline.
#  - an idle keep-alive connection (one answer received) sees the server
#    close it at once (EOF within 2 s of SIGTERM), access close=drained;
#  - a connection whose request is in progress (/slow?ms=1500) gets its
#    answer, with "Connection: close", then EOF; close=drained;
#  - a connection that has sent nothing yet is closed too;
#  - the process exits 0 well before the deadline (under 5 s).
# And when not stopping: a request with "Connection: close" gets an answer
# that says "Connection: close" (RFC 9112 9.6) with backend.keepalive.
. "$(dirname -- "$0")/lib.sh"
. "$(dirname -- "$0")/http-lib.sh"

BPORT=$(free_port)
PORT=$(free_port)
start_http_backend "$BPORT"
{
	DRAIN_TIMEOUT=20s config_head
	# (6 spaces: right after connect_timeout, inside backend)
	config_http_listener web "$PORT" "\"127.0.0.1:$BPORT\"" "" "      keepalive: 4"
} >"$TMPDIR/drain.yaml"
grep -q 'drain_timeout: 20s' "$TMPDIR/drain.yaml" || fail "config lacks drain_timeout: 20s"
grep -q 'keepalive: 4' "$TMPDIR/drain.yaml" || fail "config lacks keepalive: 4"
start_proxy "$TMPDIR/drain.yaml" "$PORT"

# The clients: python's ssl, one connection each, every event with the
# time since start (ms) in $TMPDIR/NAME.events.
cat >"$TMPDIR/kc.py" <<'EOF'
import socket, ssl, sys, time
port, name, mode, ca, cert, key, outdir = sys.argv[1:8]
t0 = time.monotonic()
ev = open(f"{outdir}/{name}.events", "w", buffering=1)
def note(s):
    ev.write(f"{int((time.monotonic() - t0) * 1000)} {s}\n")
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port))), server_hostname="localhost")
s.settimeout(30)
def read_answer():
    data = b""
    while b"\r\n\r\n" not in data:
        c = s.recv(65536)
        if not c:
            return None, data
        data += c
    head, _, body = data.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v.strip())
    while len(body) < n:
        c = s.recv(65536)
        if not c:
            break
        body += c
    return head.decode("latin-1"), body
def get(path, extra=""):
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n".encode())
    head, body = read_answer()
    if head is None:
        note("eof-before-answer")
        return None
    conn = [l.split(":", 1)[1].strip() for l in head.split("\r\n")[1:] if l.lower().startswith("connection:")]
    note(f"answer {head.split(chr(13))[0].split(' ')[1]} connection={','.join(conn) or '-'} body={len(body)}")
    return head
def wait_eof():
    try:
        c = s.recv(65536)
        note("eof" if not c else f"data {len(c)}")
    except Exception as e:
        note(f"error {e}")
if mode == "idle":
    get("/headers")
    note("ready")
    wait_eof()
elif mode == "slow":
    note("ready")
    get("/slow?ms=1500")
    wait_eof()
elif mode == "silent":
    s.do_handshake()
    note("ready")
    wait_eof()
elif mode == "close":
    get("/headers", "Connection: close\r\n")
    wait_eof()
EOF

# start_kc NAME MODE
declare -A KPID
start_kc() {
	python3 "$TMPDIR/kc.py" "$PORT" "$1" "$2" "$PKI/root-ca.crt" "$PKI/orders.crt" "$PKI/orders.key" "$TMPDIR" \
	    2>"$TMPDIR/$1.err" &
	KPID[$1]=$!
	track "${KPID[$1]}"
}
# wait_event NAME RE SECONDS
wait_event() {
	local i
	for i in $(seq $(($3 * 20))); do
		grep -q -E -- "$2" "$TMPDIR/$1.events" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# ---------------------------------------- Connection: close, not stopping
log_mark
start_kc closer close
wait_event closer '^[0-9]+ eof$' 5 || fail "Connection: close request: no answer and EOF: $(cat "$TMPDIR/closer.events" "$TMPDIR/closer.err" 2>/dev/null)"
grep -q -E '^[0-9]+ answer 200 connection=close ' "$TMPDIR/closer.events" ||
    fail "the answer to a request with Connection: close does not say Connection: close: $(cat "$TMPDIR/closer.events")"
assert_log_contains ' access ' 'close=connection_close'
pass "a request with Connection: close: its answer says Connection: close, then the proxy closes (close=connection_close)"

# ------------------------------------------------------------- SIGTERM
log_mark
start_kc idle idle
start_kc slow slow
start_kc silent silent
for n in idle slow silent; do
	wait_event "$n" '^[0-9]+ ready$' 5 || fail "$n client did not get ready: $(cat "$TMPDIR/$n.events" "$TMPDIR/$n.err" 2>/dev/null)"
done
sleep 0.3	# the slow request reaches the backend
t_term=$(now_ms)
kill -TERM "$PROXY_PID"

wait_event idle '^[0-9]+ eof$' 2 || fail "the idle keep-alive connection was not closed within 2 s of SIGTERM: $(cat "$TMPDIR/idle.events")"
wait_event silent '^[0-9]+ eof$' 2 || fail "the connection that had sent nothing was not closed within 2 s of SIGTERM: $(cat "$TMPDIR/silent.events")"
pass "SIGTERM: idle keep-alive connections and one that had sent nothing are closed at once"

wait_event slow '^[0-9]+ eof$' 5 || fail "the connection with a request in progress did not end after its answer: $(cat "$TMPDIR/slow.events" "$TMPDIR/slow.err")"
grep -q -E '^[0-9]+ answer 200 connection=close body=[1-9]' "$TMPDIR/slow.events" ||
    fail "the request in progress did not get its answer with Connection: close: $(cat "$TMPDIR/slow.events")"
pass "SIGTERM: the request in progress got its whole answer, with Connection: close, then the connection closed"

proxy_wait_exit 5 || fail "mtlsproxy did not exit within 5 s of SIGTERM (drain_timeout 20s)"
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC"
ms=$(($(now_ms) - t_term))
n=$(grep -c -E ' access .*close=drained' "$PROXY_LOG")
[ "$n" -eq 3 ] || fail "expected 3 access lines with close=drained, got $n: $(grep ' access ' "$PROXY_LOG" | tail -n 4)"
assert_log_lacks 'drain deadline passed'
pass "exit 0 ${ms} ms after SIGTERM; three access lines with close=drained"
