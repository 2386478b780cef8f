#!/usr/bin/env bash
# Refusal reasons name what is actually wrong, in the daemon's `refused`
# line and in `mtlsproxy explain` alike (both come from tls_explain()):
#  - a CA under the demo intermediate (pathlen:0) with a leaf of its own:
#    path_length naming the intermediate and its pathlen, not
#    verify_depth (whose check stays ok in explain), with the unknown_ca
#    alert;
#  - wrong_purpose says which extension and which certificate: a leaf with
#    keyUsage keyEncipherment only (its EKU has clientAuth), the demo's
#    server-eku leaf (EKU serverAuth), a CA under the root whose EKU is
#    serverAuth only; explain's purpose line says the same;
#  - a certificate issued by a pinned client_auth.trusted_certs certificate
#    (the demo's self-signed partner, or a CA pinned there) stays refused,
#    and the reason says that the pinned certificate is there but is
#    trusted as itself only, never as an issuer (not that it is missing):
#    the leaf alone, the leaf with the pinned certificate, on a
#    trusted_certs-only listener and on one with ca as well;
#  - classic version 1 certificates (`openssl x509 -req` without -extfile):
#    a v1 intermediate is refused as invalid_ca, and the reason says it is
#    a v1 certificate and how to issue it again;
#  - client_auth.ca with only the intermediate (partial_chain false): the
#    unknown_ca reason names the missing issuer and says that a CA in
#    client_auth.ca is an anchor only when self-signed;
#  - a weak EC key (P-192) is named as such, not as a short RSA key.
. "$(dirname -- "$0")/lib.sh"

C=$TMPDIR/certs
mkdir -p "$C"
OSSL_LOG=$TMPDIR/openssl.log

ossl() {
	openssl "$@" >>"$OSSL_LOG" 2>&1 || fail "openssl $*: $(tail -n 5 "$OSSL_LOG")"
}

cat >"$C/openssl.cnf" <<'CNF'
[ req ]
distinguished_name	= req_dn
prompt			= no
[ req_dn ]
CN			= unused
[ subca_ext ]
basicConstraints	= critical, CA:true
keyUsage		= critical, keyCertSign, cRLSign
subjectKeyIdentifier	= hash
authorityKeyIdentifier	= keyid:always
[ serverauth_ca_ext ]
basicConstraints	= critical, CA:true
keyUsage		= critical, keyCertSign, cRLSign
extendedKeyUsage	= serverAuth
subjectKeyIdentifier	= hash
authorityKeyIdentifier	= keyid:always
[ kenc_ext ]
basicConstraints	= critical, CA:false
keyUsage		= critical, keyEncipherment
extendedKeyUsage	= clientAuth
[ client_ext ]
basicConstraints	= critical, CA:false
keyUsage		= critical, digitalSignature
extendedKeyUsage	= clientAuth
subjectKeyIdentifier	= hash
authorityKeyIdentifier	= keyid:always
CNF
CNF=$C/openssl.cnf

# issue NAME SUBJECT CA_CRT CA_KEY EXT: NAME.key and NAME.crt, signed by CA.
issue() {
	local name=$1 subj=$2 cacrt=$3 cakey=$4 ext=$5
	local pass=()
	[ "$cakey" = "$PKI/root-ca.key" ] && pass=(-passin "file:$PKI/root-ca.pass")
	ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$C/$name.key"
	ossl req -new -config "$CNF" -key "$C/$name.key" -subj "$subj" -out "$C/$name.csr"
	ossl x509 -req -in "$C/$name.csr" -CA "$cacrt" -CAkey "$cakey" "${pass[@]}" \
	    -set_serial "0x$(openssl rand -hex 12)" -days 30 -sha256 \
	    -extfile "$CNF" -extensions "$ext" -out "$C/$name.crt"
}

