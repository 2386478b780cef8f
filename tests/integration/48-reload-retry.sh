#!/usr/bin/env bash
# reload: watch, a reload that fails after a file change is retried after
# 1, 2, 4, 8 and 16 s (then every 30 s, up to 10 retries: the unit test
# covers the end); meanwhile the old configuration serves. A new change
# starts the count again: once the files are right the reload succeeds,
# and the next failure is retried after 1 s again.
. "$(dirname -- "$0")/lib.sh"

C=$TMPDIR/certs
mkdir -p "$C"
cp "$PKI/server-fullchain.crt" "$C/server.crt"
cp "$PKI/server.key" "$C/server.key"
ECHO_PORT=$(free_port)
PORT=$(free_port)
start_echo "$ECHO_PORT"
CONF=$TMPDIR/retry.yaml
{
	config_head | sed -e 's/^workers: 2$/workers: 1\nreload: watch/'
	config_listener api "$PORT" "\"127.0.0.1:$ECHO_PORT\"" "" "      cert: $C/server.crt
      key: $C/server.key"
} >"$CONF"
start_proxy "$CONF"

# echo_ok: orders still gets an echo
echo_ok() {
	node_client "$PORT" --cert "$PKI/orders.crt" --key "$PKI/orders.key" --send "hi\n" --echo --timeout 5000
	[ "$NODE_RC" -eq 0 ] || fail "$1: orders got no echo: $(cat "$NODE_OUT")"
}

# A key that does not match the certificate: every retry fails.
log_mark
T0=$(now_ms)
cat "$PKI/billing.key" >"$C/server.key"
for s in 1 2 4 8 16; do
	for i in $(seq 400); do
		log_has_line "info will try the reload again in $s s\$" && break
		sleep 0.05
	done
	log_has_line "info will try the reload again in $s s\$" ||
	    fail "no 'will try the reload again in $s s' ($(new_log_lines | grep -o 'again in [0-9]* s' | tr '\n' ' '))"
done
MS=$(($(now_ms) - T0))
[ "$MS" -ge 14000 ] || fail "the retries after 1, 2, 4 and 8 s came after $MS ms in all, want at least 15 s"
SCHED=$(new_log_lines | grep -o 'again in [0-9]* s' | sed 's/again in //' | tr '\n' ' ')
[ "$SCHED" = "1 s 2 s 4 s 8 s 16 s " ] || fail "retry schedule: $SCHED"
[ "$(new_log_lines | grep -c 'reload failed (1 error)')" -eq 5 ] || fail "want 5 failed reloads so far: $(new_log_lines | grep -c 'reload failed')"
echo_ok "while the reload fails"
pass "a failing reload retried after 1, 2, 4, 8, then 16 s ($MS ms for the first four); still serving"

# The key put right: the change reloads at once (not after the 16 s).
log_mark
cat "$PKI/server.key" >"$C/server.key"
for i in $(seq 60); do
	log_has_line 'info reloaded: generation' && break
	sleep 0.05
done
assert_log_contains 'info reloaded: generation 2 in use'
echo_ok "after the key was put right"
# ... and the count starts again.
log_mark
cat "$PKI/billing.key" >"$C/server.key"
assert_log_contains 'info will try the reload again in 1 s$'
pass "a new change reloads at once; the next failure is retried after 1 s again"
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
