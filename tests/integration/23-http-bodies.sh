#!/usr/bin/env bash
# http mode, bodies: a 32 MiB chunked upload and a Content-Length upload
# arrive byte-exact at the backend; 32 MiB downloads (Content-Length,
# chunked, until close) arrive byte-exact; Expect: 100-continue works; and
# bodies are streamed, not buffered whole (a slow reader on either side
# keeps the proxy's memory flat).
. "$(dirname -- "$0")/lib.sh"
. "$(dirname -- "$0")/http-lib.sh"

BPORT=$(free_port)
PORT=$(free_port)
start_http_backend "$BPORT"
{
	config_head
	config_http_listener web "$PORT" "\"127.0.0.1:$BPORT\""
} >"$TMPDIR/bodies.yaml"
start_proxy "$TMPDIR/bodies.yaml" "$PORT"

N=$((32 * 1024 * 1024))
UP=$TMPDIR/up.bin
head -c "$N" /dev/urandom >"$UP" || fail "cannot write $UP"
UPSHA=$(sha256sum "$UP" | cut -d' ' -f1)
HC_MAX_TIME=40

# assert_upload WHAT: $HC_OUT is the backend's {len, sha256} of $UP.
assert_upload() {
	[ "$HC_RC" -eq 0 ] || fail "$1: curl failed ($HC_RC): $(tail -n 3 "$HC_ERR")"
	[ "$HC_CODE" = 200 ] || fail "$1: status $HC_CODE: $(head -c 300 "$HC_OUT")"
	assert_eq "$(jq_py "$HC_OUT" 'j["len"]')" "$N" "$1: bytes the backend received"
	assert_eq "$(jq_py "$HC_OUT" 'j["sha256"]')" "$UPSHA" "$1: sha256 of what the backend received"
	assert_eq "$(jq_py "$HC_OUT" 'j["subject"]')" "$ORDERS_SUBJECT" "$1: X-Client-Subject with the body"
}

# ------------------------------------------------------------ uploads
log_mark
hcurl "$PORT" /sha256 -X POST -T - -H 'Transfer-Encoding: chunked' -H 'Expect:' <"$UP"
assert_upload "32 MiB chunked upload"
assert_log_contains ' request ' 'method=POST' 'path="?/sha256' 'status=200' "bytes_in=([3-9][0-9]{7}|[1-9][0-9]{8,})"
pass "32 MiB chunked upload byte-exact"

hcurl "$PORT" /sha256 --data-binary "@$UP" -H 'Content-Type: application/octet-stream' -H 'Expect:'
assert_upload "32 MiB Content-Length upload"
pass "32 MiB Content-Length upload byte-exact"

# Expect: 100-continue: curl waits for the interim answer (up to 10 s
# here, so that a swallowed 100 shows as slowness, then as a failure).
t0=$(now_ms)
hcurl "$PORT" /sha256 -v --expect100-timeout 10 -H 'Expect: 100-continue' --data-binary "@$UP"
ms=$(($(now_ms) - t0))
assert_upload "100-continue upload"
grep -q '^< HTTP/1.1 100' "$HC_ERR" || fail "100-continue: curl never got a '100 Continue' (it waited $ms ms): $(grep '^[<>] ' "$HC_ERR" | head -n 12 | tr '\n' '|')"
[ "$ms" -lt 8000 ] || fail "100-continue: took $ms ms (the 100 came late)"
pass "Expect: 100-continue: 100 received, body byte-exact (${ms} ms)"

# the same with chunked framing
hcurl "$PORT" /sha256 -v --expect100-timeout 10 -X POST -T - -H 'Transfer-Encoding: chunked' -H 'Expect: 100-continue' <"$UP"
assert_upload "100-continue chunked upload"
grep -q '^< HTTP/1.1 100' "$HC_ERR" || fail "100-continue (chunked): no '100 Continue'"
pass "Expect: 100-continue with a chunked body"

