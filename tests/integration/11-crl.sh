#!/usr/bin/env bash
# CRLs (client_auth.crl), with every CA of the chain checked:
#  - crl.der (DER, the intermediate's CRL only): every client is refused with
#    code=crl_missing, and the reason names the root as the CA without a CRL;
#  - a DER CRL is read: a one-level CA whose only CRL is DER lets its good
#    client in and refuses its revoked one (code=revoked);
#  - crl.pem (both CRLs): `revoked` is refused (code=revoked), `orders` and
#    `billing` are allowed;
#  - an expired CRL (nextUpdate in the past, made with `openssl ca -gencrl
#    -crl_lastupdate/-crl_nextupdate`) fails closed with code=crl_expired and
#    a reason saying "CRL expired" (even for the revoked cert: the CRL is
#    stale, which is what the operator must fix), naming the CRL's issuer
#    and its nextUpdate, as `mtlsproxy explain` does; a CRL from the
#    future: crl_not_yet_valid, naming the CRL's issuer.
. "$(dirname -- "$0")/lib.sh"

C=$TMPDIR/certs
mkdir -p "$C"
OSSL_LOG=$TMPDIR/openssl.log

ossl() {
	openssl "$@" >>"$OSSL_LOG" 2>&1 || fail "openssl $*: $(tail -n 5 "$OSSL_LOG")"
}

# ------------------------------------------------------------------ CRLs
# A minimal `openssl ca` config: the demo intermediate signs CRLs from a
# copy of its database (which lists `revoked`); the test's own one-level
# CA "Flat CA" keeps its own database.
mkdir -p "$C/int" "$C/flat"
cp "$PKI/ca-db/intermediate/index.txt" "$C/int/index.txt" ||
    fail "the demo PKI has no ca-db/intermediate/index.txt"
echo 2000 >"$C/int/crlnumber"
: >"$C/flat/index.txt"
echo 1000 >"$C/flat/crlnumber"
cat >"$C/ca.cnf" <<CNF
[ req ]
distinguished_name	= req_dn
prompt			= no
[ req_dn ]
CN			= unused
[ ca ]
default_ca		= int_ca
[ int_ca ]
database		= $C/int/index.txt
crlnumber		= $C/int/crlnumber
certificate		= $PKI/intermediate-ca.crt
private_key		= $PKI/intermediate-ca.key
default_md		= sha256
default_crl_days	= 30
crl_extensions		= crl_ext
[ flat_ca ]
database		= $C/flat/index.txt
crlnumber		= $C/flat/crlnumber
certificate		= $C/flat-ca.crt
private_key		= $C/flat-ca.key
default_md		= sha256
default_crl_days	= 30
crl_extensions		= crl_ext
[ crl_ext ]
authorityKeyIdentifier	= keyid:always
[ root_ext ]
basicConstraints	= critical, CA:true
keyUsage		= critical, keyCertSign, cRLSign
subjectKeyIdentifier	= hash
[ client_ext ]
basicConstraints	= critical, CA:false
keyUsage		= critical, digitalSignature
extendedKeyUsage	= clientAuth
subjectKeyIdentifier	= hash
authorityKeyIdentifier	= keyid:always
CNF
CNF=$C/ca.cnf

# utc OFFSET: a date for -crl_lastupdate/-crl_nextupdate (GNU date).
utc() {
	date -u -d "$1" +%Y%m%d%H%M%SZ
}

# The intermediate's CRL, expired: issued 2024-01-01, nextUpdate 2024-02-01.
ossl ca -batch -config "$CNF" -name int_ca -gencrl \
    -crl_lastupdate 20240101000000Z -crl_nextupdate 20240201000000Z -out "$C/int-expired.crl.pem"
openssl crl -in "$C/int-expired.crl.pem" -noout -text | grep -q -i 'Next Update: Feb  1 00:00:00 2024' ||
    fail "could not make an expired CRL: $(openssl crl -in "$C/int-expired.crl.pem" -noout -text | head -n 8)"
openssl crl -in "$C/int-expired.crl.pem" -noout -text | grep -q -i "$(openssl x509 -in "$PKI/revoked.crt" -noout -serial | cut -d= -f2)" ||
    fail "the expired CRL does not list the revoked cert's serial"
cat "$C/int-expired.crl.pem" "$PKI/root-ca.crl.pem" >"$C/expired.pem"
# ... and one that is not valid yet: lastUpdate tomorrow.
ossl ca -batch -config "$CNF" -name int_ca -gencrl \
    -crl_lastupdate "$(utc '+1 day')" -crl_nextupdate "$(utc '+30 days')" -out "$C/int-future.crl.pem"
