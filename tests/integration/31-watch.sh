#!/usr/bin/env bash
# reload: watch (the default) reloads when a file the config names changes,
# without any signal:
#  (a) the config edited in place (allow list [orders] -> [orders, billing]):
#      reloaded within 3 s (`reloading FILE (files changed)`), billing, refused
#      before with code=policy, gets in;
#  (b) the CRL replaced by an atomic mv with a new one (made with `openssl ca
#      -revoke` on a copy of the demo PKI) that revokes orders: reloaded
#      within 3 s, orders refused with code=revoked, billing still gets in;
#  (c) a Kubernetes Secret volume (`..2026_a/tls.crt`, `..data -> ..2026_a`,
#      `tls.crt -> ..data/tls.crt`) updated the way kubelet does it (new
#      `..2026_b/` with a new server certificate and key, `..data_tmp` link
#      renamed over `..data`, old folder removed): reloaded, new handshakes
#      get the new certificate (its serial), a connection opened before keeps
#      echoing;
#  (d) a half-written pair: the new certificate written over the old one
#      while the key is still the old one: the reload fails ("does not
#      match"), is retried, the old pair is still served; once the key is
#      written the reload succeeds and the new certificate is served; a
#      client loop running all along sees no failed handshake.
. "$(dirname -- "$0")/lib.sh"

C=$TMPDIR/certs
mkdir -p "$C"
OSSL_LOG=$TMPDIR/openssl.log
ossl() {
	openssl "$@" >>"$OSSL_LOG" 2>&1 || fail "openssl $*: $(tail -n 5 "$OSSL_LOG")"
}

# A copy of the demo PKI: its openssl.cnf and ca-db sign and revoke here
# without touching certs-example/out.
mkdir -p "$C/pki" && cp -a "$PKI/." "$C/pki/" || fail "cannot copy the demo PKI to $C/pki"
[ -f "$C/pki/openssl.cnf" ] && [ -f "$C/pki/ca-db/intermediate/index.txt" ] ||
    fail "the demo PKI copy has no openssl.cnf or ca-db"

# new_server_cert NAME: $C/NAME.crt (leaf + intermediate) and $C/NAME.key,
# CN=localhost with a new key and a random serial, signed by the demo
# intermediate.
new_server_cert() {
	local n=$1
	ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$C/$n.key"
	ossl req -new -config "$C/pki/openssl.cnf" -key "$C/$n.key" \
	    -subj "/O=Demo Corp/CN=localhost" -out "$C/$n.csr"
	ossl x509 -req -in "$C/$n.csr" -CA "$C/pki/intermediate-ca.crt" \
	    -CAkey "$C/pki/intermediate-ca.key" -set_serial "0x7$(openssl rand -hex 15)" \
	    -days 30 -sha256 -extfile "$C/pki/openssl.cnf" -extensions server_ext \
	    -out "$C/$n.leaf"
	cat "$C/$n.leaf" "$C/pki/intermediate-ca.crt" >"$C/$n.crt"
}

serial_of() {
	openssl x509 -noout -serial -in "$1" | sed 's/^serial=//'
}

# served_serial PORT: the serial of the certificate a new handshake gets.
served_serial() {
	timeout 5 openssl s_client -connect "127.0.0.1:$1" -servername localhost \
	    -CAfile "$PKI/root-ca.crt" -cert "$PKI/billing.crt" -key "$PKI/billing.key" \
	    </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null | sed 's/^serial=//'
}

# ------------------------------------------------------------ layout
ECHO_PORT=$(free_port)
P_MAIN=$(free_port)
P_K8S=$(free_port)
start_echo "$ECHO_PORT"

mkdir -p "$C/conf" "$C/crl" "$C/plain"
cp "$PKI/crl.pem" "$C/crl/crl.pem"
cp "$PKI/server-fullchain.crt" "$C/plain/server.crt"
cp "$PKI/server.key" "$C/plain/server.key"

# The Secret volume, as kubelet lays it out.
S=$C/secret
mkdir -p "$S/..2026_a"
cp "$PKI/server-fullchain.crt" "$S/..2026_a/tls.crt"
cp "$PKI/server.key" "$S/..2026_a/tls.key"
ln -s ..2026_a "$S/..data"
ln -s ..data/tls.crt "$S/tls.crt"
ln -s ..data/tls.key "$S/tls.key"

