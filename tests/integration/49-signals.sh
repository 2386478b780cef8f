#!/usr/bin/env bash
# SIGUSR1 and SIGUSR2 (what log rotation sends to daemons with a log file)
# neither stop nor reload the proxy: each is logged at info with what to do
# instead, and the proxy goes on serving. The signals the proxy acts on
# are in its --help.
. "$(dirname -- "$0")/lib.sh"

ECHO_PORT=$(free_port)
PORT=$(free_port)
start_echo "$ECHO_PORT"
{
	config_head
	config_listener echo "$PORT" "\"127.0.0.1:$ECHO_PORT\""
} >"$TMPDIR/signals.yaml"
start_proxy "$TMPDIR/signals.yaml"

for sig in USR1 USR2 USR1; do
	log_mark
	kill -"$sig" "$PROXY_PID" || fail "cannot send SIG$sig to $PROXY_PID"
	assert_log_contains "info SIG$sig ignored: mtlsproxy logs to stderr \(the journal\), so there is no log file to reopen; reload is SIGHUP\$"
	kill -0 "$PROXY_PID" 2>/dev/null || fail "mtlsproxy exited on SIG$sig"
	MSG="still serving after SIG$sig $$"
	s_client_send "$PORT" "$MSG\n" "$MSG" -cert "$PKI/orders.crt" -key "$PKI/orders.key"
	grep -q -F -- "$MSG" "$SCLIENT_OUT" ||
	    fail "no echo after SIG$sig (rc $SCLIENT_RC): $(tail -n 3 "$SCLIENT_ERR")"
	assert_log_lacks 'reloading|no longer accepting'
	pass "SIG$sig: logged, ignored, still serving"
done

stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM after the USR signals"
pass "SIGTERM after them: exit 0"

"$MTLSPROXY" --help >"$TMPDIR/help.out" 2>&1 || fail "--help exited $?"
for sig in SIGTERM SIGINT SIGHUP SIGUSR1 SIGUSR2; do
	grep -q -w "$sig" "$TMPDIR/help.out" || fail "--help does not mention $sig: $(cat "$TMPDIR/help.out")"
done
grep -q 'SIGHUP reloads' "$TMPDIR/help.out" || fail "--help does not say what SIGHUP does"
pass "--help lists SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2"
