#!/usr/bin/env bash
# http mode: keep-alive (100 requests on one TLS connection, every one with
# the identity headers, one access line and 100 request lines), pipelining
# (requests in one write, answers in order), HEAD and 204/304 answers
# without a body on a connection that stays usable.
. "$(dirname -- "$0")/lib.sh"
. "$(dirname -- "$0")/http-lib.sh"

BPORT=$(free_port)
PORT=$(free_port)
start_http_backend "$BPORT"
{
	config_head
	config_http_listener web "$PORT" "\"127.0.0.1:$BPORT\""
} >"$TMPDIR/keepalive.yaml"
start_proxy "$TMPDIR/keepalive.yaml" "$PORT"
SHA=$(cert_sha256 "$PKI/orders.crt")

# count_new RE: how many log lines since the mark match RE.
count_new() {
	new_log_lines | grep -c -E -- "$1"
}

# ------------------------------------------ node keep-alive, 100 requests
log_mark
B0=$(grep -c '^req GET /headers?i=' "$HB_LOG")
hclient keepalive "$PORT" --count 100 --path /headers
[ "$HCL_RC" -eq 0 ] || fail "keep-alive client failed: $(jq_py "$HCL_OUT" 'j["errors"][:3]' 2>/dev/null) $(tail -n 3 "$HCL_ERR")"
assert_eq "$(jq_py "$HCL_OUT" 'j["count"]')" 100 "keep-alive: answers"
assert_eq "$(jq_py "$HCL_OUT" 'len(j["localPorts"])')" 1 "keep-alive: TCP connections the client used (local ports $(jq_py "$HCL_OUT" 'j["localPorts"]' | tr '\n' ' '))"
BAD=$(jq_py "$HCL_OUT" '[i for i, s in enumerate(j["subjects"]) if s != ["'"$ORDERS_SUBJECT"'"]][:5]')
[ -z "$BAD" ] || fail "keep-alive: requests without exactly one right X-Client-Subject (index: $(echo $BAD)); e.g. #$(echo $BAD | cut -d' ' -f1): $(jq_py "$HCL_OUT" "j['subjects'][$(echo $BAD | cut -d' ' -f1)]")"
B1=$(grep -c "^req GET /headers?i=.* subject=$ORDERS_SUBJECT verify=SUCCESS\$" "$HB_LOG")
assert_eq "$((B1 - B0))" 100 "backend log: keep-alive requests carrying the right subject and verify"
# The connection's access line comes when it closes; then count.
assert_log_contains ' access ' 'listener=web' "sha256=$SHA"
sleep 0.3
assert_eq "$(count_new ' access ')" 1 "access lines for the keep-alive connection"
assert_eq "$(count_new ' request .*method=GET.*path="?/headers.*status=200')" 100 "request lines for the keep-alive connection"
N=$(new_log_lines | grep ' request ' | grep -v -c "subject=\"$ORDERS_SUBJECT\".*sha256=$SHA\|sha256=$SHA.*subject=\"$ORDERS_SUBJECT\"")
assert_eq "$N" 0 "request lines without the client's subject and sha256"
pass "100 keep-alive requests on one connection, each with the identity"

# ------------------------------- curl: several URLs on one command line
log_mark
U="https://localhost:$PORT/headers?curl="
curl -sS --max-time 20 --resolve "localhost:$PORT:127.0.0.1" --cacert "$PKI/root-ca.crt" \
    --cert "$PKI/orders.crt" --key "$PKI/orders.key" -w '%{http_code} %{num_connects}\n' \
    -o /dev/null "${U}1" -o /dev/null "${U}2" -o /dev/null "${U}3" -o /dev/null "${U}4" -o /dev/null "${U}5" \
    >"$TMPDIR/curl5.out" 2>"$TMPDIR/curl5.err" || fail "curl with 5 URLs failed: $(cat "$TMPDIR/curl5.err")"
assert_eq "$(tr '\n' ' ' <"$TMPDIR/curl5.out")" "200 1 200 0 200 0 200 0 200 0 " "curl: status and new connections per URL"
assert_log_contains ' access ' 'listener=web'
sleep 0.3
assert_eq "$(count_new ' access ')" 1 "access lines for curl's reused connection"
assert_eq "$(count_new ' request .*path="?/headers.*status=200')" 5 "request lines for curl's 5 URLs"
pass "curl reuses the connection for 5 URLs"

