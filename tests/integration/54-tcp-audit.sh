#!/usr/bin/env bash
# tcp mode and unix-socket backends, as a sysadmin meets them.
#
# timeouts.idle is about traffic, not about the proxy's own reads and
# writes: a slow client reading a large download (or a slow backend reading
# a large upload) takes its bytes from the megabytes the kernel queued for
# it, and the proxy may not write for longer than timeouts.idle. Such a
# connection is not idle: every byte arrives, and the close is the
# backend's (it was cut at timeouts.idle, the rest lost behind a clean TLS
# close).
#
# unix:/path backends: a connect that fails says why in words (no socket
# file there; the file is not a socket; nothing listens on the socket; the
# user mtlsproxy runs as has no permission), and a backend whose listen
# queue is full (connect() fails at once with EAGAIN, where TCP would retry
# its SYN) is waited for up to backend.connect_timeout, as a TCP backend is;
# still full then, the log says so.
. "$(dirname -- "$0")/lib.sh"

BACKEND_PY=$ITEST_DIR/tcp-audit-backend.py
CLIENT_PY=$ITEST_DIR/tcp-audit-client.py

# start_backend NAME WHERE MODE [ARGS]: tcp-audit-backend.py, waits (max 5 s)
# for its "ready" line.
start_backend() {
	local name=$1 pid i
	shift
	python3 "$BACKEND_PY" "$@" >"$TMPDIR/be-$name.log" 2>&1 &
	pid=$!
	track "$pid"
	for i in $(seq 50); do
		grep -q '^ready$' "$TMPDIR/be-$name.log" && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	fail "backend $name ($*) did not start: $(tail -n 3 "$TMPDIR/be-$name.log")"
}

# listener NAME PORT BACKEND IDLE CONNECT_TIMEOUT
listener() {
	config_listener "$1" "$2" "\"$3\"" |
	    sed -e "s/^      connect_timeout: .*/      connect_timeout: $5/" \
	    -e "s/^      idle: .*/      idle: $4/"
}

N=$((16 * 1024 * 1024))
DL_PORT=$(free_port)
DL_BACKEND=$(free_port)
UL_PORT=$(free_port)
UL_BACKEND=$(free_port)
P_MISSING=$(free_port)
P_NOTSOCK=$(free_port)
P_STALE=$(free_port)
P_BUSY=$(free_port)
P_FULL=$(free_port)
P_PERM=$(free_port)
P_RST=$(free_port)
RST_BACKEND=$(free_port)

start_backend dl "$DL_BACKEND" send "$N"
start_backend rst "$RST_BACKEND" reset 100000
start_backend ul "$UL_BACKEND" slowread 200000 5
: >"$TMPDIR/notsock.sock"
start_backend stale "unix:$TMPDIR/stale.sock" unlistened
start_backend full "unix:$TMPDIR/full.sock" busy 60

{
	config_head
	listener dl "$DL_PORT" "127.0.0.1:$DL_BACKEND" 2s 2s
	listener ul "$UL_PORT" "127.0.0.1:$UL_BACKEND" 2s 2s
	listener missing "$P_MISSING" "unix:$TMPDIR/missing.sock" 10s 2s
	listener notsock "$P_NOTSOCK" "unix:$TMPDIR/notsock.sock" 10s 2s
	listener stale "$P_STALE" "unix:$TMPDIR/stale.sock" 10s 2s
	listener busy "$P_BUSY" "unix:$TMPDIR/busy.sock" 10s 5s
	listener full "$P_FULL" "unix:$TMPDIR/full.sock" 10s 1s
	listener rst "$P_RST" "127.0.0.1:$RST_BACKEND" 10s 2s
} >"$TMPDIR/audit.yaml"
grep -q '^      idle: 2s$' "$TMPDIR/audit.yaml" && grep -q '^      connect_timeout: 1s$' "$TMPDIR/audit.yaml" ||
    fail "test setup: the timeouts were not set in $TMPDIR/audit.yaml"
