#!/usr/bin/env bash
# http mode, default preset: the backend learns who the caller is from the
# identity headers, with exact values taken from the client certificate;
# always the leaf; a subject with CR/LF, quotes, commas or UTF-8 is escaped
# and cannot inject a header; one access `request` line per request.
. "$(dirname -- "$0")/lib.sh"
. "$(dirname -- "$0")/http-lib.sh"

BPORT=$(free_port)
PORT=$(free_port)
start_http_backend "$BPORT"
{
	config_head
	config_http_listener web "$PORT" "\"127.0.0.1:$BPORT\""
} >"$TMPDIR/headers.yaml"
start_proxy "$TMPDIR/headers.yaml" "$PORT"

# ------------------------------------------------------------ orders, curl
log_mark
headers_json_get "$PORT" /headers
assert_eq "$(jq_py "$HJ" 'j["method"]') $(jq_py "$HJ" 'j["url"]')" "GET /headers" "request line seen by the backend"
assert_header X-Client-Verify SUCCESS
assert_header X-Client-Subject "$ORDERS_SUBJECT"
assert_header X-Client-Issuer "$ORDERS_ISSUER"
assert_header X-Client-Serial "$(cert_serial "$PKI/orders.crt")"
SHA=$(cert_sha256 "$PKI/orders.crt")
assert_header X-Client-Fingerprint-SHA256 "$SHA"
assert_header X-Client-SAN-DNS "$ORDERS_SAN_DNS"
assert_header X-Client-SAN-URI "$ORDERS_SAN_URI"
assert_header X-Forwarded-For 127.0.0.1
assert_header X-Forwarded-Proto https
assert_header X-Forwarded-Host "localhost:$PORT"
assert_header Host "localhost:$PORT"
# X-Client-Cert: URL-encoded PEM of the leaf, one header line (no raw
# whitespace or control bytes), decoding to the certificate.
[ "$(hcount X-Client-Cert)" = 1 ] || fail "backend saw $(hcount X-Client-Cert) X-Client-Cert headers, expected 1"
CERTV=$(hval X-Client-Cert)
case $CERTV in
*[[:space:][:cntrl:]]*) fail "X-Client-Cert holds raw whitespace or control bytes (not URL-encoded): ${CERTV:0:80}" ;;
*%0A*) ;;
*) fail "X-Client-Cert does not look URL-encoded (no %0A): ${CERTV:0:80}" ;;
esac
# exactly nginx's $ssl_client_escaped_cert: all but ALPHA DIGIT - . _ ~ as %XX
ESC=$(cert_pem "$PKI/orders.crt" | python3 -c 'import sys, urllib.parse; sys.stdout.write(urllib.parse.quote(sys.stdin.read(), safe=""))')
assert_eq "$CERTV" "$ESC" "X-Client-Cert (escaped as nginx's \$ssl_client_escaped_cert)"
DECODED=$(printf '%s' "$CERTV" | urldecode)
assert_eq "$DECODED" "$(cert_pem "$PKI/orders.crt")" "X-Client-Cert, URL-decoded"
# no other X-Client-* than the ones above
OTHER=$(jq_py "$HJ" '[n for n in names(j) if n.lower().startswith("x-client-") and n.lower() not in ("x-client-verify","x-client-subject","x-client-issuer","x-client-serial","x-client-fingerprint-sha256","x-client-san-dns","x-client-san-uri","x-client-cert")]')
[ -z "$OTHER" ] || fail "backend saw unexpected identity headers: $OTHER"
pass "default preset: every identity header exact (curl, orders)"

# The access log: one request line, besides the connection's access line.
assert_log_contains ' request ' 'listener=web' 'peer=127\.0\.0\.1:[0-9]+' 'method=GET' \
    'path="?/headers' 'status=200' 'bytes_in=[0-9]+' 'bytes_out=[1-9][0-9]*' 'duration_ms=[0-9]+' \
    "subject=\"$ORDERS_SUBJECT\"" "sha256=$SHA"
assert_log_contains ' access ' 'listener=web' "subject=\"$ORDERS_SUBJECT\"" "sha256=$SHA"
pass "access log: request line and access line"

# A POST with a body reaches the backend unchanged.
hcurl "$PORT" /sha256 --data-binary 'hello body'
[ "$HC_RC" -eq 0 ] && [ "$HC_CODE" = 200 ] || fail "POST /sha256: rc $HC_RC status $HC_CODE: $(cat "$HC_ERR")"
assert_eq "$(jq_py "$HC_OUT" 'j["len"]') $(jq_py "$HC_OUT" 'j["sha256"]')" \
    "10 $(printf 'hello body' | sha256sum | cut -d' ' -f1)" "POST body as the backend saw it (len sha256)"
assert_eq "$(jq_py "$HC_OUT" 'j["subject"]')" "$ORDERS_SUBJECT" "X-Client-Subject on a POST"
pass "POST body and identity"

# ---------------------------------------------- billing: no SANs at all
headers_json_get "$PORT" /headers --cert "$PKI/billing.crt" --key "$PKI/billing.key"
assert_header X-Client-Subject "CN=billing,O=Demo Corp"
assert_header X-Client-Serial "$(cert_serial "$PKI/billing.crt")"
assert_header X-Client-Fingerprint-SHA256 "$(cert_sha256 "$PKI/billing.crt")"
assert_no_header X-Client-SAN-DNS
assert_no_header X-Client-SAN-URI
pass "billing: its own identity, no SAN headers"

