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
#      it connects.
. "$(dirname -- "$0")/lib.sh"

ECHO_PORT=$(free_port)
PA=$(free_port)
PB=$(free_port)
PC=$(free_port)
start_echo "$ECHO_PORT"

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

stop_proxy
