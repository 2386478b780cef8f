#!/usr/bin/env bash
# http mode, answers the proxy gives itself, each a small HTTP response with
# Connection: close after which the proxy closes: malformed request 400,
# request head over max_header_size 431, smuggling shapes 400 (never
# forwarded), backend down 502, backend silent past timeouts.backend 504.
# A refused client certificate fails the TLS handshake: no HTTP at all.
. "$(dirname -- "$0")/lib.sh"
. "$(dirname -- "$0")/http-lib.sh"

BPORT=$(free_port)
SPORT=$(free_port)
DEAD=$(free_port)
P_WEB=$(free_port)
P_SMALL=$(free_port)
P_DOWN=$(free_port)
P_SLOW=$(free_port)
P_SILENT=$(free_port)
P_STRICT=$(free_port)
start_http_backend "$BPORT"
WEB_LOG=$HB_LOG
start_http_backend "$SPORT" --silent
{
	config_head
	config_http_listener web "$P_WEB" "\"127.0.0.1:$BPORT\""
	config_http_listener small "$P_SMALL" "\"127.0.0.1:$BPORT\"" "" "    max_header_size: 4096"
	config_http_listener down "$P_DOWN" "\"127.0.0.1:$DEAD\""
	HTTP_TIMEOUTS_EXTRA="      backend: 1s"
	config_http_listener slow "$P_SLOW" "\"127.0.0.1:$BPORT\""
	config_http_listener silent "$P_SILENT" "\"127.0.0.1:$SPORT\""
	HTTP_TIMEOUTS_EXTRA=
	config_http_listener strict "$P_STRICT" "\"127.0.0.1:$BPORT\"" "      allow:
        subject_cn: [orders]"
} >"$TMPDIR/errors.yaml"
start_proxy "$TMPDIR/errors.yaml" "$P_WEB"
for p in "$P_SMALL" "$P_DOWN" "$P_SLOW" "$P_SILENT" "$P_STRICT"; do
	wait_port "$p" "$PROXY_PID" 5 || fail "listener on 127.0.0.1:$p does not accept"
done

# expect_answer PORT STATUS WHAT REQUEST: send REQUEST (one write), expect
# one answer with STATUS and Connection: close, then the proxy's close.
expect_answer() {
	local port=$1 status=$2 what=$3 req=$4 got conn
	hclient raw "$port" --send "$req" --responses 1 --wait-close 3000 --timeout 10000
	[ "$HCL_RC" -eq 0 ] || fail "$what: client failed: $(cat "$HCL_ERR")"
	got=$(jq_py "$HCL_OUT" 'j["responses"][0]["status"] if j["responses"] else None')
	[ "$got" = "$status" ] || fail "$what: expected $status, got $got; sent $(printf '%q' "${req:0:120}"); received $(jq_py "$HCL_OUT" 'repr(j["raw"][:300])'); error $(jq_py "$HCL_OUT" 'j["error"]')"
	conn=$(jq_py "$HCL_OUT" '",".join(rh(j["responses"][0], "connection")).lower()')
	[ "$conn" = close ] || fail "$what: answer $status without 'Connection: close' (Connection: [$conn]); head: $(jq_py "$HCL_OUT" 'repr(j["raw"][:300])')"
	[ "$(jq_py "$HCL_OUT" 'j["closedByServer"]')" = True ] || fail "$what: the proxy did not close the connection within 3 s after its $status"
}

# backend_got RE: the web backend logged a request line matching RE.
backend_got() {
	grep -q -E -- "$1" "$WEB_LOG"
}