cat "$C/int-future.crl.pem" "$PKI/root-ca.crl.pem" >"$C/future.pem"

# Flat CA: a root that signs clients directly, with one CRL, in DER.
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$C/flat-ca.key"
ossl req -x509 -new -config "$CNF" -key "$C/flat-ca.key" -subj "/O=Flat/CN=Flat CA" \
    -days 30 -sha256 -extensions root_ext -out "$C/flat-ca.crt"
for n in flat-good flat-bad; do
	ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$C/$n.key"
	ossl req -new -config "$CNF" -key "$C/$n.key" -subj "/O=Flat/CN=$n" -out "$C/$n.csr"
	ossl x509 -req -in "$C/$n.csr" -CA "$C/flat-ca.crt" -CAkey "$C/flat-ca.key" \
	    -set_serial "0x$(openssl rand -hex 12)" -days 30 -sha256 \
	    -extfile "$CNF" -extensions client_ext -out "$C/$n.crt"
done
ossl ca -batch -config "$CNF" -name flat_ca -revoke "$C/flat-bad.crt" -crl_reason keyCompromise
ossl ca -batch -config "$CNF" -name flat_ca -gencrl -out "$C/flat.crl.pem"
ossl crl -in "$C/flat.crl.pem" -outform DER -out "$C/flat.crl.der"
openssl verify -CAfile "$C/flat-ca.crt" -CRLfile "$C/flat.crl.pem" -crl_check_all "$C/flat-good.crt" >>"$OSSL_LOG" 2>&1 ||
    fail "openssl verify refuses flat-good with the flat CRL: $(tail -n 2 "$OSSL_LOG")"
head -c 1 "$PKI/crl.der" | od -An -tx1 | grep -q 30 || fail "$PKI/crl.der is not DER"

# ---------------------------------------------------------------- config
ECHO_PORT=$(free_port)
start_echo "$ECHO_PORT"

# listener NAME PORT CA CRL
listener() {
	cat <<EOF
  - name: $1
    listen: "127.0.0.1:$2"
    tls:
      cert: $PKI/server-fullchain.crt
      key: $PKI/server.key
    client_auth:
      ca: $3
      crl: $4
    backend:
      address: "127.0.0.1:$ECHO_PORT"
      mode: tcp
      connect_timeout: 2s
    timeouts:
      handshake: 5s
      idle: 60s
EOF
}
P_DER=$(free_port)
P_FLAT=$(free_port)
P_PEM=$(free_port)
P_EXP=$(free_port)
P_FUT=$(free_port)
P_PIN=$(free_port)
{
	cat <<EOF
workers: 2
log:
  level: info
  format: text
  access: true
listeners:
EOF
	listener der "$P_DER" "$PKI/client-ca.pem" "$PKI/crl.der"
	listener flat "$P_FLAT" "$C/flat-ca.crt" "$C/flat.crl.der"
	listener pem "$P_PEM" "$PKI/client-ca.pem" "$PKI/crl.pem"
	listener expired "$P_EXP" "$PKI/client-ca.pem" "$C/expired.pem"
	listener future "$P_FUT" "$PKI/client-ca.pem" "$C/future.pem"
	# revoked pinned as well: pinning does not outrank its CA's CRL
	listener pinned "$P_PIN" "$PKI/client-ca.pem" "$PKI/crl.pem" |
	    sed "s|^      crl: .*|&\n      trusted_certs: [$PKI/revoked.crt, $PKI/partner.crt]|"
} >"$TMPDIR/crl.yaml"

"$MTLSPROXY" -t -c "$TMPDIR/crl.yaml" >"$TMPDIR/t.out" 2>&1 ||
    fail "mtlsproxy -t rejects the config: $(cat "$TMPDIR/t.out")"
start_proxy "$TMPDIR/crl.yaml" "$P_DER"
for p in "$P_FLAT" "$P_PEM" "$P_EXP" "$P_FUT" "$P_PIN"; do
	wait_port "$p" "$PROXY_PID" 5 || fail "listener on 127.0.0.1:$p does not accept"
done

N=0
# allowed LISTENER PORT WHO_DIR WHO SUBJECT: WHO's cert gets its echo; the
# access line names it.
allowed() {
	local name=$1 port=$2 dir=$3 who=$4 subj=$5
	N=$((N + 1))
	log_mark
	node_client "$port" --cert "$dir/$who.crt" --key "$dir/$who.key" --send "crl test $N\n" --echo --timeout 10000
	[ "$NODE_RC" -eq 0 ] ||
	    fail "$name: $who was not let in: $(cat "$NODE_OUT"); log: $(new_log_lines | grep -E 'refused|access' | tail -n 2)"
	grep -q -x "crl test $N" "$NODE_OUT" || fail "$name: $who: wrong bytes back"
	assert_log_contains ' access ' "listener=$name " "subject=\"$subj\""
}

