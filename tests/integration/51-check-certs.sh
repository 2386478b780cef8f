#!/usr/bin/env bash
# `mtlsproxy check` on certificate and CRL set-ups that `check` used to
# misjudge (each made here with the openssl CLI):
#  1. trusted_certs without the clientAuth EKU and client_eku: required:
#     every client is refused, and check says so and why (not "each allow
#     list matches a different certificate");
#  2. client_auth.ca holding an intermediate without its root and
#     partial_chain: false: check warns; explain does not call the
#     intermediate a trust anchor;
#  3. a v1 intermediate (openssl x509 -req without -extfile) in
#     client_auth.ca: check says it is a v1 certificate and how to issue it
#     again, not "CA:FALSE ... list it in trusted_certs";
#  4. CRLs issued for 30 days, 7 days or 72 hours: no warning while fresh
#     (--strict passes), a warning when one is really about to run out;
#  5. a server certificate file with the intermediate before the leaf: the
#     order error, and no leaf warning about the intermediate.
# Every expectation is checked and reported, then the test fails once at
# the end, so that one run against an old binary shows each defect.
. "$(dirname -- "$0")/lib.sh"

C=$TMPDIR/certs
mkdir -p "$C"
OSSL_LOG=$TMPDIR/openssl.log
BAD=()

ossl() {
	openssl "$@" >>"$OSSL_LOG" 2>&1 || fail "openssl $*: $(tail -n 5 "$OSSL_LOG")"
}

# bad MSG: a failed expectation; the test goes on and fails at the end.
bad() {
	printf 'FAIL: %s\n' "$*"
	BAD+=("$*")
}