# ------------------------------------------------------------------ 400
expect_answer "$P_WEB" 400 "GARBAGE request" 'GARBAGE\r\n\r\n'
expect_answer "$P_WEB" 400 "junk after the version" 'GET /bad1 HTTP/1.1 junk\r\nHost: localhost\r\n\r\n'
log_mark
expect_answer "$P_WEB" 400 "space in a header name" 'GET /bad2 HTTP/1.1\r\nHost: localhost\r\nBad Header: x\r\n\r\n'
# the proxy's own 400 (llhttp 8 lets the space pass; the backend must not
# be the one to refuse it)
assert_log_contains 'info 127\.0\.0\.1:[0-9]+: bad request: a header name with a character that is not allowed in one'
expect_answer "$P_WEB" 400 "a quote in a header name" 'GET /bad2 HTTP/1.1\r\nHost: localhost\r\nX-"Client": x\r\n\r\n'
expect_answer "$P_WEB" 400 "non-numeric Content-Length" 'POST /bad3 HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n'
# a good request after a bad one on the same connection never happens: the
# proxy closed; a new connection works
expect_answer "$P_WEB" 400 "bad request then a good one in the same write" 'GARBAGE\r\n\r\nGET /after-garbage HTTP/1.1\r\nHost: localhost\r\n\r\n'
sleep 0.3
backend_got '^req [A-Z]+ /(bad[0-9]|after-garbage)' && fail "a malformed request reached the backend: $(grep -E '^req [A-Z]+ /(bad[0-9]|after-garbage)' "$WEB_LOG" | head -n 1)"
hcurl "$P_WEB" /headers
[ "$HC_CODE" = 200 ] || fail "a good request after the 400s: status $HC_CODE"
pass "malformed requests: 400 with Connection: close, nothing forwarded"

# ------------------------------------------------------------ smuggling
expect_answer "$P_WEB" 400 "Content-Length and Transfer-Encoding" \
    'POST /smuggle1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG'
expect_answer "$P_WEB" 400 "two different Content-Length" \
    'POST /smuggle2 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd'
expect_answer "$P_WEB" 400 "Transfer-Encoding not ending in chunked" \
    'POST /smuggle3 HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n'
expect_answer "$P_WEB" 400 "Content-Length and Transfer-Encoding (TE first, odd case)" \
    'POST /smuggle4 HTTP/1.1\r\nHost: localhost\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\n'
sleep 0.3
backend_got '^req [A-Z]+ /smuggle' && fail "a smuggling-shaped request reached the backend: $(grep -E '^req [A-Z]+ /smuggle' "$WEB_LOG" | head -n 1)"
pass "smuggling shapes (CL+TE, double CL, bad TE): 400, nothing forwarded"

# ------------------------------------------------------------------ 431
PAD8=$(head -c 8192 /dev/zero | tr '\0' a)
PAD20=$(head -c 20480 /dev/zero | tr '\0' a)
expect_answer "$P_SMALL" 431 "8 KiB head with max_header_size 4096" "GET /big-head1 HTTP/1.1\\r\\nHost: localhost\\r\\nX-Pad: $PAD8\\r\\n\\r\\n"
expect_answer "$P_SMALL" 431 "many small headers over 4096" "GET /big-head2 HTTP/1.1\\r\\nHost: localhost\\r\\n$(for i in $(seq 100); do printf 'X-H%d: %s\\r\\n' "$i" "0123456789012345678901234567890123456789012345678901234567890123456789"; done)\\r\\n"
expect_answer "$P_WEB" 431 "20 KiB head with the default 16 KiB" "GET /big-head3 HTTP/1.1\\r\\nHost: localhost\\r\\nX-Pad: $PAD20\\r\\n\\r\\n"
# under the limits: passes
hclient raw "$P_WEB" --send "GET /headers?pad=8k HTTP/1.1\\r\\nHost: localhost\\r\\nX-Pad: $PAD8\\r\\nConnection: close\\r\\n\\r\\n" --responses 1
assert_eq "$(jq_py "$HCL_OUT" 'j["responses"][0]["status"] if j["responses"] else None')" 200 "8 KiB head with the default 16 KiB limit"
hclient raw "$P_SMALL" --send 'GET /headers?small=ok HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' --responses 1
assert_eq "$(jq_py "$HCL_OUT" 'j["responses"][0]["status"] if j["responses"] else None')" 200 "small head on the max_header_size 4096 listener"
backend_got '^req GET /big-head' && fail "an oversized head reached the backend"
pass "request head over max_header_size: 431 (4096 set, 16 KiB default)"

