#!/usr/bin/env bash
# SIGTERM drains: the proxy stops accepting at once, an open connection
# keeps working until its client closes it, then the process exits 0; a
# connection that stays open is cut at drain_timeout (5 s) and the process
# still exits 0.
. "$(dirname -- "$0")/lib.sh"

ECHO_PORT=$(free_port)
PORT=$(free_port)
start_echo "$ECHO_PORT"
{
	DRAIN_TIMEOUT=5s config_head
	config_listener drain "$PORT" "\"127.0.0.1:$ECHO_PORT\""
} >"$TMPDIR/drain.yaml"
grep -q 'drain_timeout: 5s' "$TMPDIR/drain.yaml" || fail "config lacks drain_timeout: 5s"

# open_held_client: a client.js --lines connection fed from a FIFO on fd 3;
# each line written to fd 3 is sent, and "echo: LINE" appears in $HELD_OUT.
open_held_client() {
	HELD_OUT=$TMPDIR/held-$1.out
	rm -f "$TMPDIR/held.fifo"
	mkfifo "$TMPDIR/held.fifo"
	node "$ITEST_DIR/client.js" 127.0.0.1 "$PORT" --ca "$PKI/root-ca.crt" \
	    --cert "$PKI/orders.crt" --key "$PKI/orders.key" --lines \
	    <"$TMPDIR/held.fifo" >"$HELD_OUT" 2>"$TMPDIR/held-$1.err" &
	HELD_PID=$!
	track "$HELD_PID"
	# read-write: never blocks, even if the client failed to start
	exec 3<>"$TMPDIR/held.fifo"
}

# held_say LINE: send LINE on the held connection and wait (max 5 s) for it
# to come back.
held_say() {
	local i
	printf '%s\n' "$1" >&3
	for i in $(seq 50); do
		grep -q -x -F "echo: $1" "$HELD_OUT" && return 0
		grep -q '^ERROR' "$HELD_OUT" && break
		sleep 0.1
	done
	fail "the held connection did not echo \"$1\": $(cat "$HELD_OUT")"
}

# held_wait_exit SECONDS: wait for the held client to exit; sets HELD_RC.
held_wait_exit() {
	local i
	for i in $(seq $(($1 * 10))); do
		kill -0 "$HELD_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$HELD_PID" 2>/dev/null && fail "the held client is still running after $1 s: $(cat "$HELD_OUT")"
	wait "$HELD_PID"
	HELD_RC=$?
	untrack "$HELD_PID"
}

# --- 1. the client closes during the drain
start_proxy "$TMPDIR/drain.yaml"
open_held_client 1
held_say "before SIGTERM"
log_mark
t_term=$(now_ms)
kill -TERM "$PROXY_PID"

# New connections are no longer accepted (within 2 s).
closed=
for i in $(seq 20); do
	if ! port_accepts "$PORT"; then
		closed=1
		break
	fi
	sleep 0.1
done
[ -n "$closed" ] || fail "127.0.0.1:$PORT still accepts TCP connections 2 s after SIGTERM"
node_client "$PORT" --cert "$PKI/orders.crt" --key "$PKI/orders.key" --send "new\n" --echo --timeout 5000
[ "$NODE_RC" -ne 0 ] || fail "a new connection after SIGTERM was served"
grep -q -x 'new' "$NODE_OUT" && fail "a new connection after SIGTERM got its echo"
pass "after SIGTERM a new connection fails: $(cat "$NODE_OUT")"

# The open connection still works.
kill -0 "$PROXY_PID" 2>/dev/null || fail "mtlsproxy exited while a connection was open (drain_timeout is 5 s)"
held_say "during the drain"
kill -0 "$PROXY_PID" 2>/dev/null || fail "mtlsproxy exited while a connection was open"
pass "the open connection still echoes during the drain"

# The client closes: the proxy exits 0, well before the drain deadline.
t_close=$(now_ms)
exec 3>&-
held_wait_exit 5
[ "$HELD_RC" -eq 0 ] || fail "the held client exited $HELD_RC: $(cat "$HELD_OUT")"
proxy_wait_exit 5 || fail "mtlsproxy still running 5 s after its last connection closed"
now=$(now_ms)
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC after the drain, want 0"
[ $((now - t_term)) -lt 6500 ] || fail "mtlsproxy took $((now - t_term)) ms after SIGTERM to exit"
assert_log_contains ' access ' 'listener=drain' 'subject="CN=orders'
pass "exit 0 $((now - t_close)) ms after the last connection closed ($((now - t_term)) ms after SIGTERM)"

# --- 2. the connection stays open: cut at the drain deadline, exit 0
start_proxy "$TMPDIR/drain.yaml"
open_held_client 2
held_say "held through the deadline"
t_term=$(now_ms)
kill -TERM "$PROXY_PID"
sleep 1
kill -0 "$PROXY_PID" 2>/dev/null || fail "mtlsproxy exited 1 s after SIGTERM with a connection open (drain_timeout 5 s)"
held_say "still here after 1 s"
proxy_wait_exit 9 || fail "mtlsproxy still running 9 s after SIGTERM (drain_timeout is 5 s)"
ms=$(($(now_ms) - t_term))
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC at the drain deadline, want 0"
[ "$ms" -ge 4000 ] || fail "mtlsproxy exited after ${ms} ms, before the 5 s drain deadline"
[ "$ms" -le 8000 ] || fail "mtlsproxy exited after ${ms} ms, long after the 5 s drain deadline"
held_wait_exit 5
exec 3>&-
pass "connection cut and exit 0 at the deadline (${ms} ms after SIGTERM; client: $(tail -n 1 "$HELD_OUT"))"
