#!/usr/bin/env bash
# `mtlsproxy check` and `mtlsproxy explain`:
#  - check on a good config: exit 0 and no warning; with a server
#    certificate that expires in 10 days and a CRL whose nextUpdate is in 5
#    days (both made here with the openssl CLI): a warning for each, at the
#    config line of the key, with the days left; --strict exits 2; an
#    expired server certificate is an error (exit 1) although -t passes;
#    a missing intermediate, a CRL file without the root's CRL, allow
#    entries no certificate can match: warnings;
#  - explain for every demo client (orders, billing, mallory, revoked,
#    expired, server-eku, noeku twice, stranger, partner twice): the built
#    chain and the verdict, and the verdict (code and reason) is the one
#    the running daemon logs when that client connects with s_client.
. "$(dirname -- "$0")/lib.sh"

C=$TMPDIR/certs
mkdir -p "$C"
OSSL_LOG=$TMPDIR/openssl.log

ossl() {
	openssl "$@" >>"$OSSL_LOG" 2>&1 || fail "openssl $*: $(tail -n 5 "$OSSL_LOG")"
}

HTTP_PORT=$(free_port)
P_API=$(free_port)
P_STRICT=$(free_port)
P_PARTNER=$(free_port)
start_http "$HTTP_PORT"
REQ='GET / HTTP/1.0\r\nHost: localhost\r\n\r\n'

# write_config FILE SERVER_CERT CRL [API_ALLOW_EXTRA]: three listeners:
# api (ca + crl, allow orders and billing), strict (the same with
# client_eku: required), partner (trusted_certs only).
write_config() {
	cat >"$1" <<YAML
workers: 2
log:
  level: info
  format: text
listeners:
  - name: api
    listen: "127.0.0.1:$P_API"
    tls:
      cert: $2
      key: $PKI/server.key
    client_auth:
      ca: $PKI/client-ca.pem
      crl: $3
      allow:
        subject_cn: [orders, billing]${4:-}
    backend:
      address: "127.0.0.1:$HTTP_PORT"
      mode: tcp
  - name: strict
    listen: "127.0.0.1:$P_STRICT"
    tls:
      cert: $PKI/server-fullchain.crt
      key: $PKI/server.key
    client_auth:
      ca: $PKI/client-ca.pem
      crl: $PKI/crl.pem
      client_eku: required
      allow:
        subject_cn: [orders, billing]
    backend:
      address: "127.0.0.1:$HTTP_PORT"
      mode: tcp
  - name: partner
    listen: "127.0.0.1:$P_PARTNER"
    tls:
      cert: $PKI/server-fullchain.crt
      key: $PKI/server.key
    client_auth:
      trusted_certs: [$PKI/partner.crt]
      allow:
        subject_o: ["Partner Ltd"]
    backend:
      address: "127.0.0.1:$HTTP_PORT"
      mode: tcp
YAML
}

# run_check NAME [options]: mtlsproxy check -c $TMPDIR/NAME.yaml; sets
# CHECK_OUT (stdout and stderr) and CHECK_RC.
run_check() {
	local name=$1
	shift
	CHECK_OUT=$TMPDIR/check-$name.out
	"$MTLSPROXY" check -c "$TMPDIR/$name.yaml" "$@" >"$CHECK_OUT" 2>&1
	CHECK_RC=$?
}

# line_of FILE TEXT: the number of the first line of FILE holding TEXT.
line_of() {
	grep -n -F -- "$2" "$1" | head -n 1 | cut -d: -f1
}

# ================================================================ check

write_config "$TMPDIR/good.yaml" "$PKI/server-fullchain.crt" "$PKI/crl.pem"
run_check good
[ "$CHECK_RC" -eq 0 ] || fail "check on the good config exited $CHECK_RC: $(cat "$CHECK_OUT")"
grep -q 'warning:' "$CHECK_OUT" && fail "check on the good config warns: $(cat "$CHECK_OUT")"
grep -q -F "configuration $TMPDIR/good.yaml: 0 errors, 0 warnings" "$CHECK_OUT" ||
    fail "no summary line: $(cat "$CHECK_OUT")"
run_check good --strict
[ "$CHECK_RC" -eq 0 ] || fail "check --strict on the good config exited $CHECK_RC"
pass "check good.yaml: $(tail -n 1 "$CHECK_OUT")"

