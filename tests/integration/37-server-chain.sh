#!/usr/bin/env bash
# The certificates the server sends, as clients see them
# (`openssl s_client -showcerts`):
#  (a) tls.cert holds the server certificate alone, issued by the demo's
#      intermediate, and client_auth.ca holds the intermediate and the root:
#      the server sends its certificate and the intermediate (found in that
#      store, once, at load), not the self-signed root; a client that trusts
#      only the root verifies the server, on a second connection too;
#  (b) tls.cert holds the certificate and the intermediate: sent as given;
#  (c) a self-signed server certificate made with `openssl req -x509`, in no
#      store here: only that certificate is sent, and a client that trusts
#      it connects;
#  (d) tls.pkcs12, a bundle made with `openssl pkcs12 -export -nomac` whose
#      CA certificates are root first: it loads with its passphrase, and the
#      server sends its certificate and the intermediate, in that order,
#      without the root;
#  (e) client_auth.ca in "TRUSTED CERTIFICATE" form (`openssl x509
#      -addtrust clientAuth`) is read, and its client gets in;
#  (f) -t on server identities a client would refuse or that cannot be
#      read says why in words: a 1024-bit RSA key, a SHA-1 signature, the
#      -nomac bundle without a passphrase and with a wrong one.
. "$(dirname -- "$0")/lib.sh"

ECHO_PORT=$(free_port)
PA=$(free_port)
PB=$(free_port)
PC=$(free_port)
PD=$(free_port)
PE=$(free_port)
start_echo "$ECHO_PORT"

echo 'p12 secret' >"$TMPDIR/p12.pass"
cat "$PKI/root-ca.crt" "$PKI/intermediate-ca.crt" >"$TMPDIR/root-first.crt"
openssl pkcs12 -export -nomac -inkey "$PKI/server.key" -in "$PKI/server.crt" \
    -certfile "$TMPDIR/root-first.crt" -passout "file:$TMPDIR/p12.pass" \
    -out "$TMPDIR/nomac.p12" >"$TMPDIR/p12.log" 2>&1 || fail "openssl pkcs12 -export: $(cat "$TMPDIR/p12.log")"
openssl pkcs12 -in "$TMPDIR/nomac.p12" -passin "file:$TMPDIR/p12.pass" -noout 2>&1 | grep -q -i 'mac is absent' ||
    fail "test setup: nomac.p12 has a MAC"
{
	openssl x509 -in "$PKI/root-ca.crt" -addtrust clientAuth
	cat "$PKI/intermediate-ca.crt"
} >"$TMPDIR/trusted-ca.pem" 2>>"$TMPDIR/p12.log"
grep -q 'BEGIN TRUSTED CERTIFICATE' "$TMPDIR/trusted-ca.pem" || fail "test setup: no TRUSTED CERTIFICATE block"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$TMPDIR/self.key" -out "$TMPDIR/self.crt" -days 30 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    >"$TMPDIR/req.log" 2>&1 || fail "openssl req -x509: $(cat "$TMPDIR/req.log")"

{
	config_head
	config_listener chain-leaf-only "$PA" "\"127.0.0.1:$ECHO_PORT\"" "" \
	    "      cert: $PKI/server.crt
      key: $PKI/server.key"
	config_listener chain-given "$PB" "\"127.0.0.1:$ECHO_PORT\"" "" \
	    "      cert: $PKI/server-fullchain.crt
      key: $PKI/server.key"
	config_listener chain-self-signed "$PC" "\"127.0.0.1:$ECHO_PORT\"" "" \
	    "      cert: $TMPDIR/self.crt
      key: $TMPDIR/self.key"
	config_listener chain-p12 "$PD" "\"127.0.0.1:$ECHO_PORT\"" "" \
	    "      pkcs12: $TMPDIR/nomac.p12
      pkcs12_passphrase_file: $TMPDIR/p12.pass"
	config_listener trusted-form "$PE" "\"127.0.0.1:$ECHO_PORT\"" |
	    sed "s|ca: $PKI/client-ca.pem|ca: $TMPDIR/trusted-ca.pem|"
} >"$TMPDIR/chain.yaml"
start_proxy "$TMPDIR/chain.yaml"

# sent PORT CAFILE: the subjects of the certificates the server sent, one
# per line, after a verified handshake with the orders client certificate
# and a message echoed back through the proxy; fails the test otherwise.
sent() {
	local port=$1 ca=$2 out
	out=$( (printf 'ping-%s\n' "$port"; sleep 1) | timeout -k 2 10 openssl s_client \
	    -connect "127.0.0.1:$port" -servername localhost -showcerts \
	    -verify_return_error -CAfile "$ca" \
	    -cert "$PKI/orders.crt" -key "$PKI/orders.key" 2>&1) ||
	    fail "port $port: s_client failed: $(printf '%s' "$out" | tail -n 5)"
	printf '%s\n' "$out" | grep -q 'Verify return code: 0 (ok)' ||
	    fail "port $port: server not verified: $(printf '%s' "$out" | grep 'Verify return')"
	printf '%s\n' "$out" | grep -q "ping-$port" ||
	    fail "port $port: nothing echoed through the proxy"
	printf '%s\n' "$out" | sed -n 's/^ *[0-9][0-9]* s:\(.*\)$/\1/p'
}

