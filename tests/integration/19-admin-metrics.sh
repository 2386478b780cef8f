#!/usr/bin/env bash
# The admin endpoint: /healthz, /readyz (from the backend probe, 503 once a
# backend is gone), /metrics with every family present and every counter
# moving after the traffic that should move it, the certificate and CRL
# gauges equal to what openssl reads from the demo PKI; a unix-socket admin
# endpoint; a non-loopback admin address refused by -t; a bind failure.
. "$(dirname -- "$0")/lib.sh"
. "$ITEST_DIR/http-lib.sh"

ECHO_PORT=$(free_port)
HTTP_PORT=$(free_port)
DEAD_PORT=$(free_port)		# nothing listens here
PORT=$(free_port)
PORT2=$(free_port)
ADMIN_PORT=$(free_port)
ADMIN=http://127.0.0.1:$ADMIN_PORT
start_echo "$ECHO_PORT"
start_http "$HTTP_PORT"
HTTP_BACKEND_PID=$HTTP_PID

# admin_get PATH [curl options...]: GET the admin endpoint; $AG_CODE,
# $AG_OUT (body), $AG_HDR (head).
admin_get() {
	local path=$1
	shift
	AG_OUT=$TMPDIR/admin.out
	AG_HDR=$TMPDIR/admin.hdr
	AG_CODE=$(curl -sS --max-time 5 -D "$AG_HDR" -o "$AG_OUT" -w '%{http_code}' \
	    "$@" "${ADMIN_URL:-$ADMIN}$path" 2>"$TMPDIR/admin.err")
}

# scrape: /metrics into $TMPDIR/metrics.txt.
scrape() {
	admin_get /metrics
	[ "$AG_CODE" = 200 ] || fail "GET /metrics: HTTP $AG_CODE: $(cat "$TMPDIR/admin.err")"
	cp "$AG_OUT" "$TMPDIR/metrics.txt"
}

# metric 'NAME{LABELS}': its value in the last scrape (empty if absent).
metric() {
	awk -v k="$1" 'index($0, k " ") == 1 { print $NF; exit }' "$TMPDIR/metrics.txt"
}

# need 'NAME{LABELS}': the value; when the series is missing, say so on
# stderr and print "missing" (callers compare, and fail with their message).
need() {
	local v
	v=$(metric "$1")
	if [ -z "$v" ]; then
		printf '# metric %s missing from /metrics\n' "$1" >&2
		v=missing
	fi
	printf '%s\n' "$v"
}

# wait_metric 'NAME{LABELS}' MIN: scrape until the value is >= MIN (3 s).
wait_metric() {
	local i v
	for i in $(seq 30); do
		scrape
		v=$(metric "$1")
		[ -n "$v" ] && [ "$v" -ge "$2" ] && return 0
		sleep 0.1
	done
	fail "metric $1 is ${v:-missing}, expected at least $2"
}

# ------------------------------------------------ config checks (-t)

cat >"$TMPDIR/wild.yaml" <<EOF
admin:
  listen: "0.0.0.0:$ADMIN_PORT"
listeners:
$(config_listener echo "$PORT" "\"127.0.0.1:$ECHO_PORT\"")
EOF
"$MTLSPROXY" -t -c "$TMPDIR/wild.yaml" >"$TMPDIR/wild.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "-t with admin on 0.0.0.0 and no remote: exit $rc (want 1)"
grep -q 'wild.yaml:2:[0-9]*: admin endpoint "0.0.0.0:[0-9]*" is not on loopback' "$TMPDIR/wild.out" ||
    fail "-t with admin on 0.0.0.0: unexpected message: $(cat "$TMPDIR/wild.out")"
sed -i 's/^admin:$/admin:\n  remote: true/' "$TMPDIR/wild.yaml"
"$MTLSPROXY" -t -c "$TMPDIR/wild.yaml" >"$TMPDIR/wild2.out" 2>&1 ||
    fail "-t with admin on 0.0.0.0 and remote: true: $(cat "$TMPDIR/wild2.out")"
pass "-t: a non-loopback admin address needs remote: true"

# --------------------------------------------------------- the proxy