CONF=$C/conf/watch.yaml
# write_conf ALLOW_CNS: the config (written in place, as an editor would).
write_conf() {
	cat >"$CONF" <<EOF
workers: 2
reload: watch
drain_timeout: 2s
log:
  level: debug
  format: text
  access: true
listeners:
  - name: main
    listen: "127.0.0.1:$P_MAIN"
    tls:
      cert: $C/plain/server.crt
      key: $C/plain/server.key
    client_auth:
      ca: $PKI/client-ca.pem
      crl: $C/crl/crl.pem
      allow:
        subject_cn: [$1]
    backend:
      address: "127.0.0.1:$ECHO_PORT"
      connect_timeout: 2s
    timeouts:
      handshake: 5s
      idle: 60s
  - name: k8s
    listen: "127.0.0.1:$P_K8S"
    tls:
      cert: $S/tls.crt
      key: $S/tls.key
    client_auth:
      ca: $PKI/client-ca.pem
    backend:
      address: "127.0.0.1:$ECHO_PORT"
      connect_timeout: 2s
    timeouts:
      handshake: 5s
      idle: 60s
EOF
}

GEN=1
# last_gen: the newest generation in the reload lines since the mark (0 if
# none).
last_gen() {
	new_log_lines | sed -n 's/.* info reloaded: generation \([0-9]*\) in use for new connections$/\1/p' |
	    tail -n 1 | grep . || echo 0
}
# wait_reload WHAT SECONDS: wait for a generation newer than GEN, reloaded
# because files changed; sets GEN to it and RELOAD_MS (time since T0).
wait_reload() {
	local i g=0
	for i in $(seq $(($2 * 20))); do
		g=$(last_gen)
		[ "$g" -gt "$GEN" ] && break
		sleep 0.05
	done
	RELOAD_MS=$(($(now_ms) - T0))
	[ "$g" -gt "$GEN" ] ||
	    fail "$1: no reload within $2 s (log since the change: $(new_log_lines | grep -E 'reload' | head -n 5))"
	GEN=$g
	assert_log_contains "info reloading $CONF \\(files changed\\)"
}

# echo_as PORT WHO CERT KEY
echo_as() {
	node_client "$1" --cert "$3" --key "$4" --send "$2 says hi\n" --echo --timeout 5000
	[ "$NODE_RC" -eq 0 ] || fail "$2 on port $1: the echo failed: $(cat "$NODE_OUT"); log: $(new_log_lines | grep -E 'refused|access' | tail -n 2)"
}

# refused_as PORT WHO CERT KEY CODE
refused_as() {
	node_client "$1" --cert "$3" --key "$4" --send "$2\n" --echo --timeout 5000
	[ "$NODE_RC" -ne 0 ] || fail "$2 got in on port $1; expected a refusal with code=$5"
	assert_log_contains ' refused ' "code=$5" "CN=$2"
}

write_conf orders
"$MTLSPROXY" -t -c "$CONF" >"$TMPDIR/t.out" 2>&1 || fail "mtlsproxy -t rejects the test config: $(cat "$TMPDIR/t.out")"
start_proxy "$CONF" "$P_MAIN"
wait_port "$P_K8S" "$PROXY_PID" 5 || fail "the k8s listener does not accept"
assert_log_contains 'debug watching [0-9]+ folder\(s\) for changes'
sleep 0.7	# nothing should reload by itself
assert_log_lacks 'reloading'

log_mark
echo_as "$P_MAIN" orders "$PKI/orders.crt" "$PKI/orders.key"
refused_as "$P_MAIN" billing "$PKI/billing.crt" "$PKI/billing.key" policy
pass "start: orders gets in, billing is refused (policy)"

# ----------------------------------------------------- (a) config edit
log_mark
T0=$(now_ms)
write_conf "orders, billing"
wait_reload "(a) config edited" 3
[ "$RELOAD_MS" -le 3000 ] || fail "(a) reload took $RELOAD_MS ms"
echo_as "$P_MAIN" billing "$PKI/billing.crt" "$PKI/billing.key"
echo_as "$P_MAIN" orders "$PKI/orders.crt" "$PKI/orders.key"
pass "(a) config edited in place: reloaded after ${RELOAD_MS} ms without a signal; billing now gets in"

# --------------------------------------------------- (b) CRL replaced
(
	cd "$C/pki" &&
	openssl ca -batch -config openssl.cnf -name intermediate_ca -revoke orders.crt \
	    -crl_reason keyCompromise &&
	openssl ca -batch -config openssl.cnf -name intermediate_ca -gencrl -crldays 30 \
	    -out "$C/int-orders.crl.pem"
) >>"$OSSL_LOG" 2>&1 || fail "openssl ca -revoke/-gencrl: $(tail -n 5 "$OSSL_LOG")"
cat "$C/int-orders.crl.pem" "$PKI/root-ca.crl.pem" >"$C/crl/crl.pem.new"
log_mark
T0=$(now_ms)
mv -f "$C/crl/crl.pem.new" "$C/crl/crl.pem"
wait_reload "(b) CRL replaced" 3
refused_as "$P_MAIN" orders "$PKI/orders.crt" "$PKI/orders.key" revoked
assert_log_contains ' refused ' 'listener=main' 'code=revoked' 'subject="CN=orders,OU=payments,O=Demo Corp"'
echo_as "$P_MAIN" billing "$PKI/billing.crt" "$PKI/billing.key"
pass "(b) CRL replaced by mv: reloaded after ${RELOAD_MS} ms; orders refused (revoked), billing gets in"

