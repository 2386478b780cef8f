#!/usr/bin/env bash
# tls.session_ticket_key_file: replicas that share the file resume each
# other's TLS sessions.
#  - proxies A and B share a key file (openssl rand 80), C has its own: a
#    session from A (`openssl s_client -sess_out`) is resumed on B
#    ("Reused, TLSv1.3", no client certificate sent, the access line still
#    names orders), and is not on C ("New");
#  - rotation: B's key file replaced (mv) is picked up by reload: watch, and
#    A's session no longer resumes on B;
#  - `mtlsproxy -t` with a key file of 79 or 81 bytes exits 1 with "must
#    hold exactly 80 bytes"; B given a wrong-size file on reload keeps
#    serving;
#  - a session ticket issued before a CRL revoked its client does not let
#    that client back in after the reload (a resumed session skips
#    certificate verification, so the proxy must not resume it), while a
#    full handshake with the revoked certificate is refused (code=revoked).
. "$(dirname -- "$0")/lib.sh"

C=$TMPDIR/certs
mkdir -p "$C/pki" "$C/a" "$C/b" "$C/c"
OSSL_LOG=$TMPDIR/openssl.log
cp -a "$PKI/." "$C/pki/" || fail "cannot copy the demo PKI to $C/pki"

openssl rand 80 >"$C/a/ticket.key" || fail "openssl rand 80"
cp "$C/a/ticket.key" "$C/b/ticket.key"
openssl rand 80 >"$C/c/ticket.key"
for r in a b c; do
	cp "$PKI/crl.pem" "$C/$r/crl.pem"
done

ECHO_PORT=$(free_port)
PA=$(free_port)
PB=$(free_port)
PC=$(free_port)
start_echo "$ECHO_PORT"

# conf REPLICA PORT [TICKET_KEY_FILE]: every replica has the same listener
# ("api"): sessions resume only on the listener that verified them.
conf() {
	local r=$1 port=$2 tk=${3:-$C/$1/ticket.key}
	cat <<EOF
workers: 2
reload: watch
drain_timeout: 2s
log:
  level: debug
  format: text
  access: true
listeners:
  - name: api
    listen: "127.0.0.1:$port"
    tls:
      cert: $PKI/server-fullchain.crt
      key: $PKI/server.key
      session_ticket_key_file: $tk
    client_auth:
      ca: $PKI/client-ca.pem
      crl: $C/$r/crl.pem
      allow:
        subject_cn: [orders, billing]
    backend:
      address: "127.0.0.1:$ECHO_PORT"
      connect_timeout: 2s
    timeouts:
      handshake: 5s
      idle: 60s
EOF
}
for r in a b c; do
	p=PA
	[ "$r" = b ] && p=PB
	[ "$r" = c ] && p=PC
	conf "$r" "${!p}" >"$C/$r/proxy.yaml"
done

# ------------------------------------------------------ wrong sizes
head -c 79 /dev/urandom >"$C/short.key"
head -c 81 /dev/urandom >"$C/long.key"
for f in short long; do
	conf a "$PA" "$C/$f.key" >"$C/$f.yaml"
	"$MTLSPROXY" -t -c "$C/$f.yaml" >"$TMPDIR/t-$f.out" 2>"$TMPDIR/t-$f.err"
	rc=$?
	[ "$rc" -eq 1 ] || fail "mtlsproxy -t with a $f ticket key file exited $rc, expected 1"
	line=$(grep -n 'session_ticket_key_file:' "$C/$f.yaml" | cut -d: -f1)
	grep -q -E "^$C/$f\\.yaml:$line:[0-9]+: session ticket key file $C/$f\\.key must hold exactly 80 bytes" "$TMPDIR/t-$f.err" ||
	    fail "mtlsproxy -t with a $f ticket key file: no 'FILE:$line:COL: ... must hold exactly 80 bytes' message: $(cat "$TMPDIR/t-$f.err")"
done
grep -q 'it has 79 ' "$TMPDIR/t-short.err" || fail "-t with 79 bytes does not say it has 79: $(cat "$TMPDIR/t-short.err")"
grep -q 'openssl rand 80 >' "$TMPDIR/t-short.err" || fail "-t with 79 bytes does not say how to make one"
for r in a b c; do
	"$MTLSPROXY" -t -c "$C/$r/proxy.yaml" >"$TMPDIR/t.out" 2>&1 || fail "mtlsproxy -t rejects $r's config: $(cat "$TMPDIR/t.out")"
done
pass "mtlsproxy -t: 79 and 81 byte ticket key files are refused (exit 1, 'must hold exactly 80 bytes'), 80 bytes accepted"

