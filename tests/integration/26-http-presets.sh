#!/usr/bin/env bash
# http mode, header presets: nginx (X-SSL-Client-*, as nginx users write
# them from $ssl_client_*), envoy (X-Forwarded-Client-Cert in Envoy's
# format), a header renamed and one switched off with headers.names, and
# forwarded: false. Client-sent identity headers of every preset are
# removed whatever the listener's preset.
. "$(dirname -- "$0")/lib.sh"
. "$(dirname -- "$0")/http-lib.sh"

BPORT=$(free_port)
P_NGINX=$(free_port)
P_ENVOY=$(free_port)
P_NAMES=$(free_port)
P_NOFWD=$(free_port)
start_http_backend "$BPORT"
{
	config_head
	config_http_listener nginx "$P_NGINX" "\"127.0.0.1:$BPORT\"" "" "    headers:
      preset: nginx"
	config_http_listener envoy "$P_ENVOY" "\"127.0.0.1:$BPORT\"" "" "    headers:
      preset: envoy"
	config_http_listener names "$P_NAMES" "\"127.0.0.1:$BPORT\"" "" "    headers:
      preset: default
      names:
        subject: X-Caller-DN
        cert: \"\""
	config_http_listener nofwd "$P_NOFWD" "\"127.0.0.1:$BPORT\"" "" "    headers:
      forwarded: false"
} >"$TMPDIR/presets.yaml"
start_proxy "$TMPDIR/presets.yaml" "$P_NGINX"
for p in "$P_ENVOY" "$P_NAMES" "$P_NOFWD"; do
	wait_port "$p" "$PROXY_PID" 5 || fail "listener on 127.0.0.1:$p does not accept"
done

SERIAL=$(cert_serial "$PKI/orders.crt")
SHA=$(cert_sha256 "$PKI/orders.crt")
SHA1=$(cert_sha1 "$PKI/orders.crt")
# $ssl_client_escaped_cert: every byte but ALPHA DIGIT - . _ ~ as %XX
ESC=$(cert_pem "$PKI/orders.crt" | python3 -c 'import sys, urllib.parse; sys.stdout.write(urllib.parse.quote(sys.stdin.read(), safe=""))')

FORGED=(
	-H 'X-Client-Subject: CN=admin,O=Forged'
	-H 'X-Client-Verify: FORGED'
	-H 'X-SSL-Client-S-DN: CN=admin,O=Forged'
	-H 'x-ssl-client-verify: FORGED'
	-H 'X-SSL-Client-Fingerprint: forged'
	-H 'X-Forwarded-Client-Cert: Hash=forged;Subject="CN=admin,O=Forged"'
	-H 'X_Client_Subject: CN=admin,O=Forged'
)

# no_forged_values WHAT: no header value in $HJ mentions the forgeries.
no_forged_values() {
	local bad
	bad=$(jq_py "$HJ" '[j["rawHeaders"][i] + ": " + j["rawHeaders"][i+1] for i in range(0, len(j["rawHeaders"]), 2) if "forged" in j["rawHeaders"][i+1].lower() or "admin" in j["rawHeaders"][i+1].lower()]')
	[ -z "$bad" ] || fail "$1: a forged value reached the backend: $bad"
}

# ---------------------------------------------------------------- nginx
headers_json_get "$P_NGINX" /headers "${FORGED[@]}"
assert_header X-SSL-Client-Verify SUCCESS
assert_header X-SSL-Client-S-DN "$ORDERS_SUBJECT"
assert_header X-SSL-Client-I-DN "$ORDERS_ISSUER"
assert_header X-SSL-Client-Serial "$SERIAL"
assert_header X-SSL-Client-Fingerprint "$SHA1"
assert_header X-SSL-Client-Cert "$ESC"
assert_eq "$(hval X-SSL-Client-Cert | urldecode)" "$(cert_pem "$PKI/orders.crt")" "nginx: X-SSL-Client-Cert, URL-decoded"
assert_header X-Forwarded-Proto https
assert_header X-Forwarded-For 127.0.0.1
N=$(jq_py "$HJ" '[n for n in names(j) if n.lower().startswith("x-client") or n.lower().replace("_", "-").startswith("x-client-") or n.lower() == "x-forwarded-client-cert"]')
[ -z "$N" ] || fail "nginx preset: the backend also got: $N"
no_forged_values "nginx preset"
pass "nginx preset: X-SSL-Client-* exact (S-DN, I-DN, serial, SHA-1 fingerprint, escaped cert), forgeries of all presets removed"

# ---------------------------------------------------------------- envoy
headers_json_get "$P_ENVOY" /headers "${FORGED[@]}"
XFCC="Hash=$SHA;Cert=\"$ESC\";Subject=\"$ORDERS_SUBJECT\";URI=$ORDERS_SAN_URI;DNS=$ORDERS_SAN_DNS"
assert_header X-Forwarded-Client-Cert "$XFCC"
N=$(jq_py "$HJ" '[n for n in names(j) if n.lower().replace("_", "-").startswith(("x-client-", "x-ssl-client-"))]')
[ -z "$N" ] || fail "envoy preset: the backend also got: $N"
assert_header X-Forwarded-Proto https
no_forged_values "envoy preset"
pass "envoy preset: one X-Forwarded-Client-Cert, exact; forgeries removed"

# billing has no SANs: no URI=, no DNS=
headers_json_get "$P_ENVOY" /headers --cert "$PKI/billing.crt" --key "$PKI/billing.key"
BESC=$(cert_pem "$PKI/billing.crt" | python3 -c 'import sys, urllib.parse; sys.stdout.write(urllib.parse.quote(sys.stdin.read(), safe=""))')
assert_header X-Forwarded-Client-Cert "Hash=$(cert_sha256 "$PKI/billing.crt");Cert=\"$BESC\";Subject=\"CN=billing,O=Demo Corp\""
pass "envoy preset: a client without SANs"

