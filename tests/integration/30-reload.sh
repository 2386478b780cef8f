#!/usr/bin/env bash
# Reload on SIGHUP (reload: signal, so the signal is the only trigger):
#  (a) under load: two Node.js clients keep opening new TLS connections and
#      echoing a line for ~4 s while the config's `ca` is switched from the
#      demo CA (CA-A) to a bundle of CA-A + CA-B (a second CA made here with
#      the openssl CLI) and SIGHUP is sent five times: not one request fails,
#      each reload logs `reloaded: generation N`; afterwards CA-B's client
#      gets in. Then `ca` = CA-B only: a new orders (CA-A) connection is
#      refused with code=unknown_ca, CA-B's client still gets in;
#  (b) a broken config on SIGHUP (a misspelt key; separately a key file that
#      does not match the certificate) logs `reload: FILE:LINE:COL: ...` and
#      `reload failed (1 error): still serving with the previous
#      configuration`; the old configuration keeps serving and no new
#      generation is made (the next good reload is the next number);
#  (c) a listener added, or moved to another port, on reload is refused
#      with "needs a restart"; the new port does not accept, the old
#      configuration keeps serving;
#  (d) workers, user and reload changed on reload are warned about ("needs
#      a restart; keeping ..."), against what runs: changed back to what
#      runs, no warning.
. "$(dirname -- "$0")/lib.sh"

C=$TMPDIR/certs
mkdir -p "$C" "$TMPDIR/conf"
OSSL_LOG=$TMPDIR/openssl.log
ossl() {
	openssl "$@" >>"$OSSL_LOG" 2>&1 || fail "openssl $*: $(tail -n 5 "$OSSL_LOG")"
}

# ------------------------------------------------------------- CA-B
cat >"$C/ca.cnf" <<'CNF'
[ req ]
distinguished_name	= req_dn
prompt			= no
[ req_dn ]
CN			= unused
[ root_ext ]
basicConstraints	= critical, CA:true
keyUsage		= critical, keyCertSign, cRLSign
subjectKeyIdentifier	= hash
[ client_ext ]
basicConstraints	= critical, CA:false
keyUsage		= critical, digitalSignature
extendedKeyUsage	= clientAuth
subjectKeyIdentifier	= hash
authorityKeyIdentifier	= keyid:always
CNF
ossl req -x509 -new -config "$C/ca.cnf" -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -nodes -keyout "$C/cab.key" -subj "/O=Other Corp/CN=CA B" -days 30 -sha256 \
    -extensions root_ext -out "$C/cab.crt"
ossl req -new -config "$C/ca.cnf" -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -nodes -keyout "$C/clientb.key" -subj "/O=Other Corp/CN=client-b" -out "$C/clientb.csr"
ossl x509 -req -in "$C/clientb.csr" -CA "$C/cab.crt" -CAkey "$C/cab.key" \
    -set_serial "0x$(openssl rand -hex 12)" -days 30 -sha256 \
    -extfile "$C/ca.cnf" -extensions client_ext -out "$C/clientb.crt"
CA_A=$C/ca-a.pem
CA_AB=$C/ca-ab.pem
CA_B=$C/ca-b.pem
cp "$PKI/client-ca.pem" "$CA_A"
cat "$PKI/client-ca.pem" "$C/cab.crt" >"$CA_AB"
cp "$C/cab.crt" "$CA_B"

# ----------------------------------------------------------- config
ECHO_PORT=$(free_port)
PORT=$(free_port)
PORT_EXTRA=$(free_port)
PORT_MOVED=$(free_port)
start_echo "$ECHO_PORT"
CONF=$TMPDIR/conf/reload.yaml

# listener NAME PORT CA KEY IDLE_KEY
listener() {
	cat <<EOF
  - name: $1
    listen: "127.0.0.1:$2"
    tls:
      cert: $PKI/server-fullchain.crt
      key: $4
    client_auth:
      ca: $3
    backend:
      address: "127.0.0.1:$ECHO_PORT"
      connect_timeout: 2s
    timeouts:
      handshake: 5s
      $5: 60s
EOF
}

# write_conf CA [KEY [IDLE_KEY [EXTRA_LISTENER_PORT [LISTEN_PORT]]]]: the
# config, written to a temporary file and renamed into place.
write_conf() {
	local ca=$1 key=${2:-$PKI/server.key} idle=${3:-idle} extra=${4:-} port=${5:-$PORT}
	{
		cat <<EOF
workers: ${WORKERS:-2}
reload: ${RELOAD_MODE:-signal}
${USER_LINE:-}
drain_timeout: 2s
log:
  level: debug
  format: text
  access: true
listeners:
EOF
		listener api "$port" "$ca" "$key" "$idle"
		[ -n "$extra" ] && listener extra "$extra" "$ca" "$key" "$idle"
	} >"$CONF.tmp"
	mv -f "$CONF.tmp" "$CONF"
}