# ------------------------------------------------------- replicas
declare -A RPID RLOG
# start_replica R PORT
start_replica() {
	start_proxy "$C/$1/proxy.yaml" "$2"
	RPID[$1]=$PROXY_PID
	RLOG[$1]=$PROXY_LOG
}
# use_replica R: make R's proxy the one the log helpers look at.
use_replica() {
	PROXY_PID=${RPID[$1]}
	PROXY_LOG=${RLOG[$1]}
	LOG_MARK=$(wc -l <"$PROXY_LOG")
}
start_replica a "$PA"
start_replica b "$PB"
start_replica c "$PC"
sleep 0.3

# tls_session NAME PORT [s_client options...]: openssl s_client (not
# -quiet, so it prints "New, ..." or "Reused, ..."), send a line, keep
# stdin open until it is echoed (max 5 s), then close. Output in
# $TMPDIR/NAME.out; SC_RC.
tls_session() {
	local name=$1 port=$2 out=$TMPDIR/$1.out done=$TMPDIR/$1.rc i
	shift 2
	rm -f "$out" "$done"
	: >"$out"
	{
		printf 'ping %s\n' "$name"
		for i in $(seq 50); do
			[ -s "$done" ] && break
			grep -q -F -- "ping $name" "$out" 2>/dev/null && break
			sleep 0.1
		done
	} | {
		timeout -k 2 10 openssl s_client -connect "127.0.0.1:$port" \
		    -servername localhost -CAfile "$PKI/root-ca.crt" \
		    -verify_return_error -tls1_3 "$@" >"$out" 2>"$TMPDIR/$name.err"
		echo $? >"$done"
	}
	SC_RC=$(cat "$done")
}
# session_kind NAME: New or Reused (s_client's line), or "none".
session_kind() {
	local k
	k=$(grep -m1 -o -E '^(New|Reused), TLSv1\.3' "$TMPDIR/$1.out" | cut -d, -f1)
	echo "${k:-none}"
}
echoed() {
	grep -q -F -- "ping $1" "$TMPDIR/$1.out"
}

# wait_reloaded WHAT: wait (max 4 s) for a successful reload logged since
# the mark.
wait_reloaded() {
	local i
	for i in $(seq 80); do
		log_has_line 'info reloaded: generation [0-9]+ in use for new connections' && return 0
		sleep 0.05
	done
	fail "$1: no 'reloaded: generation N' line within 4 s: $(new_log_lines | grep -E 'reload' | head -n 4)"
}

ORDERS=(-cert "$PKI/orders.crt" -key "$PKI/orders.key")

# A full handshake on A, with orders' certificate; the session is saved.
tls_session a1 "$PA" "${ORDERS[@]}" -sess_out "$C/sess-a.pem"
echoed a1 || fail "s_client to A: no echo (rc $SC_RC): $(tail -n 3 "$TMPDIR/a1.err")"
[ "$(session_kind a1)" = New ] || fail "s_client to A: expected a new session, got $(session_kind a1)"
[ -s "$C/sess-a.pem" ] || fail "s_client -sess_out wrote no session (no ticket from A?)"
pass "A: full handshake as orders, session ticket saved"

# Resumed on B (same key file) without any client certificate.
use_replica b
tls_session b1 "$PB" -sess_in "$C/sess-a.pem"
[ "$(session_kind b1)" = Reused ] ||
    fail "A's session was not resumed on B (same ticket key file): $(session_kind b1); $(grep -E '^(New|Reused)' "$TMPDIR/b1.out"); $(tail -n 3 "$TMPDIR/b1.err"); log: $(new_log_lines | grep -E 'refused' | tail -n 1)"
echoed b1 || fail "resumed on B but no echo (rc $SC_RC): $(tail -n 3 "$TMPDIR/b1.err")"
assert_log_contains ' access ' 'listener=api ' 'subject="CN=orders,OU=payments,O=Demo Corp"' 'bytes_in=[1-9]'
pass "B resumed A's session (Reused, TLSv1.3) without a client certificate; the access line names orders"

# Not on C (another key file): a full handshake instead.
use_replica c
tls_session c1 "$PC" "${ORDERS[@]}" -sess_in "$C/sess-a.pem"
[ "$(session_kind c1)" = New ] || fail "A's session on C (other ticket key file): expected New, got $(session_kind c1)"
echoed c1 || fail "full handshake on C: no echo (rc $SC_RC): $(tail -n 3 "$TMPDIR/c1.err")"
pass "C (different key file) does not resume A's session: New"

# ------------------------------------------------------- rotation
# B's key file is replaced; reload: watch picks it up.
use_replica b
openssl rand 80 >"$C/b/ticket.key.new"
mv -f "$C/b/ticket.key.new" "$C/b/ticket.key"
wait_reloaded "B's ticket key file replaced"
assert_log_contains "info reloading $C/b/proxy\\.yaml \\(files changed\\)"
tls_session b2 "$PB" "${ORDERS[@]}" -sess_in "$C/sess-a.pem"
[ "$(session_kind b2)" = New ] || fail "after B's ticket key was rotated, A's session still resumed on B: $(session_kind b2)"
echoed b2 || fail "full handshake on B after the rotation: no echo"
pass "ticket key rotated on B (file replaced, reloaded by the watch): A's session no longer resumes there"

