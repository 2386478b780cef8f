#!/usr/bin/env bash
# http mode, findings of an RFC 9110/9112 audit: what the client and the
# backend see for upgrades other than WebSocket, Connection: close,
# Transfer-Encoding the proxy cannot frame, malformed heads and bodies,
# answers with Connection: close and pipelining, X-Forwarded-For, Forwarded,
# TE, Host, absolute-form targets, versions, methods, timeouts.backend and
# the log lines that say why.
. "$(dirname -- "$0")/lib.sh"
. "$(dirname -- "$0")/http-lib.sh"

BPORT=$(free_port)
RPORT=$(free_port)
P_WEB=$(free_port)
P_RAW=$(free_port)
P_SLOW=$(free_port)
SPORT=$(free_port)
start_http_backend "$BPORT"
WEB_LOG=$HB_LOG
RAW=$TMPDIR/raw-heads.txt
: >"$RAW"
start_http_backend "$RPORT" --raw "$RAW"
{
	config_head
	config_http_listener web "$P_WEB" "\"127.0.0.1:$BPORT\""
	config_http_listener raw "$P_RAW" "\"127.0.0.1:$RPORT\""
	HTTP_TIMEOUTS_EXTRA="      backend: 1s" \
	    config_http_listener slow "$P_SLOW" "\"127.0.0.1:$SPORT\""
} >"$TMPDIR/audit.yaml"
start_proxy "$TMPDIR/audit.yaml" "$P_WEB"
wait_port "$P_RAW" "$PROXY_PID" 5 || fail "listener raw does not accept"

# raw_send REQ [hclient options]: send REQ to the raw listener, with $RAW
# emptied first; $HEADS: what the backend received, CRs removed.
raw_send() {
	local req=$1
	shift
	: >"$RAW"
	hclient raw "$P_RAW" --send "$req" "$@"
	[ "$HCL_RC" -eq 0 ] || fail "client failed: $(cat "$HCL_ERR")"
	HEADS=$(tr -d '\r' <"$RAW")
}
# status N: the status of the client's answer N (0-based), or none.
status() {
	jq_py "$HCL_OUT" "j['responses'][$1]['status'] if len(j['responses']) > $1 else 'none'"
}
# rhdr N NAME: the client's answer N's NAME values, joined by ','.
rhdr() {
	jq_py "$HCL_OUT" "','.join(rh(j['responses'][$1], '$2')) if len(j['responses']) > $1 else 'none'"
}
heads_count() { printf '%s\n' "$HEADS" | grep -c -i -E -- "$1" || true; }
closed() { jq_py "$HCL_OUT" 'j["closedByServer"]'; }
raw_of() { jq_py "$HCL_OUT" 'repr(j["raw"][:400])'; }
# want N: run section N ($AUDIT_ONLY: a space-separated list, else all).
want() { [ -z "${AUDIT_ONLY:-}" ] || [[ " $AUDIT_ONLY " == *" $1 "* ]]; }

# ------------------------------------------------ 1. upgrades: WebSocket only
if want 1; then
# h2c: the backend would accept it (101) and read what follows as its own
# protocol; the client's second request, with a forged identity, would
# reach it unread by the proxy.
FORGED='GET /forged HTTP/1.1\r\nHost: localhost\r\nX-Client-Subject: CN=admin,O=Forged\r\n\r\n'
raw_send "GET /h2c HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n$FORGED" \
    --responses 2 --timeout 5000
assert_eq "$(status 0) $(status 1)" "200 200" "h2c upgrade: client's answers (raw: $(raw_of))"
[ "$(heads_count 'CN=admin')" = 0 ] || fail "h2c upgrade: a forged identity reached the backend: $HEADS"
[ "$(heads_count '^upgrade:|^http2-settings:')" = 0 ] || fail "h2c upgrade: Upgrade or HTTP2-Settings forwarded: $HEADS"
[ "$(heads_count '^connection:.*upgrade')" = 0 ] || fail "h2c upgrade: Connection: upgrade forwarded: $HEADS"
[ "$(heads_count '^x-client-subject: CN=orders')" = 2 ] || fail "h2c upgrade: the proxy's identity is not on both requests: $HEADS"
pass "Upgrade: h2c is not forwarded (nor the upgrade option): plain HTTP/1.1, 200, the next request has the proxy's identity"

