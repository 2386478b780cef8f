# Helpers for the http-mode integration tests (20-26); sourced after lib.sh.
#
#   start_http_backend PORT [--raw FILE | --silent]   http-backend.js on PORT
#   config_http_listener NAME PORT BACKEND [CLIENT_AUTH_LINES] [LISTENER_LINES]
#                                   like config_listener, with mode: http;
#                                   LISTENER_LINES (indented by 4) go into the
#                                   listener (headers:, max_header_size:);
#                                   $HTTP_TIMEOUTS_EXTRA (indented by 6) into
#                                   its timeouts block
#   hcurl PORT PATH [curl options...]   curl https://localhost:PORT/PATH with
#                                   orders' certificate unless --cert is given
#                                   ($HC_OUT body, $HC_HDR response head(s),
#                                   $HC_ERR, $HC_RC, $HC_CODE)
#   hclient MODE PORT [options...]  http-client.js with the CA and orders'
#                                   certificate ($HCL_OUT JSON, $HCL_ERR, $HCL_RC)
#   jq_py FILE EXPR                 print a python expression over the JSON in
#                                   FILE (j); helpers h(j, name) -> list of the
#                                   values of header name (any case) in
#                                   j["rawHeaders"] (UTF-8 decoded where they
#                                   are UTF-8), rh(resp, name) the same for
#                                   a parsed response's [[name, value]] list
#   assert_eq ACTUAL EXPECTED WHAT  fail with both values when they differ
#   cert_serial F / cert_sha256 F / cert_pem F    expected identity values

# shellcheck disable=SC2034

HTTP_BACKEND_JS=$ITEST_DIR/http-backend.js
HTTP_CLIENT_JS=$ITEST_DIR/http-client.js
ORDERS_SUBJECT="CN=orders,OU=payments,O=Demo Corp"
ORDERS_ISSUER="CN=Demo Intermediate CA,O=Demo Corp"
ORDERS_SAN_DNS="orders.demo.example"
ORDERS_SAN_URI="spiffe://demo.example/ns/prod/orders"

# start_http_backend PORT [ARGS...]: sets HB_PID and HB_LOG.
start_http_backend() {
	local port=$1 pid
	shift
	HB_LOG=$TMPDIR/http-backend-$port.log
	node "$HTTP_BACKEND_JS" "$port" "$@" >>"$HB_LOG" 2>&1 &
	pid=$!
	track "$pid"
	wait_port "$port" "$pid" 5 ||
	    fail "http backend did not start on 127.0.0.1:$port: $(tail -n 5 "$HB_LOG")"
	HB_PID=$pid
}

# config_http_listener NAME PORT BACKEND [CLIENT_AUTH_LINES] [LISTENER_LINES]
config_http_listener() {
	local name=$1 port=$2 backend=$3 extra=${4:-} lextra=${5:-}
	cat <<EOF
  - name: $name
    listen: "127.0.0.1:$port"
    tls:
      cert: $PKI/server-fullchain.crt
      key: $PKI/server.key
    client_auth:
      ca: $PKI/client-ca.pem
EOF
	[ -n "$extra" ] && printf '%s\n' "$extra"
	cat <<EOF
    backend:
      address: $backend
      mode: http
      connect_timeout: 2s
EOF
	[ -n "$lextra" ] && printf '%s\n' "$lextra"
	cat <<EOF
    timeouts:
      handshake: 5s
      idle: 60s
EOF
	[ -n "${HTTP_TIMEOUTS_EXTRA:-}" ] && printf '%s\n' "$HTTP_TIMEOUTS_EXTRA"
	return 0
}

# hcurl PORT PATH [curl options...]
hcurl() {
	local port=$1 path=$2 a certopts=(--cert "$PKI/orders.crt" --key "$PKI/orders.key")
	shift 2
	for a in "$@"; do
		case $a in --cert | --no-cert) certopts=() ;; esac
	done
	local args=()
	for a in "$@"; do
		[ "$a" = --no-cert ] || args+=("$a")
	done
	HC_OUT=$TMPDIR/hc.out
	HC_HDR=$TMPDIR/hc.hdr
	HC_ERR=$TMPDIR/hc.err
	HC_CODE=$(curl -sS --max-time "${HC_MAX_TIME:-20}" --resolve "localhost:$port:127.0.0.1" \
	    --cacert "$PKI/root-ca.crt" ${certopts[@]+"${certopts[@]}"} \
	    -D "$HC_HDR" -o "$HC_OUT" -w '%{http_code}' \
	    ${args[@]+"${args[@]}"} "https://localhost:$port$path" 2>"$HC_ERR")
	HC_RC=$?
}