# refused LISTENER PORT WHO_DIR WHO CODE_REGEX: no echo for WHO; the refused
# line has a code matching CODE_REGEX. Sets REFUSED_LINE.
refused() {
	local name=$1 port=$2 dir=$3 who=$4 code=$5
	N=$((N + 1))
	log_mark
	node_client "$port" --cert "$dir/$who.crt" --key "$dir/$who.key" --send "crl test $N\n" --echo --timeout 10000
	[ "$NODE_RC" -ne 0 ] || fail "$name: $who was let in; want code=$code"
	grep -q '^ERROR TIMEOUT' "$NODE_OUT" && fail "$name: $who: the client timed out instead of being refused"
	grep -q "crl test $N" "$NODE_OUT" && fail "$name: $who: bytes came back from the backend"
	assert_log_contains ' refused ' "listener=$name " "code=($code)( |$)"
	assert_log_lacks " access .*listener=$name "
	REFUSED_LINE=$(new_log_lines | grep -E " refused .*listener=$name " | head -n 1)
}

# reason_has LINE FIXED_STRING: the reason="..." value of LINE contains it.
reason_has() {
	local reason
	reason=$(printf '%s\n' "$1" | sed -n 's/.* reason="\(\([^"\\]\|\\.\)*\)".*/\1/p')
	[ -n "$reason" ] || return 1
	case $reason in *"$2"*) return 0 ;; esac
	return 1
}

# --- crl.der: only the intermediate's CRL; the root's is missing
for who in orders billing; do
	refused der "$P_DER" "$PKI" "$who" crl_missing
	reason_has "$REFUSED_LINE" 'Demo Root CA' ||
	    fail "crl.der: the crl_missing reason does not name the root (CN=Demo Root CA) as the CA without a CRL: $REFUSED_LINE"
done
refused der "$P_DER" "$PKI" revoked 'revoked|crl_missing'
log_mark
s_client_send "$P_DER" "der\n" "der" -cert "$PKI/orders.crt" -key "$PKI/orders.key"
grep -q -F der "$SCLIENT_OUT" && fail "crl.der: s_client as orders got an echo"
[ "$SCLIENT_RC" -ne 0 ] || fail "crl.der: s_client as orders exited 0"
assert_log_contains ' refused ' 'listener=der ' 'code=crl_missing' 'subject="CN=orders,OU=payments,O=Demo Corp"'
pass "crl.der (intermediate only): every client refused, code=crl_missing naming the root"

# --- a DER CRL that covers the whole (one-level) chain
allowed flat "$P_FLAT" "$C" flat-good 'CN=flat-good,O=Flat'
refused flat "$P_FLAT" "$C" flat-bad revoked
reason_has "$REFUSED_LINE" 'revoked' || fail "flat: the reason does not say revoked: $REFUSED_LINE"
pass "a DER CRL is read: good client allowed, revoked one code=revoked"

# --- crl.pem: both CRLs
allowed pem "$P_PEM" "$PKI" orders 'CN=orders,OU=payments,O=Demo Corp'
allowed pem "$P_PEM" "$PKI" billing 'CN=billing,O=Demo Corp'
refused pem "$P_PEM" "$PKI" revoked revoked
SERIAL=$(openssl x509 -in "$PKI/revoked.crt" -noout -serial | cut -d= -f2)
reason_has "$REFUSED_LINE" 'revoked' || fail "crl.pem: the reason does not say revoked: $REFUSED_LINE"
echo "$REFUSED_LINE" | grep -q -F 'subject="CN=revoked,O=Demo Corp"' ||
    fail "crl.pem: the refused line does not name the revoked cert: $REFUSED_LINE"
echo "$REFUSED_LINE" | grep -q -i -F "$SERIAL" || log "note: the refused line does not carry the serial $SERIAL"
log_mark
s_client_send "$P_PEM" "pem\n" "pem" -cert "$PKI/revoked.crt" -key "$PKI/revoked.key"
grep -q -F pem "$SCLIENT_OUT" && fail "crl.pem: s_client as revoked got an echo"
grep -q 'alert certificate revoked' "$SCLIENT_ERR" ||
    fail "crl.pem: s_client as revoked was not told by a 'certificate revoked' alert: $(grep -v '^depth=\|^verify' "$SCLIENT_ERR" | head -n 3)"