# An `openssl ca` set-up over a copy of the demo intermediate's database,
# for a CRL in the last 5 of its 30 days and a back-dated (expired) server certificate.
mkdir -p "$C/db/new"
cp "$PKI/ca-db/intermediate/index.txt" "$C/db/index.txt" ||
    fail "the demo PKI has no ca-db/intermediate/index.txt"
echo 4000 >"$C/db/crlnumber"
openssl rand -hex 16 >"$C/db/serial"
cat >"$C/ca.cnf" <<CNF
[ req ]
distinguished_name	= req_dn
prompt			= no
[ req_dn ]
CN			= unused
[ ca ]
default_ca		= int_ca
[ int_ca ]
database		= $C/db/index.txt
crlnumber		= $C/db/crlnumber
serial			= $C/db/serial
new_certs_dir		= $C/db/new
certificate		= $PKI/intermediate-ca.crt
private_key		= $PKI/intermediate-ca.key
default_md		= sha256
default_crl_days	= 30
crl_extensions		= crl_ext
policy			= policy_any
unique_subject		= no
copy_extensions		= none
preserve		= yes
[ policy_any ]
organizationName	= optional
commonName		= supplied
[ crl_ext ]
authorityKeyIdentifier	= keyid:always
[ server_ext ]
basicConstraints	= critical, CA:false
keyUsage		= critical, digitalSignature
extendedKeyUsage	= serverAuth
subjectAltName		= DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier	= hash
authorityKeyIdentifier	= keyid:always
CNF
CNF=$C/ca.cnf

# A server certificate for 10 days, with the intermediate after it.
ossl req -new -config "$CNF" -key "$PKI/server.key" -subj "/O=Demo Corp/CN=localhost" -out "$C/server.csr"
ossl x509 -req -in "$C/server.csr" -CA "$PKI/intermediate-ca.crt" -CAkey "$PKI/intermediate-ca.key" \
    -set_serial "0x$(openssl rand -hex 12)" -days 10 -sha256 \
    -extfile "$CNF" -extensions server_ext -out "$C/soon.crt"
cat "$C/soon.crt" "$PKI/intermediate-ca.crt" >"$C/soon-fullchain.crt"
# The intermediate's CRL for 5 days (still revoking `revoked`), plus the root's.
ossl ca -batch -config "$CNF" -gencrl -crl_lastupdate "$(date -u -d "25 days ago" +%Y%m%d%H%M%SZ)" -crl_nextupdate "$(date -u -d "5 days" +%Y%m%d%H%M%SZ)" -out "$C/int-5d.crl.pem"
cat "$C/int-5d.crl.pem" "$PKI/root-ca.crl.pem" >"$C/crl-5d.pem"

write_config "$TMPDIR/soon.yaml" "$C/soon-fullchain.crt" "$C/crl-5d.pem"
run_check soon
[ "$CHECK_RC" -eq 0 ] || fail "check with warnings only exited $CHECK_RC, want 0: $(cat "$CHECK_OUT")"
l=$(line_of "$TMPDIR/soon.yaml" "cert: $C/soon-fullchain.crt")
grep -q -E "^$TMPDIR/soon\.yaml:$l:13: warning: listener \"api\": server certificate .*CN=localhost.* expires on [0-9-]+ [0-9:]+ UTC \(10 days left\)" "$CHECK_OUT" ||
    fail "no warning for the server certificate at soon.yaml:$l:13 with 10 days left: $(cat "$CHECK_OUT")"
l=$(line_of "$TMPDIR/soon.yaml" "crl: $C/crl-5d.pem")
grep -q -E "^$TMPDIR/soon\.yaml:$l:12: warning: listener \"api\": the CRL from \"CN=Demo Intermediate CA,O=Demo Corp\" .*nextUpdate on [0-9-]+ [0-9:]+ UTC \(5 days left\)" "$CHECK_OUT" ||
    fail "no warning for the CRL at soon.yaml:$l:12 with 5 days left: $(cat "$CHECK_OUT")"
grep -q -F "configuration $TMPDIR/soon.yaml: 0 errors, 2 warnings" "$CHECK_OUT" ||
    fail "want exactly 2 warnings: $(cat "$CHECK_OUT")"
