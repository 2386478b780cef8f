#!/usr/bin/env bash
# Several backend addresses (backend.address as a list):
#  - balance: round_robin spreads new connections over them in turn (http
#    mode: 20 curl requests, 10 to each of two backends; tcp mode: 10 Node
#    clients, 5 to each);
#  - with backend.keepalive, kept backend connections are reused and
#    requests still go round (20 clients: 10 requests to each backend over
#    at most 10 backend connections);
#  - the default, failover, sends every connection to the first;
#  - least_conn: beside a connection held to one address, the next ones
#    (tcp mode) all go to the other, also after a reload (SIGHUP) that
#    keeps the addresses; /metrics counts connections in use per address,
#    and none once every client has gone;
#  - an address whose connect fails is passed over for 10 s (the default
#    backend.fail_timeout) while another answers, so clients do not each
#    wait for it: [refused, live, live]
#    with round_robin: 30 requests all answered, the refused one tried once;
#    [no answer, live] with connect_timeout 1s: 6 requests, one wait;
#  - when every address has failed, all are tried again: [down, down] gives
#    502; once the second comes up, the next request gets 200 and the log
#    says it answers again; after that it is used without trying the other;
#  - /metrics: mtlsproxy_backend_address_passed_over is 1 for an address
#    being passed over, 0 for the others;
#  - backend.fail_timeout sets how long (1500ms: passed over, then tried
#    again 1.6 s later); 0 turns passing over off;
#  - a misspelt balance is a config error naming file:line:column.
. "$(dirname -- "$0")/lib.sh"
. "$ITEST_DIR/http-lib.sh"

B1=$(free_port)
B2=$(free_port)
E1=$(free_port)
E2=$(free_port)
DEAD=$(free_port)
LATE=$(free_port)
SILENT=$(free_port)
P_RR=$(free_port)
P_FO=$(free_port)
P_RRK=$(free_port)
P_RR3=$(free_port)
P_TCP=$(free_port)
P_LC=$(free_port)
P_SIL=$(free_port)
P_ALL=$(free_port)
P_FT=$(free_port)
P_FT0=$(free_port)
start_http_backend "$B1"
LOG_B1=$HB_LOG
start_http_backend "$B2"
LOG_B2=$HB_LOG
start_echo "$E1"
start_echo "$E2"
port_accepts "$DEAD" && fail "port $DEAD was supposed to be free"
port_accepts "$LATE" && fail "port $LATE was supposed to be free"

# A listener that never accepts, its accept queue full: connects to it get
# no answer.
start_silent "$SILENT"

PA=$(free_port)
{
	config_head | sed "s/^listeners:/admin:\\n  listen: \"127.0.0.1:$PA\"\\n&/"
	config_http_listener rr "$P_RR" "[\"127.0.0.1:$B1\", \"127.0.0.1:$B2\"]" "" \
	    "      balance: round_robin"
	config_http_listener rrk "$P_RRK" "[\"127.0.0.1:$B1\", \"127.0.0.1:$B2\"]" "" \
	    "      balance: round_robin
      keepalive: 8
      keepalive_timeout: 30s"
	config_http_listener fo "$P_FO" "[\"127.0.0.1:$B1\", \"127.0.0.1:$B2\"]"
	config_http_listener rr3 "$P_RR3" \
	    "[\"127.0.0.1:$DEAD\", \"127.0.0.1:$B1\", \"127.0.0.1:$B2\"]" "" \
	    "      balance: round_robin"
	config_listener tcprr "$P_TCP" "[\"127.0.0.1:$E1\", \"127.0.0.1:$E2\"]" |
	    sed "s/^      mode: tcp\$/&\\n      balance: round_robin/"
	config_listener lc "$P_LC" "[\"127.0.0.1:$E1\", \"127.0.0.1:$E2\"]" |
	    sed "s/^      mode: tcp\$/&\\n      balance: least_conn/"
	config_http_listener sil "$P_SIL" "[\"127.0.0.1:$SILENT\", \"127.0.0.1:$B1\"]" |
	    sed "s/connect_timeout: 2s/connect_timeout: 1s/"
	config_http_listener all "$P_ALL" "[\"127.0.0.1:$DEAD\", \"127.0.0.1:$LATE\"]"
	config_http_listener ft "$P_FT" "[\"127.0.0.1:$DEAD\", \"127.0.0.1:$B1\"]" "" \
	    "      fail_timeout: 1500ms"
	config_http_listener ft0 "$P_FT0" "[\"127.0.0.1:$DEAD\", \"127.0.0.1:$B1\"]" "" \
	    "      fail_timeout: 0"
} >"$TMPDIR/bal.yaml"
"$MTLSPROXY" -t -c "$TMPDIR/bal.yaml" >"$TMPDIR/t.out" 2>&1 || fail "config check: $(cat "$TMPDIR/t.out")"
start_proxy "$TMPDIR/bal.yaml" "$P_RR"
for p in "$P_FT" "$P_FT0" "$P_RRK" "$P_FO" "$P_RR3" "$P_TCP" "$P_LC" "$P_SIL" "$P_ALL"; do
	wait_port "$p" "$PROXY_PID" 5 || fail "listener on 127.0.0.1:$p does not accept"
