#!/usr/bin/env bash
# PROXY protocol v2 in tcp mode, read by a real nginx from Debian's package
# (`listen ... proxy_protocol`): with `proxy_protocol: true` nginx sees the
# client's own address and source port; without it, nginx refuses the
# connection with "broken header".
#
# nginx 1.22 (Debian 12) exposes $proxy_protocol_addr and
# $proxy_protocol_port but no variables for the SSL TLVs (those came with
# $proxy_protocol_tlv_* in nginx 1.23.2), so what the TLVs say (TLS version,
# CN, cipher, algorithms, the DER client certificate) and the CRC32C are
# checked byte by byte in tests/unit/check_pp2.c. Here nginx proves the
# header is well formed and the addresses are the client's.
#
# A small PROXY v2 reader (python) then takes the SSL_CN TLV of a client
# whose CN holds CR, LF, 0x01, 0x7f, a backslash and UTF-8: no control byte
# arrives, they come as \XX (and the backslash as \5C), the UTF-8 as it is.
. "$(dirname -- "$0")/lib.sh"

NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || fail "nginx not found (Debian package nginx; scripts/deps.sh installs it)"

NGX=$TMPDIR/nginx
NGINX_PORT=$(free_port)
PORT=$(free_port)
PORT_OFF=$(free_port)
PPCN_LISTEN=$(free_port)
# An IPv6 listener too, when ::1 can be bound here.
PORT6=$(python3 -c 'import socket
s = socket.socket(socket.AF_INET6)
s.bind(("::1", 0))
print(s.getsockname()[1])' 2>/dev/null) || PORT6=

# ------------------------------------------------------------ nginx reader

# An unprivileged, single-process nginx with everything under $NGX. The
# access log shows what the PROXY header said next to the TCP peer nginx
# itself sees (mtlsproxy's connection).
mkdir -p "$NGX/tmp"
cat >"$NGX/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $NGX/nginx.pid;
error_log $NGX/error.log info;
events {
	worker_connections 64;
}
http {
	client_body_temp_path $NGX/tmp/body;
	proxy_temp_path $NGX/tmp/proxy;
	fastcgi_temp_path $NGX/tmp/fastcgi;
	uwsgi_temp_path $NGX/tmp/uwsgi;
	scgi_temp_path $NGX/tmp/scgi;
	log_format pp 'pp=\$proxy_protocol_addr:\$proxy_protocol_port tcp=\$remote_addr:\$remote_port "\$request" \$status';
	access_log $NGX/access.log pp;
	default_type text/plain;
	server {
		listen 127.0.0.1:$NGINX_PORT proxy_protocol;
		location / {
			return 200 "ok \$proxy_protocol_addr\n";
		}
	}
}
EOF
"$NGINX" -p "$NGX/" -c "$NGX/nginx.conf" -e "$NGX/error.log" >"$NGX/stderr" 2>&1 &
NGINX_PID=$!
track "$NGINX_PID"
wait_port "$NGINX_PORT" "$NGINX_PID" 5 ||
    fail "nginx did not start on 127.0.0.1:$NGINX_PORT: $(tail -n 5 "$NGX/stderr" "$NGX/error.log" 2>/dev/null)"
[ "$(cat "$NGX/nginx.pid" 2>/dev/null)" = "$NGINX_PID" ] ||
    fail "nginx pid file says $(cat "$NGX/nginx.pid" 2>/dev/null), started pid $NGINX_PID"
log "nginx $("$NGINX" -v 2>&1 | sed 's/.*version: //') pid $NGINX_PID on 127.0.0.1:$NGINX_PORT"

# nginx_errors_since N: nginx error log lines after line N.
nginx_errors_since() {
	tail -n +$(($1 + 1)) "$NGX/error.log"
}

# --------------------------------------------------- a PROXY v2 TLV reader

# Reads the PROXY v2 header of each connection, writes the SSL_CN sub-TLV
# (hex) as one line to cn.log, answers "cn ok" and closes.
PPCN_PORT=$(free_port)
python3 - "$PPCN_PORT" "$TMPDIR/cn.log" >"$TMPDIR/ppcn.out" 2>&1 <<'PY' &
import socket, struct, sys

def read(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b

def tlvs(b):
    i = 0
    while i + 3 <= len(b):
        t, n = b[i], struct.unpack(">H", b[i + 1:i + 3])[0]
        yield t, b[i + 3:i + 3 + n]
        i += 3 + n

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
while True:
    c, _ = s.accept()
    try:
        h = read(c, 16)
        assert h[:12] == b"\r\n\r\n\x00\r\nQUIT\n", h
        rest = read(c, struct.unpack(">H", h[14:16])[0])
        body = rest[12 if h[13] >> 4 == 1 else 36:]
        cn = None
        for t, v in tlvs(body):
            if t == 0x20:
                for st, sv in tlvs(v[5:]):
                    if st == 0x22:
                        cn = sv
        with open(sys.argv[2], "a") as f:
            f.write((cn.hex() if cn is not None else "none") + "\n")
        c.sendall(b"cn ok\n")
    except Exception as e:
        with open(sys.argv[2], "a") as f:
            f.write("error %r\n" % (e,))
    c.close()
PY
PPCN_PID=$!
track "$PPCN_PID"
wait_port "$PPCN_PORT" "$PPCN_PID" 5 || fail "the PROXY v2 reader did not start: $(cat "$TMPDIR/ppcn.out")"

# A client certificate with CR, LF, 0x01, 0x7f, a backslash and "ë" in its
# CN (openssl req -subj reads "\\" as one backslash).
C=$TMPDIR/certs
mkdir -p "$C"
printf '[ext]\nbasicConstraints = critical, CA:false\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth\n' >"$C/ext.cnf"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$C/evil.key" -utf8 \
    -subj "/O=QA/CN=$(printf 'evil\r\nX-Injected: 1\001\177\\\\z Zo\303\253')" -out "$C/evil.csr" >>"$TMPDIR/openssl.log" 2>&1 &&
    openssl x509 -req -in "$C/evil.csr" -CA "$PKI/intermediate-ca.crt" -CAkey "$PKI/intermediate-ca.key" \
    -set_serial "0x$(openssl rand -hex 12)" -days 30 -sha256 -extfile "$C/ext.cnf" -extensions ext \
    -out "$C/evil.crt" >>"$TMPDIR/openssl.log" 2>&1 ||
    fail "could not make the certificate: $(tail -n 3 "$TMPDIR/openssl.log")"
# the CN as the certificate holds it
WANT_RAW=$(printf 'evil\r\nX-Injected: 1\001\177\\z Zo\303\253' | od -An -tx1 | tr -d ' \n')
openssl asn1parse -in "$C/evil.crt" | grep -q 'UTF8STRING *:evil' ||
    fail "the CN is not a UTF8String: $(openssl asn1parse -in "$C/evil.crt" | grep -A1 commonName)"

# ----------------------------------------------------------------- proxy

# Two listeners in front of the same nginx: one sends the PROXY header,
# one does not.
{
	config_head
	config_listener pp "$PORT" "\"127.0.0.1:$NGINX_PORT\"" |
	    sed 's/^      mode: tcp$/&\n      proxy_protocol: true/'
	config_listener nopp "$PORT_OFF" "\"127.0.0.1:$NGINX_PORT\""
	config_listener ppcn "$PPCN_LISTEN" "\"127.0.0.1:$PPCN_PORT\"" |
	    sed 's/^      mode: tcp$/&\n      proxy_protocol: true/'
	if [ -n "$PORT6" ]; then
		config_listener pp6 "$PORT6" "\"127.0.0.1:$NGINX_PORT\"" |
		    sed -e "s/^    listen: .*/    listen: \"[::1]:$PORT6\"/" \
		    -e 's/^      mode: tcp$/&\n      proxy_protocol: true/'
	fi
} >"$TMPDIR/pp.yaml"
grep -q '^      proxy_protocol: true$' "$TMPDIR/pp.yaml" ||
    fail "test setup: proxy_protocol was not added to $TMPDIR/pp.yaml"
start_proxy "$TMPDIR/pp.yaml" "$PORT"
wait_port "$PORT_OFF" "$PROXY_PID" 5 || fail "listener nopp 127.0.0.1:$PORT_OFF does not accept"

# ------------------------------------------------- the header, read by nginx

log_mark
ERR_MARK=$(wc -l <"$NGX/error.log")
curl_get "$PORT" --cert "$PKI/orders.crt" --key "$PKI/orders.key" \
    -w 'curl_local_port=%{local_port}\n'
[ "$CURL_RC" -eq 0 ] || fail "curl through proxy_protocol: true failed ($CURL_RC): $(cat "$CURL_ERR"); nginx: $(nginx_errors_since "$ERR_MARK" | tail -n 2)"
grep -q -x 'ok 127.0.0.1' "$CURL_OUT" ||
    fail "nginx did not answer with the PROXY source address: $(head -c 200 "$CURL_OUT")"
CURL_PORT=$(sed -n 's/^curl_local_port=\([0-9][0-9]*\)$/\1/p' "$CURL_OUT")
[ -n "$CURL_PORT" ] || fail "curl did not report its local port"
pass "nginx answered \"ok 127.0.0.1\" (\$proxy_protocol_addr)"

# The client's source port, as mtlsproxy logged it (peer=) and curl used it,
# is what nginx read from the header; the TCP peer nginx sees is the proxy.
assert_log_contains ' access ' 'listener=pp' "peer=127\.0\.0\.1:$CURL_PORT " \
    'subject="CN=orders,OU=payments,O=Demo Corp"' 'bytes_out=[1-9]'
PEER_PORT=$(new_log_lines | grep ' access ' | grep 'listener=pp' |
    sed -n 's/.* peer=127\.0\.0\.1:\([0-9][0-9]*\) .*/\1/p' | tail -n 1)
[ "$PEER_PORT" = "$CURL_PORT" ] || fail "mtlsproxy logged peer port $PEER_PORT, curl used $CURL_PORT"
for i in $(seq 30); do
	grep -q "^pp=127\.0\.0\.1:$PEER_PORT " "$NGX/access.log" 2>/dev/null && break
	sleep 0.1
done
LINE=$(grep "^pp=127\.0\.0\.1:$PEER_PORT " "$NGX/access.log") ||
    fail "nginx access log has no pp=127.0.0.1:$PEER_PORT line: $(tail -n 3 "$NGX/access.log")"
printf '%s\n' "$LINE" | grep -q -E ' tcp=127\.0\.0\.1:[0-9]+ "GET / HTTP/1\.1" 200$' ||
    fail "unexpected nginx access line: $LINE"
TCP_PORT=$(printf '%s\n' "$LINE" | sed -n 's/.* tcp=127\.0\.0\.1:\([0-9]*\) .*/\1/p')
[ "$TCP_PORT" != "$PEER_PORT" ] ||
    fail "nginx's own TCP peer port equals the client's ($TCP_PORT): the header was not what nginx used"
if nginx_errors_since "$ERR_MARK" | grep -q 'broken header'; then
	fail "nginx called the PROXY header broken: $(nginx_errors_since "$ERR_MARK" | grep -m1 'broken header')"
fi
pass "nginx logged the client's source port $PEER_PORT from the header (its TCP peer: port $TCP_PORT)"

# A second client on the same listener gets its own header.
curl_get "$PORT" --cert "$PKI/billing.pem" -w 'curl_local_port=%{local_port}\n'
[ "$CURL_RC" -eq 0 ] || fail "second curl failed ($CURL_RC): $(cat "$CURL_ERR")"
CURL_PORT2=$(sed -n 's/^curl_local_port=\([0-9][0-9]*\)$/\1/p' "$CURL_OUT")
for i in $(seq 30); do
	grep -q "^pp=127\.0\.0\.1:$CURL_PORT2 " "$NGX/access.log" 2>/dev/null && break
	sleep 0.1
done
grep -q "^pp=127\.0\.0\.1:$CURL_PORT2 .* 200$" "$NGX/access.log" ||
    fail "nginx access log has no line for the second client (port $CURL_PORT2)"
pass "second client: its own source port $CURL_PORT2"

# An IPv6 client in front of an IPv4 backend connection: the header says
# TCP over IPv6 and nginx reports ::1.
if [ -n "$PORT6" ]; then
	curl -sS --max-time 10 --resolve "localhost:$PORT6:[::1]" \
	    --cacert "$PKI/root-ca.crt" --cert "$PKI/orders.crt" \
	    --key "$PKI/orders.key" -w 'curl_local_port=%{local_port}\n' \
	    "https://localhost:$PORT6/" >"$CURL_OUT" 2>"$CURL_ERR" ||
	    fail "curl to [::1]:$PORT6 failed: $(cat "$CURL_ERR")"
	grep -q -x 'ok ::1' "$CURL_OUT" ||
	    fail "IPv6 client: nginx said $(head -c 200 "$CURL_OUT")"
	CURL_PORT6=$(sed -n 's/^curl_local_port=\([0-9][0-9]*\)$/\1/p' "$CURL_OUT")
	for i in $(seq 30); do
		grep -q "^pp=::1:$CURL_PORT6 " "$NGX/access.log" 2>/dev/null && break
		sleep 0.1
	done
	grep -q "^pp=::1:$CURL_PORT6 tcp=127\.0\.0\.1:.* 200$" "$NGX/access.log" ||
	    fail "nginx access log has no pp=::1:$CURL_PORT6 line: $(tail -n 2 "$NGX/access.log")"
	pass "IPv6 client [::1]:$CURL_PORT6 reached nginx as ::1 over an IPv4 connection"
else
	log "SKIP (IPv6 part): ::1 cannot be bound on this machine"
fi

# --------------------------------------- without the header: nginx refuses

ERR_MARK=$(wc -l <"$NGX/error.log")
log_mark
curl_get "$PORT_OFF" --cert "$PKI/orders.crt" --key "$PKI/orders.key"
[ "$CURL_RC" -ne 0 ] || fail "nginx (listen ... proxy_protocol) answered a request without a PROXY header: $(head -c 200 "$CURL_OUT")"
for i in $(seq 30); do
	nginx_errors_since "$ERR_MARK" | grep -q 'broken header' && break
	sleep 0.1
done
# The message quotes the request it got, newlines and all.
nginx_errors_since "$ERR_MARK" | tr '\r\n' '  ' |
    grep -q 'broken header: "GET / HTTP/1\.1 .* while reading PROXY protocol' ||
    fail "nginx error log does not say broken header: $(nginx_errors_since "$ERR_MARK" | tail -n 3)"
assert_log_contains ' access ' 'listener=nopp' 'subject="CN=orders,OU=payments,O=Demo Corp"'
pass "proxy_protocol off: nginx refused with \"broken header\" (curl exit $CURL_RC)"

# ------------------------------------------ the SSL_CN TLV holds no control byte

s_client_send "$PPCN_LISTEN" "" "cn ok" -cert "$C/evil.crt" -key "$C/evil.key"
grep -q -F 'cn ok' "$SCLIENT_OUT" ||
    fail "no answer through the PROXY v2 reader (rc $SCLIENT_RC): $(grep -v '^depth=\|^verify' "$SCLIENT_ERR" | head -n 3); reader: $(cat "$TMPDIR/cn.log" 2>/dev/null)"
GOT=$(tail -n 1 "$TMPDIR/cn.log")
# evil\0D\0AX-Injected: 1\01\7F\5Cz Zoë
WANT=$(printf 'evil\\0D\\0AX-Injected: 1\\01\\7F\\5Cz Zo\303\253' | od -An -tx1 | tr -d ' \n')
[ "$GOT" != "$WANT_RAW" ] || fail "the SSL_CN TLV carries the CN's raw control bytes ($GOT)"
[ "$GOT" = "$WANT" ] || fail "SSL_CN TLV is [$GOT] (hex), want [$WANT] (evil\\0D\\0AX-Injected: 1\\01\\7F\\5Cz Zoë)"
pass "SSL_CN TLV: control bytes and the backslash as \\XX, UTF-8 kept"

# ------------------------------------------------------------------ stop

stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
kill -TERM "$NGINX_PID" 2>/dev/null
for i in $(seq 50); do
	kill -0 "$NGINX_PID" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$NGINX_PID" 2>/dev/null && fail "nginx pid $NGINX_PID still running 5 s after SIGTERM"
wait "$NGINX_PID" 2>/dev/null
untrack "$NGINX_PID"
