#!/usr/bin/env bash
# Server credentials in every form users have them: PKCS#12, an encrypted
# PKCS#8 key (AES-256), a legacy DES3 PEM key, an RSA key; a wrong
# passphrase is a clear start-up error; a passphrase from systemd's
# $CREDENTIALS_DIRECTORY.
. "$(dirname -- "$0")/lib.sh"

ECHO_PORT=$(free_port)
start_echo "$ECHO_PORT"
BACKEND="\"127.0.0.1:$ECHO_PORT\""
P_P12=$(free_port)
P_ENC=$(free_port)
P_DES3=$(free_port)
P_RSA=$(free_port)

{
	config_head
	config_listener p12 "$P_P12" "$BACKEND" "" "      pkcs12: $PKI/server.p12
      pkcs12_passphrase_file: $PKI/server-p12.pass"
	config_listener enc "$P_ENC" "$BACKEND" "" "      cert: $PKI/server-fullchain.crt
      key: $PKI/server-enc.key
      key_passphrase_file: $PKI/server-key.pass"
	config_listener des3 "$P_DES3" "$BACKEND" "" "      cert: $PKI/server-fullchain.crt
      key: $PKI/server-des3.key
      key_passphrase_file: $PKI/server-key.pass"
	config_listener rsa "$P_RSA" "$BACKEND" "" "      cert: $PKI/server-rsa-fullchain.crt
      key: $PKI/server-rsa.key"
} >"$TMPDIR/creds.yaml"

"$MTLSPROXY" -t -c "$TMPDIR/creds.yaml" >"$TMPDIR/t.out" 2>&1 ||
    fail "mtlsproxy -t rejects a valid config: $(cat "$TMPDIR/t.out")"

start_proxy "$TMPDIR/creds.yaml" "$P_P12"
for p in "$P_ENC" "$P_DES3" "$P_RSA"; do
	wait_port "$p" "$PROXY_PID" 5 || fail "listener on 127.0.0.1:$p does not accept"
done

# serves PORT LABEL KEYDESC: orders gets its bytes echoed through PORT with
# the server verified against the root only (so the intermediate must be
# sent too); the server key matches KEYDESC (a regex on client.js's
# server-cert line).
serves() {
	local port=$1 label=$2 keydesc=$3
	node_client "$port" --cert "$PKI/orders.crt" --key "$PKI/orders.key" --send "via $label\n" --echo
	[ "$NODE_RC" -eq 0 ] || fail "$label: orders was not served: $(cat "$NODE_OUT")"
	grep -q -x "via $label" "$NODE_OUT" || fail "$label: wrong bytes back: $(head -c 200 "$NODE_OUT")"
	grep -q -E -- "server-cert: subject=CN=localhost $keydesc" "$NODE_ERR" ||
	    fail "$label: unexpected server certificate: $(grep server-cert "$NODE_ERR")"
	s_client_send "$port" "s_client via $label\n" "s_client via $label" \
	    -cert "$PKI/orders.crt" -key "$PKI/orders.key"
	grep -q -F -- "s_client via $label" "$SCLIENT_OUT" ||
	    fail "$label: s_client got no echo (rc $SCLIENT_RC): $(grep -v '^depth=\|^verify' "$SCLIENT_ERR" | head -n 3)"
	pass "$label"
}
serves "$P_P12" "PKCS#12" 'bits=256 curve=prime256v1'
serves "$P_ENC" "AES-256 encrypted key" 'bits=256 curve=prime256v1'
serves "$P_DES3" "DES3 encrypted key" 'bits=256 curve=prime256v1'
serves "$P_RSA" "RSA key" 'bits=2048'
timeout 10 openssl s_client -connect "127.0.0.1:$P_RSA" -servername localhost \
    -CAfile "$PKI/root-ca.crt" -verify_return_error -cert "$PKI/orders.crt" -key "$PKI/orders.key" \
    -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256 </dev/null >"$TMPDIR/rsa12.out" 2>&1
grep -q 'Cipher is ECDHE-RSA-AES128-GCM-SHA256' "$TMPDIR/rsa12.out" ||
    fail "RSA listener: no TLS 1.2 ECDHE-RSA handshake: $(grep -i -E 'error|cipher' "$TMPDIR/rsa12.out" | head -n 3)"