# hup_ok (lib.sh), and the reload names the config and the signal.
hup_ok_conf() {
	hup_ok
	assert_log_contains "info reloading $CONF \\(SIGHUP\\)"
}

# hup_fail: SIGHUP, then wait (max 5 s) for "reload failed (1 error)".
hup_fail() {
	local i
	log_mark
	kill -HUP "$PROXY_PID" || fail "cannot send SIGHUP to $PROXY_PID"
	for i in $(seq 50); do
		log_has_line 'reload failed' && break
		sleep 0.1
	done
	assert_log_contains '^[^ ]+ error reload failed \(1 error\): still serving with the previous configuration$'
	assert_log_contains "info reloading $CONF \\(SIGHUP\\)"
	assert_log_lacks 'reloaded: generation'
	kill -0 "$PROXY_PID" 2>/dev/null || fail "mtlsproxy died on a failed reload"
}

# echo_as WHO CERT KEY: one new connection echoes a line.
echo_as() {
	node_client "$PORT" --cert "$2" --key "$3" --send "$1 says hi\n" --echo --timeout 5000
	[ "$NODE_RC" -eq 0 ] || fail "$1: the echo failed: $(cat "$NODE_OUT"); log: $(new_log_lines | grep -E 'refused|access' | tail -n 2)"
	grep -q -x "$1 says hi" "$NODE_OUT" || fail "$1: wrong bytes back: $(head -c 200 "$NODE_OUT")"
}

write_conf "$CA_A"
"$MTLSPROXY" -t -c "$CONF" >"$TMPDIR/t.out" 2>&1 || fail "mtlsproxy -t rejects the test config: $(cat "$TMPDIR/t.out")"
start_proxy "$CONF" "$PORT"
sleep 0.3

log_mark
echo_as orders "$PKI/orders.crt" "$PKI/orders.key"
node_client "$PORT" --cert "$C/clientb.crt" --key "$C/clientb.key" --send "b\n" --echo --timeout 5000
[ "$NODE_RC" -ne 0 ] || fail "CA-B's client got in before CA-B was configured"
assert_log_contains ' refused ' 'code=unknown_ca' 'CN=client-b'
pass "start: CA-A's orders gets in, CA-B's client-b is refused (unknown_ca)"

# --------------------------------------------------- (a) under load
# loop.js PORT STOPFILE MAX_MS CA CERT KEY: new TLS connection after new TLS
# connection (full handshakes, one line echoed on each) until STOPFILE
# exists or MAX_MS passed; one line per connection ("ok" or "fail CODE
# ..."), then "summary ok=N failed=N".
cat >"$TMPDIR/loop.js" <<'JS'
'use strict';
const tls = require('tls');
const fs = require('fs');
const [port, stopFile, maxMs, caF, certF, keyF] = process.argv.slice(2);
const ca = fs.readFileSync(caF), cert = fs.readFileSync(certF), key = fs.readFileSync(keyF);
const end = Date.now() + Number(maxMs);
let ok = 0, bad = 0, n = 0;
function one(i) {
  return new Promise((resolve) => {
    const msg = `request ${process.pid} ${i}\n`;
    let got = '', done = false, serial = '-', s = null;
    const fin = (r) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      if (s) s.destroy();
      resolve(r);
    };
    const t = setTimeout(() => fin('fail TIMEOUT no echo within 5 s'), 5000);
    s = tls.connect({ host: '127.0.0.1', port: Number(port), servername: 'localhost',
      ca, cert, key, rejectUnauthorized: true });
    s.setEncoding('latin1');
    s.on('secureConnect', () => {
      serial = s.getPeerCertificate().serialNumber;
      s.write(msg);
    });
    s.on('data', (d) => {
      got += d;
      if (got === msg) fin(`ok ${serial}`);
      else if (got.length >= msg.length) fin(`fail MISMATCH ${JSON.stringify(got)}`);
    });
    s.on('error', (e) => fin(`fail ${e.code || 'ERROR'} ${e.message}`));
    s.on('close', () => fin(`fail CLOSED after ${got.length} bytes`));
  });
}
(async () => {
  while (Date.now() < end && !fs.existsSync(stopFile)) {
    const r = await one(n++);
    if (r.startsWith('ok')) ok++; else bad++;
    process.stdout.write(r + '\n');
  }
  process.stdout.write(`summary ok=${ok} failed=${bad}\n`);
})();
JS