# ------------------------------------------------------------------ 502
log_mark
expect_answer "$P_DOWN" 502 "backend down, first request" 'GET /headers HTTP/1.1\r\nHost: localhost\r\n\r\n'
assert_log_contains ' request ' 'listener=down' 'path="?/headers' 'status=502'
hcurl "$P_DOWN" /headers
[ "$HC_CODE" = 502 ] || fail "curl to a listener whose backend is down: status $HC_CODE (rc $HC_RC: $(cat "$HC_ERR"))"
pass "backend down: 502 on the first request"

# ------------------------------------------------------------------ 504
for l in slow:"$P_SLOW":/hang silent:"$P_SILENT":/anything; do
	name=${l%%:*}
	rest=${l#*:}
	port=${rest%%:*}
	path=${rest#*:}
	log_mark
	expect_answer "$port" 504 "backend silent ($name) with timeouts.backend 1s" "GET $path HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n"
	ms=$(jq_py "$HCL_OUT" 'j["firstByteMs"]')
	[ "$ms" -ge 800 ] && [ "$ms" -le 3000 ] || fail "504 ($name) after $ms ms; expected about 1 s (timeouts.backend: 1s)"
	assert_log_contains ' request ' "listener=$name" "path=\"?$path" 'status=504'
	pass "backend silent ($name): 504 after $ms ms"
done

# ------------------------------- refused certificates: no HTTP, ever
for who in mallory none; do
	log_mark
	if [ "$who" = mallory ]; then
		hcurl "$P_STRICT" /headers -v --cert "$PKI/mallory.crt" --key "$PKI/mallory.key"
	else
		hcurl "$P_STRICT" /headers -v --no-cert
	fi
	[ "$HC_RC" -ne 0 ] || fail "refused client ($who): curl succeeded (status $HC_CODE)"
	[ "$HC_CODE" = 000 ] || fail "refused client ($who): got an HTTP status $HC_CODE (must fail at the TLS handshake)"
	grep -q '^< HTTP' "$HC_ERR" && fail "refused client ($who): curl received an HTTP status line: $(grep '^< HTTP' "$HC_ERR")"
	[ ! -s "$HC_HDR" ] || fail "refused client ($who): response head received: $(head -c 200 "$HC_HDR")"
	# 35: handshake failed; 56: the alert came on the first read; 55: the
	# server's alert and close came while curl was still sending (TLS 1.3
	# sends the refusal after the client's Finished).
	case $HC_RC in
	35 | 55 | 56) ;;
	*) fail "refused client ($who): curl exit $HC_RC, expected a TLS/connection failure (35, 55 or 56): $(grep -v '^[*<>{}]' "$HC_ERR" | tail -n 2)" ;;
	esac
	if [ "$who" = mallory ]; then
		assert_log_contains ' refused ' 'listener=strict' 'code=policy' 'CN=mallory'
	else
		assert_log_contains ' refused ' 'listener=strict' 'code=no_cert'
	fi
	# the same with a raw TLS client that sends a request at once
	if [ "$who" = mallory ]; then
		hclient raw "$P_STRICT" --send 'GET /headers HTTP/1.1\r\nHost: localhost\r\n\r\n' --cert "$PKI/mallory.crt" --key "$PKI/mallory.key" --responses 1 --timeout 5000
	else
		hclient raw "$P_STRICT" --send 'GET /headers HTTP/1.1\r\nHost: localhost\r\n\r\n' --no-cert --responses 1 --timeout 5000
	fi
	assert_eq "$(jq_py "$HCL_OUT" 'j["rawLen"]')" 0 "refused client ($who), node: bytes of HTTP received"
	err=$(jq_py "$HCL_OUT" 'j["error"]')
	grep -q -i 'alert\|ssl\|certificate' <<<"$err" ||
	    fail "refused client ($who), node: expected a TLS alert, got error [$err], closed by server: $(jq_py "$HCL_OUT" 'j["closedByServer"]')"
	pass "refused client ($who): TLS failure, no HTTP page ($(jq_py "$HCL_OUT" 'j["error"]' | cut -c1-80))"
done
backend_got '^req GET /headers .*subject=CN=mallory' && fail "mallory reached the backend"

stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