# A list with websocket and more: only websocket goes on.
raw_send 'GET /wsmix HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive, Upgrade\r\nUpgrade: h2c, WebSocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n' \
    --responses 1 --timeout 5000
assert_eq "$(status 0)" 101 "Upgrade: h2c, WebSocket: client's answer"
[ "$(heads_count '^upgrade: websocket$')" = 1 ] && [ "$(heads_count '^upgrade:')" = 1 ] ||
    fail "Upgrade: h2c, WebSocket: want exactly 'Upgrade: websocket': $HEADS"
[ "$(heads_count '^connection: keep-alive, upgrade$')" = 1 ] || fail "Upgrade: h2c, WebSocket: Connection: $HEADS"
pass "Upgrade: h2c, WebSocket goes on as Upgrade: websocket with Connection: keep-alive, upgrade"

# Upgrade without the upgrade option in Connection: not an upgrade.
raw_send 'GET /noconn HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\r\n' --responses 1 --timeout 5000
assert_eq "$(status 0)" 200 "Upgrade without Connection: upgrade: client's answer"
[ "$(heads_count '^upgrade:')" = 0 ] || fail "Upgrade without Connection: upgrade was forwarded: $HEADS"
pass "Upgrade without Connection: upgrade is not forwarded (RFC 9110 7.8)"

# A 101 to a request that did not ask to upgrade: 502, no tunnel.
log_mark
raw_send "GET /force101 HTTP/1.1\r\nHost: localhost\r\n\r\n$FORGED" --responses 1 --wait-close 2000 --timeout 5000
assert_eq "$(status 0)" 502 "101 to a plain request: client's answer (raw: $(raw_of))"
[ "$(heads_count 'CN=admin')" = 0 ] || fail "101 to a plain request: a forged identity reached the backend: $HEADS"
assert_log_contains 'bad response from backend .*101 Switching Protocols to a request that did not ask to upgrade'
pass "a 101 answer to a request that did not ask to upgrade: 502, nothing after it forwarded, logged"
fi

# ------------------------------- 2. Connection: close, HTTP/1.0 (keepalive 0)
# The answer says Connection: close and the proxy closes, even though this
# backend keeps its connection open and says nothing of closing; what the
# client sent after that request is not forwarded.
if want 2; then
for req in 'GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n' \
    'GET /a HTTP/1.0\r\nHost: x\r\n\r\nGET /second HTTP/1.0\r\nHost: x\r\n\r\n'; do
	raw_send "$req" --responses 1 --wait-close 2000 --timeout 5000
	what=$(printf '%s' "$req" | cut -c1-40)
	assert_eq "$(status 0)" 200 "$what: status"
	assert_eq "$(rhdr 0 connection | tr A-Z a-z)" close "$what: Connection of the answer"
	assert_eq "$(closed)" True "$what: the proxy closed within 2 s"
	assert_eq "$(jq_py "$HCL_OUT" 'len(j["responses"])')" 1 "$what: answers"
	[ "$(heads_count '^GET /second')" = 0 ] || fail "$what: the request after it was forwarded: $HEADS"
done
pass "Connection: close and HTTP/1.0 without keep-alive (backend.keepalive 0): answer with Connection: close, then the proxy closes"
fi

# expect_refused STATUS WHAT REQ [LOG_RE]: the raw listener answers REQ with
# STATUS and Connection: close, closes, forwards nothing, and logs LOG_RE.
expect_refused() {
	local st=$1 what=$2 req=$3 re=${4:-}
	log_mark
	raw_send "$req" --responses 1 --wait-close 2000 --timeout 5000
	assert_eq "$(status 0)" "$st" "$what: status (raw: $(raw_of))"
	assert_eq "$(rhdr 0 connection | tr A-Z a-z)" close "$what: Connection of the answer"
	assert_eq "$(closed)" True "$what: the proxy closed within 2 s"
	[ -z "$HEADS" ] || fail "$what: forwarded to the backend: $HEADS"
	[ -z "$re" ] || assert_log_contains "$re"
}

