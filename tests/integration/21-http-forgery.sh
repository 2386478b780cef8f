#!/usr/bin/env bash
# http mode: identity headers sent by the client are removed, in any letter
# case, duplicated, folded or on a later request of the connection; the
# backend sees exactly one of each, with the proxy's value. Checked on what
# Node's HTTP parser makes of the request and on the exact bytes forwarded.
# Headers listed in the client's Connection header stay on its hop and
# cannot take the proxy's X-Forwarded-For or identity headers with them.
. "$(dirname -- "$0")/lib.sh"
. "$(dirname -- "$0")/http-lib.sh"

BPORT=$(free_port)
RPORT=$(free_port)
PORT=$(free_port)
PORT2=$(free_port)
start_http_backend "$BPORT"
WEB_LOG=$HB_LOG
RAW=$TMPDIR/raw-heads.txt
: >"$RAW"
start_http_backend "$RPORT" --raw "$RAW"
{
	config_head
	config_http_listener web "$PORT" "\"127.0.0.1:$BPORT\""
	config_http_listener raw "$PORT2" "\"127.0.0.1:$RPORT\""
} >"$TMPDIR/forgery.yaml"
start_proxy "$TMPDIR/forgery.yaml" "$PORT"
wait_port "$PORT2" "$PROXY_PID" 5 || fail "listener raw (127.0.0.1:$PORT2) does not accept"
SERIAL=$(cert_serial "$PKI/orders.crt")
SHA=$(cert_sha256 "$PKI/orders.crt")

FORGED=(
	-H 'X-Client-Subject: CN=admin,O=Forged'
	-H 'x-client-verify: FORGED'
	-H 'X-CLIENT-CERT: forged-cert'
	-H 'X-Client-Issuer: CN=Forged CA'
	-H 'x-Client-Serial: 00FORGED'
	-H 'X-Client-Fingerprint-SHA256: forgedfingerprint'
	-H 'X-Client-SAN-DNS: admin.forged'
	-H 'X-Client-SAN-URI: spiffe://forged/admin'
	-H 'X-Client-Subject: CN=root,O=Forged'
	-H 'X-Client-Anything: forged-anything'
	-H 'X-Client-Role: forged-admin'
	-H 'X-SSL-Client-S-DN: CN=admin,O=Forged'
	-H 'x-ssl-client-verify: FORGED'
	-H 'X-SSL-Client-Cert: forged-cert'
	-H 'X-Forwarded-Client-Cert: Hash=forged;Subject="CN=admin,O=Forged"'
	-H 'X-Forwarded-Proto: http-forged'
	-H 'X-Forwarded-Host: forged.example'
	-H 'X-Forwarded-For: 10.9.8.7'
	-H 'X_Client_Subject: CN=admin,O=Underscore'
	-H 'x_client_verify: FORGED'
	-H 'X-Request-Id: keep-me-1'
)

# assert_real_identity: $HJ holds exactly the proxy's identity headers and
# no forged value anywhere (but in header SKIP, lower case, if given: the
# header an obs-fold was folded into).
assert_real_identity() {
	local what=$1 skip=${2:-x-client-cert} bad
	assert_header X-Client-Subject "$ORDERS_SUBJECT"
	assert_header X-Client-Verify SUCCESS
	assert_header X-Client-Issuer "$ORDERS_ISSUER"
	assert_header X-Client-Serial "$SERIAL"
	assert_header X-Client-Fingerprint-SHA256 "$SHA"
	assert_header X-Client-SAN-DNS "$ORDERS_SAN_DNS"
	assert_header X-Client-SAN-URI "$ORDERS_SAN_URI"
	[ "$(hcount X-Client-Cert)" = 1 ] || fail "$what: $(hcount X-Client-Cert) X-Client-Cert headers"
	assert_eq "$(hval X-Client-Cert | urldecode)" "$(cert_pem "$PKI/orders.crt")" "$what: X-Client-Cert"
	assert_no_header X-Client-Anything
	assert_no_header X-Client-Role
	assert_no_header X-SSL-Client-S-DN
	assert_no_header X-SSL-Client-Verify
	assert_no_header X-SSL-Client-Cert
	assert_no_header X-Forwarded-Client-Cert
	assert_no_header X_Client_Subject
	assert_no_header x_client_verify
	bad=$(jq_py "$HJ" '[j["rawHeaders"][i] + ": " + j["rawHeaders"][i+1] for i in range(0, len(j["rawHeaders"]), 2) if j["rawHeaders"][i].lower() not in ("x-client-cert", "'"$skip"'") and any(w in j["rawHeaders"][i+1].lower() for w in ("forged", "admin", "evil"))]')
	[ -z "$bad" ] || fail "$what: a forged value reached the backend: $bad"
}