pass "check soon.yaml: $(grep -m1 'server certificate' "$CHECK_OUT" | sed "s|$TMPDIR/||g")"
run_check soon --strict
[ "$CHECK_RC" -eq 2 ] || fail "check --strict with warnings exited $CHECK_RC, want 2"
pass "check --strict with warnings exits 2"

# An expired server certificate (2024-01-01 .. 2025-01-01): -t accepts it
# (the daemon would start), check says it is an error.
ossl ca -batch -config "$CNF" -notext -startdate 20240101000000Z -enddate 20250101000000Z \
    -extfile "$CNF" -extensions server_ext -in "$C/server.csr" -out "$C/old.crt"
cat "$C/old.crt" "$PKI/intermediate-ca.crt" >"$C/old-fullchain.crt"
write_config "$TMPDIR/old.yaml" "$C/old-fullchain.crt" "$PKI/crl.pem"
"$MTLSPROXY" -t -c "$TMPDIR/old.yaml" >"$TMPDIR/old-t.out" 2>&1 ||
    fail "-t refuses the expired server certificate; check is where it is reported: $(cat "$TMPDIR/old-t.out")"
run_check old
[ "$CHECK_RC" -eq 1 ] || fail "check with an expired server certificate exited $CHECK_RC, want 1: $(cat "$CHECK_OUT")"
l=$(line_of "$TMPDIR/old.yaml" "cert: $C/old-fullchain.crt")
grep -q -E "^$TMPDIR/old\.yaml:$l:13: error: listener \"api\": server certificate .* expired on 2025-01-01 00:00:00 UTC" "$CHECK_OUT" ||
    fail "no error for the expired server certificate at old.yaml:$l:13: $(cat "$CHECK_OUT")"
grep -q -F "configuration $TMPDIR/old.yaml: 1 error, 0 warnings" "$CHECK_OUT" ||
    fail "want 1 error: $(cat "$CHECK_OUT")"
pass "check old.yaml: $(grep -m1 'error:' "$CHECK_OUT" | sed "s|$TMPDIR/||g")"

# Errors of -t come out the same way, with "error:".
sed -e "s|ca: $PKI/client-ca.pem|ca: $TMPDIR/missing-ca.pem|" "$TMPDIR/good.yaml" >"$TMPDIR/noca.yaml"
run_check noca
[ "$CHECK_RC" -eq 1 ] || fail "check with a missing CA file exited $CHECK_RC, want 1"
grep -q -E "^$TMPDIR/noca\.yaml:[0-9]+:[0-9]+: error: .*missing-ca\.pem" "$CHECK_OUT" ||
    fail "the missing CA file is not an error line: $(cat "$CHECK_OUT")"
pass "check reports -t's errors: $(grep -m1 'error:' "$CHECK_OUT" | sed "s|$TMPDIR/||g")"

# A client's own (leaf) certificate put in client_auth.ca: no client can
# chain to it; check says so and points to trusted_certs.
sed -e "s|ca: $PKI/client-ca.pem|ca: $PKI/orders.crt|" "$TMPDIR/good.yaml" >"$TMPDIR/leafca.yaml"
run_check leafca
[ "$CHECK_RC" -eq 0 ] || fail "check leafca.yaml exited $CHECK_RC, want 0 (a warning): $(cat "$CHECK_OUT")"
grep -q -E "^$TMPDIR/leafca\.yaml:[0-9]+:[0-9]+: warning: listener \"[a-z]+\": \"CN=orders,OU=payments,O=Demo Corp\" in .*orders\.crt is not a CA certificate .*client_auth.trusted_certs" "$CHECK_OUT" ||
    fail "no warning for a leaf in client_auth.ca: $(cat "$CHECK_OUT")"
pass "check warns about a leaf certificate in client_auth.ca"

# A leaf alone whose intermediate is in client_auth.ca (the daemon sends it
# along: no warning), a CRL file without the root's CRL, and allow entries
# that cannot match anything.
FP_ORDERS=$(openssl x509 -in "$PKI/orders.crt" -noout -fingerprint -sha256 | cut -d= -f2)
write_config "$TMPDIR/lint.yaml" "$PKI/server.crt" "$PKI/crl.der" '
        subject_o: ["a-very-long-organization-name-that-no-certificate-can-carry-as-its-O"]
        san_uri: ["spiffe://demo.example/ns//orders", "demo.example/ns/prod/orders"]'