# --------------------------------------- 3. Transfer-Encoding not chunked
if want 3; then
for te in identity xchunked gzip 'gzip, chunked'; do
	expect_refused 501 "Transfer-Encoding: $te" \
	    "POST /te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: $te\r\n\r\n5\r\nhello\r\n0\r\n\r\n" \
	    "bad request: Transfer-Encoding .* is not supported"
done
# chunked not last: llhttp refuses it while reading the head (RFC 9112 6.3)
expect_refused 400 "Transfer-Encoding: chunked, identity" \
    'POST /te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n' \
    'bad request: .*Transfer-Encoding'
pass "Transfer-Encoding other than chunked (identity, xchunked, gzip, gzip+chunked): 501 before forwarding, closed, logged"
fi

# ------------------------------- 4. empty header name; 15. the reason logged
if want 4; then
expect_refused 400 "empty header name" \
    'GET /e HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n: novalue\r\n\r\n' 'bad request: empty header name'
expect_refused 400 "empty header name first" \
    'GET /e HTTP/1.1\r\n: novalue\r\nHost: x\r\n\r\n' 'bad request: empty header name'
expect_refused 400 "whitespace before the colon" \
    'GET /w HTTP/1.1\r\nHost: x\r\nX-Client-Subject : CN=admin\r\n\r\n' 'bad request: whitespace before the colon$'
pass "an empty header name: 400, not forwarded; whitespace before the colon logs that reason (not llhttp's callback error)"
fi

# ----------------------------------- 5. a bad chunked body after the head
# The head went on; the body's chunk line is bad: 400 (no answer byte had
# gone out), closed, and the log says why, with the request line.
if want 5; then
n=0
for body in 'zz\r\nhello\r\n0\r\n\r\n' 'fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n' '5\nhello\r\n0\r\n\r\n'; do
	n=$((n + 1))
	log_mark
	hclient raw "$P_WEB" --send "POST /sha256?bad=$n HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n$body" \
	    --responses 1 --wait-close 2000 --timeout 5000
	assert_eq "$(status 0)" 400 "bad chunk $n: status (raw: $(raw_of))"
	assert_eq "$(rhdr 0 connection | tr A-Z a-z)" close "bad chunk $n: Connection"
	assert_eq "$(closed)" True "bad chunk $n: closed"
	assert_log_contains 'bad request body: HPE_'
	assert_log_contains " request listener=web .*path=\"/sha256\\?bad=$n\" status=400"
done
pass "a bad chunk size, an overflowing one, a bare LF in a chunk line: 400 with Connection: close, logged with llhttp's reason and the request line"
fi

# ------------------- 6. an answer with Connection: close, requests behind it
# The second request was pipelined behind the first; the backend answers
# the first with Connection: close (and closes). The client gets that
# answer and the proxy's close, never a 502 for the second.
if want 6; then
log_mark
raw_send 'GET /close-answer HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n' \
    --responses 2 --timeout 5000
assert_eq "$(status 0)" 200 "Connection: close answer: status (raw: $(raw_of))"
assert_eq "$(rhdr 0 connection | tr A-Z a-z)" close "Connection: close answer: Connection"
assert_eq "$(status 1)" none "Connection: close answer: the request behind it got an answer (raw: $(raw_of))"
assert_eq "$(closed)" True "Connection: close answer: closed"
assert_log_lacks 'status=502'
pass "after an answer with Connection: close the client's connection is closed; the pipelined request gets no 502 (the client sends it again)"
fi

# --------------------------------------- 7. several X-Forwarded-For lines
if want 7; then
raw_send 'GET /xff HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 192.0.2.1\r\nx-forwarded-for: 192.0.2.2, 192.0.2.3\r\nX-Forwarded-For:\r\n\r\n' \
    --responses 1 --timeout 5000
