#!/usr/bin/env bash
# Limits and timeouts as a user sees them:
#  - max_connections: 2: two idle TLS connections are served; a third waits
#    (its handshake does not complete) until one of the two closes, then it
#    completes and echoes;
#  - timeouts.handshake: 1s: a TCP client that sends nothing is closed after
#    about 1 s, and the log says code=handshake_timeout;
#  - timeouts.idle: 1s: an established connection left idle is closed (the
#    client sees EOF) and the access line says close=idle_timeout; one that
#    keeps talking is not.
. "$(dirname -- "$0")/lib.sh"

ECHO_PORT=$(free_port)
P_MAX=$(free_port)
P_HS=$(free_port)
P_IDLE=$(free_port)
start_echo "$ECHO_PORT"

# listener NAME PORT HANDSHAKE IDLE [EXTRA]
listener() {
	cat <<EOF
  - name: $1
    listen: "127.0.0.1:$2"
    tls:
      cert: $PKI/server-fullchain.crt
      key: $PKI/server.key
    client_auth:
      ca: $PKI/client-ca.pem
    backend:
      address: "127.0.0.1:$ECHO_PORT"
      mode: tcp
      connect_timeout: 2s
    timeouts:
      handshake: $3
      idle: $4
EOF
	[ -n "${5:-}" ] && printf '%s\n' "$5"
	return 0
}
{
	cat <<EOF
workers: 2
drain_timeout: 2s
log:
  level: debug
  format: text
  access: true
listeners:
EOF
	listener limited "$P_MAX" 5s 60s "    max_connections: 2"
	listener hs "$P_HS" 1s 60s
	listener idle "$P_IDLE" 5s 1s
} >"$TMPDIR/limits.yaml"
start_proxy "$TMPDIR/limits.yaml" "$P_MAX"
wait_port "$P_HS" "$PROXY_PID" 5 || fail "listener on 127.0.0.1:$P_HS does not accept"
wait_port "$P_IDLE" "$PROXY_PID" 5 || fail "listener on 127.0.0.1:$P_IDLE does not accept"
sleep 0.3	# let the sessions of the port probes above end

declare -A LPID LFD
# open_lines NAME PORT: an interactive client.js (--lines) as orders on
# PORT; its stdin is a FIFO this shell writes to (fd ${LFD[NAME]}); its
# output in $TMPDIR/NAME.out ("connected", then "echo: LINE" per line).
open_lines() {
	local name=$1 port=$2 fifo=$TMPDIR/$1.in fd
	rm -f "$fifo"
	mkfifo "$fifo" || fail "mkfifo $fifo"
	node "$ITEST_DIR/client.js" 127.0.0.1 "$port" --ca "$PKI/root-ca.crt" \
	    --cert "$PKI/orders.crt" --key "$PKI/orders.key" --lines \
	    <"$fifo" >"$TMPDIR/$name.out" 2>"$TMPDIR/$name.err" &
	LPID[$name]=$!
	track "${LPID[$name]}"
	exec {fd}<>"$fifo"	# read-write: never blocks, keeps the FIFO open
	LFD[$name]=$fd
}

# send_line NAME LINE
send_line() {
	printf '%s\n' "$2" >&"${LFD[$1]}"
}