# passed MSG: pass MSG if no expectation failed since the last passed.
NBAD=0
passed() {
	[ ${#BAD[@]} -eq "$NBAD" ] && pass "$*"
	NBAD=${#BAD[@]}
}

PORT=$(free_port)
BACKEND_PORT=$(free_port)

# write_config NAME CLIENT_AUTH_LINES [SERVER_CERT]: $TMPDIR/NAME.yaml
# with one listener; CLIENT_AUTH_LINES are indented by 6.
write_config() {
	cat >"$TMPDIR/$1.yaml" <<YAML
log:
  level: info
listeners:
  - name: api
    listen: "127.0.0.1:$PORT"
    tls:
      cert: ${3:-$PKI/server-fullchain.crt}
      key: $PKI/server.key
    client_auth:
$2
    backend:
      address: "127.0.0.1:$BACKEND_PORT"
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

# run_explain NAME CERT: explain CERT on $TMPDIR/NAME.yaml; sets EX_OUT,
# EX_RC and EX_LAST (the verdict line).
run_explain() {
	EX_OUT=$TMPDIR/explain-$1-$(basename -- "$2").out
	"$MTLSPROXY" explain -c "$TMPDIR/$1.yaml" --cert "$2" >"$EX_OUT" 2>&1
	EX_RC=$?
	EX_LAST=$(tail -n 1 "$EX_OUT")
}

# summary WANT: the check's summary line says WANT ("0 errors, 1 warning").
summary() {
	grep -q -F "configuration $TMPDIR/$(basename -- "$CHECK_OUT" .out | sed 's/^check-//').yaml: $1" "$CHECK_OUT"
}

# ======================================= 1. trusted_certs and client_eku

for p in 1 2; do
	ossl req -x509 -newkey rsa:2048 -nodes -days 365 -keyout "$C/p$p.key" \
	    -out "$C/p$p.crt" -subj "/CN=partner$p/O=Partner"
done
# partner3 carries clientAuth: it alone can connect with client_eku: required
printf 'extendedKeyUsage = clientAuth\n' >"$C/p3.ext"
ossl req -x509 -newkey rsa:2048 -nodes -days 365 -keyout "$C/p3.key" \
    -out "$C/p3.crt" -subj "/CN=partner3/O=Partner" -addext "extendedKeyUsage = clientAuth"
cat "$C/p1.key" "$C/p1.crt" >"$C/p1.pem"

write_config eku "      trusted_certs: [$C/p1.crt, $C/p2.crt]
      client_eku: required"
run_explain eku "$C/p1.pem"
case $EX_LAST in
"DENY code=wrong_purpose "*"client_eku: required"*) ;;
*) fail "explain partner1 with client_eku: required: [$EX_LAST], want DENY code=wrong_purpose" ;;
esac
run_check eku
grep -q -E "^$TMPDIR/eku\.yaml:[0-9]+:[0-9]+: warning: listener \"api\": client_eku: required, and none of the certificates in client_auth.trusted_certs carries the extendedKeyUsage clientAuth.*every client is refused with code=wrong_purpose" "$CHECK_OUT" ||
    bad "1: no warning that client_eku: required refuses every trusted certificate: $(cat "$CHECK_OUT")"
summary "0 errors, 1 warning" || bad "1: want exactly 1 warning: $(cat "$CHECK_OUT")"
passed "1: trusted_certs without clientAuth and client_eku: required: $(grep -m1 -o 'client_eku: required, and none[^;]*' "$CHECK_OUT")"

# With an allow list that matches: the cause is still client_eku.
write_config eku-allow "      trusted_certs: [$C/p1.crt, $C/p2.crt]
      client_eku: required
      allow:
        subject_cn: [partner1]"
run_check eku-allow
grep -q -E "warning: listener \"api\": client_eku: required, and none of the certificates in client_auth.trusted_certs carries the extendedKeyUsage clientAuth" "$CHECK_OUT" ||
    bad "1: with allow.subject_cn [partner1], no client_eku warning: $(cat "$CHECK_OUT")"
grep -q -F 'each list matches a different certificate' "$CHECK_OUT" &&
    bad "1: one allow list that matches is blamed: $(cat "$CHECK_OUT")"
summary "0 errors, 1 warning" || bad "1: with allow, want exactly 1 warning: $(cat "$CHECK_OUT")"
passed "1: with allow.subject_cn [partner1] the warning names client_eku"

# partner3 has clientAuth but the allow list names partner1 only: each
# certificate that can never connect is named, and the policy finding says
# that the allow list passes only such a one.
write_config eku-mixed "      trusted_certs: [$C/p1.crt, $C/p2.crt, $C/p3.crt]
      client_eku: required
      allow:
        subject_cn: [partner1]"
run_check eku-mixed
for p in 1 2; do
	grep -q -E "warning: listener \"api\": trusted certificate \"O=Partner,CN=partner$p\" in .*p$p\.crt can never connect: it has no extendedKeyUsage clientAuth, and client_eku: required" "$CHECK_OUT" ||
	    bad "1: no warning that partner$p can never connect: $(cat "$CHECK_OUT")"
done
grep -q -E "warning: listener \"api\": no certificate in client_auth.trusted_certs both passes client_auth.allow and can connect \(\"O=Partner,CN=partner1\" passes allow, but it has no extendedKeyUsage clientAuth" "$CHECK_OUT" ||
    bad "1: the policy finding does not name client_eku: $(cat "$CHECK_OUT")"
grep -q -F 'each list matches a different certificate' "$CHECK_OUT" &&
    bad "1: one allow list is blamed for client_eku: $(cat "$CHECK_OUT")"
summary "0 errors, 3 warnings" || bad "1: mixed, want exactly 3 warnings: $(cat "$CHECK_OUT")"
passed "1: partner1 and partner2 unfit, partner3 not allowed: 3 warnings"

# client_eku: if_present lets partner1 and partner2 in: nothing to say.
write_config eku-ok "      trusted_certs: [$C/p1.crt, $C/p2.crt]
      allow:
        subject_cn: [partner1]"
run_check eku-ok
summary "0 errors, 0 warnings" || bad "1: client_eku: if_present, want no warning: $(cat "$CHECK_OUT")"
passed "1: client_eku: if_present: no warning"

# ================================ 2. an intermediate alone in client_auth.ca

write_config intonly "      ca: $PKI/intermediate-ca.crt"
l=$(grep -n -F "ca: $PKI/intermediate-ca.crt" "$TMPDIR/intonly.yaml" | cut -d: -f1)
run_check intonly
[ "$CHECK_RC" -eq 0 ] || bad "2: check exited $CHECK_RC, want 0 (a warning): $(cat "$CHECK_OUT")"
grep -q -E "^$TMPDIR/intonly\.yaml:$l:11: warning: listener \"api\": CA certificate \"CN=Demo Intermediate CA,O=Demo Corp\" in .*intermediate-ca\.crt is not a root .*partial_chain: false.*add its root \"CN=Demo Root CA,O=Demo Corp\" to client_auth\.ca, or set partial_chain: true to trust the intermediate as an anchor" "$CHECK_OUT" ||
    bad "2: no warning for an intermediate without its root: $(cat "$CHECK_OUT")"
summary "0 errors, 1 warning" || bad "2: want exactly 1 warning: $(cat "$CHECK_OUT")"
passed "2: check: $(grep -m1 -o 'is not a root[^:]*' "$CHECK_OUT")"
run_explain intonly "$PKI/orders.pem"
case $EX_LAST in
"DENY code=unknown_ca "*) ;;
*) fail "2: explain orders with the intermediate alone: [$EX_LAST], want DENY code=unknown_ca" ;;
esac
grep -q -E '\(trust anchor\)|between the leaf and the trust anchor' "$EX_OUT" &&
    bad "2: explain calls the intermediate a trust anchor with partial_chain: false: $(grep -E '\(trust anchor\)|between the leaf' "$EX_OUT")"