assert_eq "$(status 0)" 200 "several X-Forwarded-For: status"
assert_eq "$(printf '%s\n' "$HEADS" | grep -i '^x-forwarded-for:')" \
    "X-Forwarded-For: 192.0.2.1, 192.0.2.2, 192.0.2.3, 127.0.0.1" "several X-Forwarded-For: what the backend saw"
pass "several X-Forwarded-For lines (the last one empty) are joined in order, then the client's address appended"
fi

# ------------------------------------ 8. a client's Forwarded and X-Real-IP
if want 8; then
raw_send 'GET /fwd HTTP/1.1\r\nHost: x\r\nForwarded: for=10.0.0.1;proto=http;host=evil.example\r\nX-Real-IP: 10.0.0.2\r\nFORWARDED: for=10.0.0.3\r\nx_real_ip: 10.0.0.4\r\n\r\n' \
    --responses 1 --timeout 5000
assert_eq "$(status 0)" 200 "Forwarded/X-Real-IP: status"
[ "$(heads_count '^forwarded:|^x.real.ip:|10\.0\.0\.')" = 0 ] || fail "Forwarded/X-Real-IP reached the backend: $HEADS"
[ "$(heads_count '^x-forwarded-proto: https$')" = 1 ] || fail "Forwarded/X-Real-IP: no X-Forwarded-Proto: $HEADS"
pass "a client's Forwarded and X-Real-IP (any case, _ for -) are removed, as X-Forwarded-Proto/-Host"
fi

# ------------------------------------------------------------------ 9. TE
if want 9; then
raw_send 'GET /te HTTP/1.1\r\nHost: x\r\nTE: trailers, gzip\r\n\r\n' --responses 1 --timeout 5000
assert_eq "$(status 0)" 200 "TE: status"
[ "$(heads_count '^te:')" = 0 ] || fail "TE reached the backend: $HEADS"
pass "the hop-by-hop TE request header is not forwarded"
fi

# ----------------------------------------------------- 10. invalid Host
if want 10; then
for hv in 'evil.com/x?y Z' 'user@evil.com' 'x#y' 'a\\b'; do
	expect_refused 400 "Host: $hv" "GET /h HTTP/1.1\r\nHost: $hv\r\n\r\n" 'bad request: a Host header that is not host\[:port\]'
done
raw_send 'GET /h HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n' --responses 1 --timeout 5000
assert_eq "$(status 0)" 200 "Host: [::1]:8443"
[ "$(heads_count '^x-forwarded-host: \[::1\]:8443$')" = 1 ] || fail "Host: [::1]:8443: X-Forwarded-Host: $HEADS"
pass "a Host that is not host[:port] (space, /, ?, #, @, backslash): 400, never copied to X-Forwarded-Host; [::1]:8443 goes on"
fi

# ------------------------------------------------ 11. absolute-form target
if want 11; then
raw_send 'GET http://other.example/p?q=1 HTTP/1.1\r\nHost: x\r\n\r\nGET HTTPS://other.example:8443?q HTTP/1.1\r\nHost: x\r\n\r\n' \
    --responses 2 --timeout 5000
assert_eq "$(status 0) $(status 1)" "200 200" "absolute-form: status"
[ "$(heads_count '^GET /p\?q=1 HTTP/1.1$')" = 1 ] || fail "absolute-form: not forwarded in origin-form: $HEADS"
[ "$(heads_count '^GET /\?q HTTP/1.1$')" = 1 ] || fail "absolute-form without a path: $HEADS"
[ "$(heads_count '^host: other.example$')" = 1 ] && [ "$(heads_count '^host: other.example:8443$')" = 1 ] &&
    [ "$(heads_count '^host: x$')" = 0 ] || fail "absolute-form: Host not the target's authority: $HEADS"
[ "$(heads_count '^x-forwarded-host: other.example(:8443)?$')" = 2 ] || fail "absolute-form: X-Forwarded-Host: $HEADS"
expect_refused 400 "ftp:// target" 'GET ftp://other.example/p HTTP/1.1\r\nHost: x\r\n\r\n' 'bad request: a request target'
expect_refused 400 "userinfo in the target" 'GET http://u@other.example/p HTTP/1.1\r\nHost: x\r\n\r\n' 'bad request: a request target'
pass "an absolute-form target goes on in origin-form with Host and X-Forwarded-Host from its authority; other schemes and userinfo: 400"
fi

