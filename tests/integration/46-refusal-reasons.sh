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
#    trusted_certs-only listener and on one with ca as well.
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

# ------------------------------------------------------------------ config
ECHO_PORT=$(free_port)
start_echo "$ECHO_PORT"
P_ROOT=$(free_port)
P_DEMO=$(free_port)
P_PINNED=$(free_port)
P_MIXED=$(free_port)
{
	config_head
	config_listener demo "$P_DEMO" "\"127.0.0.1:$ECHO_PORT\""
	config_listener root "$P_ROOT" "\"127.0.0.1:$ECHO_PORT\"" |
	    sed "s|ca: $PKI/client-ca.pem|ca: $PKI/root-ca.crt\n      verify_depth: 4|"
	config_listener pinned "$P_PINNED" "\"127.0.0.1:$ECHO_PORT\"" |
	    sed "s|ca: $PKI/client-ca.pem|trusted_certs: [$PKI/partner.crt, $C/subca.crt]|"
	config_listener mixed "$P_MIXED" "\"127.0.0.1:$ECHO_PORT\"" \
	    "      trusted_certs: [$PKI/partner.crt]"
} >"$TMPDIR/reasons.yaml"
"$MTLSPROXY" -t -c "$TMPDIR/reasons.yaml" >"$TMPDIR/t.out" 2>&1 ||
    fail "mtlsproxy -t rejects the config: $(cat "$TMPDIR/t.out")"
start_proxy "$TMPDIR/reasons.yaml" "$P_ROOT"
for p in "$P_DEMO" "$P_PINNED" "$P_MIXED"; do
	wait_port "$p" "$PROXY_PID" 5 || fail "listener on 127.0.0.1:$p is not up"
done

port_of() {
	case $1 in
	root) echo "$P_ROOT" ;;
	demo) echo "$P_DEMO" ;;
	pinned) echo "$P_PINNED" ;;
	mixed) echo "$P_MIXED" ;;
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
deny pinned-stranger pinned unknown_ca 'no certificate in client_auth\.trusted_certs issued \\"CN=Unknown CA,O=Stranger Inc\\"' \
    "$PKI/stranger.crt" "$PKI/stranger.key"
pass "issued by a pinned trusted_certs certificate: unknown_ca that says it is pinned, not missing"

kill -0 "$PROXY_PID" 2>/dev/null || fail "mtlsproxy died"
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