# A CA under the demo intermediate, which has pathlen:0, and its leaf.
issue subca "/O=QA/CN=QA Sub CA" "$PKI/intermediate-ca.crt" "$PKI/intermediate-ca.key" subca_ext
issue deep "/O=QA/CN=deep" "$C/subca.crt" "$C/subca.key" client_ext
cat "$C/subca.crt" "$PKI/intermediate-ca.crt" >"$C/deep-chain.crt"
# keyUsage without digitalSignature; a CA whose EKU leaves out clientAuth.
issue kenc "/O=QA/CN=kenc" "$PKI/intermediate-ca.crt" "$PKI/intermediate-ca.key" kenc_ext
issue srvca "/O=QA/CN=QA Server CA" "$PKI/root-ca.crt" "$PKI/root-ca.key" serverauth_ca_ext
issue srvca-leaf "/O=QA/CN=under-server-ca" "$C/srvca.crt" "$C/srvca.key" client_ext
# signed by the pinned partner certificate's key
issue partner-child "/O=Partner Ltd/CN=partner-child" "$PKI/partner.crt" "$PKI/partner.key" client_ext

# Version 1 certificates, made the classic way: a self-signed root
# (-signkey), an intermediate and a leaf from "openssl x509 -req -CA".
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$C/v1root.key"
ossl req -new -config "$CNF" -key "$C/v1root.key" -subj "/O=Classic/CN=Classic Root" -out "$C/v1root.csr"
ossl x509 -req -in "$C/v1root.csr" -signkey "$C/v1root.key" -days 30 -sha256 -out "$C/v1root.crt"
for n in v1int v1leaf; do
	ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$C/$n.key"
done
ossl req -new -config "$CNF" -key "$C/v1int.key" -subj "/O=Classic/CN=Classic Int" -out "$C/v1int.csr"
ossl x509 -req -in "$C/v1int.csr" -CA "$C/v1root.crt" -CAkey "$C/v1root.key" -CAcreateserial -days 30 -sha256 -out "$C/v1int.crt"
ossl req -new -config "$CNF" -key "$C/v1leaf.key" -subj "/O=Classic/CN=classic" -out "$C/v1leaf.csr"
ossl x509 -req -in "$C/v1leaf.csr" -CA "$C/v1int.crt" -CAkey "$C/v1int.key" -CAcreateserial -days 30 -sha256 -out "$C/v1leaf.crt"
openssl x509 -in "$C/v1int.crt" -noout -text | grep -q 'Version: 1 ' || fail "test setup: v1int.crt is not a v1 certificate"
cat "$C/v1root.crt" "$C/v1int.crt" >"$C/v1bundle.crt"
# A client key on P-192 (80-bit security), made by the demo intermediate.
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime192v1 -out "$C/p192.key"
ossl req -new -config "$CNF" -key "$C/p192.key" -subj "/O=QA/CN=p192" -out "$C/p192.csr"
ossl x509 -req -in "$C/p192.csr" -CA "$PKI/intermediate-ca.crt" -CAkey "$PKI/intermediate-ca.key" \
    -set_serial "0x$(openssl rand -hex 12)" -days 30 -sha256 -extfile "$CNF" -extensions client_ext -out "$C/p192.crt"

# ------------------------------------------------------------------ config
ECHO_PORT=$(free_port)
start_echo "$ECHO_PORT"
P_ROOT=$(free_port)
P_DEMO=$(free_port)
P_PINNED=$(free_port)
P_MIXED=$(free_port)
P_V1=$(free_port)
P_INTONLY=$(free_port)
{
	config_head
	config_listener demo "$P_DEMO" "\"127.0.0.1:$ECHO_PORT\""
	config_listener root "$P_ROOT" "\"127.0.0.1:$ECHO_PORT\"" |
	    sed "s|ca: $PKI/client-ca.pem|ca: $PKI/root-ca.crt\n      verify_depth: 4|"
	config_listener pinned "$P_PINNED" "\"127.0.0.1:$ECHO_PORT\"" |
	    sed "s|ca: $PKI/client-ca.pem|trusted_certs: [$PKI/partner.crt, $C/subca.crt]|"
	config_listener mixed "$P_MIXED" "\"127.0.0.1:$ECHO_PORT\"" \
	    "      trusted_certs: [$PKI/partner.crt]"
	config_listener v1 "$P_V1" "\"127.0.0.1:$ECHO_PORT\"" |
	    sed "s|ca: $PKI/client-ca.pem|ca: $C/v1bundle.crt|"
	config_listener intonly "$P_INTONLY" "\"127.0.0.1:$ECHO_PORT\"" |
	    sed "s|ca: $PKI/client-ca.pem|ca: $PKI/intermediate-ca.crt|"
} >"$TMPDIR/reasons.yaml"
"$MTLSPROXY" -t -c "$TMPDIR/reasons.yaml" >"$TMPDIR/t.out" 2>&1 ||
    fail "mtlsproxy -t rejects the config: $(cat "$TMPDIR/t.out")"
