#!/usr/bin/env bash
# Weak client certificates are refused whatever the system's OpenSSL
# default (security level 2 or higher): an RSA-1024 key and a SHA-1
# signature, both on certs the demo intermediate signs, give code=weak_crypto.
# An RSA-2048/SHA-256 cert from the same CA is the control. The clients lower
# their own security level (@SECLEVEL=0) so that they do send the weak cert.
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
[ client_ext ]
basicConstraints	= critical, CA:false
keyUsage		= critical, digitalSignature
extendedKeyUsage	= clientAuth
subjectKeyIdentifier	= hash
authorityKeyIdentifier	= keyid:always
CNF

# issue NAME SUBJECT DIGEST: NAME.key (already made) -> CSR -> cert signed
# by the demo intermediate with `openssl x509 -req -DIGEST`.
issue() {
	ossl req -new -config "$C/openssl.cnf" -key "$C/$1.key" -subj "$2" -out "$C/$1.csr"
	ossl x509 -req -in "$C/$1.csr" -CA "$PKI/intermediate-ca.crt" -CAkey "$PKI/intermediate-ca.key" \
	    -set_serial "0x$(openssl rand -hex 12)" -days 30 "-$3" \
	    -extfile "$C/openssl.cnf" -extensions client_ext -out "$C/$1.crt"
}

ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$C/rsa1024.key"
issue rsa1024 "/O=Demo Corp/CN=weak-rsa" sha256
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$C/sha1.key"
issue sha1 "/O=Demo Corp/CN=weak-sha1" sha1
ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$C/rsa2048.key"
issue rsa2048 "/O=Demo Corp/CN=strong-rsa" sha256
openssl x509 -in "$C/rsa1024.crt" -noout -text | grep -q 'Public-Key: (1024 bit)' ||
    fail "rsa1024.crt does not have a 1024-bit key"
openssl x509 -in "$C/sha1.crt" -noout -text | grep -q 'Signature Algorithm: ecdsa-with-SHA1' ||
    fail "sha1.crt is not signed with SHA-1"
# Both are otherwise valid: openssl verify at security level 0 accepts them.
ossl verify -auth_level 0 -CAfile "$PKI/client-ca.pem" "$C/rsa1024.crt" "$C/sha1.crt" "$C/rsa2048.crt"

ECHO_PORT=$(free_port)
PORT=$(free_port)
start_echo "$ECHO_PORT"
{
	config_head
	config_listener weak "$PORT" "\"127.0.0.1:$ECHO_PORT\""
} >"$TMPDIR/weak.yaml"
start_proxy "$TMPDIR/weak.yaml"

WEAK_CLIENT='DEFAULT:@SECLEVEL=0'

# --- control: RSA-2048, SHA-256
log_mark
s_client_send "$PORT" "strong\n" "strong" -cert "$C/rsa2048.crt" -key "$C/rsa2048.key" -cipher "$WEAK_CLIENT"
grep -q -F strong "$SCLIENT_OUT" ||
    fail "control: RSA-2048 client got no echo (rc $SCLIENT_RC): $(grep -v '^depth=\|^verify' "$SCLIENT_ERR" | head -n 3); log: $(new_log_lines | tail -n 2)"
assert_log_contains ' access ' 'subject="CN=strong-rsa,O=Demo Corp"'
pass "control: RSA-2048 / SHA-256 client allowed"

# weak NAME CN WHAT: NAME's cert is refused with code=weak_crypto, over
# TLS 1.3 and TLS 1.2, and the reason says WHAT (regex).
weak() {
	local name=$1 cn=$2 what=$3 v line
	for v in -tls1_3 -tls1_2; do
		log_mark
		s_client_send "$PORT" "$name$v\n" "$name$v" -cert "$C/$name.crt" -key "$C/$name.key" \
		    -cipher "$WEAK_CLIENT" "$v"
		grep -q -F -- "$name$v" "$SCLIENT_OUT" && fail "$name ($v): the weak cert got an echo"
		[ "$SCLIENT_RC" -ne 0 ] || fail "$name ($v): s_client exited 0"
		grep -q -E 'unable to load|error setting certificate|ee key too small|md too weak' "$SCLIENT_ERR" &&
		    fail "$name ($v): s_client itself refused the cert, the test proves nothing: $(head -n 3 "$SCLIENT_ERR")"
		assert_log_contains ' refused ' 'listener=weak ' 'code=weak_crypto' "subject=\"CN=$cn,O=Demo Corp\""
		line=$(new_log_lines | grep ' refused ' | grep 'code=weak_crypto' | head -n 1)
		echo "$line" | grep -q -i -E "reason=\"[^\"]*($what)" ||
		    fail "$name ($v): the reason does not say [$what]: $line"
		assert_log_lacks ' access .*CN='"$cn"
	done
	# and the Node.js client (its OpenSSL sends the cert as it is)
	log_mark
	node_client "$PORT" --cert "$C/$name.crt" --key "$C/$name.key" --send "$name node\n" --echo --timeout 10000
	[ "$NODE_RC" -ne 0 ] || fail "$name: node client was let in"
	grep -q '^ERROR TIMEOUT' "$NODE_OUT" && fail "$name: node client timed out instead of being refused"
	if new_log_lines | grep -q ' refused .*code=weak_crypto'; then
		:
	elif grep -q -i -E 'too small|too weak' "$NODE_OUT" && ! new_log_lines | grep -q ' refused .*CN='"$cn"; then
		log "note: node's own OpenSSL would not send the $name cert: $(cat "$NODE_OUT")"
	else
		fail "$name: node client: no refused line with code=weak_crypto: $(cat "$NODE_OUT"); log: $(new_log_lines | tail -n 2)"
	fi
}

weak rsa1024 weak-rsa 'weak key|RSA|2048|bits'
pass "RSA-1024 client cert: refused, code=weak_crypto"
weak sha1 weak-sha1 'weak signature|SHA-1|SHA1'
pass "SHA-1 signed client cert: refused, code=weak_crypto"

kill -0 "$PROXY_PID" 2>/dev/null || fail "mtlsproxy died"
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
