#!/usr/bin/env bash
# Backend addresses: a Unix socket backend ("unix:/path") echoes; an IPv6
# listener [::1]:PORT in front of an IPv6 backend [::1]:PORT works (skipped,
# with a message, only when ::1 is not usable here); a backend off this host
# (10.1.2.3:80) without `remote: true` makes `mtlsproxy -t` fail, naming the
# address and the fix, and with `remote: true` the same config is accepted.
. "$(dirname -- "$0")/lib.sh"

# A small echo server (Node's net module) on a Unix socket path or on
# [::1]:PORT, for the backends this test needs beyond echo-backend.js.
cat >"$TMPDIR/echo-any.js" <<'JS'
'use strict';
const net = require('net');
const fs = require('fs');
const where = process.argv[2];
const server = net.createServer({ allowHalfOpen: true }, (s) => {
  s.on('error', () => {});
  s.pipe(s);
});
server.on('error', (e) => { console.error(`echo-any: ${e.message}`); process.exit(1); });
if (where.startsWith('unix:')) {
  const path = where.slice(5);
  try { fs.unlinkSync(path); } catch (e) { /* not there */ }
  server.listen(path, () => console.error(`echo-any: listening on ${where}`));
} else {
  const port = Number(where);
  server.listen({ host: '::1', port, ipv6Only: true }, () => console.error(`echo-any: listening on [::1]:${port}`));
}
const stop = () => { server.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
JS

# start_echo_any WHERE LOGNAME: start it and wait (max 5 s) for its
# "listening" line.
start_echo_any() {
	local where=$1 logf=$TMPDIR/$2.log pid i
	node "$TMPDIR/echo-any.js" "$where" >"$logf" 2>&1 &
	pid=$!
	track "$pid"
	for i in $(seq 50); do
		grep -q 'listening' "$logf" && return 0
		kill -0 "$pid" 2>/dev/null || fail "echo server on $where exited: $(cat "$logf")"
		sleep 0.1
	done
	fail "echo server on $where did not start: $(cat "$logf")"
}

# free_port6: a free TCP port on ::1 (empty when ::1 cannot be used).
free_port6() {
	python3 -c 'import socket
s = socket.socket(socket.AF_INET6)
s.bind(("::1", 0))
print(s.getsockname()[1])
s.close()' 2>/dev/null
}

# port6_accepts PORT
port6_accepts() {
	python3 - "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET6)
s.settimeout(1)
try:
    s.connect(("::1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

# listener NAME LISTEN BACKEND_YAML_VALUE [BACKEND_EXTRA]
listener() {
	cat <<EOF
  - name: $1
    listen: "$2"
    tls:
      cert: $PKI/server-fullchain.crt
      key: $PKI/server.key
    client_auth:
      ca: $PKI/client-ca.pem
    backend:
      address: $3
      mode: tcp
      connect_timeout: 2s
EOF
	[ -n "${4:-}" ] && printf '%s\n' "$4"
	cat <<EOF
    timeouts:
      handshake: 5s
      idle: 60s
EOF
}

head_yaml() {
	cat <<EOF
workers: 2
log:
  level: info
  format: text
  access: true
listeners:
EOF
}

# ------------------------------------------------------ Unix socket backend
SOCK=$TMPDIR/echo.sock
start_echo_any "unix:$SOCK" echo-unix
[ -S "$SOCK" ] || fail "no Unix socket at $SOCK"
P_UNIX=$(free_port)

HAVE6=
P6=
P6_BACKEND=
if P6=$(free_port6) && [ -n "$P6" ] && P6_BACKEND=$(free_port6) && [ -n "$P6_BACKEND" ]; then
	HAVE6=1
else
	log "SKIP (IPv6 part): ::1 cannot be bound on this machine"
fi
[ -n "$HAVE6" ] && start_echo_any "$P6_BACKEND" echo-v6

{
	head_yaml
	listener unix "127.0.0.1:$P_UNIX" "\"unix:$SOCK\""
	[ -n "$HAVE6" ] && listener v6 "[::1]:$P6" "\"[::1]:$P6_BACKEND\""
} >"$TMPDIR/backends.yaml"
"$MTLSPROXY" -t -c "$TMPDIR/backends.yaml" >"$TMPDIR/t.out" 2>&1 ||
    fail "mtlsproxy -t rejects the config: $(cat "$TMPDIR/t.out")"
start_proxy "$TMPDIR/backends.yaml" "$P_UNIX"

log_mark
node_client "$P_UNIX" --cert "$PKI/orders.crt" --key "$PKI/orders.key" --send "over a unix socket\n" --echo --timeout 10000
[ "$NODE_RC" -eq 0 ] || fail "unix backend: no echo: $(cat "$NODE_OUT"); log: $(new_log_lines | tail -n 2)"
grep -q -x 'over a unix socket' "$NODE_OUT" || fail "unix backend: wrong bytes: $(head -c 200 "$NODE_OUT")"
s_client_send "$P_UNIX" "s_client unix\n" "s_client unix" -cert "$PKI/orders.crt" -key "$PKI/orders.key"
grep -q -F 's_client unix' "$SCLIENT_OUT" || fail "unix backend: s_client got no echo (rc $SCLIENT_RC)"
assert_log_contains ' access ' 'listener=unix ' 'subject="CN=orders,OU=payments,O=Demo Corp"' 'bytes_in=19 ' 'bytes_out=19 '
assert_log_contains ' access ' 'listener=unix ' "backend=\"?unix:$SOCK"
pass "unix:$SOCK backend echoes"

# ------------------------------------------------------------------- IPv6
if [ -n "$HAVE6" ]; then
	for _ in $(seq 50); do
		port6_accepts "$P6" && break
		kill -0 "$PROXY_PID" 2>/dev/null || fail "mtlsproxy exited"
		sleep 0.1
	done
	port6_accepts "$P6" || fail "the IPv6 listener [::1]:$P6 does not accept"
	log_mark
	# (node_client connects to 127.0.0.1; client.js is run for ::1 here)
	timeout -k 2 20 node "$ITEST_DIR/client.js" ::1 "$P6" --ca "$PKI/root-ca.crt" \
	    --cert "$PKI/orders.crt" --key "$PKI/orders.key" --send "over IPv6\n" --echo --timeout 10000 \
	    >"$TMPDIR/v6.out" 2>"$TMPDIR/v6.err"
	rc=$?
	[ "$rc" -eq 0 ] || fail "IPv6: no echo through [::1]:$P6: $(cat "$TMPDIR/v6.out"); log: $(new_log_lines | tail -n 2)"
	grep -q -x 'over IPv6' "$TMPDIR/v6.out" || fail "IPv6: wrong bytes: $(head -c 200 "$TMPDIR/v6.out")"
	timeout -k 2 10 openssl s_client -connect "[::1]:$P6" -servername localhost -CAfile "$PKI/root-ca.crt" \
	    -verify_return_error -cert "$PKI/orders.crt" -key "$PKI/orders.key" -quiet -no_ign_eof \
	    < <(printf 's_client v6\n'; sleep 1) >"$TMPDIR/v6s.out" 2>"$TMPDIR/v6s.err"
	grep -q -x 's_client v6' "$TMPDIR/v6s.out" ||
	    fail "IPv6: s_client got no echo: $(grep -v '^depth=\|^verify' "$TMPDIR/v6s.err" | head -n 3)"
	assert_log_contains ' access ' 'listener=v6 ' 'peer="?\[::1\]:[0-9]+' "backend=\"?\\[::1\\]:$P6_BACKEND" 'bytes_in=10 '
	# the IPv6 listener is IPv6 only: nothing answers on 127.0.0.1 at its port
	port_accepts "$P6" && log "note: 127.0.0.1:$P6 accepts too (something else may have it)"
	pass "IPv6 listener [::1]:$P6 -> backend [::1]:$P6_BACKEND"
fi

stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"

# ------------------------------------------- a backend off this host
P_R=$(free_port)
{
	head_yaml
	listener remote "127.0.0.1:$P_R" '"10.1.2.3:80"'
} >"$TMPDIR/remote.yaml"
"$MTLSPROXY" -t -c "$TMPDIR/remote.yaml" >"$TMPDIR/remote.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "-t with backend 10.1.2.3:80 and no remote: true exited $rc, want 1: $(cat "$TMPDIR/remote.out")"
grep -q -F '10.1.2.3:80' "$TMPDIR/remote.out" || fail "-t: the message does not name 10.1.2.3:80: $(cat "$TMPDIR/remote.out")"
grep -q -F 'remote: true' "$TMPDIR/remote.out" || fail "-t: the message does not say \"remote: true\": $(cat "$TMPDIR/remote.out")"
grep -q -E 'remote\.yaml:[0-9]+:[0-9]+' "$TMPDIR/remote.out" ||
    fail "-t: the message has no file:line:column: $(cat "$TMPDIR/remote.out")"
pass "remote backend without remote: true: -t exits 1: $(grep -m1 '10.1.2.3' "$TMPDIR/remote.out")"

# the daemon does not start either
timeout 10 "$MTLSPROXY" -c "$TMPDIR/remote.yaml" >"$TMPDIR/remote-run.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "mtlsproxy -c with a remote backend and no remote: true exited $rc, want 1"
port_accepts "$P_R" && fail "something listens on 127.0.0.1:$P_R after the refused start"

# in a list too, and with remote: true it is accepted
{
	head_yaml
	listener remote "127.0.0.1:$P_R" '["127.0.0.1:9", "10.1.2.3:80"]'
} >"$TMPDIR/remote-list.yaml"
"$MTLSPROXY" -t -c "$TMPDIR/remote-list.yaml" >"$TMPDIR/remote-list.out" 2>&1
rc=$?
if [ "$rc" -ne 1 ] || ! grep -q -F '10.1.2.3:80' "$TMPDIR/remote-list.out"; then
	fail "-t with 10.1.2.3:80 second in an address list: exit $rc: $(cat "$TMPDIR/remote-list.out")"
fi
{
	head_yaml
	listener remote "127.0.0.1:$P_R" '"10.1.2.3:80"' "      remote: true"
} >"$TMPDIR/remote-ok.yaml"
"$MTLSPROXY" -t -c "$TMPDIR/remote-ok.yaml" >"$TMPDIR/remote-ok.out" 2>&1 ||
    fail "-t with remote: true rejects backend 10.1.2.3:80: $(cat "$TMPDIR/remote-ok.out")"
pass "remote backend: also caught in a list; accepted with remote: true"