assert_log_contains ' refused ' 'listener=pem ' 'code=revoked'
pass "crl.pem: orders and billing allowed, revoked refused (code=revoked)"

# --- a pinned certificate (trusted_certs) that its CA's CRL revokes is
# refused all the same; a pinned self-signed one, which no CRL speaks of,
# gets in.
grep -q -F "trusted_certs: [$PKI/revoked.crt" "$TMPDIR/crl.yaml" || fail "test setup: no trusted_certs in the pinned listener"
refused pinned "$P_PIN" "$PKI" revoked revoked
reason_has "$REFUSED_LINE" "revoked (serial $SERIAL) according to client_auth.crl" ||
    fail "pinned: the reason does not say revoked with the serial: $REFUSED_LINE"
allowed pinned "$P_PIN" "$PKI" partner "$(openssl x509 -in "$PKI/partner.crt" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')"
"$MTLSPROXY" explain -c "$TMPDIR/crl.yaml" --listener pinned --cert "$PKI/revoked.pem" >"$TMPDIR/explain-pin.out" 2>&1
tail -n 1 "$TMPDIR/explain-pin.out" | grep -q '^DENY .*code=revoked' ||
    fail "pinned: explain does not deny the revoked pinned certificate: $(tail -n 3 "$TMPDIR/explain-pin.out")"
pass "a pinned certificate its CA's CRL revokes: code=revoked (daemon and explain); a pinned self-signed one gets in"

# --- an expired CRL fails closed, and says so
EXPIRED_LINES=()
for who in orders revoked; do
	refused expired "$P_EXP" "$PKI" "$who" crl_expired
	reason_has "$REFUSED_LINE" 'CRL expired' ||
	    fail "expired CRL ($who): the reason does not say \"CRL expired\": $REFUSED_LINE"
	reason_has "$REFUSED_LINE" 'revoked' &&
	    fail "expired CRL ($who): the reason talks about revocation: $REFUSED_LINE"
	EXPIRED_LINES+=("$REFUSED_LINE")	# the date is checked at the end
done
pass "expired CRL: code=crl_expired, reason \"CRL expired\""

# --- a CRL whose lastUpdate is in the future
refused future "$P_FUT" "$PKI" orders crl_not_yet_valid
reason_has "$REFUSED_LINE" 'the CRL from \"CN=Demo Intermediate CA,O=Demo Corp\"' ||
    fail "CRL not yet valid: the reason does not name the CRL's issuer: $REFUSED_LINE"
pass "CRL not yet valid: code=crl_not_yet_valid, the CRL's issuer named"

# --- the crl_expired reason says since when: the CRL's nextUpdate
# (2024-02-01 00:00:00 UTC), as the expired reason gives notAfter.
for line in "${EXPIRED_LINES[@]}"; do
	echo "$line" | grep -q -E 'reason="([^"\\]|\\.)*(2024-02-01|Feb +1 00:00:00 2024)' ||
	    fail "expired CRL: the reason does not give the CRL's nextUpdate (2024-02-01 00:00:00 UTC): $line"
done
pass "the crl_expired reason gives the nextUpdate date"

# --- ... and whose CRL it is: the CRL's issuer, which is what gets a
# fresh CRL; explain gives the same reason and its revocation line agrees.
for line in "${EXPIRED_LINES[@]}"; do
	reason_has "$line" 'CRL expired: the CRL from \"CN=Demo Intermediate CA,O=Demo Corp\" (for the client certificate) passed its nextUpdate on 2024-02-01 00:00:00 UTC' ||
	    fail "expired CRL: the reason does not name the CRL's issuer and nextUpdate: $line"
done
"$MTLSPROXY" explain -c "$TMPDIR/crl.yaml" --listener expired --cert "$PKI/orders.pem" >"$TMPDIR/explain.out" 2>&1
last=$(tail -n 1 "$TMPDIR/explain.out")
printf '%s\n' "${EXPIRED_LINES[0]}" | grep -q -F -- " ${last#DENY } " ||
    fail "expired CRL: explain says [$last], the daemon logged [${EXPIRED_LINES[0]}]"
grep -q -E '^  FAIL  revocation +depth 0: the CRL of "CN=Demo Intermediate CA,O=Demo Corp" expired on 2024-02-01' "$TMPDIR/explain.out" ||
    fail "expired CRL: explain has no revocation line for the intermediate's CRL: $(grep revocation "$TMPDIR/explain.out")"
pass "the crl_expired reason names the CRL's issuer; explain agrees"

kill -0 "$PROXY_PID" 2>/dev/null || fail "mtlsproxy died"
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