grep -q -E '^  \?     verify_depth  .*not a trust anchor' "$EX_OUT" ||
    bad "2: explain: no verify_depth line saying the chain has no trust anchor: $(sed -n '/^checks/,$p' "$EX_OUT")"
passed "2: explain denies unknown_ca and calls nothing a trust anchor"

# With partial_chain: true the intermediate is the anchor: no warning.
write_config intpartial "      ca: $PKI/intermediate-ca.crt
      partial_chain: true"
run_check intpartial
summary "0 errors, 0 warnings" || bad "2: partial_chain: true, want no warning: $(cat "$CHECK_OUT")"
run_explain intpartial "$PKI/orders.pem"
[ "$EX_LAST" = ALLOW ] || bad "2: explain orders with partial_chain: true: [$EX_LAST]"
grep -q -E '^  ok    strength      depth 1: .*\(trust anchor\)' "$EX_OUT" ||
    bad "2: with partial_chain: true the intermediate is the trust anchor: $(sed -n '/^checks/,$p' "$EX_OUT")"
passed "2: partial_chain: true: no warning, ALLOW"

# ============================================ 3. a v1 intermediate CA

ossl req -x509 -newkey rsa:2048 -nodes -days 365 -keyout "$C/v1root.key" \
    -out "$C/v1root.crt" -subj "/CN=V1 Test Root"
ossl req -new -newkey rsa:2048 -nodes -keyout "$C/int.key" -out "$C/int.csr" \
    -subj "/CN=V1 Test Intermediate"
# the classic way: no -extfile, so a v1 certificate without extensions
ossl x509 -req -in "$C/int.csr" -CA "$C/v1root.crt" -CAkey "$C/v1root.key" \
    -CAcreateserial -days 365 -out "$C/intv1.crt"
openssl x509 -in "$C/intv1.crt" -noout -text | grep -q 'Version: 1 (0x0)' ||
    fail "this openssl made a v3 certificate with x509 -req: $(openssl x509 -in "$C/intv1.crt" -noout -text | head -n 5)"
cat "$C/v1root.crt" "$C/intv1.crt" >"$C/v1-bundle.pem"
printf 'extendedKeyUsage = clientAuth\nkeyUsage = critical, digitalSignature\n' >"$C/client.ext"
ossl req -new -newkey rsa:2048 -nodes -keyout "$C/v1client.key" -out "$C/v1client.csr" \
    -subj "/CN=v1client"