for round in 1 2; do
	got=$(sent "$PA" "$PKI/root-ca.crt")
	want="O = Demo Corp, CN = localhost
O = Demo Corp, CN = Demo Intermediate CA"
	[ "$got" = "$want" ] ||
	    fail "(a) leaf-only tls.cert, connection $round: the server sent [$got], expected [$want]"
done
pass "(a) leaf-only tls.cert: certificate + intermediate sent (no root), verified against the root, twice"

got=$(sent "$PB" "$PKI/root-ca.crt")
[ "$got" = "O = Demo Corp, CN = localhost
O = Demo Corp, CN = Demo Intermediate CA" ] ||
    fail "(b) full-chain tls.cert: the server sent [$got]"
pass "(b) tls.cert with its chain: sent as given"

got=$(sent "$PC" "$TMPDIR/self.crt")
[ "$got" = "CN = localhost" ] ||
    fail "(c) self-signed tls.cert: the server sent [$got], expected only CN = localhost"
pass "(c) self-signed tls.cert: only it is sent, and a client trusting it connects"

got=$(sent "$PD" "$PKI/root-ca.crt")
[ "$got" = "O = Demo Corp, CN = localhost
O = Demo Corp, CN = Demo Intermediate CA" ] ||
    fail "(d) -nomac PKCS#12 with the root first: the server sent [$got]"
pass "(d) PKCS#12 without a MAC, root first in it: loaded; certificate + intermediate sent, in order, no root"

got=$(sent "$PE" "$PKI/root-ca.crt")
[ -n "$got" ] || fail "(e) TRUSTED CERTIFICATE client_auth.ca: no handshake"
pass "(e) client_auth.ca in TRUSTED CERTIFICATE form: read, and its client gets in"

# t_says NAME TLS_LINES TEXT: -t on a listener with those tls lines exits 1
# and prints TEXT.
t_says() {
	local f=$TMPDIR/$1.yaml
	{
		config_head
		config_listener "$1" "$PA" "\"127.0.0.1:$ECHO_PORT\"" "" "$2"
	} >"$f"
	"$MTLSPROXY" -t -c "$f" >"$TMPDIR/$1.out" 2>&1
	rc=$?
	[ "$rc" -eq 1 ] || fail "(f) $1: -t exited $rc, want 1: $(cat "$TMPDIR/$1.out")"
	grep -q -F -- "$3" "$TMPDIR/$1.out" || fail "(f) $1: -t does not say [$3]: $(cat "$TMPDIR/$1.out")"
}
openssl req -x509 -newkey rsa:1024 -nodes -keyout "$TMPDIR/rsa1k.key" -out "$TMPDIR/rsa1k.crt" \
    -days 30 -subj "/CN=localhost" >>"$TMPDIR/req.log" 2>&1 || fail "openssl req rsa:1024: $(tail -n 3 "$TMPDIR/req.log")"
# signed by the demo intermediate with SHA-1 (a self-signature is not checked)
openssl req -new -key "$TMPDIR/self.key" -subj "/CN=localhost" -out "$TMPDIR/sha1.csr" >>"$TMPDIR/req.log" 2>&1 &&
    openssl x509 -req -sha1 -in "$TMPDIR/sha1.csr" -CA "$PKI/intermediate-ca.crt" -CAkey "$PKI/intermediate-ca.key" \
    -set_serial 4242 -days 30 -out "$TMPDIR/sha1.crt" >>"$TMPDIR/req.log" 2>&1 ||
    fail "openssl x509 -req -sha1: $(tail -n 3 "$TMPDIR/req.log")"
echo 'not it' >"$TMPDIR/wrong.pass"
t_says rsa1k "      cert: $TMPDIR/rsa1k.crt
      key: $TMPDIR/rsa1k.key" "its key is too weak: RSA 1024 bits, 80-bit security; security level 2 needs 112 (RSA 2048 bits, EC P-256)"
t_says sha1 "      cert: $TMPDIR/sha1.crt
      key: $TMPDIR/self.key" "it is signed with ecdsa-with-SHA1, which security level 2 refuses"
t_says nomac-nopass "      pkcs12: $TMPDIR/nomac.p12" "PKCS#12 file $TMPDIR/nomac.p12 is protected (or damaged): set \"pkcs12_passphrase_file\""
t_says nomac-wrong "      pkcs12: $TMPDIR/nomac.p12
      pkcs12_passphrase_file: $TMPDIR/wrong.pass" "cannot open PKCS#12 file $TMPDIR/nomac.p12: wrong passphrase in $TMPDIR/wrong.pass"
pass "(f) -t: a weak server key, a SHA-1 signature, a -nomac bundle without or with a wrong passphrase, each said in words"

stop_proxy
