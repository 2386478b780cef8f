#!/usr/bin/env bash
# http mode under an open file limit too small for every client to have a
# backend connection at once (a client connection counts one descriptor; its
# backend connection comes with its request):
#  - 110 clients at once, each asking for an answer the backend takes
#    300 ms to give, under a limit of 200 descriptors: a request that finds
#    no descriptor free for its backend connection waits for one (idle kept
#    backend connections are closed first) instead of failing, so all 110
#    get 200; the log says once that requests wait, and why;
#  - while 110 clients' answers (2 s) hold every descriptor, one more
#    client waits in the backlog (the log says once that clients wait, and
#    why) and is served when answers free descriptors;
#  - with a backend.connect_timeout shorter than the backend's answers, a
#    request that gets no descriptor in time gets 502 Bad Gateway and the
#    log says what it waited for; the daemon goes on serving;
#  - 85 clients holding their keep-alive connections open between requests
#    (each with a backend connection) take nearly all the descriptors: 30
#    new clients (handshakes first, then their requests) are accepted and
#    their requests all get 200 at once, as idle clients' backend
#    connections are closed to free descriptors (an idle client's next
#    request connects again).
# The parallel clients finish every handshake before sending any request,
# so the requests are at the proxy at once however slow the machine.
. "$(dirname -- "$0")/lib.sh"
. "$ITEST_DIR/http-lib.sh"

BP=$(free_port)
start_http_backend "$BP"
P=$(free_port)

# config: the listener, connect_timeout 2s (changed with sed below)
config() {
	config_head
	config_http_listener api "$P" "\"127.0.0.1:$BP\"" "" "      keepalive: 4"
}
config | sed "s/connect_timeout: 2s/connect_timeout: 10s/" >"$TMPDIR/wait.yaml"

# parallel N PATH: N requests at once, each on its own connection
parallel() {
	hclient parallel "$P" --count "$1" --path "$2" --timeout 30000
}

PROXY_ULIMIT="-n 200" start_proxy "$TMPDIR/wait.yaml" "$P"
log_mark
parallel 110 "/slow?ms=300"
codes=$(jq_py "$HCL_OUT" 'j["codes"]')
[ "$HCL_RC" = 0 ] || fail "110 requests at once under 200 descriptors: answers $codes, errors $(jq_py "$HCL_OUT" 'j["errors"][:3]')"
assert_log_contains 'warn listener "api": no file descriptor free to connect to the backend \(Too many open files; the open file limit is 200\): requests wait up to 10000 ms \(backend.connect_timeout\) for one; raise the limit or lower max_connections'
assert_log_lacks 'backend connect failed'
n=$(new_log_lines | grep -c 'no file descriptor free')
[ "$n" = 1 ] || fail "the wait was logged $n times, want once"
pass "110 requests at once under 200 descriptors: all 200 OK, the wait said once"

hcurl "$P" /headers
[ "$HC_CODE" = 200 ] || fail "a request after the burst: $HC_CODE $(cat "$HC_ERR")"
stop_proxy
[ "$PROXY_RC" = 0 ] || fail "mtlsproxy exited with $PROXY_RC"
pass "still serving after the burst; clean exit"

# 110 clients whose answers take 2 s hold every descriptor (their own, and
# backend connections for as many as fit, the others waiting for one): a
# client that comes now waits in the backlog, said once, and is served
# once answers free descriptors
PROXY_ULIMIT="-n 200" start_proxy "$TMPDIR/wait.yaml" "$P"
log_mark
BURST_OUT=$TMPDIR/burst.json
timeout -k 2 40 node "$HTTP_CLIENT_JS" parallel "$P" --ca "$PKI/root-ca.crt" \
    --cert "$PKI/orders.crt" --key "$PKI/orders.key" --count 110 \
    --path "/slow?ms=2000" --timeout 30000 >"$BURST_OUT" 2>"$TMPDIR/burst.err" &