done

# reqs LOG: requests a backend has seen
reqs() {
	grep -c '^req ' "$1"
}

# gauge NAME LISTENER ADDRPORT: mtlsproxy_NAME{listener,address} on /metrics
gauge() {
	curl -sS --max-time 5 "http://127.0.0.1:$PA/metrics" |
	    grep -F "mtlsproxy_$1{listener=\"$2\",address=\"127.0.0.1:$3\"} " |
	    awk '{ print $2 }'
}
passed_over() {
	gauge backend_address_passed_over "$@"
}

# get_all PORT N WHAT: N requests, one connection each: all must get 200
get_all() {
	local i
	for i in $(seq "$2"); do
		hcurl "$1" "/headers?i=$i"
		[ "$HC_CODE" = 200 ] || fail "$3, request $i: $HC_CODE $(cat "$HC_ERR")"
	done
}

# spread PORT N WANT1 WANT2 WHAT: N requests, one connection each, all 200;
# WANT1 of them reach the first backend and WANT2 the second
spread() {
	local a1 a2 n1 n2
	a1=$(reqs "$LOG_B1")
	a2=$(reqs "$LOG_B2")
	get_all "$1" "$2" "$5"
	n1=$(($(reqs "$LOG_B1") - a1))
	n2=$(($(reqs "$LOG_B2") - a2))
	[ "$n1" = "$3" ] && [ "$n2" = "$4" ] ||
	    fail "$5: $n1 requests to the first backend and $n2 to the second, want $3 and $4"
}

spread "$P_RR" 20 10 10 "round_robin"
pass "round_robin (http): 20 connections, 10 to each backend"

# with backend.keepalive, kept connections are reused and requests still
# go round
c0=$(($(grep -c '^conn$' "$LOG_B1") + $(grep -c '^conn$' "$LOG_B2")))
spread "$P_RRK" 20 10 10 "round_robin with keepalive"
conns=$(($(grep -c '^conn$' "$LOG_B1") + $(grep -c '^conn$' "$LOG_B2") - c0))
[ "$conns" -le 10 ] || fail "round_robin with keepalive: $conns backend connections for 20 requests, want kept ones reused"
pass "round_robin with keepalive: 20 clients, 10 requests to each backend over $conns backend connections"

spread "$P_FO" 10 10 0 "failover"
pass "failover (the default): 10 connections, all to the first address"

# round_robin, tcp: the access lines name the backend
log_mark
for i in $(seq 10); do
	node_client "$P_TCP" --cert "$PKI/orders.crt" --key "$PKI/orders.key" --send "rr $i\n" --echo
	[ "$NODE_RC" -eq 0 ] || fail "tcp round_robin connection $i: $(cat "$NODE_OUT")"
done
assert_log_contains ' access ' 'listener=tcprr' "backend=127\.0\.0\.1:$E2"
n1=$(new_log_lines | grep ' access ' | grep 'listener=tcprr' | grep -c "backend=127\.0\.0\.1:$E1 ")
n2=$(new_log_lines | grep ' access ' | grep 'listener=tcprr' | grep -c "backend=127\.0\.0\.1:$E2 ")
[ "$n1" = 5 ] && [ "$n2" = 5 ] || fail "tcp round_robin: $n1 connections to the first backend and $n2 to the second, want 5 and 5"
pass "round_robin (tcp): 10 connections, 5 to each backend"