# echo (tcp): a dead address first, so each connection counts one failed
# backend connect and still gets through; web (http).
ALLOW="      crl: $PKI/crl.pem
      allow:
        subject_cn: [orders, billing]"
{
	config_head
	config_listener echo "$PORT" "[\"127.0.0.1:$DEAD_PORT\", \"127.0.0.1:$ECHO_PORT\"]" "$ALLOW"
	config_http_listener web "$PORT2" "\"127.0.0.1:$HTTP_PORT\""
	cat <<EOF
admin:
  listen: "127.0.0.1:$ADMIN_PORT"
EOF
} >"$TMPDIR/admin.yaml"
start_proxy "$TMPDIR/admin.yaml" "$PORT"
wait_port "$ADMIN_PORT" "$PROXY_PID" 5 || fail "the admin endpoint does not accept on 127.0.0.1:$ADMIN_PORT"
assert_log_contains "admin endpoint on 127.0.0.1:$ADMIN_PORT"

admin_get /healthz
[ "$AG_CODE" = 200 ] && [ "$(cat "$AG_OUT")" = ok ] || fail "/healthz: HTTP $AG_CODE: $(cat "$AG_OUT")"
for i in $(seq 30); do
	admin_get /readyz
	[ "$AG_CODE" = 200 ] && break
	sleep 0.1
done
[ "$AG_CODE" = 200 ] && [ "$(cat "$AG_OUT")" = ready ] ||
    fail "/readyz with every backend up: HTTP $AG_CODE: $(cat "$AG_OUT")"
admin_get /healthz -I
[ "$AG_CODE" = 200 ] || fail "HEAD /healthz: HTTP $AG_CODE"
admin_get /metrics -X POST
[ "$AG_CODE" = 405 ] || fail "POST /metrics: HTTP $AG_CODE (want 405)"
grep -qi '^Allow: GET, HEAD' "$AG_HDR" || fail "405 without Allow: $(cat "$AG_HDR")"
admin_get /nope
[ "$AG_CODE" = 404 ] || fail "GET /nope: HTTP $AG_CODE (want 404)"
pass "/healthz, /readyz, 404, 405"

# Every family, with HELP and TYPE, and every refusal reason at 0.
scrape
grep -qi '^Content-Type: text/plain; version=0.0.4' "$AG_HDR" ||
    fail "/metrics Content-Type: $(grep -i content-type "$AG_HDR")"
for f in build_info:gauge process_start_time_seconds:gauge \
    connections_active:gauge connections_total:counter \
    handshakes_total:counter refusals_total:counter verify_cache_total:counter \
    bytes_received_total:counter bytes_sent_total:counter \
    backend_connect_failures_total:counter backend_up:gauge \
    http_requests_total:counter \
    reloads_total:counter last_reload_success_timestamp_seconds:gauge \
    server_certificate_not_after_seconds:gauge \
    ca_certificate_not_after_seconds:gauge crl_next_update_seconds:gauge; do
	name=mtlsproxy_${f%%:*}
	grep -q "^# HELP $name " "$TMPDIR/metrics.txt" || fail "no HELP for $name"
	grep -q -x "# TYPE $name ${f##*:}" "$TMPDIR/metrics.txt" || fail "no TYPE ${f##*:} for $name"
	grep -q "^$name[{ ]" "$TMPDIR/metrics.txt" || fail "no sample of $name"
done
VERSION=$("$MTLSPROXY" -V | head -n1 | cut -d' ' -f2)
grep -q "^mtlsproxy_build_info{version=\"$VERSION\",openssl=\"OpenSSL [^\"]*\"} 1\$" "$TMPDIR/metrics.txt" ||
    fail "build_info: $(grep '^mtlsproxy_build_info' "$TMPDIR/metrics.txt")"