# A wrong-size file on B: the reload fails, B keeps serving (and resuming
# its own sessions).
tls_session b3 "$PB" "${ORDERS[@]}" -sess_out "$C/sess-b.pem"
[ "$(session_kind b3)" = New ] && echoed b3 || fail "full handshake on B: $(session_kind b3), rc $SC_RC"
log_mark
cp "$C/b/ticket.key" "$C/b/ticket.key.good"
head -c 40 /dev/urandom >"$C/b/ticket.key.new"
mv -f "$C/b/ticket.key.new" "$C/b/ticket.key"
for i in $(seq 60); do
	log_has_line 'reload failed' && break
	sleep 0.05
done
assert_log_contains "error reload: $C/b/proxy\\.yaml:[0-9]+:[0-9]+: session ticket key file $C/b/ticket\\.key must hold exactly 80 bytes, it has 40"
assert_log_contains 'error reload failed \(1 error\): still serving with the previous configuration'
tls_session b4 "$PB" -sess_in "$C/sess-b.pem"
[ "$(session_kind b4)" = Reused ] && echoed b4 ||
    fail "after a failed reload (40-byte key file) B did not resume its own session: $(session_kind b4), rc $SC_RC"
log_mark
mv -f "$C/b/ticket.key.good" "$C/b/ticket.key"
wait_reloaded "B's ticket key file put back"
pass "a 40-byte key file on reload: 'must hold exactly 80 bytes', reload failed, B kept serving and resuming"

# ------------------------------------------ revocation vs. tickets
# A session of orders issued by B now; then B's CRL starts revoking orders.
tls_session b5 "$PB" "${ORDERS[@]}" -sess_out "$C/sess-b2.pem"
[ "$(session_kind b5)" = New ] && echoed b5 || fail "full handshake on B: $(session_kind b5), rc $SC_RC"
(
	cd "$C/pki" &&
	openssl ca -batch -config openssl.cnf -name intermediate_ca -revoke orders.crt \
	    -crl_reason keyCompromise &&
	openssl ca -batch -config openssl.cnf -name intermediate_ca -gencrl -crldays 30 \
	    -out "$C/int-orders.crl.pem"
) >>"$OSSL_LOG" 2>&1 || fail "openssl ca -revoke/-gencrl: $(tail -n 5 "$OSSL_LOG")"
cat "$C/int-orders.crl.pem" "$PKI/root-ca.crl.pem" >"$C/b/crl.pem.new"
log_mark
mv -f "$C/b/crl.pem.new" "$C/b/crl.pem"
wait_reloaded "B's CRL replaced"
tls_session b6 "$PB" "${ORDERS[@]}"
echoed b6 && fail "orders got in on B with a full handshake after the CRL revoked it"
assert_log_contains ' refused ' 'code=revoked' 'CN=orders'
log_mark
tls_session b7 "$PB" -sess_in "$C/sess-b2.pem"
if echoed b7; then
	fail "orders, revoked by B's new CRL, got back in on B by resuming a session ticket issued before the reload ($(session_kind b7), bytes echoed through to the backend; log: $(new_log_lines | grep -E 'verified|access' | head -n 2 | cut -c1-200))"
fi
pass "a ticket issued before the CRL revoked orders does not let orders back in ($(session_kind b7))"

# ------------------------------------- generated keys that rotate
# D has no key file: its ticket keys are made in memory and rotate every
# session_ticket_rotation (1 s here); a ticket resumes through a reload and
# for two rotations, not after three.
mkdir -p "$C/d"
PD=$(free_port)
conf d "$PD" | sed '/session_ticket_key_file:/d; s/^drain_timeout: 2s$/drain_timeout: 2s\nsession_ticket_rotation: 1s/' >"$C/d/proxy.yaml"
cp "$PKI/crl.pem" "$C/d/crl.pem"
grep -q '^session_ticket_rotation: 1s$' "$C/d/proxy.yaml" || fail "test setup: no session_ticket_rotation in D's config"
sed 's/^session_ticket_rotation: 1s$/session_ticket_rotation: 500ms/' "$C/d/proxy.yaml" >"$C/d/short.yaml"
"$MTLSPROXY" -t -c "$C/d/short.yaml" >"$TMPDIR/t-rot.out" 2>&1 && fail "mtlsproxy -t accepted session_ticket_rotation: 500ms"
line=$(grep -n '^session_ticket_rotation:' "$C/d/short.yaml" | cut -d: -f1)
grep -q -E "^$C/d/short\.yaml:$line:[0-9]+: \"session_ticket_rotation\" must be at least 1000 ms" "$TMPDIR/t-rot.out" ||
    fail "session_ticket_rotation: 500ms: no 'FILE:$line:COL: ... must be at least 1000 ms': $(cat "$TMPDIR/t-rot.out")"
