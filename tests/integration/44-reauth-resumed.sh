#!/usr/bin/env bash
# A reload re-authorizes resumed connections with the intermediates their
# client sent in the first handshake. client_auth.ca holds the root only;
# the client sends its intermediate (`openssl s_client -cert_chain`). Its
# session is saved (-sess_out) and resumed (-sess_in) on a connection that
# stays open, in TLS 1.3 and in TLS 1.2:
#  - a SIGHUP that changes nothing leaves the resumed connection open and
#    echoing (a session ticket does not carry the intermediates; without
#    them the check after the reload found no issuer and closed it:
#    code=unknown_ca);
#  - the allow list narrowed to [billing] + SIGHUP closes it with
#    code=policy: the chain check passed and the policy refused, so the
#    re-check really ran with the whole chain;
#  - a resumed connection closes when its intermediate expires (the ticket
#    carries the verified chain's earliest notAfter).
. "$(dirname -- "$0")/lib.sh"

C=$TMPDIR/certs
mkdir -p "$C"
ECHO_PORT=$(free_port)
PORT=$(free_port)
start_echo "$ECHO_PORT"
CONF=$C/reauth.yaml

# write_conf ALLOW_CNS
write_conf() {
	cat >"$CONF.tmp" <<EOF
workers: 2
reload: signal
drain_timeout: 2s
log:
  level: debug
  format: text
  access: true
listeners:
  - name: api
    listen: "127.0.0.1:$PORT"
    tls:
      cert: $PKI/server-fullchain.crt
      key: $PKI/server.key
    client_auth:
      ca: $PKI/root-ca.crt
      allow:
        subject_cn: [$1]
    backend:
      address: "127.0.0.1:$ECHO_PORT"
    timeouts:
      idle: 60s
EOF
	mv -f "$CONF.tmp" "$CONF"
}


ORDERS=(-cert "$PKI/orders.crt" -key "$PKI/orders.key" -cert_chain "$PKI/intermediate-ca.crt")

# save_session VERSION FILE: a full handshake as orders, sending the
# intermediate; its session (with the ticket) goes to FILE.
save_session() {
	local out=$TMPDIR/save$1.out
	{
		printf 'first\n'
		sleep 1
	} | timeout -k 2 10 openssl s_client -connect "127.0.0.1:$PORT" \
	    -servername localhost -CAfile "$PKI/root-ca.crt" -verify_return_error \
	    "-$1" "${ORDERS[@]}" -sess_out "$2" >"$out" 2>"$TMPDIR/save$1.err"
	grep -q -F first "$out" || fail "$1: the full handshake got no echo: $(tail -n 3 "$TMPDIR/save$1.err"); log: $(new_log_lines | grep refused | tail -n 1)"
	[ -s "$2" ] || fail "$1: s_client -sess_out wrote no session"
}