# ------------------------------------------- 12. HTTP versions other than 1.x
if want 12; then
expect_refused 505 "HTTP/2.0" 'GET /a HTTP/2.0\r\nHost: x\r\n\r\n' 'bad request: HTTP/2.0 is not supported'
pass "GET /a HTTP/2.0: 505 HTTP Version Not Supported, not forwarded"
fi

# ------------------------------- 13. long target, CONNECT, unknown method
if want 13; then
LONG=$(head -c 70000 /dev/zero | tr '\0' a)
expect_refused 414 "target over max_header_size" "GET /$LONG HTTP/1.1\r\nHost: x\r\n\r\n" 'bad request: request target over max_header_size'
expect_refused 405 "CONNECT" 'CONNECT other.example:443 HTTP/1.1\r\nHost: other.example:443\r\n\r\n'
case $(rhdr 0 allow) in GET*) ;; *) fail "CONNECT: 405 without Allow: $(raw_of)" ;; esac
expect_refused 501 "FOOBAR method" 'FOOBAR /a HTTP/1.1\r\nHost: x\r\n\r\n' 'bad request: unknown method'
expect_refused 400 "not a method" 'G(T /a HTTP/1.1\r\nHost: x\r\n\r\n'
pass "a target over max_header_size: 414; CONNECT: 405 with Allow; an unknown method token: 501; a non-token: 400"
fi

# ------------------- 14. timeouts.backend and a backend reading an upload
# The backend reads a 2 MB upload at 320 KB/s (about 6 s) before it
# answers; timeouts.backend is 1 s. It is not silent while it reads: the
# time runs from when it has taken the whole request.
if want 14; then
python3 "$ITEST_DIR/slow-reader.py" "$SPORT" 16384 0.05 >>"$TMPDIR/slow.log" 2>&1 &
track $!
wait_port "$SPORT" "$PROXY_PID" 5 || fail "slow backend is not up"
head -c 2000000 /dev/zero >"$TMPDIR/up2.bin"
log_mark
out=$(curl -s --max-time 40 --cacert "$PKI/root-ca.crt" --cert "$PKI/orders.crt" --key "$PKI/orders.key" \
    --data-binary @"$TMPDIR/up2.bin" -w ' %{http_code}' "https://localhost:$P_SLOW/up")
assert_eq "$out" "read 2000000
 200" "slow reader of a 2 MB upload: answer"
assert_log_lacks 'did not answer within'
pass "a backend reading a 2 MB upload for seconds gets it all and answers (timeouts.backend 1s)"
fi

# ---------------------------------------------------- 15. log lines
if want 15; then
# The backend closes 90 bytes short of its Content-Length: a warn line,
# and the request line.
log_mark
raw_send 'GET /short-body HTTP/1.1\r\nHost: x\r\n\r\n' --responses 1 --wait-close 2000 --timeout 5000
assert_eq "$(closed)" True "short body: closed"
assert_log_contains 'warn listener "raw": backend .* closed the connection before its answer was complete'
assert_log_contains ' request listener=raw .*path=/short-body status=200'
pass "a backend closing mid-body: a warn line and the request line"
# bytes_in of a big chunked upload counts every byte the client sent.
BODY=$TMPDIR/upload.bin
REQF=$TMPDIR/upload.req
head -c 3000000 /dev/urandom >"$BODY"
{ printf 'POST /sha256?up=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3000000\r\n\r\n'; cat "$BODY"; } >"$REQF"
log_mark
hclient raw "$P_WEB" --send-file "$REQF" --responses 1 --timeout 20000
assert_eq "$(status 0)" 200 "big upload: status"
assert_log_contains " request listener=web .*path=\"/sha256\\?up=1\" status=200 bytes_in=$(stat -c %s "$REQF") "
pass "bytes_in of a 3 MB upload is the whole request, head and body"
fi

stop_proxy
[ "$PROXY_RC" = 0 ] || fail "mtlsproxy exit status $PROXY_RC"