STOP=$TMPDIR/loop.stop
rm -f "$STOP"
LOOP_PIDS=()
for k in 1 2; do
	node "$TMPDIR/loop.js" "$PORT" "$STOP" 20000 "$PKI/root-ca.crt" \
	    "$PKI/orders.crt" "$PKI/orders.key" >"$TMPDIR/loop-$k.out" 2>"$TMPDIR/loop-$k.err" &
	LOOP_PIDS+=($!)
	track "$!"
done
for i in $(seq 50); do
	grep -q '^ok' "$TMPDIR/loop-1.out" 2>/dev/null && grep -q '^ok' "$TMPDIR/loop-2.out" 2>/dev/null && break
	sleep 0.1
done
grep -q '^ok' "$TMPDIR/loop-1.out" && grep -q '^ok' "$TMPDIR/loop-2.out" ||
    fail "the client loops did not get going: $(head -n 3 "$TMPDIR"/loop-*.out "$TMPDIR"/loop-*.err)"
t0=$(now_ms)
sleep 0.5
GEN0=$GEN
write_conf "$CA_AB"
for k in 1 2 3 4 5; do
	hup_ok_conf
	sleep 0.5
done
sleep 0.5
touch "$STOP"
for pid in "${LOOP_PIDS[@]}"; do
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && fail "a client loop is still running 10 s after it was told to stop"
	wait "$pid" 2>/dev/null
	untrack "$pid"
done
ms=$(($(now_ms) - t0))
total=0
for k in 1 2; do
	sum=$(grep '^summary ' "$TMPDIR/loop-$k.out") || fail "client loop $k printed no summary: $(tail -n 3 "$TMPDIR/loop-$k.out" "$TMPDIR/loop-$k.err")"
	okn=$(printf '%s\n' "$sum" | sed 's/.*ok=\([0-9]*\).*/\1/')
	badn=$(printf '%s\n' "$sum" | sed 's/.*failed=\([0-9]*\).*/\1/')
	[ "$badn" -eq 0 ] || fail "client loop $k: $badn of $((okn + badn)) requests failed during the reloads: $(grep '^fail' "$TMPDIR/loop-$k.out" | head -n 3)"
	[ "$okn" -ge 10 ] || fail "client loop $k: only $okn requests in ${ms} ms"
	total=$((total + okn))
done
[ "$GEN" -eq $((GEN0 + 5)) ] || fail "expected 5 reloads, generation went from $GEN0 to $GEN"
LOG_MARK=0
assert_log_lacks 'reload failed'
assert_log_lacks ' refused .*CN=orders'
pass "(a) $total requests on new connections over ${ms} ms, 5 SIGHUPs (generation $GEN0 -> $GEN): none failed"

log_mark
echo_as client-b "$C/clientb.crt" "$C/clientb.key"
assert_log_contains ' access ' 'listener=api' 'subject="CN=client-b,O=Other Corp"' 'issuer="CN=CA B,O=Other Corp"'
echo_as orders "$PKI/orders.crt" "$PKI/orders.key"
pass "(a) ca = CA-A + CA-B: CA-B's client-b gets in, orders still does"

# CA-B only: CA-A's clients are refused from now on.
write_conf "$CA_B"
hup_ok_conf
node_client "$PORT" --cert "$PKI/orders.crt" --key "$PKI/orders.key" --send "x\n" --echo --timeout 5000
[ "$NODE_RC" -ne 0 ] || fail "orders (CA-A) still got in after ca = CA-B only"
assert_log_contains ' refused ' 'listener=api' 'code=unknown_ca' 'subject="CN=orders,OU=payments,O=Demo Corp"'
assert_log_lacks ' access .*CN=orders'
echo_as client-b "$C/clientb.crt" "$C/clientb.key"
pass "(a) ca = CA-B only (generation $GEN): orders refused with code=unknown_ca, client-b gets in"

# Back to CA-A + CA-B for the rest.
write_conf "$CA_AB"
hup_ok_conf
echo_as orders "$PKI/orders.crt" "$PKI/orders.key"
GOOD_GEN=$GEN

# ------------------------------------------------ (b) broken configs
# A misspelt key: "idel" for "idle".
write_conf "$CA_AB" "$PKI/server.key" idel
line=$(grep -n '^      idel: 60s$' "$CONF" | cut -d: -f1)
[ -n "$line" ] || fail "test bug: no idel line in $CONF"
hup_fail
assert_log_contains "^[^ ]+ error reload: $CONF:$line:7: unknown key \"idel\" in \"timeouts\" of listener \"api\" \\(did you mean \"idle\"\\?\\)$"
log_mark
echo_as orders "$PKI/orders.crt" "$PKI/orders.key"
echo_as client-b "$C/clientb.crt" "$C/clientb.key"
pass "(b) misspelt key: 'reload: $CONF:$line:7: unknown key \"idel\" ...', reload failed, still serving"