SPID= SFD=
# open_resumed NAME VERSION SESSION: s_client resuming SESSION, no client
# certificate given, its stdin a FIFO; output in $TMPDIR/NAME.out.
open_resumed() {
	local fifo=$TMPDIR/$1.in fd
	rm -f "$fifo"
	mkfifo "$fifo" || fail "mkfifo $fifo"
	timeout -k 2 60 openssl s_client -connect "127.0.0.1:$PORT" \
	    -servername localhost -CAfile "$PKI/root-ca.crt" -verify_return_error \
	    "-$2" -sess_in "$3" <"$fifo" >"$TMPDIR/$1.out" 2>"$TMPDIR/$1.err" &
	SPID=$!
	track "$SPID"
	exec {fd}<>"$fifo"
	SFD=$fd
}
# echoes NAME LINE: the open connection echoes LINE within 5 s.
echoes() {
	local i
	printf '%s\n' "$2" >&"$SFD"
	for i in $(seq 100); do
		grep -q -F -- "$2" "$TMPDIR/$1.out" && return 0
		sleep 0.05
	done
	return 1
}
# wait_gone SECONDS: the s_client exits (the server closed the connection).
wait_gone() {
	local i
	for i in $(seq $(($1 * 20))); do
		kill -0 "$SPID" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$SPID" 2>/dev/null && return 1
	wait "$SPID" 2>/dev/null
	untrack "$SPID"
	return 0
}
close_resumed() {
	exec {SFD}>&-
	wait_gone 5 || { kill "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; untrack "$SPID"; }
}

write_conf "orders, billing"
start_proxy "$CONF" "$PORT"

for v in tls1_3 tls1_2; do
	write_conf "orders, billing"
	hup_ok
	log_mark
	save_session "$v" "$C/sess-$v.pem"
	open_resumed "r$v" "$v" "$C/sess-$v.pem"
	echoes "r$v" "one $v" || fail "$v: the resumed connection did not echo: $(tail -n 3 "$TMPDIR/r$v.err")"
	grep -q -E '^Reused, ' "$TMPDIR/r$v.out" ||
	    fail "$v: the session was not resumed: $(grep -E '^(New|Reused)' "$TMPDIR/r$v.out")"
	assert_log_contains ' debug session [0-9]+: .* verified "CN=orders,OU=payments,O=Demo Corp"'
	pass "$v: session resumed without a client certificate, echoes"

	hup_ok
	sleep 0.3
	echoes "r$v" "two $v" ||
	    fail "$v: after a SIGHUP that changed nothing, the resumed connection no longer echoes: $(tail -n 2 "$TMPDIR/r$v.out"); log: $(new_log_lines | grep -E 'closed after reload' | tail -n 1)"
	assert_log_lacks 'closed after reload'
	pass "$v: a reload that changes nothing keeps the resumed connection (its intermediate came from the ticket)"

	write_conf "billing"
	hup_ok
	wait_gone 5 || fail "$v: orders' resumed connection was still open after the allow list dropped orders"
	assert_log_contains ' warn closed after reload ' 'listener=api ' 'code=policy' 'subject="CN=orders,OU=payments,O=Demo Corp"'
	assert_log_contains ' access ' 'subject="CN=orders,OU=payments,O=Demo Corp"' 'close="?reauth_refused: policy'
	pass "$v: allow list without orders: the resumed connection closed with code=policy (chain check passed with the ticket's intermediate)"
done

# ------------------------------- a resumed session's expiry timer
# An intermediate whose notAfter is ~8 s away (`openssl ca -name root_ca
# -enddate` on a copy of the demo PKI) signs viashort's certificate (valid
# for 30 days). viashort connects sending that intermediate, its session is
# resumed on a connection that stays open, and that connection is closed
# around the intermediate's notAfter (close=client_cert_expired): the
# ticket carries the verified chain's earliest notAfter, not only the
# leaf's.
mkdir -p "$C/pki"
cp -a "$PKI/." "$C/pki/" || fail "cannot copy the demo PKI"
OSSL_LOG=$TMPDIR/openssl.log
(
	cd "$C/pki" &&
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$C/shortint.key" &&
	openssl req -new -config openssl.cnf -key "$C/shortint.key" \
	    -subj "/O=Demo Corp/CN=Short-lived Intermediate CA" -out "$C/shortint.csr" &&
	openssl ca -batch -config openssl.cnf -name root_ca -notext -passin "file:root-ca.pass" \
	    -startdate "$(date -u -d '-1 hour' +%y%m%d%H%M%SZ)" \
	    -enddate "$(date -u -d '+8 seconds' +%y%m%d%H%M%SZ)" \
	    -extfile openssl.cnf -extensions intermediate_ca_ext \
	    -in "$C/shortint.csr" -out "$C/shortint.crt" &&
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$C/viashort.key" &&
	openssl req -new -config openssl.cnf -key "$C/viashort.key" \
	    -subj "/O=Demo Corp/CN=viashort" -out "$C/viashort.csr" &&
	openssl x509 -req -in "$C/viashort.csr" -CA "$C/shortint.crt" -CAkey "$C/shortint.key" \
	    -CAcreateserial -days 30 -extfile openssl.cnf -extensions client_ext -out "$C/viashort.crt"
) >>"$OSSL_LOG" 2>&1 || fail "openssl (short-lived intermediate): $(tail -n 5 "$OSSL_LOG")"
int_end=$(date -u -d "$(openssl x509 -noout -enddate -in "$C/shortint.crt" | cut -d= -f2)" +%s) ||
    fail "cannot read the intermediate's notAfter"
write_conf "viashort"
hup_ok
log_mark
ORDERS=(-cert "$C/viashort.crt" -key "$C/viashort.key" -cert_chain "$C/shortint.crt")
save_session tls1_3 "$C/sess-short.pem"
open_resumed rshort tls1_3 "$C/sess-short.pem"
echoes rshort "short 1" || fail "viashort: the resumed connection did not echo: $(tail -n 3 "$TMPDIR/rshort.err"); log: $(new_log_lines | grep refused | tail -n 1)"
grep -q -E '^Reused, ' "$TMPDIR/rshort.out" || fail "viashort: the session was not resumed"
left=$((int_end - $(date +%s)))
[ "$left" -ge 1 ] || fail "test too slow: the intermediate expired before the resumed connection was up"
wait_gone $((left + 4)) ||
    fail "viashort: the resumed connection was still open 4 s after its intermediate's notAfter"
[ "$(date +%s)" -ge "$int_end" ] || fail "viashort: the resumed connection closed before the intermediate's notAfter"
assert_log_contains ' info client certificate expired during the connection ' 'subject="CN=viashort,O=Demo Corp"'
assert_log_contains ' access ' 'subject="CN=viashort,O=Demo Corp"' 'close=client_cert_expired'
pass "a resumed session is closed when a CA of its verified chain expires (from the ticket), not only at the leaf's notAfter"

kill -0 "$PROXY_PID" 2>/dev/null || fail "mtlsproxy died"
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
