#!/usr/bin/env bash
# The last bytes before a close reach a slow client. The backend sends a
# body of 8 MiB and closes at once; the client reads at 2 MiB/s, so the
# proxy still holds most of it (TLS records queued for a full socket) when
# the backend is gone. The client must get every byte and then the TLS
# close_notify (curl fails a body that ends without one: "unexpected eof"):
#  - tcp mode (the backend's close passes on as close_notify once the rest
#    is out);
#  - http mode, an answer framed by the close (no Content-Length);
#  - http mode, an answer with Connection: close (Content-Length).
# And a keep-alive client reading slowly gets two large answers in a row on
# one connection, byte-exact.
. "$(dirname -- "$0")/lib.sh"
. "$(dirname -- "$0")/http-lib.sh"

BPORT=$(free_port)
HPORT=$(free_port)
TPORT=$(free_port)
start_http_backend "$BPORT"
{
	config_head
	config_http_listener web "$HPORT" "\"127.0.0.1:$BPORT\""
	config_listener raw "$TPORT" "\"127.0.0.1:$BPORT\""
} >"$TMPDIR/slow.yaml"
start_proxy "$TMPDIR/slow.yaml" "$HPORT"
wait_port "$TPORT" "$PROXY_PID" 5 || fail "tcp listener not up"

N=$((8 * 1024 * 1024))
WANT=$(curl -sS --max-time 20 "http://127.0.0.1:$BPORT/big-sha?n=$N") || fail "backend /big-sha failed"
[ ${#WANT} -eq 64 ] || fail "backend /big-sha gave [$WANT]"
HC_MAX_TIME=30

# slow WHAT PORT PATH [curl options]: curl reads at 2 MiB/s; all N bytes,
# the right sha256, a clean end.
slow() {
	local what=$1 port=$2 path=$3
	shift 3
	log_mark
	hcurl "$port" "$path" --limit-rate 2M "$@"
	[ "$HC_RC" -eq 0 ] || fail "$what: curl failed ($HC_RC): $(tail -n 3 "$HC_ERR")"
	[ "$HC_CODE" = 200 ] || fail "$what: status $HC_CODE"
	assert_eq "$(stat -c %s "$HC_OUT")" "$N" "$what: bytes received"
	assert_eq "$(sha256sum "$HC_OUT" | cut -d' ' -f1)" "$WANT" "$what: sha256"
}

# at least N bytes out (the body and the answer's head) on a LINE_RE line
assert_bytes_out() {
	local line out i
	for i in 1 2 3 4 5 6 7 8 9 10; do	# written as the session closes
		line=$(new_log_lines | grep -E -- "$1" | tail -n 1)
		[ -n "$line" ] && break
		sleep 0.2
	done
	[ -n "$line" ] || fail "no log line matches [$1]: $(new_log_lines | tail -n 3)"
	out=$(printf '%s\n' "$line" | sed -n 's/.* bytes_out=\([0-9]*\).*/\1/p')
	[ -n "$out" ] && [ "$out" -ge "$N" ] || fail "bytes_out=$out < $N in: $line"
}

slow "tcp mode, backend closes after the body" "$TPORT" "/big?n=$N&mode=close"
assert_bytes_out ' access listener=raw .*close=backend_closed'
pass "tcp mode: 8 MiB then the backend's close reach a 2 MiB/s client whole, close_notify last"

slow "http mode, body until close" "$HPORT" "/big?n=$N&mode=close"
assert_bytes_out ' request listener=web .*path="?/big.* status=200 '
pass "http mode: an answer framed by the backend's close reaches a 2 MiB/s client whole"

slow "http mode, Connection: close" "$HPORT" "/big?n=$N&mode=length" -H 'Connection: close'
grep -q -i '^connection: close' "$HC_HDR" || fail "Connection: close answer: header missing: $(tr '\r\n' ' |' <"$HC_HDR")"
pass "http mode: a Connection: close answer reaches a 2 MiB/s client whole"

# keep-alive: two 8 MiB answers on one connection, read at 4 MiB/s
log_mark
curl -sS --max-time 30 --limit-rate 4M --resolve "localhost:$HPORT:127.0.0.1" --cacert "$PKI/root-ca.crt" \
    --cert "$PKI/orders.crt" --key "$PKI/orders.key" -w '%{http_code} %{num_connects} ' \
    -o "$TMPDIR/ka1.bin" "https://localhost:$HPORT/big?n=$N&mode=length" \
    -o "$TMPDIR/ka2.bin" "https://localhost:$HPORT/big?n=$N&mode=chunked" \
    >"$TMPDIR/ka.out" 2>"$TMPDIR/ka.err" || fail "two slow downloads: curl failed: $(cat "$TMPDIR/ka.err")"
assert_eq "$(cat "$TMPDIR/ka.out")" "200 1 200 0 " "two slow downloads on one connection (status, new connections)"
for f in ka1 ka2; do
	assert_eq "$(sha256sum "$TMPDIR/$f.bin" | cut -d' ' -f1)" "$WANT" "slow keep-alive download $f: sha256"
done
rm -f "$TMPDIR/ka1.bin" "$TMPDIR/ka2.bin"
pass "http mode: two 8 MiB answers in a row to a slow keep-alive client, byte-exact"

stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