pass "RSA listener speaks TLS 1.2 with an RSA cipher suite"
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"

# --- wrong passphrases: -t fails, naming the config line and the files
printf 'not-the-passphrase\n' >"$TMPDIR/wrong.pass"
{
	config_head
	config_listener enc "$P_ENC" "$BACKEND" "" "      cert: $PKI/server-fullchain.crt
      key: $PKI/server-enc.key
      key_passphrase_file: $TMPDIR/wrong.pass"
} >"$TMPDIR/wrong-key.yaml"
"$MTLSPROXY" -t -c "$TMPDIR/wrong-key.yaml" >"$TMPDIR/wrong-key.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "-t with a wrong key passphrase exited $rc, want 1: $(cat "$TMPDIR/wrong-key.out")"
grep -q -E 'wrong-key\.yaml:[0-9]+:[0-9]+' "$TMPDIR/wrong-key.out" ||
    fail "wrong key passphrase: no file:line:col in: $(cat "$TMPDIR/wrong-key.out")"
grep -q -F 'server-enc.key' "$TMPDIR/wrong-key.out" ||
    fail "wrong key passphrase: the message does not name server-enc.key: $(cat "$TMPDIR/wrong-key.out")"
grep -q -i -E 'passphrase|decrypt' "$TMPDIR/wrong-key.out" ||
    fail "wrong key passphrase: the message does not say what is wrong: $(cat "$TMPDIR/wrong-key.out")"
pass "wrong key passphrase: $(grep -m1 'server-enc.key' "$TMPDIR/wrong-key.out")"

{
	config_head
	config_listener p12 "$P_P12" "$BACKEND" "" "      pkcs12: $PKI/server.p12
      pkcs12_passphrase_file: $TMPDIR/wrong.pass"
} >"$TMPDIR/wrong-p12.yaml"
"$MTLSPROXY" -t -c "$TMPDIR/wrong-p12.yaml" >"$TMPDIR/wrong-p12.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "-t with a wrong PKCS#12 passphrase exited $rc, want 1"
grep -q -F 'server.p12' "$TMPDIR/wrong-p12.out" ||
    fail "wrong PKCS#12 passphrase: the message does not name server.p12: $(cat "$TMPDIR/wrong-p12.out")"
grep -q -E 'wrong-p12\.yaml:[0-9]+:[0-9]+' "$TMPDIR/wrong-p12.out" ||
    fail "wrong PKCS#12 passphrase: no file:line:col in: $(cat "$TMPDIR/wrong-p12.out")"
pass "wrong PKCS#12 passphrase"

# The daemon itself refuses to start with the wrong passphrase (exit 1).
timeout 10 "$MTLSPROXY" -c "$TMPDIR/wrong-key.yaml" >"$TMPDIR/wrong-run.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "mtlsproxy -c with a wrong passphrase exited $rc, want 1"
pass "start-up refused with a wrong passphrase"

# --- passphrase as a systemd credential: a bare name in
# $CREDENTIALS_DIRECTORY
mkdir -p "$TMPDIR/creds"
cp "$PKI/server-key.pass" "$TMPDIR/creds/server-key.pass"
{
	config_head
	config_listener cred "$P_ENC" "$BACKEND" "" "      cert: $PKI/server-fullchain.crt
      key: $PKI/server-enc.key
      key_passphrase_file: server-key.pass"
} >"$TMPDIR/cred.yaml"
CREDENTIALS_DIRECTORY=$TMPDIR/creds "$MTLSPROXY" -t -c "$TMPDIR/cred.yaml" >"$TMPDIR/cred.out" 2>&1 ||
    fail "-t with key_passphrase_file in \$CREDENTIALS_DIRECTORY failed: $(cat "$TMPDIR/cred.out")"
export CREDENTIALS_DIRECTORY=$TMPDIR/creds
start_proxy "$TMPDIR/cred.yaml"
unset CREDENTIALS_DIRECTORY
serves "$P_ENC" "passphrase from CREDENTIALS_DIRECTORY" 'bits=256'
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