# --------------------------------------------- curl, every forgery at once
headers_json_get "$PORT" /headers "${FORGED[@]}"
assert_real_identity "curl with forged headers"
assert_header X-Forwarded-Proto https
assert_header X-Forwarded-Host "localhost:$PORT"
assert_header X-Forwarded-For "10.9.8.7, 127.0.0.1"
assert_header X-Request-Id keep-me-1
pass "forged X-Client-*, X-SSL-Client-*, XFCC, X-Forwarded-Proto/Host removed (any case, '_' for '-', duplicated); X-Forwarded-For appended"

# the same on the exact bytes forwarded (raw backend)
: >"$RAW"
hcurl "$PORT2" /raw "${FORGED[@]}"
[ "$HC_RC" -eq 0 ] && [ "$HC_CODE" = 200 ] || fail "raw backend via the proxy: rc $HC_RC status $HC_CODE: $(cat "$HC_ERR")"
HEAD_FWD=$(tr -d '\r' <"$RAW")
N=$(grep -c -i '^x-client-subject:' <<<"$HEAD_FWD")
[ "$N" = 1 ] || fail "forwarded head has $N X-Client-Subject lines, expected 1: $(grep -i '^x-client-subject:' <<<"$HEAD_FWD" | tr '\n' '|')"
grep -q -x -i "x-client-subject: *$ORDERS_SUBJECT" <<<"$HEAD_FWD" ||
    fail "forwarded head: X-Client-Subject is not the real one: $(grep -i '^x-client-subject:' <<<"$HEAD_FWD")"
if [ "$(grep -v -i '^x-client-cert:' <<<"$HEAD_FWD" | grep -c -i 'forged\|admin')" != 0 ]; then
	fail "forwarded head carries a forged value: $(grep -v -i '^x-client-cert:' <<<"$HEAD_FWD" | grep -i 'forged\|admin' | head -n 3 | tr '\n' '|')"
fi
pass "raw forwarded bytes: one X-Client-Subject, no forged value"

# ----------------------------------- obs-fold: a continuation line must not
# become a header. Either 400, or folded into X-Foo's value (RFC 9112 5.2:
# a proxy replaces obs-fold with SP before forwarding).
FOLD='GET /headers HTTP/1.1\r\nHost: localhost\r\nX-Foo: a\r\n X-Client-Subject: CN=evil\r\n\tX-Client-Verify: evil\r\nConnection: close\r\n\r\n'
hclient raw "$PORT" --send "$FOLD" --responses 1 --wait-close 2000
[ "$HCL_RC" -eq 0 ] || fail "obs-fold request: client failed: $(cat "$HCL_ERR")"
ST=$(jq_py "$HCL_OUT" 'j["responses"][0]["status"] if j["responses"] else "none"')
case $ST in
400) pass "obs-fold request refused with 400" ;;
200)
	jq_py "$HCL_OUT" 'j["responses"][0]["body"]' >"$TMPDIR/fold.json"
	HJ=$TMPDIR/fold.json
	assert_real_identity "obs-fold request" x-foo
	pass "obs-fold request: folded, no forged identity at the backend"
	;;
