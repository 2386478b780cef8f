#!/usr/bin/env bash
# Certificate chains the way users build them with the openssl CLI:
#  (a) root -> int1 -> int2 -> leaf, `ca` holds only the root, the client
#      sends leaf+int2+int1: allowed (and then, though that chain was
#      verified and remembered, the same leaf without the intermediates:
#      refused);
#  (b) the client sends its leaf only, `ca` holds root+int1+int2: allowed;
#  (c) verify_depth: 1 with the two-intermediate chain: chain_too_long
#      (verify_depth: 2 lets it in);
#  (d) `ca` holding only int2: unknown_ca by default, allowed with
#      partial_chain: true (and a sibling leaf signed by int1 stays out);
#  (e) trusted_certs with the demo's self-signed `partner`: allowed; another
#      self-signed cert with the same name: unknown_ca; a cert SIGNED by the
#      partner key: refused (exact leaves only, never what they sign);
#  (f) the demo's v1 `noeku` cert (plain `openssl x509 -req`): allowed with
#      client_eku: if_present.
. "$(dirname -- "$0")/lib.sh"

C=$TMPDIR/certs
mkdir -p "$C"
OSSL_LOG=$TMPDIR/openssl.log

# ossl ARGS...: run openssl, fail the test with its output on error.
ossl() {
	openssl "$@" >>"$OSSL_LOG" 2>&1 || fail "openssl $*: $(tail -n 5 "$OSSL_LOG")"
}

cat >"$C/openssl.cnf" <<'CNF'
[ req ]
distinguished_name	= req_dn
prompt			= no
[ req_dn ]
CN			= unused
[ root_ext ]
basicConstraints	= critical, CA:true
keyUsage		= critical, keyCertSign, cRLSign
subjectKeyIdentifier	= hash
[ int1_ext ]
basicConstraints	= critical, CA:true, pathlen:1
keyUsage		= critical, keyCertSign, cRLSign
subjectKeyIdentifier	= hash
authorityKeyIdentifier	= keyid:always
[ int2_ext ]
basicConstraints	= critical, CA:true, pathlen:0
keyUsage		= critical, keyCertSign, cRLSign
subjectKeyIdentifier	= hash
authorityKeyIdentifier	= keyid:always
[ client_ext ]
basicConstraints	= critical, CA:false
keyUsage		= critical, digitalSignature
extendedKeyUsage	= clientAuth
subjectKeyIdentifier	= hash
authorityKeyIdentifier	= keyid:always
CNF
CNF=$C/openssl.cnf

# newkey FILE: an ECDSA P-256 key.
newkey() {
	ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
}

# issue NAME SUBJECT CA_CRT CA_KEY EXT: NAME.key + CSR, signed by CA with
# `openssl x509 -req -extfile` (random serial; nothing is written next to
# the CA).
issue() {
	local name=$1 subj=$2 cacrt=$3 cakey=$4 ext=$5
	newkey "$C/$name.key"
	ossl req -new -config "$CNF" -key "$C/$name.key" -subj "$subj" -out "$C/$name.csr"
	ossl x509 -req -in "$C/$name.csr" -CA "$cacrt" -CAkey "$cakey" \
	    -set_serial "0x$(openssl rand -hex 12)" -days 30 -sha256 \
	    -extfile "$CNF" -extensions "$ext" -out "$C/$name.crt"
}

# The four-level chain.
newkey "$C/root.key"
ossl req -x509 -new -config "$CNF" -key "$C/root.key" -subj "/O=Chain Test/CN=Chain Root" \
    -days 30 -sha256 -extensions root_ext -out "$C/root.crt"
