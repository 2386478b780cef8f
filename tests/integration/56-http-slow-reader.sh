#!/usr/bin/env bash
# http mode, timeouts.idle against slow readers: a client downloading a
# large answer slowly leaves the proxy with nothing to do for seconds at a
# time while the kernel's queue drains; that is traffic, not idleness. With
# idle 2 s, a client reading 200 kB/s for 5 s gets the whole 16 MiB answer
# on its keep-alive connection, and the connection is then closed about
# 2 s after it falls really idle (close=idle_timeout).
. "$(dirname -- "$0")/lib.sh"
. "$(dirname -- "$0")/http-lib.sh"

BPORT=$(free_port)
PORT=$(free_port)
start_http_backend "$BPORT"
{
	config_head
	config_http_listener dl "$PORT" "\"127.0.0.1:$BPORT\""
} >"$TMPDIR/slow.yaml"
sed -i 's/^      idle: 60s$/      idle: 2s/' "$TMPDIR/slow.yaml"
grep -q '^      idle: 2s$' "$TMPDIR/slow.yaml" || fail "test setup: idle not set"
start_proxy "$TMPDIR/slow.yaml" "$PORT"

N=16777216
log_mark
timeout -k 2 60 python3 - "$PORT" "$PKI" "$N" >"$TMPDIR/dl.out" 2>&1 <<'PY' || fail "slow download: $(cat "$TMPDIR/dl.out")"
import socket, ssl, sys, time
port, pki, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=pki + "/root-ca.crt")
ctx.load_cert_chain(pki + "/orders.crt", pki + "/orders.key")
raw = socket.socket()
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)	# a small window
raw.settimeout(30)
raw.connect(("127.0.0.1", port))
s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
s.sendall(b"GET /big?n=%d&mode=length HTTP/1.1\r\nHost: localhost\r\n\r\n" % n)
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(65536)
head, _, body = buf.partition(b"\r\n\r\n")
got, t0, end = len(body), time.time(), "?"
try:
    while got < n:
        slow = time.time() - t0 < 5
        d = s.recv(20000 if slow else 1 << 16)
        if not d:
            end = "close_notify"
            break
        got += len(d)
        if slow:
            time.sleep(0.1)
except (ssl.SSLError, OSError) as e:
    end = "error:%s" % e
print("status %s bytes %d end %s" % (head.split(b" ")[1].decode(), got, end))
if got == n:
    # idle now: the proxy closes after timeouts.idle
    t1 = time.time()
    try:
        d = s.recv(1)
        end = "close_notify" if d == b"" else "bytes"
    except (ssl.SSLError, OSError) as e:
        end = "error:%s" % e
    print("idle close %s after %.1f s" % (end, time.time() - t1))
PY
assert_eq "$(sed -n 1p "$TMPDIR/dl.out")" "status 200 bytes $N end ?" "slow download (client reads 200 kB/s for 5 s, idle 2 s)"
line=$(sed -n 2p "$TMPDIR/dl.out")
case $line in
"idle close close_notify after "[234].*) ;;
*) fail "after the download, on an idle connection: [$line], want a close about 2 s later" ;;
esac
assert_log_contains 'info request listener=dl .*status=200 .*bytes_out=16777' 
assert_log_contains 'info access listener=dl .*close=idle_timeout'
pass "a client reading a 16 MiB answer at 200 kB/s (idle 2 s) gets all of it; its idle connection is closed 2 s later"

stop_proxy
[ "$PROXY_RC" = 0 ] || fail "mtlsproxy exited with $PROXY_RC"
pass "clean exit"