*) fail "obs-fold request: expected 400 or 200, got $ST; raw answer: $(jq_py "$HCL_OUT" 'j["raw"][:300]')" ;;
esac
: >"$RAW"
hclient raw "$PORT2" --send "$FOLD" --responses 1 --wait-close 2000
ST=$(jq_py "$HCL_OUT" 'j["responses"][0]["status"] if j["responses"] else "none"')
if [ "$ST" = 200 ]; then
	if python3 -c 'import re, sys; sys.exit(0 if re.search(rb"\r\n[ \t]", open(sys.argv[1], "rb").read()) else 1)' "$RAW"; then
		fail "obs-fold forwarded as is (a continuation line reached the backend): $(tr '\r\n' '~|' <"$RAW" | head -c 400)"
	fi
	N=$(tr -d '\r' <"$RAW" | grep -c -i '^x-client-subject:')
	[ "$N" = 1 ] || fail "obs-fold: forwarded head has $N X-Client-Subject lines"
	[ "$(tr -d '\r' <"$RAW" | grep -c -i '^x-client-subject: *CN=evil')" = 0 ] || fail "obs-fold: forged X-Client-Subject forwarded"
elif [ "$ST" != 400 ]; then
	fail "obs-fold (raw backend): expected 400 or 200, got $ST"
fi
pass "obs-fold: no continuation line forwarded raw"

# ----------------- other shapes: no space after the colon, odd case, tab
SHAPES='GET /headers HTTP/1.1\r\nHost: localhost\r\nX-Client-Subject:CN=admin\r\nx-CLIENT-sUbJeCt: \tCN=admin2\r\nX-CLIENT-VERIFY:\tFORGED\r\nConnection: close\r\n\r\n'
hclient raw "$PORT" --send "$SHAPES" --responses 1 --wait-close 1000
ST=$(jq_py "$HCL_OUT" 'j["responses"][0]["status"] if j["responses"] else "none"')
[ "$ST" = 200 ] || fail "odd-case forged headers: expected 200, got $ST"
jq_py "$HCL_OUT" 'j["responses"][0]["body"]' >"$TMPDIR/shapes.json"
HJ=$TMPDIR/shapes.json
assert_real_identity "odd case / no space / tab"
pass "forged headers without space, mixed case, with a tab: removed"

# Whitespace between a header name and the colon (RFC 9112 5.1: a server
# MUST answer 400). llhttp 8 accepts it ("X-Forwarded-Client-Cert " as the
# name), so a name compared exactly would slip through, and a backend that
# trims the name would believe it. Either 400, or no header of that name,
# in any spelling, reaches the backend but the proxy's own.
# raw_count NAME: lines of the forwarded head in $RAW whose name, trimmed,
# lower case, '_' as '-', is NAME.
raw_count() {
	python3 - "$RAW" "$1" <<'PY'
import sys
head = open(sys.argv[1], "rb").read().decode("latin1").split("=====\n")[0]
n = 0
for line in head.split("\r\n")[1:]:
    if ":" in line:
        if line.split(":", 1)[0].strip().lower().replace("_", "-") == sys.argv[2]:
            n += 1
print(n)
PY
}
for c in 'X-Forwarded-Client-Cert : Hash=forged;Subject="CN=admin":x-forwarded-client-cert:0' \
    'X-Forwarded-Proto : http-forged:x-forwarded-proto:1' \
    'X-Forwarded-Host  : forged.example:x-forwarded-host:1' \
    'X-Client-Subject : CN=admin:x-client-subject:1' \
    'X-SSL-Client-S-DN : CN=admin:x-ssl-client-s-dn:0'; do
	hdr=${c%:*:*}
	rest=${c#"$hdr":}
	name=${rest%:*}
	want=${rest##*:}
	: >"$RAW"
	hclient raw "$PORT2" --send "GET /ws-colon HTTP/1.1\r\nHost: localhost\r\n$hdr\r\nConnection: close\r\n\r\n" --responses 1 --wait-close 1000
	ST=$(jq_py "$HCL_OUT" 'j["responses"][0]["status"] if j["responses"] else "none"')
	case $ST in
	400) ;;
	200)
		got=$(raw_count "$name")
		[ "$got" = "$want" ] || fail "sent '$hdr' (space before the colon): answered 200 and the backend got $got '$name' header(s) (expected $want, the proxy's own): $(grep -a -i "^$name" "$RAW" | tr '\r\n' '  ')"
		grep -a -i -q 'forged\|admin' <(grep -a -v -i '^x-client-cert:' "$RAW") &&
		    fail "sent '$hdr': the forged value reached the backend: $(grep -a -i 'forged\|admin' "$RAW" | head -n 1)"
		;;
	*) fail "sent '$hdr' (space before the colon): expected 400 (or the header removed), got $ST" ;;
	esac
