#!/usr/bin/env bash
# ALPN (tls.alpn). A tcp listener with alpn: [h2] in front of an HTTP/2
# cleartext (h2c) backend: curl --http2 and Node's http2 client (which, as
# gRPC clients do, needs h2 agreed in the handshake) talk HTTP/2 to the
# backend through it; a client that offers only http/1.1 gets the
# no_application_protocol alert and a refused line naming both lists; one
# that offers nothing is served without ALPN. An http listener tells
# clients it speaks http/1.1 (curl: "server accepted http/1.1"), and a
# client that offers only h2 is refused with the reason. A tcp listener
# without tls.alpn takes no part in ALPN, as before.
. "$(dirname -- "$0")/lib.sh"
. "$ITEST_DIR/http-lib.sh"

H2_PORT=$(free_port)
ECHO_PORT=$(free_port)
HTTP_BACKEND=$(free_port)
P_H2=$(free_port)
P_HTTP=$(free_port)
P_TCP=$(free_port)

# An h2c backend: answers with the HTTP version it saw.
cat >"$TMPDIR/h2.js" <<'JS'
const http2 = require('http2');
http2.createServer((req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end(`h2 backend: HTTP/${req.httpVersion} ${req.method} ${req.url}\n`);
}).listen(+process.argv[2], '127.0.0.1');
JS
node "$TMPDIR/h2.js" "$H2_PORT" >"$TMPDIR/h2.log" 2>&1 &
H2_PID=$!
track "$H2_PID"
wait_port "$H2_PORT" "$H2_PID" 5 || fail "h2c backend did not start: $(tail -n 3 "$TMPDIR/h2.log")"
start_echo "$ECHO_PORT"
start_http "$HTTP_BACKEND"

{
	config_head
	config_listener grpc "$P_H2" "\"127.0.0.1:$H2_PORT\"" "" "      cert: $PKI/server-fullchain.crt
      key: $PKI/server.key
      alpn: [h2]"
	config_http_listener web "$P_HTTP" "\"127.0.0.1:$HTTP_BACKEND\""
	config_listener plain "$P_TCP" "\"127.0.0.1:$ECHO_PORT\""
} >"$TMPDIR/alpn.yaml"
"$MTLSPROXY" check -c "$TMPDIR/alpn.yaml" >"$TMPDIR/check.out" 2>&1 ||
    fail "check refused the config: $(cat "$TMPDIR/check.out")"
start_proxy "$TMPDIR/alpn.yaml" "$P_H2"
wait_port "$P_HTTP" "$PROXY_PID" 5 || fail "listener web not up"
wait_port "$P_TCP" "$PROXY_PID" 5 || fail "listener plain not up"

CERT=(--cacert "$PKI/root-ca.crt" --cert "$PKI/orders.crt" --key "$PKI/orders.key")

# --- tcp with alpn: [h2] --------------------------------------------------
log_mark
out=$(timeout -k 2 15 curl -sS -v --http2 "${CERT[@]}" --resolve "localhost:$P_H2:127.0.0.1" \
    "https://localhost:$P_H2/svc.Orders/Get" 2>"$TMPDIR/curl.err") ||
    fail "curl --http2 through alpn: [h2] failed: $(tail -n 3 "$TMPDIR/curl.err")"
grep -q 'ALPN: server accepted h2' "$TMPDIR/curl.err" ||
    fail "curl was not told h2: $(grep -i alpn "$TMPDIR/curl.err")"
[ "$out" = "h2 backend: HTTP/2.0 GET /svc.Orders/Get" ] || fail "curl --http2 got [$out]"
assert_log_contains ' access ' 'listener=grpc ' 'alpn=h2 ' 'subject="CN=orders'
pass "tcp + alpn: [h2]: curl negotiates h2 and the h2c backend sees HTTP/2; the access line says alpn=h2"