for l in echo web; do
	for r in no_cert unknown_ca expired not_yet_valid revoked crl_expired \
	    crl_not_yet_valid crl_missing wrong_purpose chain_too_long weak_crypto \
	    bad_signature invalid_ca policy tls_error handshake_timeout verify_failed; do
		[ "$(need "mtlsproxy_refusals_total{listener=\"$l\",reason=\"$r\"}")" = 0 ] ||
		    fail "refusals_total{$l,$r} is not 0 before any refusal"
	done
	for c in 1xx 2xx 3xx 4xx 5xx; do
		[ "$(need "mtlsproxy_http_requests_total{listener=\"$l\",code=\"$c\"}")" != missing ] ||
		    fail "no http_requests_total{$l,$c}"
	done
	for m in connections_active connections_total bytes_received_total \
	    bytes_sent_total backend_connect_failures_total; do
		[ "$(need "mtlsproxy_$m{listener=\"$l\"}")" != missing ] || fail "no $m{$l}"
	done
done
for l in echo web; do
	[ "$(need "mtlsproxy_backend_up{listener=\"$l\"}")" = 1 ] || fail "backend_up{$l} is not 1"
done
# backend_up is the one series that is not there from the start (the unit
# test checks it is absent before the first probe): its HELP says so, as
# docs/operations.md does.
grep -q -x '# HELP mtlsproxy_backend_up 1 when the admin endpoint.s last probe reached at least one backend address of the listener, else 0; absent until the first probe has finished.' "$TMPDIR/metrics.txt" ||
    fail "backend_up HELP: $(grep '^# HELP mtlsproxy_backend_up' "$TMPDIR/metrics.txt")"
[ "$(need 'mtlsproxy_reloads_total{result="ok"}')" = 0 ] || fail "reloads ok is not 0"
[ "$(need 'mtlsproxy_reloads_total{result="failed"}')" = 0 ] || fail "reloads failed is not 0"
start=$(need mtlsproxy_process_start_time_seconds)
[ $(( $(date +%s) - start )) -lt 60 ] || fail "process_start_time_seconds $start is not now"
last=$(need mtlsproxy_last_reload_success_timestamp_seconds)
[ "$last" -ge "$start" ] || fail "last_reload_success_timestamp_seconds $last < start $start"
pass "every metric family present, every refusal reason declared"

# ------------------------------------------------------- gauges

enddate() {	# enddate FILE: a certificate's notAfter, epoch seconds
	date -d "$(openssl x509 -enddate -noout -in "$1" | cut -d= -f2)" +%s
}
want=$(enddate "$PKI/server.crt")
for l in echo web; do
	got=$(need "mtlsproxy_server_certificate_not_after_seconds{listener=\"$l\"}")
	[ "$got" = "$want" ] || fail "server_certificate_not_after_seconds{$l} = $got, openssl says $want"
done
# Each certificate of client-ca.pem, by subject (RFC 4514) and serial.
rm -f "$TMPDIR"/ca-*.pem
awk -v d="$TMPDIR" '/BEGIN CERT/ { n++ } n { print > (d "/ca-" n ".pem") }' "$PKI/client-ca.pem"
nca=0
for f in "$TMPDIR"/ca-*.pem; do
	subj=$(openssl x509 -noout -subject -nameopt RFC2253 -in "$f" | sed 's/^subject=//')
	serial=$(openssl x509 -noout -serial -in "$f" | sed 's/^serial=//')
	want=$(enddate "$f")
	for l in echo web; do
		got=$(need "mtlsproxy_ca_certificate_not_after_seconds{listener=\"$l\",subject=\"$subj\",serial=\"$serial\"}")
		[ "$got" = "$want" ] || fail "ca_certificate_not_after_seconds{$l,$subj} = $got, openssl says $want"
	done
	nca=$((nca + 1))
done
[ "$nca" -ge 2 ] || fail "client-ca.pem split into $nca certificates"
# Each CRL of crl.pem on echo (crl set); none on web (no crl).
rm -f "$TMPDIR"/crl-*.pem
awk -v d="$TMPDIR" '/BEGIN X509 CRL/ { n++ } n { print > (d "/crl-" n ".pem") }' "$PKI/crl.pem"
ncrl=0
for f in "$TMPDIR"/crl-*.pem; do
	iss=$(openssl crl -noout -issuer -nameopt RFC2253 -in "$f" | sed 's/^issuer=//')
	want=$(date -d "$(openssl crl -noout -nextupdate -in "$f" | cut -d= -f2)" +%s)
	got=$(need "mtlsproxy_crl_next_update_seconds{listener=\"echo\",issuer=\"$iss\"}")
	[ "$got" = "$want" ] || fail "crl_next_update_seconds{echo,$iss} = $got, openssl says $want"
	ncrl=$((ncrl + 1))
done
[ "$ncrl" -ge 1 ] || fail "crl.pem holds no CRL"
! grep -q '^mtlsproxy_crl_next_update_seconds{listener="web"' "$TMPDIR/metrics.txt" ||
    fail "crl_next_update_seconds for web, which has no crl"
pass "certificate and CRL gauges match openssl ($nca CAs, $ncrl CRLs)"

# ------------------------------------------------------ counters move

# An allowed connection through echo: +1 connection, +1 ok handshake, the
# bytes each way, +1 failed backend connect (the dead first address).
scrape
conns0=$(need 'mtlsproxy_connections_total{listener="echo"}')
ok0=$(need 'mtlsproxy_handshakes_total{listener="echo",result="ok"}')
in0=$(need 'mtlsproxy_bytes_received_total{listener="echo"}')
out0=$(need 'mtlsproxy_bytes_sent_total{listener="echo"}')
bf0=$(need 'mtlsproxy_backend_connect_failures_total{listener="echo"}')
log_mark
MSG="metrics are moving $$ $(date +%s%N)"
s_client_send "$PORT" "$MSG\n" "$MSG" -cert "$PKI/orders.crt" -key "$PKI/orders.key"
grep -q -F -- "$MSG" "$SCLIENT_OUT" || fail "the allowed client got no echo: $(tail -n 3 "$SCLIENT_ERR")"
assert_log_contains ' access ' 'listener=echo' 'CN=orders'
len=$(( ${#MSG} + 1 ))
# Bytes are counted when the connection closes, just after its access line.
wait_metric 'mtlsproxy_bytes_sent_total{listener="echo"}' $((out0 + len))
[ "$(need 'mtlsproxy_connections_total{listener="echo"}')" -eq $((conns0 + 1)) ] ||
    fail "connections_total{echo} went from $conns0 to $(metric 'mtlsproxy_connections_total{listener="echo"}') (want +1)"
[ "$(need 'mtlsproxy_handshakes_total{listener="echo",result="ok"}')" -eq $((ok0 + 1)) ] ||
    fail "handshakes_total{echo,ok} did not go up by 1 from $ok0"
in1=$(need 'mtlsproxy_bytes_received_total{listener="echo"}')
out1=$(need 'mtlsproxy_bytes_sent_total{listener="echo"}')
[ $((in1 - in0)) -ge "$len" ] || fail "bytes_received_total{echo} moved by $((in1 - in0)), sent $len"
[ $((out1 - out0)) -ge "$len" ] || fail "bytes_sent_total{echo} moved by $((out1 - out0)), echoed $len"
[ "$(need 'mtlsproxy_backend_connect_failures_total{listener="echo"}')" -eq $((bf0 + 1)) ] ||
    fail "backend_connect_failures_total{echo} did not go up by 1 from $bf0 (dead first address)"
[ "$(need 'mtlsproxy_connections_active{listener="echo"}')" -eq 0 ] ||
    fail "connections_active{echo} is not 0 after the connection closed"
pass "an allowed connection moves connections, handshakes, bytes, backend failures"

# The verify cache: orders' chain was just verified, so the same
# certificate again is a hit (its chain is not checked again), not a miss.
vh0=$(need 'mtlsproxy_verify_cache_total{listener="echo",result="hit"}')
vm0=$(need 'mtlsproxy_verify_cache_total{listener="echo",result="miss"}')
MSG="cached chain $$"
s_client_send "$PORT" "$MSG\n" "$MSG" -cert "$PKI/orders.crt" -key "$PKI/orders.key"
grep -q -F -- "$MSG" "$SCLIENT_OUT" || fail "orders again: no echo: $(tail -n 3 "$SCLIENT_ERR")"
scrape
[ "$(need 'mtlsproxy_verify_cache_total{listener="echo",result="hit"}')" -eq $((vh0 + 1)) ] ||
    fail "verify_cache_total{echo,hit} did not go up by 1 from $vh0 for a certificate seen before"
[ "$(need 'mtlsproxy_verify_cache_total{listener="echo",result="miss"}')" -eq "$vm0" ] ||
    fail "verify_cache_total{echo,miss} moved for a certificate seen before"
pass "the same client certificate again: verify_cache_total hit +1, miss unchanged"

# hold_open: a connection to echo held open (the client's stdin is a FIFO
# this shell keeps open); hold_close ends it.
hold_open() {
	rm -f "$TMPDIR/hold"
	mkfifo "$TMPDIR/hold"
	timeout -k 2 30 node "$ITEST_DIR/client.js" 127.0.0.1 "$PORT" --ca "$PKI/root-ca.crt" \
	    --cert "$PKI/orders.crt" --key "$PKI/orders.key" --lines \
	    <"$TMPDIR/hold" >"$TMPDIR/hold.out" 2>&1 &
	HOLD=$!
	track "$HOLD"
	exec 7>"$TMPDIR/hold"
	echo held >&7
	for i in $(seq 50); do
		grep -q 'echo: held' "$TMPDIR/hold.out" && break
		sleep 0.1
	done
	grep -q 'echo: held' "$TMPDIR/hold.out" || fail "the held connection got no echo: $(cat "$TMPDIR/hold.out")"
}
hold_close() {
	exec 7>&-
	wait "$HOLD" 2>/dev/null
	untrack "$HOLD"
	rm -f "$TMPDIR/hold"
}

# connections_active while a connection is held open.
hold_open
wait_metric 'mtlsproxy_connections_active{listener="echo"}' 1
hold_close
for i in $(seq 30); do
	scrape
	[ "$(need 'mtlsproxy_connections_active{listener="echo"}')" = 0 ] && break
	sleep 0.1
done
[ "$(need 'mtlsproxy_connections_active{listener="echo"}')" = 0 ] ||
    fail "connections_active{echo} did not go back to 0"
pass "connections_active counts an open connection"

# mallory: refused by policy.
ref0=$(need 'mtlsproxy_refusals_total{listener="echo",reason="policy"}')
hr0=$(need 'mtlsproxy_handshakes_total{listener="echo",result="refused"}')
log_mark
s_client_send "$PORT" "mallory\n" "" -cert "$PKI/mallory.crt" -key "$PKI/mallory.key"
assert_log_contains 'refused' 'listener=echo' 'code=policy' 'CN=mallory'
wait_metric 'mtlsproxy_refusals_total{listener="echo",reason="policy"}' $((ref0 + 1))
[ "$(need 'mtlsproxy_handshakes_total{listener="echo",result="refused"}')" -ge $((hr0 + 1)) ] ||
    fail "handshakes_total{echo,refused} did not move"
# the revoked client: reason="revoked"
rv0=$(need 'mtlsproxy_refusals_total{listener="echo",reason="revoked"}')
s_client_send "$PORT" "revoked\n" "" -cert "$PKI/revoked.crt" -key "$PKI/revoked.key"
wait_metric 'mtlsproxy_refusals_total{listener="echo",reason="revoked"}' $((rv0 + 1))
pass "refusals_total moves by reason (policy, revoked)"

# An HTTP request through web: 2xx.
h0=$(need 'mtlsproxy_http_requests_total{listener="web",code="2xx"}')
hcurl "$PORT2" /
[ "$HC_CODE" = 200 ] || fail "GET through web: HTTP $HC_CODE: $(cat "$HC_ERR")"
wait_metric 'mtlsproxy_http_requests_total{listener="web",code="2xx"}' $((h0 + 1))
# A request the proxy cannot parse: its own 400 counts as 4xx.
b0=$(need 'mtlsproxy_http_requests_total{listener="web",code="4xx"}')
s_client_send "$PORT2" "NOT HTTP AT ALL\r\n\r\n" "400" -cert "$PKI/orders.crt" -key "$PKI/orders.key"
grep -q '^HTTP/1.1 400' "$SCLIENT_OUT" || fail "garbage through web: $(head -c 200 "$SCLIENT_OUT")"
wait_metric 'mtlsproxy_http_requests_total{listener="web",code="4xx"}' $((b0 + 1))
pass "http_requests_total moves (2xx from the backend, 4xx of the proxy's own)"

# --------------------------------------- a backend goes away: /readyz

kill "$HTTP_BACKEND_PID"
wait "$HTTP_BACKEND_PID" 2>/dev/null
untrack "$HTTP_BACKEND_PID"
t0=$(now_ms)
for i in $(seq 80); do
	admin_get /readyz
	[ "$AG_CODE" = 503 ] && break
	sleep 0.1
done
[ "$AG_CODE" = 503 ] || fail "/readyz still HTTP $AG_CODE 8 s after the web backend stopped"
grep -q 'web' "$AG_OUT" || fail "/readyz 503 does not name web: $(cat "$AG_OUT")"
! grep -q 'echo' "$AG_OUT" || fail "/readyz names echo, whose backend is up: $(cat "$AG_OUT")"
log "readyz went 503 after $(( $(now_ms) - t0 )) ms: $(cat "$AG_OUT")"
admin_get /healthz
[ "$AG_CODE" = 200 ] || fail "/healthz is HTTP $AG_CODE while a backend is down"
scrape
[ "$(need 'mtlsproxy_backend_up{listener="web"}')" = 0 ] || fail "backend_up{web} is not 0"
[ "$(need 'mtlsproxy_backend_up{listener="echo"}')" = 1 ] || fail "backend_up{echo} is not 1"
# The dead backend: 502, a 5xx, a failed connect.
bf0=$(need 'mtlsproxy_backend_connect_failures_total{listener="web"}')
e0=$(need 'mtlsproxy_http_requests_total{listener="web",code="5xx"}')
hcurl "$PORT2" /
[ "$HC_CODE" = 502 ] || fail "GET through web with its backend gone: HTTP $HC_CODE (want 502)"
wait_metric 'mtlsproxy_backend_connect_failures_total{listener="web"}' $((bf0 + 1))
wait_metric 'mtlsproxy_http_requests_total{listener="web",code="5xx"}' $((e0 + 1))
pass "/readyz 503 naming the listener whose backend is down; 502 counted"

# Bind failure: a second instance on the same admin port exits 1 and says so.
P3=$(free_port)
sed -e "s/127.0.0.1:$PORT\"/127.0.0.1:$P3\"/" -e "s/127.0.0.1:$PORT2\"/127.0.0.1:$(free_port)\"/" \
    "$TMPDIR/admin.yaml" >"$TMPDIR/clash.yaml"
timeout -k 2 10 "$MTLSPROXY" -c "$TMPDIR/clash.yaml" >/dev/null 2>"$TMPDIR/clash.log"
rc=$?
[ "$rc" -eq 1 ] || fail "a second instance on the same admin port: exit $rc (want 1): $(tail -n 3 "$TMPDIR/clash.log")"
grep -q "admin endpoint: cannot listen on 127.0.0.1:$ADMIN_PORT: Address already in use" "$TMPDIR/clash.log" ||
    fail "no clear message for the admin bind failure: $(cat "$TMPDIR/clash.log")"
! grep -q -E 'Sanitizer|runtime error:' "$TMPDIR/clash.log" || fail "sanitizer report: $(cat "$TMPDIR/clash.log")"
pass "an admin bind failure is a start-up error"

# Reloads are counted: a good SIGHUP moves reloads_total{result="ok"} and
# the success time; a broken config moves result="failed".
scrape
T0=$(need 'mtlsproxy_last_reload_success_timestamp_seconds')
sleep 1.1
kill -HUP "$PROXY_PID"
wait_metric 'mtlsproxy_reloads_total{result="ok"}' 1
T1=$(need 'mtlsproxy_last_reload_success_timestamp_seconds')
awk -v a="$T0" -v b="$T1" 'BEGIN { exit !(b > a) }' ||
    fail "last_reload_success_timestamp_seconds did not move ($T0 -> $T1)"
cp "$TMPDIR/admin.yaml" "$TMPDIR/admin.yaml.good"
printf 'bogus_key: 1\n' >>"$TMPDIR/admin.yaml"
kill -HUP "$PROXY_PID"
wait_metric 'mtlsproxy_reloads_total{result="failed"}' 1
cp "$TMPDIR/admin.yaml.good" "$TMPDIR/admin.yaml"
pass "reloads counted (ok and failed)"

# Draining (SIGTERM with a connection open): /readyz 503, /healthz and
# /metrics still served until the process exits.
hold_open
kill -TERM "$PROXY_PID"
for i in $(seq 30); do
	admin_get /readyz
	[ "$AG_CODE" = 503 ] && grep -q draining "$AG_OUT" && break
	sleep 0.1
done
[ "$AG_CODE" = 503 ] && grep -q draining "$AG_OUT" ||
    fail "/readyz while draining: HTTP $AG_CODE: $(cat "$AG_OUT")"
admin_get /healthz
[ "$AG_CODE" = 200 ] || fail "/healthz while draining: HTTP $AG_CODE"
scrape
[ "$(need 'mtlsproxy_connections_active{listener="echo"}')" -ge 1 ] ||
    fail "connections_active{echo} while a connection drains"
hold_close
proxy_wait_exit 5 || fail "mtlsproxy still running after the drained connection closed"
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
! port_accepts "$ADMIN_PORT" || fail "the admin port still accepts after exit"
pass "draining: /readyz 503, /healthz 200"

# ------------------------------------------------ unix-socket admin

SOCK=$TMPDIR/admin.sock
# A stale socket file from a previous run (nobody listens on it).
python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])' "$SOCK"
[ -S "$SOCK" ] || fail "could not make a stale socket file"
{
	config_head
	config_listener echo "$PORT" "\"127.0.0.1:$ECHO_PORT\""
	cat <<EOF
admin:
  listen: "unix:$SOCK"
EOF
} >"$TMPDIR/unix.yaml"
start_proxy "$TMPDIR/unix.yaml" "$PORT"
ADMIN_URL=http://localhost
admin_get /healthz --unix-socket "$SOCK"
[ "$AG_CODE" = 200 ] && [ "$(cat "$AG_OUT")" = ok ] ||
    fail "/healthz over unix:$SOCK: HTTP $AG_CODE $(cat "$TMPDIR/admin.err")"
[ "$(stat -c %a "$SOCK")" = 660 ] || fail "admin socket mode $(stat -c %a "$SOCK"), want 660"
admin_get /metrics --unix-socket "$SOCK"
[ "$AG_CODE" = 200 ] && grep -q '^mtlsproxy_connections_total{listener="echo"} ' "$AG_OUT" ||
    fail "/metrics over the unix socket: HTTP $AG_CODE"
for i in $(seq 30); do
	admin_get /readyz --unix-socket "$SOCK"
	[ "$AG_CODE" = 200 ] && break
	sleep 0.1
done
[ "$AG_CODE" = 200 ] || fail "/readyz over the unix socket: HTTP $AG_CODE $(cat "$AG_OUT")"
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy (unix admin) exited $PROXY_RC on SIGTERM"
[ ! -e "$SOCK" ] || fail "the admin socket file is still there after exit"
# A path that exists and is not a socket is never removed.
echo "not a socket" >"$SOCK"
timeout -k 2 10 "$MTLSPROXY" -c "$TMPDIR/unix.yaml" >/dev/null 2>"$TMPDIR/notsock.log"
rc=$?
[ "$rc" -eq 1 ] || fail "admin.listen on a regular file: exit $rc (want 1)"
grep -q "admin endpoint: cannot listen on unix:$SOCK: $SOCK exists and is not a socket" "$TMPDIR/notsock.log" ||
    fail "unclear message: $(cat "$TMPDIR/notsock.log")"
! grep -q -E 'Sanitizer|runtime error:' "$TMPDIR/notsock.log" || fail "sanitizer report: $(cat "$TMPDIR/notsock.log")"
[ "$(cat "$SOCK")" = "not a socket" ] || fail "the regular file was changed"
pass "unix-socket admin endpoint (stale socket replaced, mode 0660, removed at exit)"