start_proxy "$TMPDIR/reasons.yaml" "$P_ROOT"
for p in "$P_DEMO" "$P_PINNED" "$P_MIXED" "$P_V1" "$P_INTONLY"; do
	wait_port "$p" "$PROXY_PID" 5 || fail "listener on 127.0.0.1:$p is not up"
done

port_of() {
	case $1 in
	root) echo "$P_ROOT" ;;
	demo) echo "$P_DEMO" ;;
	pinned) echo "$P_PINNED" ;;
	mixed) echo "$P_MIXED" ;;
	v1) echo "$P_V1" ;;
	intonly) echo "$P_INTONLY" ;;
	esac
}

# deny NAME LISTENER CODE REASON_RE CERT KEY [CHAIN]: explain CERT (with
# CHAIN) on LISTENER says DENY code=CODE with a reason matching REASON_RE;
# then a client sending CERT and CHAIN is refused, and the daemon's refused
# line has exactly explain's code and reason. EXPLAIN_OUT: explain's output.
deny() {
	local name=$1 lis=$2 code=$3 re=$4 cert=$5 key=$6 chain=${7:-}
	local last rc
	EXPLAIN_OUT=$TMPDIR/explain-$name.out
	"$MTLSPROXY" explain -c "$TMPDIR/reasons.yaml" --listener "$lis" --cert "$cert" \
	    ${chain:+--chain "$chain"} >"$EXPLAIN_OUT" 2>&1
	rc=$?
	last=$(tail -n 1 "$EXPLAIN_OUT")
	[ "$rc" -eq 1 ] || fail "$name: explain exited $rc, want 1: $(tail -n 5 "$EXPLAIN_OUT")"
	case $last in
	"DENY code=$code reason="*) ;;
	*) fail "$name: explain's last line [$last], want DENY code=$code" ;;
	esac
	printf '%s\n' "$last" | grep -q -E -- "$re" || fail "$name: explain: [$last] does not match [$re]"
	log_mark
	s_client_send "$(port_of "$lis")" "hello\n" "hello" -cert "$cert" -key "$key" \
	    ${chain:+-cert_chain "$chain"}
	grep -q -F hello "$SCLIENT_OUT" && fail "$name: the daemon let the client in"
	assert_log_contains ' refused ' "listener=$lis "
	new_log_lines | grep ' refused ' | grep -q -F -- " ${last#DENY } " ||
	    fail "$name: the daemon logged [$(new_log_lines | grep ' refused ' | grep -o 'code=.*' | head -n 1)], explain said [${last#DENY }]"
}

# explain_has NAME RE...: explain's output for NAME has a line matching each RE.
explain_has() {
	local name=$1 re
	shift
	for re in "$@"; do
		grep -q -E -- "$re" "$TMPDIR/explain-$name.out" ||
		    fail "$name: no explain line matches [$re]: $(sed -n '/^checks:/,$p' "$TMPDIR/explain-$name.out")"
	done
}

# explain_lacks NAME RE: no line of explain's output for NAME matches RE.
explain_lacks() {
	grep -q -E -- "$2" "$TMPDIR/explain-$1.out" &&
	    fail "$1: explain has a line matching [$2]: $(grep -E -- "$2" "$TMPDIR/explain-$1.out" | head -n 1)"
	return 0
}

# --- a CA below a pathlen:0 intermediate
deny pathlen root path_length \
    'reason="path length exceeded: CA certificate \\"CN=Demo Intermediate CA,O=Demo Corp\\" allows 0 CAs below it \(basicConstraints pathlen:0\), but the chain has 1"' \
    "$C/deep.crt" "$C/deep.key" "$C/deep-chain.crt"
