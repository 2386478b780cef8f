#!/usr/bin/env bash
# 200 TLS connections at once from one Node.js process, each sending 4 KiB
# and getting exactly those bytes back; then a second wave, to show nothing
# leaked or stuck after the first.
. "$(dirname -- "$0")/lib.sh"

ECHO_PORT=$(free_port)
PORT=$(free_port)
start_echo "$ECHO_PORT"
{
	config_head
	config_listener conc "$PORT" "\"127.0.0.1:$ECHO_PORT\"" "      allow:
        subject_cn: [orders]"
} >"$TMPDIR/conc.yaml"
start_proxy "$TMPDIR/conc.yaml"

N=200
for wave in 1 2; do
	log_mark
	t0=$(now_ms)
	node_client "$PORT" --cert "$PKI/orders.crt" --key "$PKI/orders.key" \
	    --connections "$N" --send-size 4096 --timeout 40000
	ms=$(($(now_ms) - t0))
	[ "$NODE_RC" -eq 0 ] || fail "wave $wave: $(cat "$NODE_OUT") (after ${ms} ms)"
	grep -q -x "ok $N" "$NODE_OUT" || fail "wave $wave: unexpected output: $(cat "$NODE_OUT")"
	# every connection was logged once, with its bytes
	n=0
	for i in $(seq 50); do
		n=$(new_log_lines | grep -c ' access .*bytes_in=4096 bytes_out=4096' || true)
		[ "$n" -ge "$N" ] && break
		sleep 0.1
	done
	[ "$n" -eq "$N" ] || fail "wave $wave: $n access lines with bytes_in=4096 bytes_out=4096, want $N"
	assert_log_lacks 'refused.*CN=orders'
	pass "wave $wave: $N concurrent connections echoed 4 KiB each in ${ms} ms"
done

kill -0 "$PROXY_PID" 2>/dev/null || fail "mtlsproxy died"
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
