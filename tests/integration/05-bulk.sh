#!/usr/bin/env bash
# 64 MiB through the proxy to the echo backend and back, byte-exact, with
# backpressure on both sides; then half-close: the client ends its write
# side and still receives every echoed byte.
. "$(dirname -- "$0")/lib.sh"

ECHO_PORT=$(free_port)
PORT=$(free_port)
start_echo "$ECHO_PORT"
{
	config_head
	config_listener bulk "$PORT" "\"127.0.0.1:$ECHO_PORT\""
} >"$TMPDIR/bulk.yaml"
start_proxy "$TMPDIR/bulk.yaml"

SIZE=$((64 * 1024 * 1024))
head -c "$SIZE" /dev/urandom >"$TMPDIR/bulk.in" || fail "cannot make the 64 MiB input"
trap 'rm -f "$TMPDIR/bulk.in" "$TMPDIR/bulk.out" "$TMPDIR/half.in" "$TMPDIR/half.out"; cleanup_pids' EXIT

log_mark
t0=$(now_ms)
NODE_TIMEOUT=90 node_client "$PORT" --cert "$PKI/orders.crt" --key "$PKI/orders.key" \
    --send-file "$TMPDIR/bulk.in" --echo --out "$TMPDIR/bulk.out" --timeout 60000
ms=$(($(now_ms) - t0))
[ "$NODE_RC" -eq 0 ] || fail "64 MiB echo failed after ${ms} ms: $(cat "$NODE_OUT") $(tail -n 2 "$NODE_ERR")"
grep -q -F "received=$SIZE " "$NODE_ERR" || fail "client did not receive $SIZE bytes: $(tail -n 1 "$NODE_ERR")"
got=$(stat -c %s "$TMPDIR/bulk.out")
[ "$got" -eq "$SIZE" ] || fail "received file has $got bytes, want $SIZE"
in_sum=$(sha256sum <"$TMPDIR/bulk.in" | cut -d' ' -f1)
out_sum=$(sha256sum <"$TMPDIR/bulk.out" | cut -d' ' -f1)
[ "$in_sum" = "$out_sum" ] || fail "64 MiB echo differs: sent sha256 $in_sum, received $out_sum"
assert_log_contains ' access ' 'listener=bulk' "bytes_in=$SIZE( |$)" "bytes_out=$SIZE( |$)"
pass "64 MiB byte-exact in ${ms} ms (sha256 $in_sum)"
rm -f "$TMPDIR/bulk.in" "$TMPDIR/bulk.out"

# Half-close: the client sends 16 MiB then ends its side (TLS close_notify
# + FIN); the echo backend sees EOF only after the proxy passes the
# half-close on, finishes echoing, and closes; the client must get all of it.
HSIZE=$((16 * 1024 * 1024))
head -c "$HSIZE" /dev/urandom >"$TMPDIR/half.in"
log_mark
node_client "$PORT" --cert "$PKI/orders.crt" --key "$PKI/orders.key" \
    --send-file "$TMPDIR/half.in" --half-close --echo --out "$TMPDIR/half.out" --timeout 20000
[ "$NODE_RC" -eq 0 ] || fail "half-close echo failed: $(cat "$NODE_OUT") $(tail -n 1 "$NODE_ERR")"
cmp -s "$TMPDIR/half.in" "$TMPDIR/half.out" || fail "half-close: received bytes differ from the sent ones"
assert_log_contains ' access ' "bytes_in=$HSIZE( |$)" "bytes_out=$HSIZE( |$)"
pass "half-close: all $HSIZE bytes echoed after the client ended its side"

# A small half-close, where the client's end arrives before any echo.
node_client "$PORT" --cert "$PKI/orders.crt" --key "$PKI/orders.key" \
    --send "last words\n" --half-close --echo --timeout 10000
[ "$NODE_RC" -eq 0 ] || fail "small half-close failed: $(cat "$NODE_OUT")"
grep -q -x 'last words' "$NODE_OUT" || fail "small half-close: wrong bytes: $(head -c 100 "$NODE_OUT")"
pass "half-close with a short message"

stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