# ------------------------------------- the client sends the full chain
headers_json_get "$PORT" /headers --cert "$PKI/orders-fullchain.crt" --key "$PKI/orders.key"
assert_header X-Client-Subject "$ORDERS_SUBJECT"
assert_header X-Client-Issuer "$ORDERS_ISSUER"
assert_header X-Client-Fingerprint-SHA256 "$SHA"
assert_eq "$(hval X-Client-Cert | urldecode)" "$(cert_pem "$PKI/orders.crt")" "X-Client-Cert with a full chain sent (must be the leaf)"
pass "full chain sent: identity is the leaf's"

# --------------------------------------------------- Node https client
hclient raw "$PORT" --send 'GET /headers?node=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' --responses 1
[ "$HCL_RC" -eq 0 ] || fail "node raw client failed: $(cat "$HCL_ERR")"
jq_py "$HCL_OUT" 'j["responses"][0]["body"]' >"$TMPDIR/node-h.json"
HJ=$TMPDIR/node-h.json
assert_header X-Client-Subject "$ORDERS_SUBJECT"
assert_header X-Client-Fingerprint-SHA256 "$SHA"
assert_header X-Forwarded-Host localhost
pass "node tls client: identity headers"

# --------------------- hostile subjects: CR/LF, quotes, commas, UTF-8
# Minted here with the demo intermediate CA (never touches $PKI).
mint() {	# mint NAME SUBJ [SAN]
	local san=()
	[ -n "${3:-}" ] && san=(-addext "subjectAltName=$3")
	openssl ecparam -name prime256v1 -genkey -noout -out "$TMPDIR/$1.key" 2>/dev/null &&
	openssl req -new -utf8 -key "$TMPDIR/$1.key" -subj "$2" ${san[@]+"${san[@]}"} -out "$TMPDIR/$1.csr" 2>/dev/null &&
	openssl x509 -req -in "$TMPDIR/$1.csr" -CA "$PKI/intermediate-ca.crt" \
	    -CAkey "$PKI/intermediate-ca.key" -CAserial "$TMPDIR/ca.srl" -CAcreateserial \
	    -copy_extensions copy -days 2 -sha256 -out "$TMPDIR/$1.crt" 2>/dev/null ||
	    fail "could not mint the test certificate $1"
}
mint crlf $'/O=Demo Corp/CN=evil\r\nX-Injected: yes\r\nX-Client-Verify: FORGED'
headers_json_get "$PORT" /headers --cert "$TMPDIR/crlf.crt" --key "$TMPDIR/crlf.key"
assert_no_header X-Injected
assert_header X-Client-Verify SUCCESS
[ "$(hcount X-Client-Subject)" = 1 ] || fail "CR/LF subject: $(hcount X-Client-Subject) X-Client-Subject headers"
V=$(jq_py "$HJ" "repr(h(j, 'x-client-subject')[0])")
case $V in
*'\r'* | *'\n'* | *'\x00'*) fail "CR/LF subject: X-Client-Subject carries raw CR/LF/NUL: $V" ;;
esac
# RFC 4514 escaping as OpenSSL's RFC2253 printer writes it: \0D\0A
assert_header X-Client-Subject 'CN=evil\0D\0AX-Injected: yes\0D\0AX-Client-Verify: FORGED,O=Demo Corp'
pass "a subject with CR/LF cannot inject a header (escaped as \\0D\\0A)"

mint odd $'/O=Demo\\, Inc./CN=Jos\xc3\xa9 "q"\\, a\\+b\\=c;d\\\\e <f> #x '
headers_json_get "$PORT" /headers --cert "$TMPDIR/odd.crt" --key "$TMPDIR/odd.key"
[ "$(hcount X-Client-Subject)" = 1 ] || fail "odd subject: $(hcount X-Client-Subject) X-Client-Subject headers"
GOT=$(hval X-Client-Subject)
# RFC 4514 (docs/identity-headers.md): , + " \ < > ; escaped with a
# backslash, a trailing space escaped; the default preset keeps UTF-8 as is.
WANT=$(openssl x509 -in "$TMPDIR/odd.crt" -noout -subject -nameopt RFC2253,-esc_msb | sed 's/^subject=//')
assert_eq "$GOT" 'CN=José \"q\"\, a\+b=c\;d\\e \<f\> #x\ ,O=Demo\, Inc.' "odd subject: X-Client-Subject"
assert_eq "$GOT" "$WANT" "odd subject: X-Client-Subject against openssl -nameopt RFC2253,-esc_msb"
assert_header X-Client-Verify SUCCESS
pass "quotes, commas, plus, backslash, UTF-8 in the subject: RFC 4514 escaped ($GOT)"

# Several SANs, a URI with a space: joined with ", ", the space as %20.
mint sans '/O=Demo Corp/CN=sans' 'DNS:one.example,DNS:two.example,URI:https://x.example/a?b=c,URI:spiffe://x/a b'
headers_json_get "$PORT" /headers --cert "$TMPDIR/sans.crt" --key "$TMPDIR/sans.key"
assert_header X-Client-Subject "CN=sans,O=Demo Corp"
assert_header X-Client-SAN-DNS "one.example, two.example"
assert_header X-Client-SAN-URI "https://x.example/a?b=c, spiffe://x/a%20b"
pass "several SANs: lists joined with ', ', a space in a URI as %20"

stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