BURST=$!
track "$BURST"
assert_log_contains 'no file descriptor free to connect to the backend'
HC_MAX_TIME=15 hcurl "$P" /headers
[ "$HC_CODE" = 200 ] || fail "a client beside 110 busy ones: $HC_CODE $(cat "$HC_ERR")"
assert_log_contains 'warn listener "api": no file descriptor free to accept a client \(Too many open files; the open file limit is 200\): new clients wait in the backlog until one is; raise the limit or lower max_connections'
n=$(new_log_lines | grep -c 'no file descriptor free to accept')
[ "$n" = 1 ] || fail "the accept wait was logged $n times, want once"
wait "$BURST" || fail "110 clients with 2 s answers: $(cat "$BURST_OUT")"
untrack "$BURST"
stop_proxy
[ "$PROXY_RC" = 0 ] || fail "mtlsproxy exited with $PROXY_RC"
pass "a client beside 110 busy ones under 200 descriptors waits in the backlog (said once) and is served; all 110 answered"

# connect_timeout 300ms, answers that take 3 s: those without a descriptor
# give up after 300 ms
config | sed "s/connect_timeout: 2s/connect_timeout: 300ms/" >"$TMPDIR/short.yaml"
PROXY_ULIMIT="-n 200" start_proxy "$TMPDIR/short.yaml" "$P"
log_mark
parallel 110 "/slow?ms=3000"
n200=$(jq_py "$HCL_OUT" 'j["codes"].get("200", 0)')
n502=$(jq_py "$HCL_OUT" 'j["codes"].get("502", 0)')
[ "$n200" -gt 0 ] && [ "$n502" -gt 0 ] && [ $((n200 + n502)) = 110 ] ||
    fail "want some 200 and the rest 502, got $(jq_py "$HCL_OUT" 'j["codes"]'), errors $(jq_py "$HCL_OUT" 'j["errors"][:3]')"
assert_log_contains 'warn listener "api": backend connect failed: 127\.0\.0\.1:[0-9]+: Too many open files \(no descriptor came free within 300 ms\)'
n=$(new_log_lines | grep -c 'backend connect failed')
[ "$n" = "$n502" ] || fail "$n502 answers 502 but $n 'backend connect failed' lines"
hcurl "$P" /headers
[ "$HC_CODE" = 200 ] || fail "a request after the burst: $HC_CODE $(cat "$HC_ERR")"
stop_proxy
[ "$PROXY_RC" = 0 ] || fail "mtlsproxy exited with $PROXY_RC"
pass "connect_timeout 300ms: $n200 answered, $n502 got 502 after waiting, each logged; still serving"

# 85 idle keep-alive clients, each with its backend connection: 20 + 2 * 85
# = 190 of 200 descriptors in use
config >"$TMPDIR/idle.yaml"
PROXY_ULIMIT="-n 200" start_proxy "$TMPDIR/idle.yaml" "$P"
log_mark
HOLD_OUT=$TMPDIR/hold.json
HOLD_ERR=$TMPDIR/hold.err
timeout -k 2 40 node "$HTTP_CLIENT_JS" hold "$P" --ca "$PKI/root-ca.crt" \
    --cert "$PKI/orders.crt" --key "$PKI/orders.key" --count 85 --path /headers \
    --hold 12000 >"$HOLD_OUT" 2>"$HOLD_ERR" &
HOLD=$!
track "$HOLD"
for _ in $(seq 100); do
	grep -q '^answered 85$' "$HOLD_ERR" && break
	sleep 0.1
done
grep -q '^answered 85$' "$HOLD_ERR" || fail "85 idle clients: not all answered: $(cat "$HOLD_ERR")"
t0=$(now_ms)
parallel 30 /headers
ms=$(( $(now_ms) - t0 ))
[ "$HCL_RC" = 0 ] || fail "30 new clients beside 85 idle ones: answers $(jq_py "$HCL_OUT" 'j["codes"]'), errors $(jq_py "$HCL_OUT" 'j["errors"][:3]')"
[ "$ms" -lt 5000 ] || fail "30 new clients took $ms ms: they waited for descriptors instead of getting idle clients' ones"
assert_log_contains "debug session [0-9]+: backend connection closed between requests to free a descriptor"
assert_log_lacks 'no file descriptor free to accept'
wait "$HOLD" || fail "the 85 idle clients: $(cat "$HOLD_OUT")"
untrack "$HOLD"
assert_eq "$(jq_py "$HOLD_OUT" 'j["closedEarly"]')" 0 "idle clients closed by the proxy"
stop_proxy
[ "$PROXY_RC" = 0 ] || fail "mtlsproxy exited with $PROXY_RC"
pass "85 idle keep-alive clients and 30 new ones under 200 descriptors: the new ones all answered in $ms ms, the idle ones kept their connections"