ossl x509 -req -in "$C/v1client.csr" -CA "$C/intv1.crt" -CAkey "$C/int.key" \
    -CAcreateserial -days 365 -extfile "$C/client.ext" -out "$C/v1client.crt"

write_config v1int "      ca: $C/v1-bundle.pem"
run_explain v1int "$C/v1client.crt"
case $EX_LAST in
"DENY code=invalid_ca "*) ;;
*) fail "3: explain a client under the v1 intermediate: [$EX_LAST], want DENY code=invalid_ca" ;;
esac
run_check v1int
grep -q -E "warning: listener \"api\": \"CN=V1 Test Intermediate\" in .*v1-bundle\.pem is a version 1 certificate without extensions.*OpenSSL accepts a v1 certificate as a CA only when it is a self-signed root.*-extfile.*basicConstraints=critical,CA:TRUE.*keyUsage=critical,keyCertSign,cRLSign" "$CHECK_OUT" ||
    bad "3: no v1 warning with how to issue it again: $(cat "$CHECK_OUT")"
grep -q -F 'CA:FALSE' "$CHECK_OUT" && bad "3: a v1 certificate has no basicConstraints, check says CA:FALSE: $(cat "$CHECK_OUT")"
grep -q -F 'trusted_certs' "$CHECK_OUT" && bad "3: trusted_certs suggested for an intermediate: $(cat "$CHECK_OUT")"
summary "0 errors, 1 warning" || bad "3: want exactly 1 warning: $(cat "$CHECK_OUT")"
passed "3: check: $(grep -m1 -o 'is a version 1 certificate[^:]*' "$CHECK_OUT")"

# Issued again as the warning says: no warning, and the client gets in.
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$C/int.ext"
ossl x509 -req -in "$C/int.csr" -CA "$C/v1root.crt" -CAkey "$C/v1root.key" \
    -CAcreateserial -days 365 -extfile "$C/int.ext" -out "$C/intv3.crt"
cat "$C/v1root.crt" "$C/intv3.crt" >"$C/v3-bundle.pem"
write_config v3int "      ca: $C/v3-bundle.pem"
run_check v3int
summary "0 errors, 0 warnings" || bad "3: the re-issued intermediate, want no warning: $(cat "$CHECK_OUT")"
# (its clients again too: their authorityKeyIdentifier names the old serial)
ossl x509 -req -in "$C/v1client.csr" -CA "$C/intv3.crt" -CAkey "$C/int.key" \
    -CAcreateserial -days 365 -extfile "$C/client.ext" -out "$C/v3client.crt"
run_explain v3int "$C/v3client.crt"
[ "$EX_LAST" = ALLOW ] || bad "3: explain with the re-issued intermediate: [$EX_LAST], want ALLOW"
passed "3: issued again with -extfile: no warning, ALLOW"

# A client's own certificate in client_auth.ca: there trusted_certs helps.
write_config leafca "      ca: $PKI/orders.crt"
run_check leafca
grep -q -E "warning: listener \"api\": \"CN=orders,OU=payments,O=Demo Corp\" in .*orders\.crt is not a CA certificate \(basicConstraints CA:FALSE\).*client_auth\.trusted_certs" "$CHECK_OUT" ||
    bad "3: a leaf in client_auth.ca: no trusted_certs advice: $(cat "$CHECK_OUT")"
passed "3: a leaf in client_auth.ca: trusted_certs is suggested"

# ========================================================= 4. CRL dates

# An `openssl ca` set-up over a copy of the demo intermediate's database.
mkdir -p "$C/db/new"
cp "$PKI/ca-db/intermediate/index.txt" "$C/db/index.txt" ||
    fail "the demo PKI has no ca-db/intermediate/index.txt"
echo 5100 >"$C/db/crlnumber"
openssl rand -hex 16 >"$C/db/serial"
cat >"$C/ca.cnf" <<CNF
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
[ crl_ext ]
authorityKeyIdentifier	= keyid:always
CNF