# least_conn, tcp: one client holds a connection; the next ones, each
# closed before the next comes, all go to the other address
# (its stdin a FIFO held open on fd 7: closing that ends it)
mkfifo "$TMPDIR/hold.fifo"
timeout -k 2 60 openssl s_client -quiet -no_ign_eof -connect "127.0.0.1:$P_LC" \
    -servername localhost -CAfile "$PKI/root-ca.crt" -cert "$PKI/orders.crt" \
    -key "$PKI/orders.key" <"$TMPDIR/hold.fifo" >/dev/null 2>"$TMPDIR/hold.err" &
HOLD=$!
track "$HOLD"
exec 7>"$TMPDIR/hold.fifo"
held=
for _ in $(seq 50); do
	[ "$(gauge backend_address_connections lc "$E1")" = 1 ] && held=$E1 other=$E2
	[ "$(gauge backend_address_connections lc "$E2")" = 1 ] && held=$E2 other=$E1
	[ -n "$held" ] && break
	sleep 0.1
done
[ -n "$held" ] || fail "least_conn: the held connection does not show on /metrics: $(curl -sS "http://127.0.0.1:$PA/metrics" | grep 'connections{listener="lc"'); $(cat "$TMPDIR/hold.err")"
log_mark
for i in 1 2 3 4; do
	node_client "$P_LC" --cert "$PKI/orders.crt" --key "$PKI/orders.key" --send "lc $i\n" --echo
	[ "$NODE_RC" -eq 0 ] || fail "least_conn connection $i: $(cat "$NODE_OUT")"
done
assert_log_contains ' access ' 'listener=lc' "backend=127\.0\.0\.1:$other "
n=$(new_log_lines | grep ' access ' | grep 'listener=lc' | grep -c "backend=127\.0\.0\.1:$other ")
[ "$n" = 4 ] || fail "least_conn: $n of 4 connections went to the address without the held one"
# a reload that keeps the listener's addresses still counts the held one
hup_ok
assert_eq "$(gauge backend_address_connections lc "$held")" 1 "connections to the held address on /metrics after a reload"
log_mark
for i in 5 6 7 8; do
	node_client "$P_LC" --cert "$PKI/orders.crt" --key "$PKI/orders.key" --send "lc $i\n" --echo
	[ "$NODE_RC" -eq 0 ] || fail "least_conn connection $i (after a reload): $(cat "$NODE_OUT")"
done
n=$(new_log_lines | grep ' access ' | grep 'listener=lc' | grep -c "backend=127\.0\.0\.1:$other ")
[ "$n" = 4 ] || fail "least_conn after a reload: $n of 4 connections went to the address without the held one (made before the reload)"
exec 7>&-
wait "$HOLD" 2>/dev/null
untrack "$HOLD"
pass "least_conn (tcp): beside a held connection to one address, 4 connections all went to the other, and 4 more after a reload; /metrics counts the held one"

# tried_once LISTENER PORT N ADDRPORT REASON WHAT: N requests all get 200,
# and ADDRPORT, which fails with REASON, is tried once: then passed over
tried_once() {
	local n
	log_mark
	get_all "$2" "$3" "$6"
	assert_log_contains "warn listener \"$1\": backend connect failed: 127\.0\.0\.1:$4: $5; the other addresses come first for the next 10 s \(backend\.fail_timeout\)"
	n=$(new_log_lines | grep -c "backend connect failed: 127\.0\.0\.1:$4")
	[ "$n" = 1 ] || fail "$6: 127.0.0.1:$4 was tried $n times in $3 requests, want once"
}

# [refused, live, live], round_robin: the refused address once
tried_once rr3 "$P_RR3" 30 "$DEAD" "Connection refused" "[refused, live, live]"
assert_eq "$(passed_over rr3 "$DEAD")" 1 "passed_over gauge of the refused address"
assert_eq "$(passed_over rr3 "$B1")" 0 "passed_over gauge of a live address"
pass "[refused, live, live], round_robin: 30 requests answered, the refused address tried once; /metrics: passed_over 1 for it, 0 for the others"