# ----------------------------------------------------- (c) Kubernetes
declare -A LPID LFD
# open_lines NAME PORT CERT KEY: an interactive client.js (--lines); its
# stdin is a FIFO this shell writes to; output in $TMPDIR/NAME.out.
open_lines() {
	local name=$1 port=$2 fifo=$TMPDIR/$1.in fd
	rm -f "$fifo"
	mkfifo "$fifo" || fail "mkfifo $fifo"
	node "$ITEST_DIR/client.js" 127.0.0.1 "$port" --ca "$PKI/root-ca.crt" \
	    --cert "$3" --key "$4" --lines \
	    <"$fifo" >"$TMPDIR/$name.out" 2>"$TMPDIR/$name.err" &
	LPID[$name]=$!
	track "${LPID[$name]}"
	exec {fd}<>"$fifo"
	LFD[$name]=$fd
}
send_line() {
	printf '%s\n' "$2" >&"${LFD[$1]}"
}
wait_output() {
	local i
	for i in $(seq $(($3 * 20))); do
		grep -q -E -- "$2" "$TMPDIR/$1.out" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

OLD_SERIAL=$(serial_of "$PKI/server.crt")
[ "$(served_serial "$P_K8S")" = "$OLD_SERIAL" ] || fail "(c) the k8s listener does not serve the demo server certificate"
open_lines live "$P_K8S" "$PKI/billing.crt" "$PKI/billing.key"
wait_output live '^connected$' 5 || fail "(c) the long-lived connection did not connect: $(cat "$TMPDIR/live.out" "$TMPDIR/live.err")"
send_line live "before the swap"
wait_output live '^echo: before the swap$' 5 || fail "(c) the long-lived connection got no echo"

new_server_cert k8s-b
NEW_SERIAL=$(serial_of "$C/k8s-b.leaf")
[ "$NEW_SERIAL" != "$OLD_SERIAL" ] || fail "test bug: same serial"
mkdir "$S/..2026_b"
cp "$C/k8s-b.crt" "$S/..2026_b/tls.crt"
cp "$C/k8s-b.key" "$S/..2026_b/tls.key"
log_mark
T0=$(now_ms)
ln -s ..2026_b "$S/..data_tmp"
mv -T "$S/..data_tmp" "$S/..data"
rm -rf "$S/..2026_a"	# kubelet removes the old version right after
wait_reload "(c) Secret ..data swapped" 3
got=$(served_serial "$P_K8S")
[ "$got" = "$NEW_SERIAL" ] || fail "(c) after the ..data swap a new handshake got serial $got, expected the new $NEW_SERIAL (old: $OLD_SERIAL)"
echo_as "$P_K8S" orders-via-k8s "$PKI/billing.crt" "$PKI/billing.key"
send_line live "after the swap"
wait_output live '^echo: after the swap$' 5 ||
    fail "(c) the connection opened before the swap stopped echoing: $(tail -n 2 "$TMPDIR/live.out")"
kill -0 "${LPID[live]}" 2>/dev/null || fail "(c) the long-lived client exited"
[ "$(served_serial "$P_MAIN")" = "$OLD_SERIAL" ] || fail "(c) the other listener's certificate changed too"
pass "(c) kubelet-style ..data swap: reloaded after ${RELOAD_MS} ms, new handshakes get serial $NEW_SERIAL, the open connection keeps echoing"

# A second swap: the watch follows the new target folder.
new_server_cert k8s-c
NEW2_SERIAL=$(serial_of "$C/k8s-c.leaf")
mkdir "$S/..2026_c"
cp "$C/k8s-c.crt" "$S/..2026_c/tls.crt"
cp "$C/k8s-c.key" "$S/..2026_c/tls.key"
log_mark
T0=$(now_ms)
ln -s ..2026_c "$S/..data_tmp"
mv -T "$S/..data_tmp" "$S/..data"
rm -rf "$S/..2026_b"
wait_reload "(c) second ..data swap" 3
got=$(served_serial "$P_K8S")
[ "$got" = "$NEW2_SERIAL" ] || fail "(c) after the second swap a new handshake got serial $got, expected $NEW2_SERIAL"
send_line live "after the second swap"
wait_output live '^echo: after the second swap$' 5 || fail "(c) the open connection stopped echoing after the second swap"
pass "(c) a second swap is picked up too (serial $NEW2_SERIAL)"

# ----------------------------------------------- (d) half-written pair
cat >"$TMPDIR/loop.js" <<'JS'
'use strict';
// loop.js PORT STOPFILE MAX_MS CA CERT KEY: new TLS connections one after
// the other (one line echoed on each) until STOPFILE exists; prints "ok
// SERIAL" (the server certificate's) or "fail CODE ..." per connection,
// then "summary ok=N failed=N".
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
    await new Promise((res) => setTimeout(res, 20));
  }
  process.stdout.write(`summary ok=${ok} failed=${bad}\n`);
})();
JS