# crl_case NAME GENCRL_OPTIONS...: the intermediate's CRL made so, with
# the root's after it, and a config using it.
crl_case() {
	local name=$1
	shift
	ossl ca -batch -config "$C/ca.cnf" -gencrl "$@" -out "$C/$name.int.pem"
	cat "$C/$name.int.pem" "$PKI/root-ca.crl.pem" >"$C/$name.crl.pem"
	write_config "$name" "      ca: $PKI/client-ca.pem
      crl: $C/$name.crl.pem"
}

for c in "monthly:" "monthly30:-crldays 30" "weekly:-crldays 7" "vault72h:-crlhours 72"; do
	name=${c%%:*}
	# shellcheck disable=SC2086
	crl_case "$name" ${c#*:}
	run_check "$name" --strict
	[ "$CHECK_RC" -eq 0 ] && summary "0 errors, 0 warnings" ||
	    bad "4: a fresh CRL ($name: ${c#*:}) fails check --strict ($CHECK_RC): $(cat "$CHECK_OUT")"
done
passed "4: fresh CRLs for 30 days, 7 days, 72 hours: check --strict passes"

# A monthly CRL issued 26 days ago: 4 days left, time to publish.
crl_case stale -crl_lastupdate "$(date -u -d '26 days ago' +%Y%m%d%H%M%SZ)" \
    -crl_nextupdate "$(date -u -d '4 days' +%Y%m%d%H%M%SZ)"
run_check stale --strict
[ "$CHECK_RC" -eq 2 ] || bad "4: a CRL with 4 days of 30 left: check --strict exited $CHECK_RC, want 2"
grep -q -E "warning: listener \"api\": the CRL from \"CN=Demo Intermediate CA,O=Demo Corp\" .*nextUpdate on [0-9-]+ [0-9:]+ UTC \(4 days left\)" "$CHECK_OUT" ||
    bad "4: no warning for a CRL with 4 days of 30 left: $(cat "$CHECK_OUT")"
# A weekly one issued 6 days ago, with a day left.
crl_case stale7 -crl_lastupdate "$(date -u -d '132 hours ago' +%Y%m%d%H%M%SZ)" \
    -crl_nextupdate "$(date -u -d '36 hours' +%Y%m%d%H%M%SZ)"
run_check stale7
grep -q -E "warning: .*the CRL from \"CN=Demo Intermediate CA,O=Demo Corp\" .*nextUpdate on .*\(2 days left\)" "$CHECK_OUT" ||
    bad "4: no warning for a weekly CRL with a day left: $(cat "$CHECK_OUT")"
passed "4: CRLs about to run out are reported"

# ============================== 5. intermediate before the leaf in tls.cert

cat "$PKI/intermediate-ca.crt" "$PKI/server.crt" >"$C/swapped.crt"
write_config swapped "      ca: $PKI/client-ca.pem" "$C/swapped.crt"
run_check swapped
[ "$CHECK_RC" -eq 1 ] || bad "5: check with the intermediate first exited $CHECK_RC, want 1"
grep -q -E "error: .*belongs to certificate 2 of .*swapped\.crt" "$CHECK_OUT" ||
    bad "5: no order error: $(cat "$CHECK_OUT")"
grep -q -F 'not for TLS servers' "$CHECK_OUT" &&
    bad "5: the intermediate is judged as the server certificate: $(cat "$CHECK_OUT")"
grep -q -E 'warning: .*(server certificate|issuer certificate for) "CN=Demo Intermediate CA' "$CHECK_OUT" &&
    bad "5: a leaf warning about the intermediate: $(cat "$CHECK_OUT")"
summary "1 error, 0 warnings" || bad "5: want 1 error and no warning: $(cat "$CHECK_OUT")"
passed "5: intermediate first: the order error only"

# Builds with SANITIZE=...: neither command may leak or misbehave.
if grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TMPDIR"/*.out >/dev/null 2>&1; then
	fail "sanitizer report in $(grep -l -E 'Sanitizer|runtime error:' "$TMPDIR"/*.out | head -n 1)"
fi
[ ${#BAD[@]} -eq 0 ] || fail "${#BAD[@]} expectation(s) failed (see FAIL lines above)"
pass "no sanitizer report"