issue int1 "/O=Chain Test/CN=Chain Int 1" "$C/root.crt" "$C/root.key" int1_ext
issue int2 "/O=Chain Test/CN=Chain Int 2" "$C/int1.crt" "$C/int1.key" int2_ext
issue leaf "/O=Chain Test/CN=deep" "$C/int2.crt" "$C/int2.key" client_ext
# a sibling leaf signed directly by int1
issue side "/O=Chain Test/CN=side" "$C/int1.crt" "$C/int1.key" client_ext
cat "$C/leaf.crt" "$C/int2.crt" "$C/int1.crt" >"$C/leaf-fullchain.crt"
cat "$C/int2.crt" "$C/int1.crt" >"$C/leaf-intermediates.crt"
cat "$C/side.crt" "$C/int1.crt" >"$C/side-fullchain.crt"
cat "$C/root.crt" "$C/int1.crt" "$C/int2.crt" >"$C/ca-all.pem"
openssl verify -CAfile "$C/root.crt" -untrusted "$C/leaf-intermediates.crt" "$C/leaf.crt" >>"$OSSL_LOG" 2>&1 ||
    fail "openssl verify does not accept the test chain: $(tail -n 3 "$OSSL_LOG")"

# (e) a different self-signed cert with the same name as partner, and a
# leaf signed by the partner key (partner.crt as its issuer).
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$C/fake-partner.key" -out "$C/fake-partner.crt" -days 30 -sha256 \
    -subj "/O=Partner Ltd/CN=partner"
issue partner-child "/O=Partner Ltd/CN=partner-child" "$PKI/partner.crt" "$PKI/partner.key" client_ext
cat "$C/partner-child.crt" "$PKI/partner.crt" >"$C/partner-child-fullchain.crt"

# ------------------------------------------------------------------ config
ECHO_PORT=$(free_port)
start_echo "$ECHO_PORT"

# listener NAME PORT CLIENT_AUTH_LINES (indented by 6)
listener() {
	cat <<EOF
  - name: $1
    listen: "127.0.0.1:$2"
    tls:
      cert: $PKI/server-fullchain.crt
      key: $PKI/server.key
    client_auth:
$3
    backend:
      address: "127.0.0.1:$ECHO_PORT"
      mode: tcp
      connect_timeout: 2s
    timeouts:
      handshake: 5s
      idle: 60s
EOF
}

P_ROOT=$(free_port)
P_ALL=$(free_port)
P_DEPTH1=$(free_port)
P_DEPTH2=$(free_port)
P_INT2=$(free_port)
P_PARTIAL=$(free_port)
P_PARTNER=$(free_port)
P_NOEKU=$(free_port)
{
	cat <<EOF
workers: 2
log:
  level: debug
  format: text
  access: true
listeners:
EOF
	listener rootonly "$P_ROOT" "      ca: $C/root.crt"
	listener all "$P_ALL" "      ca: $C/ca-all.pem"
	listener depth1 "$P_DEPTH1" "      ca: $C/root.crt
      verify_depth: 1"
	listener depth2 "$P_DEPTH2" "      ca: $C/root.crt
      verify_depth: 2"
	listener int2only "$P_INT2" "      ca: $C/int2.crt"
	listener partial "$P_PARTIAL" "      ca: $C/int2.crt
      partial_chain: true"
	listener partner "$P_PARTNER" "      trusted_certs: [$PKI/partner.crt]"
	listener noeku "$P_NOEKU" "      ca: $PKI/client-ca.pem
      client_eku: if_present"
} >"$TMPDIR/chains.yaml"

"$MTLSPROXY" -t -c "$TMPDIR/chains.yaml" >"$TMPDIR/t.out" 2>&1 ||
    fail "mtlsproxy -t rejects the config: $(cat "$TMPDIR/t.out")"
start_proxy "$TMPDIR/chains.yaml" "$P_ROOT"
for p in "$P_ALL" "$P_DEPTH1" "$P_DEPTH2" "$P_INT2" "$P_PARTIAL" "$P_PARTNER" "$P_NOEKU"; do
	wait_port "$p" "$PROXY_PID" 5 || fail "listener on 127.0.0.1:$p does not accept"
done