sed -i -e "s|        subject_o: \[\"Partner Ltd\"\]|        subject_o: [\"Partner Ltd\"]\n        fingerprint_sha256: [\"$FP_ORDERS\"]|" "$TMPDIR/lint.yaml"
run_check lint
[ "$CHECK_RC" -eq 0 ] || fail "check lint.yaml exited $CHECK_RC, want 0 (warnings only): $(cat "$CHECK_OUT")"
grep -q -E "has no issuer certificate|does not verify" "$CHECK_OUT" &&
    fail "a server chain warning for a leaf whose intermediate the daemon sends: $(cat "$CHECK_OUT")"
l=$(line_of "$TMPDIR/lint.yaml" "crl: $PKI/crl.der")
grep -q -E "^$TMPDIR/lint\.yaml:$l:12: warning: .*has no CRL from \"CN=Demo Root CA,O=Demo Corp\".*code=crl_missing" "$CHECK_OUT" ||
    fail "no CRL-coverage warning at lint.yaml:$l:12: $(cat "$CHECK_OUT")"
grep -q -E "warning: listener \"api\": allow.subject_o entry .* can never match: RFC 5280 limits a subject O to 64 characters" "$CHECK_OUT" ||
    fail "no warning for the 69-character subject_o: $(cat "$CHECK_OUT")"
grep -q -E "warning: listener \"api\": allow.san_uri entry \"spiffe://demo.example/ns//orders\" can never match: .*empty path segment" "$CHECK_OUT" ||
    fail "no warning for the empty SPIFFE path segment: $(cat "$CHECK_OUT")"
grep -q -E "warning: listener \"api\": allow.san_uri entry \"demo.example/ns/prod/orders\" can never match: .*scheme" "$CHECK_OUT" ||
    fail "no warning for the URI without a scheme: $(cat "$CHECK_OUT")"
l=$(line_of "$TMPDIR/lint.yaml" "fingerprint_sha256:")
grep -q -E "^$TMPDIR/lint\.yaml:$l:29: warning: listener \"partner\": no certificate in client_auth.trusted_certs matches allow.fingerprint_sha256" "$CHECK_OUT" ||
    fail "no warning for a fingerprint of none of the trusted_certs at lint.yaml:$l:29: $(cat "$CHECK_OUT")"
grep -q -F "configuration $TMPDIR/lint.yaml: 0 errors, 5 warnings" "$CHECK_OUT" ||
    fail "want exactly 5 warnings: $(cat "$CHECK_OUT")"
pass "check lint.yaml: 5 warnings"

# The same leaf alone with only the root in this listener's client_auth.ca:
# the intermediate is nowhere the daemon could send it from.
sed -e "0,\|ca: $PKI/client-ca.pem|s||ca: $PKI/root-ca.crt|" "$TMPDIR/lint.yaml" >"$TMPDIR/lint2.yaml"
run_check lint2
l=$(line_of "$TMPDIR/lint2.yaml" "cert: $PKI/server.crt")
grep -q -E "^$TMPDIR/lint2\.yaml:$l:13: warning: .*has no issuer certificate for \"CN=localhost,O=Demo Corp\".*clients that do not have the intermediate will fail" "$CHECK_OUT" ||
    fail "no missing-intermediate warning at lint2.yaml:$l:13: $(cat "$CHECK_OUT")"
pass "check: a leaf alone whose intermediate is not in its client_auth.ca: $(grep -m1 'no issuer certificate' "$CHECK_OUT" | sed "s|$TMPDIR/||g" | cut -c1-120)"

# --help of both commands, and -h names them.
"$MTLSPROXY" check --help >"$TMPDIR/help.out" 2>&1 || fail "check --help exited $?"
grep -q -F -- '--strict' "$TMPDIR/help.out" || fail "check --help: $(cat "$TMPDIR/help.out")"
"$MTLSPROXY" explain --help >"$TMPDIR/help.out" 2>&1 || fail "explain --help exited $?"
grep -q -F -- '--listener' "$TMPDIR/help.out" || fail "explain --help: $(cat "$TMPDIR/help.out")"
"$MTLSPROXY" -h >"$TMPDIR/help.out" 2>&1 || fail "-h exited $?"
grep -q 'mtlsproxy check' "$TMPDIR/help.out" && grep -q 'mtlsproxy explain' "$TMPDIR/help.out" ||
    fail "-h does not mention check and explain: $(cat "$TMPDIR/help.out")"