start_proxy "$TMPDIR/audit.yaml" "$DL_PORT"
for p in "$UL_PORT" "$P_RST" "$P_MISSING" "$P_NOTSOCK" "$P_STALE" "$P_BUSY" "$P_FULL"; do
	wait_port "$p" "$PROXY_PID" 5 || fail "listener on 127.0.0.1:$p does not accept"
done

# ------------------------------------- idle: a slow reader is not idle

# The client reads 200 kB/s for 5 s (idle is 2 s), then the rest at full
# speed: the proxy's own writes stop for seconds while the kernel's queue
# drains, which is still traffic.
log_mark
timeout -k 2 60 python3 "$CLIENT_PY" "$DL_PORT" "$PKI" 200000 5 >"$TMPDIR/dl.out" 2>&1
DL=$(tail -n 1 "$TMPDIR/dl.out")
[ "$DL" = "bytes $N end close_notify" ] ||
    fail "slow download: got [$DL], want [bytes $N end close_notify]; $(new_log_lines | grep ' access ' | grep -o 'bytes_out=.*')"
assert_log_contains ' access ' 'listener=dl ' "bytes_out=$N " 'close=backend_closed'
assert_log_lacks 'close=idle_timeout'
pass "a client reading 200 kB/s (idle 2 s) gets all $N bytes, then close_notify; close=backend_closed"

# The other way: the backend reads 200 kB/s for 5 s, then the rest.
log_mark
node_client "$UL_PORT" --cert "$PKI/orders.crt" --key "$PKI/orders.key" \
    --send-size "$N" --half-close --timeout 40000
[ "$NODE_RC" -eq 0 ] && grep -q -x "got $N" "$NODE_OUT" ||
    fail "slow upload: client got [$(head -c 200 "$NODE_OUT")] ($NODE_RC $(tail -n 1 "$NODE_ERR")), want [got $N]; backend: $(tail -n 1 "$TMPDIR/be-ul.log")"
assert_log_contains ' access ' 'listener=ul ' "bytes_in=$N " 'close=client_closed'
assert_log_lacks 'close=idle_timeout'
pass "a backend reading 200 kB/s (idle 2 s) gets all $N bytes and answers; close=client_closed"

# ----------------------------- a backend that breaks off: no close_notify
# The backend sends 100 kB, then resets the connection. A close_notify
# would tell the client the stream ended whole; without one, the client
# sees the truncation (Python: EOF in violation of protocol).
log_mark
timeout -k 2 30 python3 "$CLIENT_PY" "$P_RST" "$PKI" 10000000 0 >"$TMPDIR/rst.out" 2>&1
RST=$(tail -n 1 "$TMPDIR/rst.out")
case $RST in
"bytes "*" end eof" | "bytes "*" end error:UNEXPECTED_EOF_WHILE_READING") ;;
*) fail "backend reset: the client got [$RST], want the end without close_notify (end eof)" ;;
esac
assert_log_contains ' access ' 'listener=rst ' 'close="backend_error: Connection reset by peer"'
pass "a backend that resets the connection: the client's stream ends without close_notify (truncation visible); close=backend_error"

# ------------------------------------------- unix: why a connect failed

# unix_refused LISTENER PORT RE: the client gets a clean TLS close, and the
# warn line for the connect matches RE (after the errno text).
unix_refused() {
	local name=$1 port=$2 re=$3
	log_mark
	s_client_send "$port" "hello\n" "" -cert "$PKI/orders.crt" -key "$PKI/orders.key"
	grep -q 'hello' "$SCLIENT_OUT" && fail "$name: an answer came back: $(head -c 100 "$SCLIENT_OUT")"
	assert_log_contains "warn listener \"$name\": backend connect failed: unix:$TMPDIR/$name\\.sock: $re"
	assert_log_contains ' access ' "listener=$name " 'close=backend_unavailable'
	pass "$name: $(new_log_lines | grep -m1 -o 'backend connect failed: .*')"
}