# hclient MODE PORT [options...]: http-client.js as orders unless --cert or
# --no-cert is given.
hclient() {
	local mode=$1 port=$2 a certopts=(--cert "$PKI/orders.crt" --key "$PKI/orders.key")
	shift 2
	local args=()
	for a in "$@"; do
		case $a in
		--no-cert) certopts=() ;;
		--cert) certopts=(); args+=("$a") ;;
		*) args+=("$a") ;;
		esac
	done
	HCL_OUT=$TMPDIR/hcl.json
	HCL_ERR=$TMPDIR/hcl.err
	timeout -k 2 "${HCL_TIMEOUT:-40}" node "$HTTP_CLIENT_JS" "$mode" "$port" \
	    --ca "$PKI/root-ca.crt" ${certopts[@]+"${certopts[@]}"} ${args[@]+"${args[@]}"} \
	    >"$HCL_OUT" 2>"$HCL_ERR"
	HCL_RC=$?
}

# jq_py FILE EXPR: evaluate EXPR with j = the JSON in FILE; print str()
# (lists one item a line).
jq_py() {
	python3 - "$1" "$2" <<'PY'
import json, sys
def u8(v):
    # Node hands header bytes over as latin1 characters: make UTF-8 text
    try:
        return v.encode("latin1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return v
def h(j, name):
    r = j["rawHeaders"]
    return [u8(r[i + 1]) for i in range(0, len(r), 2) if r[i].lower() == name.lower()]
def names(j):
    r = j["rawHeaders"]
    return [r[i] for i in range(0, len(r), 2)]
def rh(resp, name):
    return [v for (n, v) in resp["headers"] if n.lower() == name.lower()]
try:
    with open(sys.argv[1], encoding="utf-8") as f:
        j = json.load(f)
except Exception as e:
    print("<not JSON: %s>" % e)
    sys.exit(3)
v = eval(sys.argv[2])
if isinstance(v, list):
    for x in v:
        print(x)
elif v is None:
    print("None")
else:
    print(v)
PY
}

# assert_eq ACTUAL EXPECTED WHAT
assert_eq() {
	[ "$1" = "$2" ] || fail "$3: expected [$2], got [$1]"
}

cert_serial() {
	openssl x509 -in "$1" -noout -serial | sed 's/^serial=//'
}

cert_sha256() {
	openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1
}

cert_sha1() {
	openssl x509 -in "$1" -outform DER | sha1sum | cut -d' ' -f1
}

# cert_pem F: the certificate alone, as PEM_write_X509 writes it.
cert_pem() {
	openssl x509 -in "$1"
}

# urldecode: stdin -> stdout, %XX decoded (+ left alone).
urldecode() {
	python3 -c 'import sys, urllib.parse; sys.stdout.write(urllib.parse.unquote(sys.stdin.read()))'
}

# headers_json_get PORT PATH [curl options...]: GET the backend's /headers
# through the proxy into $TMPDIR/h.json ($HJ); fail unless 200.
headers_json_get() {
	local port=$1 path=$2
	shift 2
	hcurl "$port" "$path" "$@"
	[ "$HC_RC" -eq 0 ] || fail "curl $path failed ($HC_RC): $(cat "$HC_ERR")"
	[ "$HC_CODE" = 200 ] || fail "curl $path: status $HC_CODE, body: $(head -c 300 "$HC_OUT")"
	HJ=$TMPDIR/h.json
	cp "$HC_OUT" "$HJ"
	jq_py "$HJ" 'j["url"]' >/dev/null || fail "curl $path: the answer is not the backend's JSON: $(head -c 300 "$HJ")"
}

# hval NAME: the values of header NAME the backend saw in $HJ (one a line).
hval() {
	jq_py "$HJ" "h(j, '$1')"
}

# hcount NAME: how many NAME headers (any case) the backend saw in $HJ.
hcount() {
	jq_py "$HJ" "len(h(j, '$1'))"
}

# assert_header NAME VALUE: the backend saw exactly one NAME, equal to VALUE.
assert_header() {
	local n v
	n=$(hcount "$1")
	v=$(hval "$1")
	[ "$n" = 1 ] || fail "backend saw $n '$1' header(s), expected exactly 1: [$v]; all names: $(jq_py "$HJ" 'names(j)' | tr '\n' ' ')"
	[ "$v" = "$2" ] || fail "backend saw '$1: $v', expected '$1: $2'"
}

# assert_no_header NAME: the backend saw no NAME header.
assert_no_header() {
	local n
	n=$(hcount "$1")
	[ "$n" = 0 ] || fail "backend saw $n '$1' header(s), expected none: [$(hval "$1" | tr '\n' '|')]"
}
