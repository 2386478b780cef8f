#!/usr/bin/env bash
# Live connections are re-authorized after a reload, and closed when the
# client certificate expires:
#  - a SIGHUP that changes nothing closes nothing;
#  - a new CRL revoking orders (made with `openssl ca -revoke` on a copy of
#    the demo PKI) + SIGHUP: the open orders connection is closed (the client
#    sees EOF), logged `closed after reload ... code=revoked` and access
#    close="reauth_refused: revoked"; the open billing and mallory
#    connections stay and still echo; a new orders connection is refused;
#  - the allow list narrowed to [billing] + SIGHUP: the open mallory
#    connection is closed with code=policy, billing stays;
#  - a client certificate whose notAfter is ~6 s away (`openssl ca
#    -startdate/-enddate`): its connection (idle timeout 60 s) echoes, then
#    is closed around notAfter with `client certificate expired during the
#    connection` and close=client_cert_expired; a new connection with it
#    is then refused with code=expired.
. "$(dirname -- "$0")/lib.sh"

C=$TMPDIR/certs
mkdir -p "$C/pki" "$C/conf"
OSSL_LOG=$TMPDIR/openssl.log
cp -a "$PKI/." "$C/pki/" || fail "cannot copy the demo PKI to $C/pki"
[ -f "$C/pki/openssl.cnf" ] && [ -f "$C/pki/ca-db/intermediate/index.txt" ] ||
    fail "the demo PKI copy has no openssl.cnf or ca-db"
cp "$PKI/crl.pem" "$C/crl.pem"

ECHO_PORT=$(free_port)
PORT=$(free_port)
start_echo "$ECHO_PORT"
CONF=$C/conf/reauth.yaml

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
      ca: $PKI/client-ca.pem
      crl: $C/crl.pem
      allow:
        subject_cn: [$1]
    backend:
      address: "127.0.0.1:$ECHO_PORT"
      connect_timeout: 2s
    timeouts:
      handshake: 5s
      idle: 60s
EOF
	mv -f "$CONF.tmp" "$CONF"
}


