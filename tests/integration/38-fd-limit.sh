#!/usr/bin/env bash
# The open file limit, as a user started from a shell or a container meets
# it:
#  - a soft limit below the hard one (a shell's usual 1024 under a large hard
#    limit) is raised to the hard limit at start-up, so max_connections is
#    not cut short silently;
#  - a hard limit too small for max_connections (here 100 descriptors for
#    the default 10000 connections of a tcp listener) is said at start-up
#    with the numbers and what to change, and the daemon serves as many
#    clients at once as the descriptors allow while the others wait in the
#    accept queue: 40 clients at once all get their echo, none is accepted
#    and then dropped for want of a descriptor for its backend; a second
#    listener limited to 3 connections keeps its 3.
. "$(dirname -- "$0")/lib.sh"

ECHO_PORT=$(free_port)
P=$(free_port)
start_echo "$ECHO_PORT"
P_SMALL=$(free_port)
{
	config_head
	config_listener api "$P" "\"127.0.0.1:$ECHO_PORT\""
	config_listener small "$P_SMALL" "\"127.0.0.1:$ECHO_PORT\""
	echo "    max_connections: 3"
} >"$TMPDIR/fd.yaml"

# soft_limit PID: the soft "Max open files" of a process
soft_limit() {
	awk '/^Max open files/ { print $4 }' "/proc/$1/limits"
}

hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -gt 1024 ]; then
	PROXY_ULIMIT="-S -n 256" start_proxy "$TMPDIR/fd.yaml"
	want=$hard
	[ "$want" = unlimited ] || [ "$want" -gt 1048576 ] && want=1048576
	[ "$(soft_limit "$PROXY_PID")" = "$want" ] ||
	    fail "soft open file limit is $(soft_limit "$PROXY_PID"), want the hard limit $want"
	assert_log_contains "debug open file limit raised from 256 to $want"
	assert_log_lacks "warn the open file limit is"
	stop_proxy
	pass "a soft open file limit of 256 is raised to $want (the hard limit)"
else
	log "hard open file limit $hard: nothing to raise, part 1 skipped"
fi

PROXY_ULIMIT="-n 100" start_proxy "$TMPDIR/fd.yaml"
[ "$(soft_limit "$PROXY_PID")" = 100 ] || fail "open file limit is $(soft_limit "$PROXY_PID"), want 100"
# 64 reserved + 2 workers * (4 + 2 listeners) = 76; (100 - 76) / 2 = 12
# connections: "small" keeps its 3, "api" (10000 by default) gets 9
assert_log_contains "warn the open file limit is 100 \(hard limit 100\), but max_connections needs about 20082 descriptors \(two per client connection\): serving at most 12 client connections at once over all listeners, the others wait until some close; raise the limit \(LimitNOFILE= in the systemd unit, --ulimit nofile= for docker run, ulimit -n in a shell\) or lower max_connections"
pass "a hard limit of 100 descriptors is reported with what it allows"

# burst PORT N: N clients at once on PORT, each echoing 20000 bytes; all
# must get their echo
burst() {
	log_mark
	node_client "$1" --ca "$PKI/root-ca.crt" --cert "$PKI/orders.crt" \
	    --key "$PKI/orders.key" --connections "$2" --send-size 20000 --timeout 30000
	[ "$NODE_RC" = 0 ] && grep -q -x "ok $2" "$NODE_OUT" ||
	    fail "$2 clients at once on 127.0.0.1:$1: rc $NODE_RC: $(cat "$NODE_OUT") $(tail -n 3 "$NODE_ERR")"
}

burst "$P_SMALL" 3
# the limit line names the limit in force: 3, not less
assert_log_contains 'warn listener "small": max_connections \(3\) reached'
assert_log_lacks 'listener "small": max_connections \([0-2]\)'
pass "a listener with max_connections 3 keeps its 3 (the big one gives way)"

burst "$P" 40
assert_log_contains 'warn listener "api": max_connections \(9\) reached; new connections wait'
n=$(new_log_lines | grep -c ' access listener=api .*close=')
[ "$n" = 40 ] || fail "want 40 access lines, got $n"
new_log_lines | grep -q -i -E 'too many open files|backend .*(failed|unreachable)|refused' &&
    fail "a client failed for want of descriptors: $(new_log_lines | grep -m1 -i -E 'too many open files|backend|refused')"
pass "40 clients at once under 100 descriptors: at most 9 served at a time, all 40 echoed"

# still serving after the burst
node_client "$P" --ca "$PKI/root-ca.crt" --cert "$PKI/orders.crt" --key "$PKI/orders.key" \
    --send "after" --echo
[ "$NODE_RC" = 0 ] || fail "a client after the burst: $(cat "$NODE_OUT")"
stop_proxy
[ "$PROXY_RC" = 0 ] || fail "mtlsproxy exited with $PROXY_RC"
pass "still serving after the burst; clean exit"
