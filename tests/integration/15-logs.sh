#!/usr/bin/env bash
# Logs a user can feed to a log pipeline and trust:
#  - log.format json: every stderr line is one JSON object; the refused line
#    has msg=refused and a code, the access line has bytes_in/bytes_out as
#    numbers equal to what went through;
#  - the server key's passphrase (key_passphrase_file) never appears in any
#    output, not at debug level, not in `-t`, not in an error about a wrong
#    passphrase;
#  - a client whose CN holds `"`, `,`, `=` or a newline cannot break or
#    forge a log line, in json and in text format: its refused/access line
#    is one line and the subject value decodes to exactly the RFC 4514
#    subject (`openssl x509 -nameopt rfc2253`).
. "$(dirname -- "$0")/lib.sh"

C=$TMPDIR/certs
mkdir -p "$C"
OSSL_LOG=$TMPDIR/openssl.log
ossl() {
	openssl "$@" >>"$OSSL_LOG" 2>&1 || fail "openssl $*: $(tail -n 5 "$OSSL_LOG")"
}

# --------------------------------------------------------------- certs
# quote: CN=a",b=c (with -subj); newline: a CN with a newline and what
# looks like a log line after it (`openssl req -subj` cannot write a
# newline; an openssl config value can: "\n").
cat >"$C/openssl.cnf" <<'CNF'
[ req ]
distinguished_name	= req_dn
prompt			= no
string_mask		= utf8only
[ req_dn ]
CN			= unused
[ newline_dn ]
O			= Demo Corp
CN			= evil\n2030-01-01T00:00:00.000Z error FORGED listener=x code=none
[ newline_req ]
distinguished_name	= newline_dn
prompt			= no
string_mask		= utf8only
[ client_ext ]
basicConstraints	= critical, CA:false
keyUsage		= critical, digitalSignature
extendedKeyUsage	= clientAuth
subjectKeyIdentifier	= hash
authorityKeyIdentifier	= keyid:always
CNF
# sign NAME: NAME.csr -> NAME.crt, signed by the demo intermediate
sign() {
	ossl x509 -req -in "$C/$1.csr" -CA "$PKI/intermediate-ca.crt" -CAkey "$PKI/intermediate-ca.key" \
	    -set_serial "0x$(openssl rand -hex 12)" -days 30 -sha256 \
	    -extfile "$C/openssl.cnf" -extensions client_ext -out "$C/$1.crt"
}
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$C/quote.key"
ossl req -new -config "$C/openssl.cnf" -key "$C/quote.key" -subj '/O=Demo Corp/CN=a",b=c' -out "$C/quote.csr"
sign quote
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$C/newline.key"
# a [req] section whose distinguished_name is newline_dn
sed -e 's/^distinguished_name\t= req_dn/distinguished_name\t= newline_dn/' "$C/openssl.cnf" >"$C/newline.cnf"
ossl req -new -config "$C/newline.cnf" -key "$C/newline.key" -out "$C/newline.csr"
sign newline
openssl x509 -in "$C/newline.crt" -noout -subject -nameopt utf8 | od -c | grep -q '\\n' ||
    fail "could not make a certificate whose CN holds a newline"
# the RFC 4514 subjects, as openssl prints them (no escaping of UTF-8)
rfc4514() {
	openssl x509 -in "$1" -noout -subject -nameopt rfc2253,-esc_msb | sed 's/^subject=//'
}
SUBJ_QUOTE=$(rfc4514 "$C/quote.crt")
SUBJ_NEWLINE=$(rfc4514 "$C/newline.crt")
[ "$SUBJ_QUOTE" = 'CN=a\"\,b=c,O=Demo Corp' ] || fail "unexpected RFC 4514 subject for quote.crt: $SUBJ_QUOTE"
log "quote subject: $SUBJ_QUOTE"
log "newline subject: $SUBJ_NEWLINE"