pass "--help"

# ============================================================== explain

# Usage errors: exit 2; an unknown listener lists the names.
"$MTLSPROXY" explain -c "$TMPDIR/good.yaml" --listener nope --cert "$PKI/orders.pem" >"$TMPDIR/ex.out" 2>&1
rc=$?
[ "$rc" -eq 2 ] || fail "explain with an unknown listener exited $rc, want 2"
grep -q -F 'api strict partner' "$TMPDIR/ex.out" || fail "the listener names are not listed: $(cat "$TMPDIR/ex.out")"
"$MTLSPROXY" explain -c "$TMPDIR/good.yaml" --listener api >"$TMPDIR/ex.out" 2>&1
[ $? -eq 2 ] || fail "explain without --cert did not exit 2"
pass "explain usage errors exit 2"

start_proxy "$TMPDIR/good.yaml" "$P_API"
wait_port "$P_STRICT" "$PROXY_PID" 5 || fail "listener strict is not up"
wait_port "$P_PARTNER" "$PROXY_PID" 5 || fail "listener partner is not up"

port_of() {
	case $1 in
	api) echo "$P_API" ;;
	strict) echo "$P_STRICT" ;;
	partner) echo "$P_PARTNER" ;;
	esac
}

# case CLIENT LISTENER VERDICT [REASON_RE]: explain CLIENT.pem on LISTENER
# gives VERDICT (ALLOW or a code); its output shows the chain; then the
# daemon, with CLIENT connecting, logs the same verdict (code and reason).
case_() {
	local who=$1 lis=$2 want=$3 re=${4:-} out=$TMPDIR/explain-$1-$2.out
	local rc last deny cn
	"$MTLSPROXY" explain -c "$TMPDIR/good.yaml" --listener "$lis" --cert "$PKI/$who.pem" >"$out" 2>&1
	rc=$?
	last=$(tail -n 1 "$out")
	grep -q -E '^chain built by OpenSSL' "$out" || fail "explain $who on $lis: no chain section: $(cat "$out")"
	case $who in
	noeku | server-eku) cn=billing ;;	# their CN is billing
	stranger) cn=orders ;;
	*) cn=$who ;;
	esac
	grep -q -E "^  depth 0  CN=$cn," "$out" ||
	    fail "explain $who on $lis: no depth 0 line with CN=$cn: $(cat "$out")"
	grep -q -E '^checks:' "$out" || fail "explain $who on $lis: no checks section"
	if [ "$want" = ALLOW ]; then
		[ "$rc" -eq 0 ] || fail "explain $who on $lis exited $rc, want 0: $(tail -n 5 "$out")"
		[ "$last" = ALLOW ] || fail "explain $who on $lis: last line [$last], want ALLOW"
		grep -q -E '^  ok    chain ' "$out" || fail "explain $who on $lis: the chain check is not ok"
		log_mark
		s_client_send "$(port_of "$lis")" "$REQ" "$HTTP_BODY" -cert "$PKI/$who.crt" -key "$PKI/$who.key"
		grep -q -F -- "$HTTP_BODY" "$SCLIENT_OUT" || fail "the daemon did not let $who through $lis, explain said ALLOW"
		assert_log_contains ' access ' "listener=$lis"
		assert_log_lacks ' refused '
	else
		[ "$rc" -eq 1 ] || fail "explain $who on $lis exited $rc, want 1: $(tail -n 5 "$out")"
		case $last in
		"DENY code=$want reason="*) ;;
		*) fail "explain $who on $lis: last line [$last], want DENY code=$want" ;;
		esac
		if [ -n "$re" ]; then
			printf '%s\n' "$last" | grep -q -E -- "$re" || fail "explain $who on $lis: [$last] does not match [$re]"
		fi
		grep -q -E '^  FAIL  ' "$out" || fail "explain $who on $lis: no FAIL check line"
		deny=${last#DENY }
		log_mark
		s_client_send "$(port_of "$lis")" "$REQ" "$HTTP_BODY" -cert "$PKI/$who.crt" -key "$PKI/$who.key"
		grep -q -F -- "$HTTP_BODY" "$SCLIENT_OUT" && fail "the daemon let $who through $lis, explain said $last"
		assert_log_contains ' refused ' "listener=$lis"
		new_log_lines | grep ' refused ' | grep -q -F -- " $deny " ||
		    fail "the daemon logged [$(new_log_lines | grep ' refused ' | grep -o 'code=.*' | head -n 1)] for $who on $lis, explain said [$deny]"
	fi
	pass "explain $who on $lis: $last (the daemon agrees)"
}