N=0
# allowed LISTENER PORT SUBJECT_REGEX client.js-options...: the node client
# gets its bytes echoed, and the access line names the client.
allowed() {
	local name=$1 port=$2 subj=$3
	shift 3
	N=$((N + 1))
	log_mark
	node_client "$port" "$@" --send "chain test $N\n" --echo --timeout 10000
	[ "$NODE_RC" -eq 0 ] ||
	    fail "$name: client ($*) was not let in: $(cat "$NODE_OUT"); log: $(new_log_lines | grep -E 'refused|access' | tail -n 2)"
	grep -q -x "chain test $N" "$NODE_OUT" || fail "$name: wrong bytes back: $(head -c 200 "$NODE_OUT")"
	assert_log_contains ' access ' "listener=$name " "subject=\"$subj\""
	assert_log_lacks "refused listener=$name "
}

# refused LISTENER PORT CODE client.js-options...: the client fails, nothing
# comes back, and the refused line has code=CODE. Sets REFUSED_LINE.
refused() {
	local name=$1 port=$2 code=$3
	shift 3
	N=$((N + 1))
	log_mark
	node_client "$port" "$@" --send "chain test $N\n" --echo --timeout 10000
	[ "$NODE_RC" -ne 0 ] || fail "$name: client ($*) was let in; want code=$code"
	grep -q '^ERROR TIMEOUT' "$NODE_OUT" && fail "$name: client timed out instead of being refused"
	grep -q "chain test $N" "$NODE_OUT" && fail "$name: bytes came back from the backend"
	assert_log_contains ' refused ' "listener=$name " "code=$code( |$)"
	assert_log_lacks " access .*listener=$name "
	REFUSED_LINE=$(new_log_lines | grep -E " refused .*listener=$name " | head -n 1)
}

# --- (a) ca = root only; the client sends leaf + int2 + int1
allowed rootonly "$P_ROOT" 'CN=deep,O=Chain Test' --cert "$C/leaf-fullchain.crt" --key "$C/leaf.key"
# the same with openssl s_client, the intermediates given with -cert_chain
log_mark
s_client_send "$P_ROOT" "s_client chain\n" "s_client chain" -cert "$C/leaf.crt" -key "$C/leaf.key" \
    -cert_chain "$C/leaf-intermediates.crt"
grep -q -F 's_client chain' "$SCLIENT_OUT" ||
    fail "(a) s_client -cert_chain: no echo (rc $SCLIENT_RC): $(grep -v '^depth=\|^verify' "$SCLIENT_ERR" | head -n 3)"
assert_log_contains ' access ' 'listener=rootonly ' 'subject="CN=deep,O=Chain Test"' 'issuer="CN=Chain Int 2,O=Chain Test"'
# without its intermediates the same leaf cannot be chained to the root,
# though the proxy has just verified (and remembered) its full chain
refused rootonly "$P_ROOT" unknown_ca --cert "$C/leaf.crt" --key "$C/leaf.key"
pass "(a) two intermediates sent by the client, root-only ca: allowed; leaf alone: unknown_ca"

# --- (b) leaf only, ca = root + int1 + int2
allowed all "$P_ALL" 'CN=deep,O=Chain Test' --cert "$C/leaf.crt" --key "$C/leaf.key"
allowed all "$P_ALL" 'CN=deep,O=Chain Test' --cert "$C/leaf-fullchain.crt" --key "$C/leaf.key"
pass "(b) leaf only, intermediates in ca: allowed"

# --- (c) verify_depth counts the intermediates between leaf and root
refused depth1 "$P_DEPTH1" chain_too_long --cert "$C/leaf-fullchain.crt" --key "$C/leaf.key"
echo "$REFUSED_LINE" | grep -q -E 'reason="[^"]*(verify_depth|too long)' ||
    fail "(c) the chain_too_long reason does not point at verify_depth: $REFUSED_LINE"
# a leaf one intermediate deep (side <- int1 <- root) fits in depth 1
allowed depth1 "$P_DEPTH1" 'CN=side,O=Chain Test' --cert "$C/side-fullchain.crt" --key "$C/side.key"
allowed depth2 "$P_DEPTH2" 'CN=deep,O=Chain Test' --cert "$C/leaf-fullchain.crt" --key "$C/leaf.key"
pass "(c) verify_depth 1: two intermediates refused (chain_too_long), one allowed; verify_depth 2: allowed"