# ---------------------------------------------------------- downloads
WANT=$(curl -sS --max-time 20 "http://127.0.0.1:$BPORT/big-sha?n=$N") || fail "backend /big-sha failed"
[ ${#WANT} -eq 64 ] || fail "backend /big-sha gave [$WANT]"
for mode in length chunked close; do
	log_mark
	hcurl "$PORT" "/big?n=$N&mode=$mode"
	[ "$HC_RC" -eq 0 ] || fail "32 MiB download ($mode): curl failed ($HC_RC): $(tail -n 3 "$HC_ERR")"
	[ "$HC_CODE" = 200 ] || fail "32 MiB download ($mode): status $HC_CODE"
	assert_eq "$(stat -c %s "$HC_OUT")" "$N" "32 MiB download ($mode): bytes received"
	assert_eq "$(sha256sum "$HC_OUT" | cut -d' ' -f1)" "$WANT" "32 MiB download ($mode): sha256"
	case $mode in
	length) grep -q -i "^content-length: $N" "$HC_HDR" || fail "download (length): Content-Length not passed on: $(tr '\r\n' ' |' <"$HC_HDR")" ;;
	esac
	assert_log_contains ' request ' 'method=GET' 'path="?/big' 'status=200' "bytes_out=([3-9][0-9]{7}|[1-9][0-9]{8,})"
	pass "32 MiB download byte-exact ($mode)"
done

# The connection is kept after a chunked download for the next request.
curl -sS --max-time 20 --resolve "localhost:$PORT:127.0.0.1" --cacert "$PKI/root-ca.crt" \
    --cert "$PKI/orders.crt" --key "$PKI/orders.key" -w '%{http_code} %{num_connects} ' \
    -o /dev/null "https://localhost:$PORT/big?n=1000000&mode=chunked" \
    -o "$TMPDIR/after.json" "https://localhost:$PORT/headers?after=chunked" \
    >"$TMPDIR/reuse.out" 2>"$TMPDIR/reuse.err" || fail "chunked download then GET: curl failed: $(cat "$TMPDIR/reuse.err")"
assert_eq "$(cat "$TMPDIR/reuse.out")" "200 1 200 0 " "chunked download then GET on one connection (status, new connections)"
assert_eq "$(jq_py "$TMPDIR/after.json" 'j["url"]')" "/headers?after=chunked" "the GET after a chunked download"
pass "connection reused after a chunked download"

# --------------------------------------- streaming: no whole-body buffers
rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$PROXY_PID/status"
}
# slow reader: 32 MiB from the backend, curl reads 1 MiB/s
base=$(rss_kb)
curl -sS --max-time 30 --limit-rate 1M --resolve "localhost:$PORT:127.0.0.1" --cacert "$PKI/root-ca.crt" \
    --cert "$PKI/orders.crt" --key "$PKI/orders.key" -o /dev/null \
    "https://localhost:$PORT/big?n=$N&mode=length" 2>/dev/null &
CPID=$!
track "$CPID"
sleep 3
peak=$(rss_kb)
kill "$CPID" 2>/dev/null
wait "$CPID" 2>/dev/null
untrack "$CPID"
grow=$(((peak - base) / 1024))
log "slow reader: proxy RSS $((base / 1024)) MiB -> $((peak / 1024)) MiB"
[ "$grow" -lt 12 ] || fail "slow client reading a 32 MiB answer: the proxy grew by $grow MiB in 3 s (buffering the body instead of streaming with backpressure)"
pass "slow client: the proxy does not buffer the response (+$grow MiB)"

# slow backend: 32 MiB uploaded fast, the backend reads 1 MiB/s
base=$(rss_kb)
curl -sS --max-time 30 --resolve "localhost:$PORT:127.0.0.1" --cacert "$PKI/root-ca.crt" \
    --cert "$PKI/orders.crt" --key "$PKI/orders.key" -o /dev/null -H 'Expect:' \
    --data-binary "@$UP" "https://localhost:$PORT/sha256?rate=1048576" 2>/dev/null &
CPID=$!
track "$CPID"
sleep 3
peak=$(rss_kb)
kill "$CPID" 2>/dev/null
wait "$CPID" 2>/dev/null
untrack "$CPID"
grow=$(((peak - base) / 1024))
log "slow backend: proxy RSS $((base / 1024)) MiB -> $((peak / 1024)) MiB"
[ "$grow" -lt 12 ] || fail "fast upload of 32 MiB to a slow backend: the proxy grew by $grow MiB in 3 s (buffering the request body)"
pass "slow backend: the proxy does not buffer the request body (+$grow MiB)"

stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