unix_refused missing "$P_MISSING" 'No such file or directory \(no socket file there: is the backend running and listening on this path\?\)$'
unix_refused notsock "$P_NOTSOCK" 'Connection refused \(the file there is not a socket: '
unix_refused stale "$P_STALE" 'Connection refused \(nothing listens on this socket file: '

# ------------------------------------- unix: a full listen queue waits

# The backend's queue is full for 1.5 s from now, then it accepts: within
# connect_timeout (5 s), so the client is served.
start_backend busy "unix:$TMPDIR/busy.sock" busy 1.5
log_mark
t0=$(now_ms)
s_client_send "$P_BUSY" "ping" "echo:ping" -cert "$PKI/orders.crt" -key "$PKI/orders.key"
ms=$(($(now_ms) - t0))
grep -q -F 'echo:ping' "$SCLIENT_OUT" ||
    fail "busy unix backend (queue full for 1.5 s, connect_timeout 5 s): no answer [$(head -c 100 "$SCLIENT_OUT")]; $(new_log_lines | grep -m1 'connect failed')"
[ "$ms" -ge 1000 ] || fail "test setup: the answer came after $ms ms, so the backend's queue was not full"
assert_log_lacks 'backend connect failed'
assert_log_contains ' access ' 'listener=busy ' 'bytes_out=9 ' 'close=backend_closed'
pass "unix backend with a full listen queue for 1.5 s: waited for, answered after $ms ms"

# Full for longer than connect_timeout (1 s): refused, and the log says why.
log_mark
t0=$(now_ms)
s_client_send "$P_FULL" "ping" "" -cert "$PKI/orders.crt" -key "$PKI/orders.key"
ms=$(($(now_ms) - t0))
grep -q 'echo' "$SCLIENT_OUT" && fail "full unix backend: an answer came back"
[ "$ms" -ge 900 ] || fail "full unix backend: the client was closed after $ms ms, before connect_timeout (1 s)"
assert_log_contains "warn listener \"full\": backend connect failed: unix:$TMPDIR/full\\.sock: Resource temporarily unavailable \\(the backend's listen queue stayed full for 1000 ms \\(backend\\.connect_timeout\\): it accepts connections more slowly than they come\\)$"
assert_log_contains ' access ' 'listener=full ' 'close=backend_unavailable'
pass "unix backend full for over connect_timeout: closed after $ms ms; the log says the listen queue stayed full"

stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"

# ---------------------------------- unix: no permission on the socket

# A socket mtlsproxy's user may not write to. As root, the proxy runs as
# nobody (user:) and the socket is root's with mode 0600; as another user,
# the socket's mode is 0000.
start_backend perm "unix:$TMPDIR/perm.sock" echo
if [ "$(id -u)" -eq 0 ]; then
	if ! id nobody >/dev/null 2>&1; then
		log "SKIP (permission part): no user nobody to run the proxy as"
		exit 0
	fi
	chmod 0600 "$TMPDIR/perm.sock"
	USER_LINE="user: nobody"
	WANT_UID=$(id -u nobody)
else
	chmod 0000 "$TMPDIR/perm.sock"
	USER_LINE=
	WANT_UID=$(id -u)
fi
{
	[ -n "$USER_LINE" ] && printf '%s\n' "$USER_LINE"
	config_head
	listener perm "$P_PERM" "unix:$TMPDIR/perm.sock" 10s 2s
} >"$TMPDIR/perm.yaml"
start_proxy "$TMPDIR/perm.yaml" "$P_PERM"
unix_refused perm "$P_PERM" "Permission denied \\(mtlsproxy runs as uid $WANT_UID, gid [0-9]+: it needs write permission on the socket file and search permission on each folder above it\\)$"
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy (perm) exited $PROXY_RC on SIGTERM"