grep -q -i 'alert unknown ca' "$SCLIENT_ERR" ||
    fail "pathlen: the client did not get the unknown_ca alert: $(grep -i alert "$SCLIENT_ERR" | head -n 2)"
explain_has pathlen '^  FAIL  chain +path length exceeded: CA certificate "CN=Demo Intermediate CA,O=Demo Corp"' \
    '^  ok    verify_depth +2 intermediate CAs between the leaf and the trust anchor; verify_depth 4'
explain_lacks pathlen 'chain too long|FAIL  verify_depth'
pass "pathlen: path_length names the intermediate and its pathlen:0; verify_depth is ok"

# --- wrong purpose: keyUsage of the leaf, EKU of the leaf, EKU of a CA
deny kenc demo wrong_purpose \
    'reason="wrong purpose: certificate.s keyUsage \(keyEncipherment\) has neither digitalSignature nor keyAgreement' \
    "$C/kenc.crt" "$C/kenc.key"
explain_has kenc '^  EKU +clientAuth$' '^  keyUsage +keyEncipherment$' \
    '^  FAIL  purpose +depth 0: its keyUsage \(keyEncipherment\) has neither digitalSignature nor keyAgreement'
explain_lacks kenc 'extendedKeyUsage (does not|has no)'
deny server-eku demo wrong_purpose \
    'reason="wrong purpose: certificate.s extendedKeyUsage \(serverAuth\) has no clientAuth"$' \
    "$PKI/server-eku.crt" "$PKI/server-eku.key"
explain_has server-eku '^  FAIL  purpose +depth 0: its extendedKeyUsage \(serverAuth\) has no clientAuth$'
explain_lacks server-eku 'keyUsage \('
deny ca-eku root wrong_purpose \
    'reason="wrong purpose: issuing CA certificate \\"CN=QA Server CA,O=QA\\".s extendedKeyUsage \(serverAuth\) has no clientAuth, so it may not issue TLS client certificates"' \
    "$C/srvca-leaf.crt" "$C/srvca-leaf.key" "$C/srvca.crt"
explain_has ca-eku '^  ok    purpose +depth 0: extendedKeyUsage includes clientAuth' \
    '^  FAIL  purpose +depth 1 "CN=QA Server CA,O=QA": its extendedKeyUsage \(serverAuth\) has no clientAuth, so it may not issue TLS client certificates$'
pass "wrong_purpose: the leaf's keyUsage, the leaf's EKU and a CA's EKU are told apart and named"

# --- issued by a pinned trusted_certs certificate
PIN='which is in client_auth\.trusted_certs: a pinned certificate is trusted as itself only, never as an issuer; put it in client_auth\.ca'
deny pinned-leaf pinned unknown_ca \
    "reason=\"unknown issuer: issued by \\\\\"CN=partner,O=Partner Ltd\\\\\", $PIN to trust what it signs\"\$" \
    "$C/partner-child.crt" "$C/partner-child.key"
explain_has pinned-leaf "^  FAIL  chain +not one of client_auth.trusted_certs, and client_auth.ca is not set: unknown issuer: issued by \"CN=partner,O=Partner Ltd\", $PIN"
explain_lacks pinned-leaf 'not in client_auth|no certificate in'
deny pinned-chain pinned unknown_ca "issued by \\\\\"CN=partner,O=Partner Ltd\\\\\", $PIN" \
    "$C/partner-child.crt" "$C/partner-child.key" "$PKI/partner.crt"
explain_lacks pinned-chain 'not in client_auth|no certificate in'
deny pinned-ca pinned unknown_ca \
    "issued by \\\\\"CN=QA Sub CA,O=QA\\\\\", $PIN \\(with partial_chain: true, as it is not a root\\)" \
    "$C/deep.crt" "$C/deep.key"