declare -A LPID LFD
# open_lines NAME CERT KEY: an interactive client.js (--lines) on PORT; its
# stdin is a FIFO this shell writes to; output in $TMPDIR/NAME.out
# ("connected", "echo: LINE", or "ERROR EOF ..." when the server closes).
open_lines() {
	local name=$1 fifo=$TMPDIR/$1.in fd
	rm -f "$fifo"
	mkfifo "$fifo" || fail "mkfifo $fifo"
	node "$ITEST_DIR/client.js" 127.0.0.1 "$PORT" --ca "$PKI/root-ca.crt" \
	    --cert "$2" --key "$3" --lines \
	    <"$fifo" >"$TMPDIR/$name.out" 2>"$TMPDIR/$name.err" &
	LPID[$name]=$!
	track "${LPID[$name]}"
	exec {fd}<>"$fifo"
	LFD[$name]=$fd
}
send_line() {
	printf '%s\n' "$2" >&"${LFD[$1]}"
}
wait_output() {
	local i
	for i in $(seq $(($3 * 20))); do
		grep -q -E -- "$2" "$TMPDIR/$1.out" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
# live_echo NAME LINE: NAME's connection still echoes.
live_echo() {
	send_line "$1" "$2"
	wait_output "$1" "^echo: $2\$" 5 ||
	    fail "$1: the open connection did not echo \"$2\": $(tail -n 2 "$TMPDIR/$1.out"); log: $(new_log_lines | grep -E 'closed after reload|access' | tail -n 2)"
	kill -0 "${LPID[$1]}" 2>/dev/null || fail "$1: the client exited"
}
# wait_closed NAME SECONDS: NAME's client exits after the server closed its
# connection (it prints "ERROR EOF ..."); sets CLOSED_MS.
wait_closed() {
	local i t0
	t0=$(now_ms)
	for i in $(seq $(($2 * 20))); do
		kill -0 "${LPID[$1]}" 2>/dev/null || break
		sleep 0.05
	done
	CLOSED_MS=$(now_ms)
	kill -0 "${LPID[$1]}" 2>/dev/null && fail "$1: the connection was still open $2 s later: $(tail -n 2 "$TMPDIR/$1.out")"
	wait "${LPID[$1]}" 2>/dev/null
	untrack "${LPID[$1]}"
	grep -q '^ERROR EOF' "$TMPDIR/$1.out" ||
	    fail "$1: the client did not see the server close the connection: $(tail -n 2 "$TMPDIR/$1.out")"
}
# close_client NAME: end NAME's stdin; the client closes its connection.
close_client() {
	local i
	exec {LFD[$1]}>&-
	for i in $(seq 50); do
		kill -0 "${LPID[$1]}" 2>/dev/null || break
		sleep 0.1
	done
	kill "${LPID[$1]}" 2>/dev/null
	wait "${LPID[$1]}" 2>/dev/null
	untrack "${LPID[$1]}"
}

write_conf "orders, billing, mallory, shortlived"
"$MTLSPROXY" -t -c "$CONF" >"$TMPDIR/t.out" 2>&1 || fail "mtlsproxy -t rejects the test config: $(cat "$TMPDIR/t.out")"
start_proxy "$CONF" "$PORT"
sleep 0.3

log_mark
for who in orders billing mallory; do
	open_lines "$who" "$PKI/$who.crt" "$PKI/$who.key"
done
for who in orders billing mallory; do
	wait_output "$who" '^connected$' 5 || fail "$who did not connect: $(cat "$TMPDIR/$who.out" "$TMPDIR/$who.err")"
	live_echo "$who" "$who 1"
done

# A reload that changes nothing closes nothing.
hup_ok
sleep 0.5
for who in orders billing mallory; do
	live_echo "$who" "$who 2"
done
assert_log_lacks 'closed after reload'
pass "three live connections (orders, billing, mallory) survive a reload that changes nothing"

# --------------------------------------------------------- revoked
(
	cd "$C/pki" &&
	openssl ca -batch -config openssl.cnf -name intermediate_ca -revoke orders.crt \
	    -crl_reason keyCompromise &&
	openssl ca -batch -config openssl.cnf -name intermediate_ca -gencrl -crldays 30 \
	    -out "$C/int-orders.crl.pem"
) >>"$OSSL_LOG" 2>&1 || fail "openssl ca -revoke/-gencrl: $(tail -n 5 "$OSSL_LOG")"
cat "$C/int-orders.crl.pem" "$PKI/root-ca.crl.pem" >"$C/crl.pem.new"
mv -f "$C/crl.pem.new" "$C/crl.pem"
T0=$(now_ms)
hup_ok
wait_closed orders 5
ms=$((CLOSED_MS - T0))
assert_log_contains '^[^ ]+ warn closed after reload ' 'listener=api ' 'peer=127\.0\.0\.1:[0-9]+ ' 'code=revoked ' \
    'reason="[^"]*revoked' 'subject="CN=orders,OU=payments,O=Demo Corp"'
assert_log_contains ' access ' 'listener=api ' 'subject="CN=orders,OU=payments,O=Demo Corp"' 'close="reauth_refused: revoked"'
[ "$(new_log_lines | grep -c 'closed after reload')" -eq 1 ] ||
    fail "expected exactly one 'closed after reload' line: $(new_log_lines | grep 'closed after reload')"
live_echo billing "billing 3"
live_echo mallory "mallory 3"
node_client "$PORT" --cert "$PKI/orders.crt" --key "$PKI/orders.key" --send "x\n" --echo --timeout 5000
[ "$NODE_RC" -ne 0 ] || fail "a new orders connection got in after the CRL revoked it"
assert_log_contains ' refused ' 'code=revoked' 'CN=orders'
pass "new CRL + SIGHUP: the live orders connection closed ${ms} ms after the signal (EOF, code=revoked, close=\"reauth_refused: revoked\"); billing and mallory still echo"

# ---------------------------------------------------------- policy
write_conf "billing, shortlived"
T0=$(now_ms)
hup_ok
wait_closed mallory 5
ms=$((CLOSED_MS - T0))
assert_log_contains '^[^ ]+ warn closed after reload ' 'listener=api ' 'code=policy ' 'subject="CN=mallory,O=Demo Corp"'
assert_log_contains ' access ' 'subject="CN=mallory,O=Demo Corp"' 'close="reauth_refused: policy"'
live_echo billing "billing 4"
pass "allow list narrowed + SIGHUP: the live mallory connection closed ${ms} ms after the signal (code=policy); billing still echoes"

# ---------------------------------------------------- cert expiry
# shortlived: valid from an hour ago until ~6 s from now (UTCTime).
(
	cd "$C/pki" &&
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$C/shortlived.key" &&
	openssl req -new -config openssl.cnf -key "$C/shortlived.key" \
	    -subj "/O=Demo Corp/CN=shortlived" -out "$C/shortlived.csr" &&
	openssl ca -batch -config openssl.cnf -name intermediate_ca -notext \
	    -startdate "$(date -u -d '-1 hour' +%y%m%d%H%M%SZ)" \
	    -enddate "$(date -u -d '+6 seconds' +%y%m%d%H%M%SZ)" \
	    -extfile openssl.cnf -extensions client_ext \
	    -in "$C/shortlived.csr" -out "$C/shortlived.crt"
) >>"$OSSL_LOG" 2>&1 || fail "openssl ca (short-lived certificate): $(tail -n 5 "$OSSL_LOG")"
not_after=$(date -u -d "$(openssl x509 -noout -enddate -in "$C/shortlived.crt" | cut -d= -f2)" +%s) ||
    fail "cannot read the notAfter of shortlived.crt"
log_mark
open_lines shortlived "$C/shortlived.crt" "$C/shortlived.key"
wait_output shortlived '^connected$' 5 || fail "shortlived did not connect: $(cat "$TMPDIR/shortlived.out" "$TMPDIR/shortlived.err"); log: $(new_log_lines | grep refused | tail -n 1)"
live_echo shortlived "short 1"
left=$((not_after - $(date +%s)))
[ "$left" -ge 2 ] || fail "test too slow: shortlived expires in ${left} s already"
wait_closed shortlived $((left + 4))
closed_s=$((CLOSED_MS / 1000))
[ "$((CLOSED_MS + 1000))" -ge "$((not_after * 1000))" ] ||
    fail "shortlived was closed at $CLOSED_MS ms, more than 1 s before its notAfter ($not_after)"
assert_log_contains '^[^ ]+ info client certificate expired during the connection ' 'listener=api ' 'subject="CN=shortlived,O=Demo Corp"'
assert_log_contains ' access ' 'subject="CN=shortlived,O=Demo Corp"' 'close=client_cert_expired'
live_echo billing "billing 5"
pass "a client certificate expiring during the connection: closed $((closed_s - not_after)) s after its notAfter, close=client_cert_expired; billing still echoes"

# Its verified chain was remembered when it connected (the verify cache):
# a new connection after notAfter must still be refused.
log_mark
node_client "$PORT" --cert "$C/shortlived.crt" --key "$C/shortlived.key" --send "late" --timeout 5000
[ "$NODE_RC" -ne 0 ] || fail "a new shortlived connection after its notAfter was let in: $(cat "$NODE_OUT")"
assert_log_contains 'refused' 'code=expired' 'subject="CN=shortlived,O=Demo Corp"'
# A fresh handshake, so the chain check itself refused it (the remembered
# chain was not used past its notAfter), not the later resumed-session check.
assert_log_lacks 'refused .*code=expired .*resumed session'
pass "a new connection with the expired certificate is refused (code=expired) by the chain check, though its chain had been verified before"

close_client billing
assert_log_contains ' access ' 'subject="CN=billing,O=Demo Corp"' 'close=client_closed'
kill -0 "$PROXY_PID" 2>/dev/null || fail "mtlsproxy died"
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