# [no answer, live]: one client waits for connect_timeout, the next do not
tried_once sil "$P_SIL" 6 "$SILENT" \
    "no answer within 1000 ms \(backend\.connect_timeout\)" "[no answer, live]"
pass "[no answer, live]: 6 requests answered, one of them waited for connect_timeout"

# [down, down]: 502; the second comes up: both tried, 200, said once
log_mark
hcurl "$P_ALL" /headers
[ "$HC_CODE" = 502 ] || fail "[down, down]: $HC_CODE, want 502"
assert_log_contains "backend connect failed: 127\.0\.0\.1:$LATE: Connection refused"
start_http_backend "$LATE"
LOG_LATE=$HB_LOG
log_mark
hcurl "$P_ALL" /headers
[ "$HC_CODE" = 200 ] || fail "[down, up again]: $HC_CODE $(cat "$HC_ERR")"
assert_log_contains "backend connect failed: 127\.0\.0\.1:$DEAD: Connection refused"
assert_log_contains "info listener \"all\": backend 127\.0\.0\.1:$LATE answers again"
log_mark
get_all "$P_ALL" 3 "[down, up]"
assert_log_lacks "backend connect failed"
assert_log_lacks "answers again"
[ "$(reqs "$LOG_LATE")" = 4 ] || fail "the backend that came up saw $(reqs "$LOG_LATE") requests, want 4"
assert_eq "$(passed_over all "$LATE")" 0 "passed_over gauge of the address that came back"
assert_eq "$(passed_over all "$DEAD")" 1 "passed_over gauge of the address still down"
pass "[down, down]: 502; once the second is up, 200, 'answers again' said once, the dead one no longer tried first"

# fail_timeout 1500ms: passed over for 1.5 s, then tried again; 0: always
# tried
log_mark
get_all "$P_FT" 2 "fail_timeout 1500ms"
assert_log_contains "warn listener \"ft\": backend connect failed: 127\.0\.0\.1:$DEAD: Connection refused; the other addresses come first for the next 1500 ms \(backend\.fail_timeout\)"
n=$(new_log_lines | grep -c "listener \"ft\": backend connect failed")
[ "$n" = 1 ] || fail "fail_timeout 1500ms: the failed address was tried $n times in 2 requests, want once"
sleep 1.6
get_all "$P_FT" 1 "fail_timeout 1500ms, later"
n=$(new_log_lines | grep -c "listener \"ft\": backend connect failed")
[ "$n" = 2 ] || fail "fail_timeout 1500ms: 1.6 s later the failed address was not tried again ($n failures logged, want 2)"
log_mark
get_all "$P_FT0" 3 "fail_timeout 0"
n=$(new_log_lines | grep -c "listener \"ft0\": backend connect failed: 127\.0\.0\.1:$DEAD: Connection refused$")
[ "$n" = 3 ] || fail "fail_timeout 0: the failed address was tried $n times in 3 requests, want every time"
pass "fail_timeout 1500ms: the failed address passed over, tried again 1.6 s later; fail_timeout 0: tried every time"

# with no client left, no backend connection is counted in use (kept idle
# ones do not count)
for _ in $(seq 30); do
	busy=$(curl -sS --max-time 5 "http://127.0.0.1:$PA/metrics" |
	    grep '^mtlsproxy_backend_address_connections{' | grep -v '} 0$')
	[ -z "$busy" ] && break
	sleep 0.1
done
[ -z "$busy" ] || fail "connections still counted with no client: $busy"
pass "no client left: every backend_address_connections is 0"

stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"

# a misspelt value
sed "s/balance: round_robin/balance: roundrobin/" "$TMPDIR/bal.yaml" >"$TMPDIR/bad.yaml"
"$MTLSPROXY" -t -c "$TMPDIR/bad.yaml" >"$TMPDIR/bad.out" 2>&1 && fail "balance: roundrobin was accepted"
grep -E "bad\.yaml:[0-9]+:[0-9]+: .*roundrobin" "$TMPDIR/bad.out" | grep -q "round_robin" ||
    fail "balance: roundrobin: the error does not name the place and the values: $(cat "$TMPDIR/bad.out")"
pass "balance: roundrobin: $(grep -m1 roundrobin "$TMPDIR/bad.out")"