# --------------------------------------- pipelining: 4 requests, one write
P='GET /headers?p=1 HTTP/1.1\r\nHost: localhost\r\n\r\n'
P+='POST /sha256 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 11\r\n\r\nhello world'
P+='GET /headers?p=3 HTTP/1.1\r\nHost: localhost\r\n\r\n'
P+='GET /headers?p=4 HTTP/1.1\r\nHost: localhost\r\n\r\n'
hclient raw "$PORT" --send "$P" --methods GET,POST,GET,GET --responses 4
R=$HCL_OUT
[ "$(jq_py "$R" 'len(j["responses"])')" = 4 ] ||
    fail "pipelining: $(jq_py "$R" 'len(j["responses"])') of 4 answers (error: $(jq_py "$R" 'j["error"]'), closed: $(jq_py "$R" 'j["closedByServer"]')); raw: $(jq_py "$R" 'repr(j["raw"][:400])')"
assert_eq "$(jq_py "$R" '" ".join(str(r["status"]) for r in j["responses"])')" "200 200 200 200" "pipelining: statuses"
for i in 0 2 3; do
	jq_py "$R" "j['responses'][$i]['body']" >"$TMPDIR/pl$i.json"
	HJ=$TMPDIR/pl$i.json
	assert_eq "$(jq_py "$HJ" 'j["url"]')" "/headers?p=$((i + 1))" "pipelining: answer $((i + 1)) in order"
	assert_header X-Client-Subject "$ORDERS_SUBJECT"
	assert_header X-Client-Fingerprint-SHA256 "$SHA"
done
jq_py "$R" "j['responses'][1]['body']" >"$TMPDIR/pl1.json"
assert_eq "$(jq_py "$TMPDIR/pl1.json" 'j["len"]') $(jq_py "$TMPDIR/pl1.json" 'j["sha256"]') $(jq_py "$TMPDIR/pl1.json" 'j["subject"]')" \
    "11 $(printf 'hello world' | sha256sum | cut -d' ' -f1) $ORDERS_SUBJECT" "pipelining: POST body and subject at the backend"
pass "4 pipelined requests (one with a body) answered in order, each with the identity"

# Three GETs in one write, as the brief's simplest case.
hclient raw "$PORT" --send 'GET /headers?q=1 HTTP/1.1\r\nHost: a\r\n\r\nGET /headers?q=2 HTTP/1.1\r\nHost: a\r\n\r\nGET /headers?q=3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' \
    --responses 3 --wait-close 2000
assert_eq "$(jq_py "$HCL_OUT" '" ".join(json.loads(r["body"])["url"] for r in j["responses"])')" \
    "/headers?q=1 /headers?q=2 /headers?q=3" "3 pipelined GETs: answers in order"
assert_eq "$(jq_py "$HCL_OUT" '" ".join(str(len(h(json.loads(r["body"]), "x-client-subject"))) for r in j["responses"])')" \
    "1 1 1" "3 pipelined GETs: X-Client-Subject per request"
assert_eq "$(jq_py "$HCL_OUT" 'j["closedByServer"]')" True "connection closed after 'Connection: close'"
pass "3 pipelined GETs, then Connection: close honoured"