case_ orders api ALLOW
grep -q -E '^  depth 1  CN=Demo Intermediate CA,O=Demo Corp$' "$TMPDIR/explain-orders-api.out" &&
    grep -q -E '^  depth 2  CN=Demo Root CA,O=Demo Corp$' "$TMPDIR/explain-orders-api.out" &&
    grep -q -E 'from client_auth.ca .*client-ca.pem' "$TMPDIR/explain-orders-api.out" ||
    fail "explain orders: the built chain (intermediate, root, from client_auth.ca) is not shown: $(cat "$TMPDIR/explain-orders-api.out")"
grep -q -E '^  ok    allow +subject_cn: "orders" matches' "$TMPDIR/explain-orders-api.out" ||
    fail "explain orders: no allow line: $(cat "$TMPDIR/explain-orders-api.out")"
grep -q -E '^  ok    revocation +depth 0: not revoked' "$TMPDIR/explain-orders-api.out" ||
    fail "explain orders: no CRL line"
case_ billing api ALLOW
case_ mallory api policy 'reason="policy: subject CN \\"mallory\\" is not in allow\.subject_cn"'
case_ revoked api revoked 'reason="certificate revoked \(serial [0-9A-F]+\)'
grep -q -E '^  FAIL  revocation +depth 0: revoked on ' "$TMPDIR/explain-revoked-api.out" ||
    fail "explain revoked: no FAIL revocation line"
case_ expired api expired 'expired on 2024-01-01 00:00:00 UTC'
grep -q -E '^  FAIL  validity +depth 0 "CN=expired,O=Demo Corp": expired on 2024-01-01' "$TMPDIR/explain-expired-api.out" ||
    fail "explain expired: no FAIL validity line"
case_ server-eku api wrong_purpose
case_ noeku api ALLOW
grep -q -E '^  ok    purpose +depth 0: no extendedKeyUsage, allowed by client_eku: if_present' "$TMPDIR/explain-noeku-api.out" ||
    fail "explain noeku on api: no purpose line"
case_ noeku strict wrong_purpose 'client_eku: required'
case_ stranger api unknown_ca 'CN=Unknown CA,O=Stranger Inc'
grep -q -F '(incomplete: no trusted issuer found)' "$TMPDIR/explain-stranger-api.out" ||
    fail "explain stranger: the chain is not marked incomplete"
case_ partner partner ALLOW
grep -q -F 'an exact match of a certificate in client_auth.trusted_certs' "$TMPDIR/explain-partner-partner.out" ||
    fail "explain partner: the trusted_certs match is not shown"
case_ partner api unknown_ca 'self-signed'
# A listener with trusted_certs only names that, not a client_auth.ca it lacks.
case_ orders partner unknown_ca 'not one of client_auth\.trusted_certs .*client_auth\.ca is not set'

# The client's own chain (--chain) and a date (--at) are honoured.
"$MTLSPROXY" explain -c "$TMPDIR/good.yaml" -l api --cert "$PKI/orders.crt" \
    --chain "$PKI/intermediate-ca.crt" >"$TMPDIR/ex.out" 2>&1 || fail "explain --chain exited $?"
grep -q -F '(the client sent it too)' "$TMPDIR/ex.out" || fail "explain --chain: the sent intermediate is not shown: $(cat "$TMPDIR/ex.out")"
"$MTLSPROXY" explain -c "$TMPDIR/good.yaml" -l partner --cert "$PKI/partner.crt" --at +3650d >"$TMPDIR/ex.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] && tail -n 1 "$TMPDIR/ex.out" | grep -q '^DENY code=expired ' ||
    fail "explain --at +3650d for partner: want DENY code=expired, got $rc: $(tail -n 1 "$TMPDIR/ex.out")"
pass "explain --chain, --at"

stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC after SIGTERM"

# Builds with SANITIZE=...: neither command may leak or misbehave.
if grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TMPDIR"/*.out >/dev/null 2>&1; then
	fail "sanitizer report in $(grep -l -E 'Sanitizer|runtime error:' "$TMPDIR"/*.out | head -n 1)"
fi
pass "no sanitizer report"