# A key that does not belong to the certificate.
write_conf "$CA_AB" "$PKI/billing.key"
line=$(grep -n "^      key: $PKI/billing.key\$" "$CONF" | cut -d: -f1)
[ -n "$line" ] || fail "test bug: no billing.key line in $CONF"
hup_fail
assert_log_contains "^[^ ]+ error reload: $CONF:$line:12: private key $PKI/billing\\.key does not match certificate $PKI/server-fullchain\\.crt"
log_mark
echo_as orders "$PKI/orders.crt" "$PKI/orders.key"
served=$(timeout 5 openssl s_client -connect "127.0.0.1:$PORT" -servername localhost \
    -CAfile "$PKI/root-ca.crt" -cert "$PKI/orders.crt" -key "$PKI/orders.key" </dev/null 2>/dev/null |
    openssl x509 -noout -serial 2>/dev/null)
[ "$served" = "$(openssl x509 -noout -serial -in "$PKI/server.crt")" ] ||
    fail "after a failed reload the server certificate changed: $served"
pass "(b) key not matching the certificate: 'reload: $CONF:$line:12: private key ... does not match', still serving the old pair"

# ---------------------------------------------- (c) listeners changed
write_conf "$CA_AB" "$PKI/server.key" idle "$PORT_EXTRA"
line=$(grep -n '^  - name: extra$' "$CONF" | cut -d: -f1)
hup_fail
assert_log_contains "^[^ ]+ error reload: $CONF:$line:[0-9]+: listener \"extra\" is new: adding a listener needs a restart"
sleep 0.3
port_accepts "$PORT_EXTRA" && fail "the listener added by a failed reload accepts on 127.0.0.1:$PORT_EXTRA"
log_mark
echo_as orders "$PKI/orders.crt" "$PKI/orders.key"
pass "(c) a new listener: 'listener \"extra\" is new: adding a listener needs a restart', still serving"

write_conf "$CA_AB" "$PKI/server.key" idle "" "$PORT_MOVED"
line=$(grep -n "^    listen: \"127.0.0.1:$PORT_MOVED\"\$" "$CONF" | cut -d: -f1)
hup_fail
assert_log_contains "^[^ ]+ error reload: $CONF:$line:[0-9]+: listener \"api\" moved from 127\\.0\\.0\\.1:$PORT to 127\\.0\\.0\\.1:$PORT_MOVED: changing a listen address needs a restart"
port_accepts "$PORT_MOVED" && fail "a failed reload made 127.0.0.1:$PORT_MOVED accept"
log_mark
echo_as orders "$PKI/orders.crt" "$PKI/orders.key"
pass "(c) a moved listener: 'changing a listen address needs a restart', still serving on the old port"

# The failed reloads made no generation: the next good one is GOOD_GEN + 1.
write_conf "$CA_A"
hup_ok_conf
[ "$GEN" -eq $((GOOD_GEN + 1)) ] || fail "generation after 4 failed reloads: $GEN, expected $((GOOD_GEN + 1))"
echo_as orders "$PKI/orders.crt" "$PKI/orders.key"
node_client "$PORT" --cert "$C/clientb.crt" --key "$C/clientb.key" --send "b\n" --echo --timeout 5000
[ "$NODE_RC" -ne 0 ] || fail "client-b still got in after ca = CA-A again"
pass "after 4 failed reloads the next good one is generation $GEN ($GOOD_GEN + 1), and it applies"

# ---------------------------------------- (d) restart-only settings
WORKERS=1 write_conf "$CA_A"
hup_ok_conf
assert_log_contains 'warn reload: "workers" changed from 2 to 1: that needs a restart; keeping 2$'
write_conf "$CA_A"
hup_ok_conf
assert_log_lacks '"workers" changed'
ME=$(id -un)
USER_LINE="user: $ME" RELOAD_MODE=watch write_conf "$CA_A"
hup_ok_conf
assert_log_contains "warn reload: \"user\" changed from \(none\) to \"$ME\": that needs a restart; keeping \(none\)\$"
assert_log_contains 'warn reload: "reload" changed from signal to watch: that needs a restart; keeping signal$'
write_conf "$CA_A"
hup_ok_conf
assert_log_lacks '"user" changed'
assert_log_lacks '"reload" changed'
echo_as orders "$PKI/orders.crt" "$PKI/orders.key"
pass "(d) workers 2 -> 1 -> 2, user and reload set and unset: warned when they differ from what runs, silent when back"

kill -0 "$PROXY_PID" 2>/dev/null || fail "mtlsproxy died"
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