# --------------------------------------------------- renamed / removed
headers_json_get "$P_NAMES" /headers "${FORGED[@]}" -H 'X-Caller-DN: CN=admin,O=Forged' -H 'x-caller-dn: CN=admin2' 
assert_header X-Caller-DN "$ORDERS_SUBJECT"
assert_no_header X-Client-Subject
assert_no_header X-Client-Cert
assert_header X-Client-Verify SUCCESS
assert_header X-Client-Issuer "$ORDERS_ISSUER"
assert_header X-Client-Fingerprint-SHA256 "$SHA"
assert_no_header X-SSL-Client-S-DN
assert_no_header X-Forwarded-Client-Cert
no_forged_values "renamed headers"
pass "headers.names: subject renamed to X-Caller-DN (a forged X-Caller-DN removed), cert switched off"

# ------------------------------------------------------ forwarded: false
headers_json_get "$P_NOFWD" /headers
assert_header X-Client-Subject "$ORDERS_SUBJECT"
assert_no_header X-Forwarded-For
assert_no_header X-Forwarded-Proto
assert_no_header X-Forwarded-Host
headers_json_get "$P_NOFWD" /headers -H 'X-Forwarded-For: 10.1.1.1' -H 'X-Forwarded-Proto: http' -H 'X-Forwarded-Host: app.example' -H 'X-Client-Subject: CN=admin'
assert_header X-Forwarded-For 10.1.1.1
assert_header X-Forwarded-Proto http
assert_header X-Forwarded-Host app.example
assert_header X-Client-Subject "$ORDERS_SUBJECT"
pass "forwarded: false: no X-Forwarded-* added, the client's passed on unchanged; identity still enforced"

# ---------------- hostile subject: nginx and envoy escape it their way
openssl ecparam -name prime256v1 -genkey -noout -out "$TMPDIR/odd.key" 2>/dev/null &&
openssl req -new -utf8 -key "$TMPDIR/odd.key" -out "$TMPDIR/odd.csr" \
    -subj $'/O=Demo\\, Inc./CN=Jos\xc3\xa9 "q"\\, a\\+b\\=c;d\\\\e <f>\r\nX-Injected: 1' 2>/dev/null &&
openssl x509 -req -in "$TMPDIR/odd.csr" -CA "$PKI/intermediate-ca.crt" -CAkey "$PKI/intermediate-ca.key" \
    -CAserial "$TMPDIR/ca.srl" -CAcreateserial -days 2 -sha256 -out "$TMPDIR/odd.crt" 2>/dev/null ||
    fail "could not mint the odd-subject certificate"
# nginx's $ssl_client_s_dn: OpenSSL's RFC 2253 printer, non-ASCII as \XX
WANT=$(openssl x509 -in "$TMPDIR/odd.crt" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
headers_json_get "$P_NGINX" /headers --cert "$TMPDIR/odd.crt" --key "$TMPDIR/odd.key"
assert_no_header X-Injected
assert_header X-SSL-Client-S-DN "$WANT"
pass "nginx preset, hostile subject: [$WANT]"
headers_json_get "$P_ENVOY" /headers --cert "$TMPDIR/odd.crt" --key "$TMPDIR/odd.key"
assert_no_header X-Injected
[ "$(hcount X-Forwarded-Client-Cert)" = 1 ] || fail "envoy, hostile subject: $(hcount X-Forwarded-Client-Cert) XFCC headers"
V=$(hval X-Forwarded-Client-Cert)
case $V in
*";Subject=\"$WANT\""*) ;;
*) fail "envoy, hostile subject: XFCC lacks ;Subject=\"$WANT\": $(sed 's/Cert="[^"]*"/Cert="..."/' <<<"$V")" ;;
esac
pass "envoy preset, hostile subject: Subject=\"$WANT\""

# Several SANs: one URI=/DNS= each, a value with ; or = in double quotes.
openssl req -new -key "$TMPDIR/odd.key" -subj '/O=Demo Corp/CN=sans' \
    -addext 'subjectAltName=DNS:one.example,DNS:two.example,URI:https://x.example/a?b=c,URI:spiffe://x/a b' \
    -out "$TMPDIR/sans.csr" 2>/dev/null &&
openssl x509 -req -in "$TMPDIR/sans.csr" -CA "$PKI/intermediate-ca.crt" -CAkey "$PKI/intermediate-ca.key" \
    -CAserial "$TMPDIR/ca.srl" -copy_extensions copy -days 2 -sha256 -out "$TMPDIR/sans.crt" 2>/dev/null ||
    fail "could not mint the several-SANs certificate"
headers_json_get "$P_ENVOY" /headers --cert "$TMPDIR/sans.crt" --key "$TMPDIR/odd.key"
SESC=$(cert_pem "$TMPDIR/sans.crt" | python3 -c 'import sys, urllib.parse; sys.stdout.write(urllib.parse.quote(sys.stdin.read(), safe=""))')
assert_header X-Forwarded-Client-Cert "Hash=$(cert_sha256 "$TMPDIR/sans.crt");Cert=\"$SESC\";Subject=\"CN=sans,O=Demo Corp\";URI=\"https://x.example/a?b=c\";URI=spiffe://x/a%20b;DNS=one.example;DNS=two.example"
pass "envoy preset, several SANs: URI=\"...\" quoted where it holds = or ;"

stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