# ------------------------------------------------------ the passphrase
PASS=$(head -n 1 "$PKI/server-key.pass")
[ ${#PASS} -ge 16 ] || fail "the demo server-key.pass is unexpectedly short"
# a wrong passphrase, also never to be printed
WRONG="wrong-$(openssl rand -hex 12)"
printf '%s\n' "$WRONG" >"$TMPDIR/wrong.pass"

# -------------------------------------------------------------- config
ECHO_PORT=$(free_port)
P_OPEN=$(free_port)
P_STRICT=$(free_port)
start_echo "$ECHO_PORT"

# write_config FILE FORMAT [PASSFILE]
write_config() {
	local passfile=${3:-$PKI/server-key.pass} name port allow
	{
		cat <<EOF
workers: 2
log:
  level: debug
  format: $2
  access: true
listeners:
EOF
		for name in open strict; do
			if [ "$name" = open ]; then
				port=$P_OPEN
				allow=
			else
				port=$P_STRICT
				allow="      allow:
        subject_cn: [orders]"
			fi
			cat <<EOF
  - name: $name
    listen: "127.0.0.1:$port"
    tls:
      cert: $PKI/server-fullchain.crt
      key: $PKI/server-enc.key
      key_passphrase_file: $passfile
    client_auth:
      ca: $PKI/client-ca.pem
EOF
			[ -n "$allow" ] && printf '%s\n' "$allow"
			cat <<EOF
    backend:
      address: "127.0.0.1:$ECHO_PORT"
      mode: tcp
    timeouts:
      handshake: 5s
      idle: 60s
EOF
		done
	} >"$1"
}

# traffic: the same set of connections against both listeners.
traffic() {
	# allowed, with a known byte count (13 bytes)
	node_client "$P_OPEN" --cert "$PKI/orders.crt" --key "$PKI/orders.key" --send "json please\n" --echo --timeout 10000
	[ "$NODE_RC" -eq 0 ] || fail "orders was not let in: $(cat "$NODE_OUT")"
	# unknown CA, and no certificate: refused
	node_client "$P_OPEN" --cert "$PKI/stranger.crt" --key "$PKI/stranger.key" --send "x\n" --echo --timeout 10000
	[ "$NODE_RC" -ne 0 ] || fail "stranger was let in"
	s_client_send "$P_OPEN" "x\n" "x"
	# the odd CNs: allowed on open (access line), refused on strict
	# (policy line, with the CN in the reason too)
	for who in quote newline; do
		node_client "$P_OPEN" --cert "$C/$who.crt" --key "$C/$who.key" --send "$who\n" --echo --timeout 10000
		[ "$NODE_RC" -eq 0 ] || fail "$who was not let in on the open listener: $(cat "$NODE_OUT")"
		node_client "$P_STRICT" --cert "$C/$who.crt" --key "$C/$who.key" --send "$who\n" --echo --timeout 10000
		[ "$NODE_RC" -ne 0 ] || fail "$who was let in on the strict listener (allow subject_cn: [orders])"
	done
}

# no_passphrase FILE...: neither passphrase appears in any of the files.
no_passphrase() {
	local f
	for f in "$@"; do
		grep -q -F -- "$PASS" "$f" && fail "the server key passphrase appears in $f: $(grep -n -F -- "$PASS" "$f" | head -n 2)"
		grep -q -F -- "$WRONG" "$f" && fail "the (wrong) passphrase file's content appears in $f: $(grep -n -F -- "$WRONG" "$f" | head -n 2)"
	done
	return 0
}

# ------------------------------------------------------------ JSON run
write_config "$TMPDIR/json.yaml" json
"$MTLSPROXY" -t -c "$TMPDIR/json.yaml" >"$TMPDIR/t-json.out" 2>&1 ||
    fail "mtlsproxy -t rejects the json config: $(cat "$TMPDIR/t-json.out")"
start_proxy "$TMPDIR/json.yaml" "$P_OPEN"
wait_port "$P_STRICT" "$PROXY_PID" 5 || fail "listener on 127.0.0.1:$P_STRICT does not accept"
traffic
sleep 0.3	# access lines are written at close
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
JSON_LOG=$PROXY_LOG

python3 - "$JSON_LOG" "$SUBJ_QUOTE" "$SUBJ_NEWLINE" >"$TMPDIR/json-check.out" 2>&1 <<'PY'
import json, sys
path, subj_quote, subj_newline = sys.argv[1:4]
raw = open(path, 'rb').read()
if not raw.endswith(b'\n'):
    sys.exit('the log does not end with a newline')
objs = []
for n, line in enumerate(raw.split(b'\n')[:-1], 1):
    try:
        o = json.loads(line.decode('utf-8'))
    except Exception as e:
        sys.exit('line %d is not JSON (%s): %r' % (n, e, line[:300]))
    if not isinstance(o, dict):
        sys.exit('line %d is not a JSON object: %r' % (n, line[:300]))
    for k in ('time', 'level', 'msg'):
        if not isinstance(o.get(k), str):
            sys.exit('line %d has no string %r: %r' % (n, k, line[:300]))
    objs.append(o)
print('%d lines, all JSON objects' % len(objs))
refused = [o for o in objs if o['msg'] == 'refused']
access = [o for o in objs if o['msg'] == 'access']
def need(cond, what):
    if not cond:
        sys.exit(what)
need(refused, 'no line with msg=refused')
need(access, 'no line with msg=access')
for o in refused:
    need(isinstance(o.get('code'), str) and o['code'], 'refused line without code: %r' % o)
    need(o.get('level') == 'warn', 'refused line not at level warn: %r' % o)
codes = {o['code'] for o in refused}
for c in ('unknown_ca', 'no_cert', 'policy'):
    need(c in codes, 'no refused line with code=%s (codes: %s)' % (c, sorted(codes)))
for o in access:
    for k in ('bytes_in', 'bytes_out', 'duration_ms'):
        need(type(o.get(k)) is int, 'access line: %s is not a JSON number: %r' % (k, o))
orders = [o for o in access if o.get('subject') == 'CN=orders,OU=payments,O=Demo Corp']
need(orders, 'no access line for orders')
need(orders[0]['bytes_in'] == 12 and orders[0]['bytes_out'] == 12,
     'orders sent and got back 12 bytes, the access line says %r/%r' % (orders[0]['bytes_in'], orders[0]['bytes_out']))
for subj, label in ((subj_quote, 'quote'), (subj_newline, 'newline')):
    a = [o for o in access if o.get('subject') == subj and o.get('listener') == 'open']
    need(a, '%s: no access line whose subject decodes to %r; subjects: %r' % (label, subj, [o.get('subject') for o in access]))
    r = [o for o in refused if o.get('subject') == subj and o.get('listener') == 'strict']
    need(r, '%s: no refused line whose subject decodes to %r' % (label, subj))
    need(r[0]['code'] == 'policy', '%s: refused with code %r, want policy' % (label, r[0]['code']))
for o in objs:
    for k, v in o.items():
        if isinstance(v, str) and ('\n' in v or '\r' in v):
            sys.exit('a value carries a raw newline after decoding (%s): %r' % (k, o))
print('refused codes %s; %d access lines' % (sorted(codes), len(access)))
PY
rc=$?
[ "$rc" -eq 0 ] || fail "json log: $(tail -n 3 "$TMPDIR/json-check.out")"
pass "json log: $(tr '\n' ' ' <"$TMPDIR/json-check.out")"
grep -q FORGED "$JSON_LOG" || fail "json log: the newline CN does not appear at all"
no_passphrase "$JSON_LOG" "$TMPDIR/t-json.out" "$TMPDIR/proxy-1.out"
pass "json log: the key passphrase appears nowhere"

# ------------------------------------------------------------ text run
write_config "$TMPDIR/text.yaml" text
start_proxy "$TMPDIR/text.yaml" "$P_OPEN"
wait_port "$P_STRICT" "$PROXY_PID" 5 || fail "listener on 127.0.0.1:$P_STRICT does not accept"
traffic
sleep 0.3
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
TEXT_LOG=$PROXY_LOG

# Every line starts like a log line (a newline in a value would start a
# line with something else), and the key=value pairs parse back: a quoted
# value ends at the first unescaped quote; subject= decodes to the RFC 4514
# subject exactly.
python3 - "$TEXT_LOG" "$SUBJ_QUOTE" "$SUBJ_NEWLINE" >"$TMPDIR/text-check.out" 2>&1 <<'PY'
import re, sys
path, subj_quote, subj_newline = sys.argv[1:4]
head = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|warn|error) ')
pair = re.compile(r' ([a-z_0-9]+)=("((?:[^"\\]|\\.)*)"|[^ "]*)(?= |$)')
def unescape(s):
    return re.sub(r'\\(u[0-9a-fA-F]{4}|.)', lambda m: {'n': '\n', 'r': '\r', 't': '\t'}.get(m.group(1),
                  chr(int(m.group(1)[1:], 16)) if m.group(1)[0] == 'u' and len(m.group(1)) == 5 else m.group(1)), s)
def fields(line):
    # only event lines (msg refused/access) are key=value throughout
    m = head.match(line)
    rest = line[m.end():]
    msg, _, kv = rest.partition(' ')
    out, pos = {}, 0
    kv = ' ' + kv
    while pos < len(kv):
        p = pair.match(kv, pos)
        if not p:
            sys.exit('cannot parse key=value at %r in %r' % (kv[pos:pos + 60], line[:300]))
        out[p.group(1)] = unescape(p.group(3)) if p.group(3) is not None else p.group(2)
        pos = p.end()
    return msg, out
lines = open(path, encoding='utf-8', errors='replace').read().split('\n')
if lines[-1] != '':
    sys.exit('the log does not end with a newline')
events = []
for n, line in enumerate(lines[:-1], 1):
    if not head.match(line):
        sys.exit('line %d does not start like a log line (a value broke a line?): %r' % (n, line[:300]))
    if 'FORGED' in line and not (' refused ' in line or ' access ' in line or ' debug ' in line):
        sys.exit('line %d: the newline CN shows up outside an event line: %r' % (n, line[:300]))
    m = head.match(line)
    msg = line[m.end():].split(' ', 1)[0]
    if msg in ('refused', 'access'):
        events.append(fields(line))
def need(cond, what):
    if not cond:
        sys.exit(what)
for subj, label in ((subj_quote, 'quote'), (subj_newline, 'newline')):
    a = [f for m, f in events if m == 'access' and f.get('subject') == subj and f.get('listener') == 'open']
    need(a, '%s: no access line whose subject parses back to %r; got %r' % (label, subj,
         [f.get('subject') for m, f in events if m == 'access']))
    need(a[0].get('bytes_in') == str(len(label) + 1), '%s: access line fields after subject are off: %r' % (label, a[0]))
    r = [f for m, f in events if m == 'refused' and f.get('subject') == subj and f.get('listener') == 'strict']
    need(r, '%s: no refused line whose subject parses back to %r' % (label, subj))
    need(r[0].get('code') == 'policy', '%s: refused code %r, want policy' % (label, r[0].get('code')))
    need('issuer' in r[0] and r[0]['issuer'] == 'CN=Demo Intermediate CA,O=Demo Corp',
         '%s: the refused line\'s fields after subject are off: %r' % (label, r[0]))
print('%d lines, %d events parsed back' % (len(lines) - 1, len(events)))
PY
rc=$?
[ "$rc" -eq 0 ] || fail "text log: $(tail -n 3 "$TMPDIR/text-check.out")"
pass "text log: $(tr '\n' ' ' <"$TMPDIR/text-check.out")"
grep -E '^[0-9]{4}-' "$TEXT_LOG" | grep -q 'FORGED' || fail "text log: the newline CN does not appear at all"
grep -q -E '^2030-01-01T00:00:00\.000Z error FORGED' "$TEXT_LOG" &&
    fail "text log: the CN forged a log line: $(grep -E '^2030-01-01' "$TEXT_LOG" | head -n 1)"
LOG_MARK=0
assert_log_contains ' access ' 'listener=open ' 'subject="CN=a\\\\\\"\\\\,b=c,O=Demo Corp"'
no_passphrase "$TEXT_LOG" "$TMPDIR/proxy-2.out"
pass "text log: one line per event, odd CNs escaped, no passphrase"

# ------------------------------------- a wrong passphrase: said, not shown
write_config "$TMPDIR/wrong.yaml" text "$TMPDIR/wrong.pass"
"$MTLSPROXY" -t -c "$TMPDIR/wrong.yaml" >"$TMPDIR/t-wrong.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "-t with a wrong passphrase exited $rc, want 1: $(cat "$TMPDIR/t-wrong.out")"
grep -q -F 'server-enc.key' "$TMPDIR/t-wrong.out" || fail "-t with a wrong passphrase: the key is not named: $(cat "$TMPDIR/t-wrong.out")"
no_passphrase "$TMPDIR/t-wrong.out"
write_config "$TMPDIR/wrong-json.yaml" json "$TMPDIR/wrong.pass"
timeout 10 "$MTLSPROXY" -c "$TMPDIR/wrong-json.yaml" >"$TMPDIR/run-wrong.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "mtlsproxy with a wrong passphrase exited $rc, want 1"
no_passphrase "$TMPDIR/run-wrong.out"
pass "a wrong passphrase is reported without being printed"