done
pass "identity and X-Forwarded-* headers with whitespace before the colon: never forwarded"

# A bare LF ending a header line: 400, or parsed as a line end and then
# the forged header removed; never forwarded as is.
LF='GET /headers HTTP/1.1\r\nHost: localhost\r\nX-A: 1\nX-Client-Subject: CN=admin\r\nConnection: close\r\n\r\n'
hclient raw "$PORT" --send "$LF" --responses 1 --wait-close 1000
ST=$(jq_py "$HCL_OUT" 'j["responses"][0]["status"] if j["responses"] else "none"')
case $ST in
400) ;;
200)
	jq_py "$HCL_OUT" 'j["responses"][0]["body"]' >"$TMPDIR/lf.json"
	HJ=$TMPDIR/lf.json
	assert_real_identity "bare LF before a forged header"
	;;
*) fail "bare LF before a forged header: expected 400 or 200, got $ST" ;;
esac
: >"$RAW"
hclient raw "$PORT2" --send "$LF" --responses 1 --wait-close 1000
if [ -s "$RAW" ]; then
	python3 -c 'import re, sys; sys.exit(0 if re.search(rb"[^\r]\n", open(sys.argv[1], "rb").read().replace(b"=====\n", b"")) else 1)' "$RAW" &&
	    fail "bare LF forwarded as is to the backend: $(tr '\r\n' '~|' <"$RAW" | head -c 400)"
	N=$(tr -d '\r' <"$RAW" | grep -c -i '^x-client-subject:')
	[ "$N" = 1 ] || fail "bare LF: forwarded head has $N X-Client-Subject lines"
fi
pass "bare LF before a forged header: $ST, nothing forged forwarded"

# ---------------- hop-by-hop: headers the client's Connection lists
# A client may not use its Connection header to have headers dropped further
# on (a proxy behind this one honouring "Connection: X-Forwarded-For" would
# drop the X-Forwarded-For this one appends to): listed headers are dropped
# here, the Connection header goes on with only close / keep-alive /
# upgrade, and Keep-Alive and Proxy-Connection stay on this hop. The
# framing headers are never dropped, whatever the list says.
# Twenty other names come first: however many it lists, all go.
FILL=$(seq -s ', ' -f 'X-F%g' 1 20)
HOP="POST /hop HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive, $FILL, X-Hop,x-forwarded-for , X-Client-Verify, Content-Length, Host\r\n"
HOP+='X-Hop: secret\r\nX-Forwarded-For: 203.0.113.7\r\nKeep-Alive: timeout=300\r\nProxy-Connection: keep-alive\r\nX-Kept: yes\r\n'
HOP+='Content-Length: 5\r\n\r\nhello'
: >"$RAW"
hclient raw "$PORT2" --send "$HOP" --responses 1 --wait-close 300
ST=$(jq_py "$HCL_OUT" 'j["responses"][0]["status"] if j["responses"] else "none"')
[ "$ST" = 200 ] || fail "hop-by-hop: status $ST"
HEAD=$(tr -d '\r' <"$RAW")
hop_has() { printf '%s\n' "$HEAD" | grep -c -i -E "$1" || true; }
[ "$(hop_has '^x-hop:')" = 0 ] || fail "hop-by-hop: X-Hop (listed in Connection) was forwarded: $(printf '%s' "$HEAD" | tr '\n' '|')"
[ "$(hop_has '^keep-alive:')" = 0 ] || fail "hop-by-hop: Keep-Alive was forwarded"
[ "$(hop_has '^proxy-connection:')" = 0 ] || fail "hop-by-hop: Proxy-Connection was forwarded"
[ "$(hop_has '^connection: keep-alive$')" = 1 ] || fail "hop-by-hop: want exactly 'Connection: keep-alive', got: $(printf '%s\n' "$HEAD" | grep -i '^connection')"
[ "$(hop_has '^x-forwarded-for: 127\.0\.0\.1$')" = 1 ] || fail "hop-by-hop: X-Forwarded-For: $(printf '%s\n' "$HEAD" | grep -i '^x-forwarded-for')"
[ "$(hop_has '^x-client-verify: SUCCESS$')" = 1 ] || fail "hop-by-hop: the proxy's X-Client-Verify is missing"
[ "$(hop_has '^content-length: 5$')" = 1 ] || fail "hop-by-hop: Content-Length was dropped"
[ "$(hop_has '^host: localhost$')" = 1 ] || fail "hop-by-hop: Host was dropped"
[ "$(hop_has '^x-kept: yes$')" = 1 ] || fail "hop-by-hop: an unlisted header was dropped"
pass "Connection-listed headers, Keep-Alive and Proxy-Connection stay on the client's hop; Connection goes on as keep-alive; framing kept"