new_server_cert plain-b
PB_SERIAL=$(serial_of "$C/plain-b.leaf")
STOP=$TMPDIR/loop.stop
rm -f "$STOP"
node "$TMPDIR/loop.js" "$P_MAIN" "$STOP" 25000 "$PKI/root-ca.crt" \
    "$PKI/billing.crt" "$PKI/billing.key" >"$TMPDIR/loop.out" 2>"$TMPDIR/loop.err" &
LOOP_PID=$!
track "$LOOP_PID"
for i in $(seq 50); do
	grep -q '^ok' "$TMPDIR/loop.out" 2>/dev/null && break
	sleep 0.1
done
grep -q '^ok' "$TMPDIR/loop.out" || fail "(d) the client loop did not get going: $(head -n 3 "$TMPDIR/loop.out" "$TMPDIR/loop.err")"

# The certificate first, written over the old one; the key still the old one.
log_mark
T0=$(now_ms)
cat "$C/plain-b.crt" >"$C/plain/server.crt"
for i in $(seq 60); do
	log_has_line 'reload failed' && break
	sleep 0.05
done
assert_log_contains "^[^ ]+ error reload: $CONF:[0-9]+:[0-9]+: private key $C/plain/server\\.key does not match certificate $C/plain/server\\.crt"
assert_log_contains 'error reload failed \(1 error\): still serving with the previous configuration'
assert_log_contains 'info will try the reload again in 1 s'
got=$(served_serial "$P_MAIN")
[ "$got" = "$OLD_SERIAL" ] || fail "(d) with the pair half-written the proxy served serial $got, expected the old $OLD_SERIAL"
# Let the retry fail once more, then complete the pair.
for i in $(seq 60); do
	[ "$(new_log_lines | grep -c 'reload failed')" -ge 2 ] && break
	sleep 0.05
done
[ "$(new_log_lines | grep -c 'reload failed')" -ge 2 ] || fail "(d) the failed reload was not retried within 3 s"
HALF_MS=$(($(now_ms) - T0))
cat "$C/plain-b.key" >"$C/plain/server.key"
wait_reload "(d) the key written" 6
got=$(served_serial "$P_MAIN")
[ "$got" = "$PB_SERIAL" ] || fail "(d) after the key was written a new handshake got serial $got, expected $PB_SERIAL"
sleep 0.5
touch "$STOP"
for i in $(seq 100); do
	kill -0 "$LOOP_PID" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$LOOP_PID" 2>/dev/null && fail "(d) the client loop did not stop"
wait "$LOOP_PID" 2>/dev/null
untrack "$LOOP_PID"
sum=$(grep '^summary ' "$TMPDIR/loop.out") || fail "(d) the client loop printed no summary: $(tail -n 3 "$TMPDIR/loop.out" "$TMPDIR/loop.err")"
grep -q '^fail' "$TMPDIR/loop.out" && fail "(d) handshakes failed while the pair was half-written: $(grep '^fail' "$TMPDIR/loop.out" | head -n 3) ($sum)"
# Serials compared in upper-case hex without leading zeros (Node's form).
norm() {
	tr 'a-f' 'A-F' | sed 's/^0*//'
}
serials=$(grep '^ok ' "$TMPDIR/loop.out" | cut -d' ' -f2 | norm | uniq | tr '\n' ' ')
want="$(printf '%s\n' "$OLD_SERIAL" | norm) $(printf '%s\n' "$PB_SERIAL" | norm) "
[ "$serials" = "$want" ] ||
    fail "(d) the loop saw server serials [$serials], expected the old one then the new one: [$want]"
pass "(d) half-written pair: old pair served for ${HALF_MS} ms through failed, retried reloads; new pair after the key arrived; $sum"

kill -0 "$PROXY_PID" 2>/dev/null || fail "mtlsproxy died"
send_line live "at the end"
wait_output live '^echo: at the end$' 5 || fail "the long-lived connection stopped echoing"
exec {LFD[live]}>&-	# stdin EOF: the client closes
for i in $(seq 50); do
	kill -0 "${LPID[live]}" 2>/dev/null || break
	sleep 0.1
done
wait "${LPID[live]}" 2>/dev/null
untrack "${LPID[live]}"
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