# Node's http2 client gives up on a connection without h2 agreed (as gRPC
# clients do); through the listener it gets its answer.
cat >"$TMPDIR/h2client.js" <<'JS'
const http2 = require('http2'), fs = require('fs');
const [port, pki] = [process.argv[2], process.argv[3]];
const s = http2.connect(`https://localhost:${port}`, {
  ca: fs.readFileSync(`${pki}/root-ca.crt`),
  cert: fs.readFileSync(`${pki}/orders.crt`),
  key: fs.readFileSync(`${pki}/orders.key`),
  lookup: (h, o, cb) => o && o.all ? cb(null, [{address: '127.0.0.1', family: 4}]) : cb(null, '127.0.0.1', 4),
});
s.on('error', (e) => { console.log(`ERROR ${e.code} ${e.message}`); process.exit(1); });
const r = s.request({ ':path': '/svc.Orders/List', ':method': 'POST' });
let body = '';
r.setEncoding('utf8');
r.on('response', (h) => { body += `status ${h[':status']} alpn ${s.alpnProtocol}\n`; });
r.on('data', (d) => { body += d; });
r.on('end', () => { process.stdout.write(body); s.close(); });
r.on('error', (e) => { console.log(`ERROR ${e.code} ${e.message}`); process.exit(1); });
r.end('x');
JS
out=$(timeout -k 2 15 node "$TMPDIR/h2client.js" "$P_H2" "$PKI" 2>&1) || fail "node http2 client: $out"
printf '%s\n' "$out" | grep -q '^status 200 alpn h2$' || fail "node http2 client got [$out]"
printf '%s\n' "$out" | grep -q '^h2 backend: HTTP/2.0 POST /svc.Orders/List$' || fail "node http2 client got [$out]"
pass "tcp + alpn: [h2]: Node's http2 client (needs h2, as gRPC does) gets its answer"

log_mark
timeout -k 2 15 curl -sS --http1.1 "${CERT[@]}" --resolve "localhost:$P_H2:127.0.0.1" \
    "https://localhost:$P_H2/" >"$TMPDIR/curl.out" 2>"$TMPDIR/curl.err" &&
    fail "an http/1.1-only client got through alpn: [h2]: $(cat "$TMPDIR/curl.out")"
grep -q -i 'no application protocol' "$TMPDIR/curl.err" ||
    fail "curl did not get the no_application_protocol alert: $(cat "$TMPDIR/curl.err")"
assert_log_contains ' refused ' 'listener=grpc ' 'code=tls_error' \
    'reason="no common application protocol \(ALPN\): the client offers only http/1.1; tls.alpn lists h2"'
pass "tcp + alpn: [h2]: a client offering only http/1.1 gets the no_application_protocol alert; the log names both lists"

log_mark
timeout -k 2 10 openssl s_client -connect "127.0.0.1:$P_H2" -servername localhost \
    -CAfile "$PKI/root-ca.crt" -verify_return_error -cert "$PKI/orders.crt" \
    -key "$PKI/orders.key" </dev/null >"$TMPDIR/s.out" 2>&1
grep -q 'No ALPN negotiated' "$TMPDIR/s.out" || fail "s_client without -alpn: $(grep -i -E 'alpn|error' "$TMPDIR/s.out" | head -n 3)"
grep -q '^Verify return code: 0' "$TMPDIR/s.out" || fail "s_client without -alpn: handshake failed: $(grep -i error "$TMPDIR/s.out" | head -n 3)"
assert_log_contains ' access ' 'listener=grpc ' 'subject="CN=orders'
assert_log_lacks ' access .*listener=grpc .*alpn='
pass "tcp + alpn: [h2]: a client that offers no ALPN is served without it"

# --- http mode: http/1.1 --------------------------------------------------
log_mark
out=$(timeout -k 2 15 curl -sS -v "${CERT[@]}" --resolve "localhost:$P_HTTP:127.0.0.1" \
    "https://localhost:$P_HTTP/" 2>"$TMPDIR/curl.err") || fail "curl to the http listener: $(tail -n 3 "$TMPDIR/curl.err")"
grep -q 'ALPN: offers h2' "$TMPDIR/curl.err" || fail "this curl does not offer h2: $(grep -i alpn "$TMPDIR/curl.err")"
grep -q 'ALPN: server accepted http/1.1' "$TMPDIR/curl.err" ||
    fail "curl (offering h2 and http/1.1) was not told http/1.1: $(grep -i alpn "$TMPDIR/curl.err")"