start_replica d "$PD"
T0=$(now_ms)
tls_session d1 "$PD" "${ORDERS[@]}" -sess_out "$C/sess-d.pem"
echoed d1 && [ "$(session_kind d1)" = New ] || fail "D: full handshake failed ($(session_kind d1), rc $SC_RC)"
tls_session d2 "$PD" -sess_in "$C/sess-d.pem"
[ "$(session_kind d2)" = Reused ] && echoed d2 || fail "D: its own fresh ticket did not resume: $(session_kind d2)"
use_replica d
kill -HUP "$PROXY_PID"
wait_reloaded "D's SIGHUP"
tls_session d3 "$PD" -sess_in "$C/sess-d.pem"
[ "$(session_kind d3)" = Reused ] && echoed d3 || fail "D: a ticket from before a reload did not resume after it: $(session_kind d3)"
sleep 1.3
tls_session d4 "$PD" -sess_in "$C/sess-d.pem"
[ "$(session_kind d4)" = Reused ] && echoed d4 ||
    fail "D: a ticket one rotation old ($(($(now_ms) - T0)) ms) did not resume: $(session_kind d4)"
sleep 3.2
tls_session d5 "$PD" -sess_in "$C/sess-d.pem"
[ "$(session_kind d5)" = Reused ] &&
    fail "D: a ticket whose key is more than three rotations old ($(($(now_ms) - T0)) ms) still resumed"
pass "generated ticket keys: resume after a reload and one rotation, not after three (session_ticket_rotation: 1s)"

# ------------------------------------------- session_tickets: false
# E turns resumption off: no TLS 1.3 ticket (s_client saves no session),
# and a TLS 1.2 session is never resumed (neither by ticket nor by ID).
mkdir -p "$C/e"
PE=$(free_port)
conf e "$PE" | sed 's/^\( *\)session_ticket_key_file:.*$/\1session_tickets: false/' >"$C/e/proxy.yaml"
cp "$PKI/crl.pem" "$C/e/crl.pem"
grep -q 'session_tickets: false' "$C/e/proxy.yaml" || fail "test setup: no session_tickets: false in E's config"
start_replica e "$PE"
rm -f "$C/sess-e13.pem"
tls_session e1 "$PE" "${ORDERS[@]}" -sess_out "$C/sess-e13.pem"
echoed e1 && [ "$(session_kind e1)" = New ] || fail "E: full handshake failed ($(session_kind e1), rc $SC_RC)"
if [ -s "$C/sess-e13.pem" ]; then
	tls_session e2 "$PE" -sess_in "$C/sess-e13.pem"
	[ "$(session_kind e2)" = Reused ] && fail "E (session_tickets: false): a TLS 1.3 session resumed"
fi
# s_client -reconnect: one full handshake, then five reconnections with
# its session (TLS 1.2: ticket or session ID).
timeout -k 2 20 openssl s_client -connect "127.0.0.1:$PE" -servername localhost \
    -CAfile "$PKI/root-ca.crt" -verify_return_error -tls1_2 "${ORDERS[@]}" \
    -reconnect </dev/null >"$TMPDIR/e12.out" 2>"$TMPDIR/e12.err"
grep -q -E '^New, ' "$TMPDIR/e12.out" || fail "E: TLS 1.2 s_client -reconnect made no connection: $(tail -n 3 "$TMPDIR/e12.err")"
grep -q -E '^Reused, ' "$TMPDIR/e12.out" &&
    fail "E (session_tickets: false): a TLS 1.2 session was resumed ($(grep -c -E '^Reused, ' "$TMPDIR/e12.out") of the reconnections)"
# The same with tickets on (A) does resume, so the check above can fail.
timeout -k 2 20 openssl s_client -connect "127.0.0.1:$PA" -servername localhost \
    -CAfile "$PKI/root-ca.crt" -verify_return_error -tls1_2 "${ORDERS[@]}" \
    -reconnect </dev/null >"$TMPDIR/a12.out" 2>"$TMPDIR/a12.err"
grep -q -E '^Reused, ' "$TMPDIR/a12.out" || fail "A: TLS 1.2 s_client -reconnect never resumed: $(grep -E '^(New|Reused)' "$TMPDIR/a12.out" | head -n 3)"
pass "session_tickets: false: no TLS 1.3 session resumes and no TLS 1.2 reconnection is resumed (with tickets on they are)"

for r in e d c b a; do
	use_replica "$r"
	stop_proxy
	[ "$PROXY_RC" -eq 0 ] || fail "replica $r exited $PROXY_RC on SIGTERM"
done