# ---------------- hop-by-hop headers of the answers
# The backend's answer carries Keep-Alive, Proxy-Connection and headers its
# Connection header lists (one before it, one with an empty value), its
# head arriving in three pieces with the Connection header in the last:
# none of them reaches the client (the list has 20 other names first), the
# framing and the rest do. Twice on
# one connection (the second head held back after the first answer).
HA='GET /hop-answer HTTP/1.1\r\nHost: localhost\r\n\r\n'
hclient raw "$PORT2" --send "$HA$HA" --sequential --responses 2
ANS=$HCL_OUT
for n in 0 1; do
	assert_eq "$(jq_py "$ANS" "str(j['responses'][$n]['status']) + ' ' + j['responses'][$n]['body'] if len(j['responses']) > $n else 'none'")" \
	    "200 ok" "hop-by-hop answer $((n + 1)): status and body"
	for hn in x-hop x-hop2 x-empty keep-alive proxy-connection; do
		assert_eq "$(jq_py "$ANS" "len(rh(j['responses'][$n], '$hn'))")" 0 \
		    "hop-by-hop answer $((n + 1)): $hn reached the client"
	done
	assert_eq "$(jq_py "$ANS" "','.join(rh(j['responses'][$n], 'x-kept') + rh(j['responses'][$n], 'x-last') + rh(j['responses'][$n], 'content-length'))")" \
	    "yes,yes,2" "hop-by-hop answer $((n + 1)): X-Kept, X-Last, Content-Length"
done
pass "an answer's Connection-listed headers, Keep-Alive and Proxy-Connection stay on the backend's hop, also when its head comes in pieces; framing kept"

# The request line's bytes_out is what the client got, the cut lines left
# out, as the access line's is: Node's answers carry "Keep-Alive:
# timeout=60", its head in one piece; /hop-answer's comes in three.
for pp in "$PORT /status/200" "$PORT2 /hop-answer"; do
	set -- $pp
	log_mark
	hcurl "$1" "$2" --http1.1
	[ "$HC_CODE" = 200 ] || fail "GET $2: status $HC_CODE: $(cat "$HC_ERR")"
	GOT=$(($(wc -c <"$HC_HDR") + $(wc -c <"$HC_OUT")))
	assert_log_contains ' request ' "path=$2 " " bytes_out=$GOT "
	assert_log_contains ' access ' " bytes_out=$GOT "
done
pass "the request and access lines' bytes_out are the bytes the client got, hop-by-hop lines left out"