# ------------------------- HEAD, 204, 304: no body, connection stays usable
SEQ='HEAD /big?n=100000&mode=length HTTP/1.1\r\nHost: a\r\n\r\n'
SEQ+='HEAD /big?n=5000&mode=chunked HTTP/1.1\r\nHost: a\r\n\r\n'
SEQ+='GET /status/204 HTTP/1.1\r\nHost: a\r\n\r\n'
SEQ+='GET /status/304 HTTP/1.1\r\nHost: a\r\n\r\n'
SEQ+='HEAD /headers HTTP/1.1\r\nHost: a\r\n\r\n'
SEQ+='GET /headers?after=1 HTTP/1.1\r\nHost: a\r\n\r\n'
for how in --sequential pipelined; do
	log_mark
	if [ "$how" = --sequential ]; then
		hclient raw "$PORT" --sequential --send "$SEQ" --methods HEAD,HEAD,GET,GET,HEAD,GET --responses 6 --wait-close 500
	else
		hclient raw "$PORT" --send "$SEQ" --methods HEAD,HEAD,GET,GET,HEAD,GET --responses 6 --wait-close 500
	fi
	R=$HCL_OUT
	[ "$(jq_py "$R" 'len(j["responses"])')" = 6 ] ||
	    fail "HEAD/204/304 ($how): $(jq_py "$R" 'len(j["responses"])') of 6 answers, error: $(jq_py "$R" 'j["error"]'); raw: $(jq_py "$R" 'repr(j["raw"][:600])')"
	assert_eq "$(jq_py "$R" '" ".join(str(r["status"]) for r in j["responses"])')" "200 200 204 304 200 200" "HEAD/204/304 ($how): statuses"
	assert_eq "$(jq_py "$R" '" ".join(str(r["bodyLen"]) for r in j["responses"][:5])')" "0 0 0 0 0" "HEAD/204/304 ($how): body lengths"
	assert_eq "$(jq_py "$R" 'rh(j["responses"][0], "content-length")')" 100000 "HEAD ($how): Content-Length of the GET"
	assert_eq "$(jq_py "$R" 'j["rest"]')" "" "HEAD/204/304 ($how): stray bytes after the answers"
	assert_eq "$(jq_py "$R" 'json.loads(j["responses"][5]["body"])["url"]')" "/headers?after=1" "HEAD/204/304 ($how): the request after them"
	assert_eq "$(jq_py "$R" 'j["closedByServer"]')" False "HEAD/204/304 ($how): the connection stays open"
	assert_log_contains ' request ' 'method=HEAD' 'path="?/big' 'status=200'
	assert_log_contains ' request ' 'method=GET' 'path="?/status/204' 'status=204'
	assert_log_contains ' request ' 'method=GET' 'path="?/status/304' 'status=304'
	pass "HEAD, 204, 304 without a body, then another request ($how)"
done

# curl's own view of HEAD and 204 (it errors on stray bytes with reuse).
hcurl "$PORT" '/big?n=4096&mode=chunked' -I
[ "$HC_RC" -eq 0 ] && [ "$HC_CODE" = 200 ] || fail "curl -I: rc $HC_RC status $HC_CODE: $(cat "$HC_ERR")"
cmp -s "$HC_OUT" "$HC_HDR" || fail "curl -I: more than the response head came: $(head -c 300 "$HC_OUT")"
pass "curl -I"

# ------------- no backend connection until the first request comes
# A verified client that holds its connection open without asking anything
# costs no backend connection (as with an HTTP proxy); its first request
# opens one and is answered.
timeout -k 2 20 node - "$PORT" "$PKI" "$HB_LOG" >"$TMPDIR/lazy.json" 2>"$TMPDIR/lazy.err" <<'JS'
const tls = require('tls'), fs = require('fs');
const [port, pki, log] = process.argv.slice(2);
const conns = () => fs.readFileSync(log, 'utf8').split('\n').filter((l) => l === 'conn').length;
const c0 = conns();
const s = tls.connect({ host: '127.0.0.1', port: +port, servername: 'localhost',
  ca: fs.readFileSync(pki + '/root-ca.crt'), cert: fs.readFileSync(pki + '/orders.crt'),
  key: fs.readFileSync(pki + '/orders.key') }, () => {
  setTimeout(() => {
    const idle = conns() - c0;
    let d = '';
    s.on('data', (b) => { d += b; });
    s.on('end', () => {
      console.log(JSON.stringify({ idle, after: conns() - c0, status: d.split('\r\n')[0] }));
    });
    s.write('GET /headers HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  }, 1000);
});
s.on('error', (e) => { console.error(e.message); process.exit(1); });
JS
[ -s "$TMPDIR/lazy.json" ] || fail "idle-then-request client failed: $(cat "$TMPDIR/lazy.err")"
assert_eq "$(jq_py "$TMPDIR/lazy.json" 'j["idle"]')" 0 "backend connections while a verified client sent nothing for 1 s"
assert_eq "$(jq_py "$TMPDIR/lazy.json" 'j["after"]')" 1 "backend connections after its first request"
assert_eq "$(jq_py "$TMPDIR/lazy.json" 'j["status"]')" "HTTP/1.1 200 OK" "answer to the first request after 1 s idle"
pass "an idle verified client holds no backend connection; its first request opens one"

stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