[ "$(printf '%s\n' "$out" | head -n 1)" = "$HTTP_BODY" ] || fail "http listener: got [$out]"
assert_log_contains ' access ' 'listener=web ' 'alpn=http/1.1 '
pass "http mode: a client offering h2 and http/1.1 is told http/1.1"

log_mark
timeout -k 2 10 openssl s_client -connect "127.0.0.1:$P_HTTP" -servername localhost -alpn h2 \
    -CAfile "$PKI/root-ca.crt" -cert "$PKI/orders.crt" -key "$PKI/orders.key" \
    </dev/null >"$TMPDIR/s.out" 2>&1
grep -q -i 'alert no application protocol' "$TMPDIR/s.out" ||
    fail "an h2-only client of the http listener: $(grep -i -E 'alert|error|alpn' "$TMPDIR/s.out" | head -n 3)"
assert_log_contains ' refused ' 'listener=web ' 'code=tls_error' \
    'the client offers only h2, and this listener \(backend mode: http\) speaks HTTP/1.x \(http/1.1, http/1.0\)' \
    'tls.alpn: \[h2\]'
pass "http mode: an h2-only client (gRPC) is refused with no_application_protocol and a reason that says what to do"

# HTTP/2 by prior knowledge, without ALPN: a 400 and a log line that says so.
log_mark
s_client_send "$P_HTTP" 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' '400 Bad Request' \
    -cert "$PKI/orders.crt" -key "$PKI/orders.key"
head -n 1 "$SCLIENT_OUT" | grep -q '^HTTP/1.1 400 Bad Request' || fail "HTTP/2 preface: got [$(head -n 1 "$SCLIENT_OUT")]"
assert_log_contains 'bad request: the client sent the HTTP/2 connection preface without agreeing on h2 in the TLS handshake \(ALPN\)'
pass "http mode: an HTTP/2 preface without ALPN gets 400, and the log says what happened"

log_mark
s_client_send "$P_HTTP" 'GET / HTTP/1.0\r\n\r\n' "$HTTP_BODY" -alpn http/1.0 \
    -cert "$PKI/orders.crt" -key "$PKI/orders.key"
grep -q -F "$HTTP_BODY" "$SCLIENT_OUT" || fail "an http/1.0 client: $(head -n 3 "$SCLIENT_OUT")"
assert_log_contains ' access ' 'listener=web ' 'alpn=http/1.0 '
pass "http mode: a client offering only http/1.0 gets http/1.0"

# --- tcp without tls.alpn: no ALPN, as before ---------------------------------
log_mark
s_client_send "$P_TCP" 'ping\n' ping -alpn h2,http/1.1 -cert "$PKI/orders.crt" -key "$PKI/orders.key"
grep -q -F ping "$SCLIENT_OUT" || fail "tcp without alpn: no echo (rc $SCLIENT_RC): $(head -n 3 "$SCLIENT_ERR")"
assert_log_contains ' access ' 'listener=plain ' 'bytes_in=5 '
assert_log_lacks ' access .*listener=plain .*alpn='
pass "tcp without tls.alpn: a client offering h2 and http/1.1 is served without ALPN"

# --- config errors --------------------------------------------------------
sed 's|alpn: \[h2\]|alpn: [h2, "HTTP/1.1"]|' "$TMPDIR/alpn.yaml" >"$TMPDIR/typo.yaml"
"$MTLSPROXY" check -c "$TMPDIR/typo.yaml" >"$TMPDIR/check.out" 2>&1 && fail "check accepted alpn HTTP/1.1"
grep -q 'typo.yaml:[0-9]*:[0-9]*: error: "alpn": "HTTP/1.1" would never match: clients send "http/1.1"' "$TMPDIR/check.out" ||
    fail "check on alpn HTTP/1.1: $(cat "$TMPDIR/check.out")"
pass "check: an ALPN name in the wrong case is named with file:line:column and the right spelling"

stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