# A head in 8 KiB pieces is held until complete; over 64 KiB it is refused.
hclient raw "$PORT2" --send 'GET /big-head?n=40000 HTTP/1.1\r\nHost: localhost\r\n\r\n' --responses 1
assert_eq "$(jq_py "$HCL_OUT" "str(j['responses'][0]['status']) + ' ' + str(len(rh(j['responses'][0], 'x-big')[0])) if j['responses'] else 'none'")" \
    "200 40000" "a 40 KB answer head in pieces"
hclient raw "$PORT2" --send 'GET /big-head?n=70000 HTTP/1.1\r\nHost: localhost\r\n\r\n' --responses 1 --wait-close 1000
assert_eq "$(jq_py "$HCL_OUT" "j['responses'][0]['status'] if j['responses'] else 'none'")" 502 "a 70 KB answer head"
assert_eq "$(jq_py "$HCL_OUT" 'j["closedByServer"]')" True "a 70 KB answer head: connection closed"
grep -q 'bad response from backend 127.0.0.1:[0-9]*: its head is over 64 KiB' "$PROXY_LOG" ||
    fail "no log line for the 70 KB answer head"
pass "answer heads: 40 KB in pieces passes whole; over 64 KiB gets 502 and a log line"

# ---------------- trailers of a chunked request are not forwarded
# A backend that merged trailers into the headers would otherwise take a
# client's X-Client-Subject trailer for the proxy's header.
: >"$RAW"
TR='POST /tr HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-Client-Subject: CN=admin\r\nX-Trailer: t\r\n\r\n'
hclient raw "$PORT2" --send "$TR" --responses 1 --wait-close 300
ST=$(jq_py "$HCL_OUT" 'j["responses"][0]["status"] if j["responses"] else "none"')
[ "$ST" = 200 ] || fail "chunked request with trailers: status $ST"
grep -q -i 'admin\|x-trailer' "$RAW" && fail "request trailers forwarded: $(tr '\r\n' '~|' <"$RAW" | head -c 600)"
python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); sys.exit(0 if b"3;ext=1\r\nabc\r\n0\r\n\r\n" in d else 1)' "$RAW" ||
    fail "chunked body not forwarded as 3;ext=1 abc 0 CRLF CRLF: $(tr '\r\n' '~|' <"$RAW" | head -c 600)"
hclient raw "$PORT" --send 'POST /sha256 HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Client-Verify: FORGED\r\n\r\n' --responses 1
assert_eq "$(jq_py "$HCL_OUT" 'json.loads(j["responses"][0]["body"])["len"] if j["responses"] else "none"')" 5 "chunked body with trailers reaches Node whole"
pass "request trailers dropped, the chunked body forwarded whole"

# ---------------- Host (RFC 9112 3.2): exactly one in HTTP/1.1
: >"$RAW"
hclient raw "$PORT2" --send 'GET /nohost HTTP/1.1\r\n\r\n' --responses 1 --wait-close 1000
assert_eq "$(jq_py "$HCL_OUT" 'j["responses"][0]["status"] if j["responses"] else "none"')" 400 "HTTP/1.1 without Host"
hclient raw "$PORT2" --send 'GET /twohosts HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n' --responses 1 --wait-close 1000
assert_eq "$(jq_py "$HCL_OUT" 'j["responses"][0]["status"] if j["responses"] else "none"')" 400 "two Host headers"
[ -s "$RAW" ] && fail "a request with no or two Host headers was forwarded: $(tr '\r\n' '~|' <"$RAW" | head -c 300)"
grep -q 'bad request: HTTP/1.1 request without a Host header' "$PROXY_LOG" || fail "no log line for the request without Host"
grep -q 'bad request: more than one Host header' "$PROXY_LOG" || fail "no log line for two Host headers"
hclient raw "$PORT2" --send 'GET /h10 HTTP/1.0\r\n\r\n' --responses 1
assert_eq "$(jq_py "$HCL_OUT" 'j["responses"][0]["status"] if j["responses"] else "none"')" 200 "HTTP/1.0 without Host"
pass "HTTP/1.1 without Host or with two: 400 and a log line, not forwarded; HTTP/1.0 without Host forwarded"