# wait_output NAME REGEX SECONDS: wait until NAME's output has a line
# matching REGEX.
wait_output() {
	local i
	for i in $(seq $(($3 * 20))); do
		grep -q -E -- "$2" "$TMPDIR/$1.out" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# stop_client NAME: kill the client by PID (its TCP connection closes).
stop_client() {
	local pid=${LPID[$1]}
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	untrack "$pid"
}

# ------------------------------------------------------- max_connections
log_mark
open_lines c1 "$P_MAX"
open_lines c2 "$P_MAX"
wait_output c1 '^connected$' 5 || fail "max_connections 2: connection 1 did not complete its handshake: $(cat "$TMPDIR/c1.out" "$TMPDIR/c1.err")"
wait_output c2 '^connected$' 5 || fail "max_connections 2: connection 2 did not complete its handshake: $(cat "$TMPDIR/c2.out" "$TMPDIR/c2.err")"
send_line c1 "one"
send_line c2 "two"
wait_output c1 '^echo: one$' 5 || fail "max_connections 2: connection 1 got no echo"
wait_output c2 '^echo: two$' 5 || fail "max_connections 2: connection 2 got no echo"

open_lines c3 "$P_MAX"
t0=$(now_ms)
sleep 1.5
grep -q '^connected$' "$TMPDIR/c3.out" &&
    fail "max_connections 2: a third connection completed its handshake while two were open"
kill -0 "${LPID[c3]}" 2>/dev/null ||
    fail "max_connections 2: the third client gave up instead of waiting: $(cat "$TMPDIR/c3.out")"
assert_log_contains 'max_connections'
pass "max_connections 2: the third connection waits ($(($(now_ms) - t0)) ms so far)"

log_mark
stop_client c1
t1=$(now_ms)
wait_output c3 '^connected$' 5 ||
    fail "max_connections 2: the third connection did not complete within 5 s after one of the two closed: $(cat "$TMPDIR/c3.out" "$TMPDIR/c3.err")"
send_line c3 "three"
wait_output c3 '^echo: three$' 5 || fail "max_connections 2: the third connection got no echo: $(cat "$TMPDIR/c3.out")"
pass "max_connections 2: the third connection completed $(($(now_ms) - t1)) ms after one closed, and echoes"
# the second one still works
send_line c2 "two again"
wait_output c2 '^echo: two again$' 5 || fail "max_connections 2: connection 2 stopped working"
assert_log_contains ' access ' 'listener=limited ' 'close=client_closed'
stop_client c2
stop_client c3
assert_log_contains ' access ' 'listener=limited ' 'bytes_in=14 ' 'bytes_out=14 '	# c2
assert_log_contains ' access ' 'listener=limited ' 'bytes_in=6 ' 'bytes_out=6 '	# c3
pass "max_connections: access lines written as the connections close"

# ----------------------------------------------------- handshake timeout
log_mark
HS_OUT=$(python3 - "$P_HS" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
s.settimeout(5)
t0 = time.monotonic()
try:
    data = s.recv(4096)
    how = "eof" if data == b"" else "data:%r" % data[:40]
except socket.timeout:
    how = "timeout"
except OSError as e:
    how = "error:%s" % e.__class__.__name__
print("%s %d" % (how, (time.monotonic() - t0) * 1000))
PY
)
how=${HS_OUT% *}
ms=${HS_OUT##* }
case $how in
eof | error:ConnectionResetError) ;;
timeout) fail "handshake 1s: a silent TCP client was still connected after 5 s" ;;
*) fail "handshake 1s: unexpected outcome for a silent TCP client: $HS_OUT" ;;
esac
[ "$ms" -ge 800 ] || fail "handshake 1s: the silent client was closed after only ${ms} ms"
[ "$ms" -le 3000 ] || fail "handshake 1s: the silent client was closed only after ${ms} ms"
assert_log_contains ' refused ' 'listener=hs ' 'peer=127\.0\.0\.1:' 'code=handshake_timeout'
# the refused line is its only line: no access line (docs/operations.md)
sleep 0.5
assert_log_lacks ' access .*listener=hs '
pass "handshake 1s: a silent TCP client is closed after ${ms} ms ($how), code=handshake_timeout, no access line"

# A TLS client is not affected: it completes well within the second.
node_client "$P_HS" --cert "$PKI/orders.crt" --key "$PKI/orders.key" --send "quick\n" --echo --timeout 5000
[ "$NODE_RC" -eq 0 ] || fail "handshake 1s: a normal client failed: $(cat "$NODE_OUT")"

# ---------------------------------------------------------- idle timeout
# One that keeps talking (a line every 0.4 s for ~2.4 s) stays up.
log_mark
open_lines busy "$P_IDLE"
wait_output busy '^connected$' 5 || fail "idle 1s: the busy client did not connect: $(cat "$TMPDIR/busy.out" "$TMPDIR/busy.err")"
for i in 1 2 3 4 5 6; do
	send_line busy "busy $i"
	wait_output busy "^echo: busy $i\$" 3 ||
	    fail "idle 1s: a connection active every 0.4 s was cut after line $((i - 1)): $(tail -n 2 "$TMPDIR/busy.out"); log: $(new_log_lines | grep access | tail -n 1)"
	t0=$(now_ms)	# the last traffic
	sleep 0.4
done
pass "idle 1s: a connection with traffic every 0.4 s stays open"

# Now it goes quiet: closed within 5 s, the client sees EOF.
closed=
for i in $(seq 100); do
	if ! kill -0 "${LPID[busy]}" 2>/dev/null; then
		closed=1
		break
	fi
	sleep 0.05
done
ms=$(($(now_ms) - t0))
[ -n "$closed" ] || fail "idle 1s: the idle connection was still open after 5 s"
wait "${LPID[busy]}" 2>/dev/null
untrack "${LPID[busy]}"
grep -q '^ERROR EOF' "$TMPDIR/busy.out" ||
    fail "idle 1s: the client did not see the server close the connection: $(tail -n 2 "$TMPDIR/busy.out")"
[ "$ms" -ge 800 ] || fail "idle 1s: closed after only ${ms} ms of silence"
assert_log_contains ' access ' 'listener=idle ' 'close=idle_timeout' 'subject="CN=orders,OU=payments,O=Demo Corp"'
assert_log_lacks ' access .*listener=idle .*close=(client_closed|backend_closed)'
pass "idle 1s: the idle connection was closed after ${ms} ms of silence (EOF), close=idle_timeout"

kill -0 "$PROXY_PID" 2>/dev/null || fail "mtlsproxy died"
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
