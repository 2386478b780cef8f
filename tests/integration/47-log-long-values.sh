#!/usr/bin/env bash
# Log lines stay well-formed whatever a client sends: a certificate with a
# subject of many kilobytes (an unauthenticated self-signed one, refused, and
# one the CA issued, let in) gives a refused line that is one JSON object with
# its code and reason, and an access line that keeps every field after the
# subject (sha256, backend, bytes_in, bytes_out, close), in json and in text
# format. The long value is cut with "..." and the line says truncated.
. "$(dirname -- "$0")/lib.sh"

C=$TMPDIR/certs
mkdir -p "$C"
OSSL_LOG=$TMPDIR/openssl.log
ossl() {
	openssl "$@" >>"$OSSL_LOG" 2>&1 || fail "openssl $*: $(tail -n 5 "$OSSL_LOG")"
}

# long_subject N: /O=Evil/OU=CCC...C1/.../OU=CCC...CN/CN=x (60 C's each)
long_subject() {
	local s="/O=Evil" i c
	c=$(printf 'C%.0s' $(seq 60))
	for i in $(seq "$1"); do
		s="$s/OU=$c$i"
	done
	printf '%s/CN=x' "$s"
}
# self-signed, about 9 KB of subject: refused (unknown_ca)
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$C/atk.key" -out "$C/atk.crt" -days 10 -subj "$(long_subject 140)"
# issued by the demo intermediate, about 12 KB of subject: let in
cat >"$C/ext.cnf" <<'CNF'
[ client_ext ]
basicConstraints	= critical, CA:false
keyUsage		= critical, digitalSignature
extendedKeyUsage	= clientAuth
CNF
ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$C/long.key" -out "$C/long.csr" -subj "$(long_subject 190)"
ossl x509 -req -in "$C/long.csr" -CA "$PKI/intermediate-ca.crt" \
    -CAkey "$PKI/intermediate-ca.key" -set_serial "0x$(openssl rand -hex 12)" \
    -days 30 -sha256 -extfile "$C/ext.cnf" -extensions client_ext -out "$C/long.crt"
cat "$C/long.crt" "$PKI/intermediate-ca.crt" >"$C/long-chain.crt"

ECHO_PORT=$(free_port)
PORT=$(free_port)
start_echo "$ECHO_PORT"

# write_config FILE FORMAT
write_config() {
	{
		config_head | sed -e "s/format: text/format: $2/"
		config_listener api "$PORT" "\"127.0.0.1:$ECHO_PORT\""
	} >"$1"
}

# traffic: the self-signed one is refused, the issued one echoes 5 bytes
traffic() {
	log_mark
	node_client "$PORT" --cert "$C/atk.crt" --key "$C/atk.key" --send "evil\n" --echo --timeout 10000
	[ "$NODE_RC" -ne 0 ] || fail "the self-signed long-subject client was let in"
	node_client "$PORT" --cert "$C/long-chain.crt" --key "$C/long.key" --send "long\n" --echo --timeout 10000
	[ "$NODE_RC" -eq 0 ] || fail "the issued long-subject client was not let in: $(cat "$NODE_OUT" "$NODE_ERR")"
	sleep 0.3	# the access line is written at close
}

# ------------------------------------------------------------ JSON run
write_config "$TMPDIR/json.yaml" json
start_proxy "$TMPDIR/json.yaml"
traffic
stop_proxy
python3 - "$PROXY_LOG" "$ECHO_PORT" >"$TMPDIR/json-check.out" 2>&1 <<'PY'
import json, sys
path, echo_port = sys.argv[1:3]
objs = []
for n, line in enumerate(open(path, 'rb').read().split(b'\n')[:-1], 1):
    try:
        objs.append(json.loads(line.decode('utf-8')))
    except Exception as e:
        sys.exit('line %d (%d bytes) is not JSON (%s): %r' % (n, len(line), e, line[-200:]))
def need(cond, what):
    if not cond:
        sys.exit(what)
ref = [o for o in objs if o.get('msg') == 'refused']
need(ref, 'no refused line')
r = ref[0]
need(r.get('code') == 'unknown_ca' and r.get('reason'), 'refused line without code/reason: %r' % {k: v for k, v in r.items() if k != 'subject'})
need(r.get('subject', '').startswith('CN=x,OU=') and r['subject'].endswith('...'),
     'refused subject not cut with "...": %r' % r.get('subject', '')[-80:])
need(len(r['subject']) <= 1024, 'refused subject is %d bytes, over 1024' % len(r['subject']))
need(r.get('truncated') is True, 'refused line has no "truncated": true')
need(r.get('issuer', '').startswith('CN=x,OU='), 'refused line lost its issuer')
acc = [o for o in objs if o.get('msg') == 'access']
need(acc, 'no access line')
a = acc[0]
for k in ('sha256', 'backend', 'close'):
    need(isinstance(a.get(k), str) and a[k], 'access line lost %s: %r' % (k, {k: v for k, v in a.items() if k != 'subject'}))
need(a['backend'] == '127.0.0.1:' + echo_port, 'access backend %r' % a['backend'])
need(a.get('bytes_in') == 5 and a.get('bytes_out') == 5, 'access bytes %r/%r, want 5/5' % (a.get('bytes_in'), a.get('bytes_out')))
need(a['subject'].endswith('...') and a.get('truncated') is True, 'access subject not marked as cut')
print('%d lines, all JSON; refused %s, access close=%s' % (len(objs), r['code'], a['close']))
PY
rc=$?
[ "$rc" -eq 0 ] || fail "json log: $(tail -n 3 "$TMPDIR/json-check.out")"
pass "json log: $(cat "$TMPDIR/json-check.out")"

# ------------------------------------------------------------ text run
write_config "$TMPDIR/text.yaml" text
start_proxy "$TMPDIR/text.yaml"
traffic
assert_log_contains ' refused ' 'code=unknown_ca' 'reason="' 'subject="CN=x,OU=[^"]*\.\.\." ' 'issuer="' ' truncated=true$'
assert_log_contains ' access ' 'subject="CN=x,OU=[^"]*\.\.\." ' ' sha256=[0-9a-f]{64} ' " backend=127\.0\.0\.1:$ECHO_PORT " \
    ' bytes_in=5 bytes_out=5 ' ' close=client_closed ' ' truncated=true$'
stop_proxy
awk 'length($0) > 16384 { exit 1 }' "$PROXY_LOG" || fail "a text line is over 16 KiB"
pass "text log: the refused and access lines keep all their fields"