# ---------------- framing of answers without a body
# A 304 may carry the Content-Length of the 200 it stands for; it has no
# body all the same, and the next answer on the connection is intact.
hclient raw "$PORT2" --send 'GET /304cl HTTP/1.1\r\nHost: localhost\r\n\r\nGET /after HTTP/1.1\r\nHost: localhost\r\n\r\n' --sequential --responses 2
assert_eq "$(jq_py "$HCL_OUT" '" ".join("%s:%s" % (r["status"], r["body"]) for r in j["responses"])')" \
    "304: 200:ok" "304 with Content-Length, then a GET on the same connection"
pass "a 304 with Content-Length has no body; the next answer is intact"

# The backend answers 100 Continue and closes: the client gets a 502 after
# the 100, and the log a request line with status 502.
hclient raw "$PORT2" --send 'POST /continue-close HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello' --responses 1 --wait-close 1000
assert_eq "$(jq_py "$HCL_OUT" '" ".join(str(r["status"]) for r in j["responses"])')" \
    "100 502" "backend closed after 100 Continue"
grep -q 'method=POST path=/continue-close status=502' "$PROXY_LOG" || fail "no request line with status 502 for /continue-close"
pass "backend closing after 100 Continue: 502"

# -------------- keep-alive and pipelining: the 2nd and 3rd requests forged
P='GET /headers?n=1 HTTP/1.1\r\nHost: localhost\r\n\r\n'
P+='GET /headers?n=2 HTTP/1.1\r\nHost: localhost\r\nX-Client-Subject: CN=admin\r\nX-CLIENT-VERIFY: FORGED\r\n\r\n'
P+='GET /headers?n=3 HTTP/1.1\r\nHost: localhost\r\nx-forwarded-client-cert: Hash=forged\r\nX-Client-Subject: CN=admin\r\nX-Client-Subject: CN=admin\r\nConnection: close\r\n\r\n'
hclient raw "$PORT" --send "$P" --responses 3
[ "$(jq_py "$HCL_OUT" 'len(j["responses"])')" = 3 ] ||
    fail "pipelined forged requests: $(jq_py "$HCL_OUT" 'len(j["responses"])') answers, error $(jq_py "$HCL_OUT" 'j["error"]'), raw: $(jq_py "$HCL_OUT" 'j["raw"][:300]')"
for i in 0 1 2; do
	[ "$(jq_py "$HCL_OUT" "j['responses'][$i]['status']")" = 200 ] || fail "pipelined request $((i + 1)): status $(jq_py "$HCL_OUT" "j['responses'][$i]['status']")"
	jq_py "$HCL_OUT" "j['responses'][$i]['body']" >"$TMPDIR/p$i.json"
	HJ=$TMPDIR/p$i.json
	assert_eq "$(jq_py "$HJ" 'j["url"]')" "/headers?n=$((i + 1))" "pipelined answer $((i + 1)) in order"
	assert_real_identity "pipelined request $((i + 1))"
done
pass "forgeries on later pipelined requests of a connection removed"

# Sequential keep-alive (each request sent after the previous answer).
hclient raw "$PORT" --sequential --send "$P" --responses 3
for i in 0 1 2; do
	jq_py "$HCL_OUT" "j['responses'][$i]['body']" >"$TMPDIR/s$i.json"
	HJ=$TMPDIR/s$i.json
	assert_eq "$(jq_py "$HJ" 'j["url"]')" "/headers?n=$((i + 1))" "keep-alive answer $((i + 1))"
	assert_real_identity "keep-alive request $((i + 1))"
done
pass "forgeries on later keep-alive requests removed"

# Node's view: exactly one X-Client-Subject on every request in the
# backend log.
if grep '^req GET /headers' "$WEB_LOG" | grep -v -q "subject=$ORDERS_SUBJECT verify=SUCCESS\$"; then
	fail "a request reached the backend with a wrong identity: $(grep '^req GET /headers' "$WEB_LOG" | grep -v "subject=$ORDERS_SUBJECT verify=SUCCESS\$" | head -n 1)"
fi
pass "backend log: every request had exactly the real subject and verify"

stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