# --- (d) ca = int2 only
refused int2only "$P_INT2" unknown_ca --cert "$C/leaf.crt" --key "$C/leaf.key"
INT2_REFUSED=("$REFUSED_LINE")
refused int2only "$P_INT2" unknown_ca --cert "$C/leaf-fullchain.crt" --key "$C/leaf.key"
INT2_REFUSED+=("$REFUSED_LINE")	# the reasons are checked at the end
allowed partial "$P_PARTIAL" 'CN=deep,O=Chain Test' --cert "$C/leaf.crt" --key "$C/leaf.key"
allowed partial "$P_PARTIAL" 'CN=deep,O=Chain Test' --cert "$C/leaf-fullchain.crt" --key "$C/leaf.key"
# int2 is the only anchor: a leaf of int1 (sent with int1) stays out
refused partial "$P_PARTIAL" unknown_ca --cert "$C/side-fullchain.crt" --key "$C/side.key"
pass "(d) intermediate-only ca: unknown_ca by default; partial_chain: true trusts int2 alone"

# --- (e) trusted_certs: exact leaves
allowed partner "$P_PARTNER" 'CN=partner,O=Partner Ltd' --cert "$PKI/partner.crt" --key "$PKI/partner.key"
refused partner "$P_PARTNER" unknown_ca --cert "$C/fake-partner.crt" --key "$C/fake-partner.key"
echo "$REFUSED_LINE" | grep -q -F 'subject="CN=partner,O=Partner Ltd"' ||
    fail "(e) the refused line for the look-alike does not name its subject: $REFUSED_LINE"
refused partner "$P_PARTNER" unknown_ca --cert "$C/partner-child.crt" --key "$C/partner-child.key"
refused partner "$P_PARTNER" unknown_ca --cert "$C/partner-child-fullchain.crt" --key "$C/partner-child.key"
echo "$REFUSED_LINE" | grep -q -F 'subject="CN=partner-child,O=Partner Ltd"' ||
    fail "(e) the refused line for the partner-signed cert does not name it: $REFUSED_LINE"
# and s_client, sending partner.crt as the chain of its child
log_mark
s_client_send "$P_PARTNER" "child\n" "child" -cert "$C/partner-child.crt" -key "$C/partner-child.key" \
    -cert_chain "$PKI/partner.crt"
grep -q -F 'child' "$SCLIENT_OUT" && fail "(e) s_client with a partner-signed cert got an echo"
assert_log_contains ' refused ' 'listener=partner ' 'code=unknown_ca' 'subject="CN=partner-child'
pass "(e) trusted_certs: partner allowed; look-alike and partner-signed certs: unknown_ca"

# --- (f) v1 certificate without extensions, client_eku: if_present
openssl x509 -in "$PKI/noeku.crt" -noout -text | grep -q 'Version: 1 ' ||
    fail "(f) the demo's noeku.crt is not a v1 certificate"
allowed noeku "$P_NOEKU" 'CN=billing,O=Demo Corp' --cert "$PKI/noeku.crt" --key "$PKI/noeku.key"
pass "(f) v1 cert without EKU: allowed with client_eku: if_present"

# --- (d) again: with ca = int2 only, int2 itself IS in `ca`; what is
# missing is int2's issuer, Chain Int 1 (`openssl verify -CAfile int2.crt
# leaf.crt` fails at depth 1, on int2), and the reason must name that one,
# not the leaf's issuer, or the user looks for a CA that is already there.
for line in "${INT2_REFUSED[@]}"; do
	echo "$line" | grep -q -E 'reason="([^"\\]|\\.)*Chain Int 1' ||
	    fail "(d) ca = int2 only: the unknown_ca reason does not name the missing issuer \"CN=Chain Int 1,O=Chain Test\": $line"
done
pass "(d) the unknown_ca reason names the missing issuer (Chain Int 1)"

kill -0 "$PROXY_PID" 2>/dev/null || fail "mtlsproxy died"
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