explain_lacks pinned-ca 'no certificate in'
deny pinned-mixed mixed unknown_ca "issued by \\\\\"CN=partner,O=Partner Ltd\\\\\", $PIN" \
    "$C/partner-child.crt" "$C/partner-child.key" "$PKI/partner.crt"
explain_has pinned-mixed "^  FAIL  chain +unknown issuer: issued by \"CN=partner,O=Partner Ltd\", $PIN"
# a client that is not related to a pinned certificate keeps the old words
deny pinned-stranger pinned unknown_ca 'the client certificate is not one of client_auth\.trusted_certs \(issued by \\"CN=Unknown CA,O=Stranger Inc\\"; client_auth\.ca is not set, so no CA is trusted\)' \
    "$PKI/stranger.crt" "$PKI/stranger.key"
pass "issued by a pinned trusted_certs certificate: unknown_ca that says it is pinned, not missing"

# --- classic v1 certificates: the v1 intermediate is no CA, and the
# reason says why and what to do
deny v1int v1 invalid_ca \
    'reason="issuing CA certificate \\"CN=Classic Int,O=Classic\\" is a version 1 certificate \(no extensions, as \\"openssl x509 -req\\" makes without -extfile\) but signed another certificate in the chain: only a self-signed v1 root counts as a CA; issue it again with basicConstraints=critical,CA:TRUE"' \
    "$C/v1leaf.crt" "$C/v1leaf.key"
pass "a v1 intermediate: invalid_ca, saying it is version 1 and how to issue it again"

# --- only the intermediate in client_auth.ca, partial_chain false
deny intonly intonly unknown_ca \
    'reason="unknown issuer: \\"CN=Demo Root CA,O=Demo Corp\\", which issued \\"CN=Demo Intermediate CA,O=Demo Corp\\", is not in client_auth.ca \(a CA certificate in client_auth.ca is a trust anchor only when self-signed, unless partial_chain: true\)"' \
    "$PKI/orders.crt" "$PKI/orders.key"
deny stranger demo unknown_ca \
    'reason="unknown issuer: \\"CN=Unknown CA,O=Stranger Inc\\", which issued the client certificate, is not in client_auth.ca and the client did not send it"' \
    "$PKI/stranger.crt" "$PKI/stranger.key"
pass "unknown_ca names the missing issuer, and says when a CA in client_auth.ca is no anchor"

# --- a weak EC key is named (explain; OpenSSL clients refuse to send it)
"$MTLSPROXY" explain -c "$TMPDIR/reasons.yaml" --listener demo --cert "$C/p192.crt" >"$TMPDIR/explain-p192.out" 2>&1
tail -n 1 "$TMPDIR/explain-p192.out" | grep -q -F 'DENY code=weak_crypto reason="weak key in certificate: EC prime192v1, 80-bit security; security level 2 needs 112 (RSA 2048 bits, EC P-256)"' ||
    fail "p192: explain: $(tail -n 1 "$TMPDIR/explain-p192.out")"
pass "a P-192 client key: weak_crypto naming the curve and its security"

# --- a secp256k1 client key over TLS 1.2: OpenSSL refuses the curve in the
# handshake; the reason says so in words
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -out "$C/k1.key"
ossl req -new -config "$CNF" -key "$C/k1.key" -subj "/O=QA/CN=k1" -out "$C/k1.csr"
ossl x509 -req -in "$C/k1.csr" -CA "$PKI/intermediate-ca.crt" -CAkey "$PKI/intermediate-ca.key" \
    -set_serial "0x$(openssl rand -hex 12)" -days 30 -sha256 -extfile "$CNF" -extensions client_ext -out "$C/k1.crt"
log_mark
s_client_send "$P_DEMO" "hello\n" "hello" -tls1_2 -cert "$C/k1.crt" -key "$C/k1.key"
grep -q -F hello "$SCLIENT_OUT" && fail "k1: the daemon let a secp256k1 client in"
assert_log_contains ' refused ' 'listener=demo ' 'code=weak_crypto' "curve TLS does not allow for signatures"
pass "a secp256k1 client key over TLS 1.2: weak_crypto, the curve named as the reason"

kill -0 "$PROXY_PID" 2>/dev/null || fail "mtlsproxy died"
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
