#!/usr/bin/env bash
# What a new user trips over, from a fresh clone: each mistake is said in
# words that name the fix.
#  (a) -t: cert and key swapped, a PKCS#12 bundle or a CSR where a PEM
#      file belongs, an empty CA file: said what the file holds instead;
#  (b) -t: a relative path written from the current directory, with the
#      configuration in another folder: said that paths are taken from the
#      configuration file's folder;
#  (c) conf/mtlsproxy.yaml: its first lines say why -t fails on it as
#      shipped, and their recipe makes a copy that passes with the demo PKI;
#  (d) a refused handshake of a client that speaks plain HTTP, or only
#      TLS 1.1: the reason names the cause, not OpenSSL's "http request";
#  (e) explain --cert with a client's .p12 or .key: said what the file is;
#      verify_depth too small: the chain is "cut off", not "not a trust
#      anchor";
#  (f) "mtlsproxy test" or "mtlsproxy FILE": the usage error says how;
#  (g) a reload retry after a failed reload is logged as a retry.
. "$(dirname -- "$0")/lib.sh"

P=$(free_port)
B=$(free_port)

# listener_conf FILE TLS_LINES CLIENT_AUTH_LINES: a one-listener config.
listener_conf() {
	cat >"$1" <<YAML
listeners:
  - name: api
    listen: "127.0.0.1:$P"
    tls:
$2
    client_auth:
$3
    backend:
      address: "127.0.0.1:$B"
      mode: http
YAML
}

# t_fails NAME REGEX: -t on $TMPDIR/NAME.yaml exits 1 and prints REGEX.
t_fails() {
	local name=$1 re=$2 rc
	"$MTLSPROXY" -t -c "$TMPDIR/$name.yaml" >"$TMPDIR/$name.out" 2>&1
	rc=$?
	[ "$rc" -eq 1 ] || fail "$name: -t exited $rc, want 1: $(cat "$TMPDIR/$name.out")"
	grep -q -E -- "$re" "$TMPDIR/$name.out" ||
	    fail "$name: -t does not say [$re]: $(cat "$TMPDIR/$name.out")"
}

TLS_OK="      cert: $PKI/server-fullchain.crt
      key: $PKI/server.key"
CA_OK="      ca: $PKI/client-ca.pem"

# --- (a) files of the wrong kind
listener_conf "$TMPDIR/swapped.yaml" "      cert: $PKI/server.key
      key: $PKI/server-fullchain.crt" "$CA_OK"
t_fails swapped 'swapped\.yaml:5:13: no certificate found in certificate file [^ ]*server\.key: it holds a private key, not a certificate \(are "cert" and "key" swapped\?\)'

listener_conf "$TMPDIR/keyp12.yaml" "      cert: $PKI/server-fullchain.crt
      key: $PKI/server.p12" "$CA_OK"
t_fails keyp12 'keyp12\.yaml:6:12: no private key found in [^ ]*server\.p12: it is a PKCS#12 bundle .*name it in "pkcs12"'

openssl req -new -key "$PKI/server.key" -subj /CN=localhost \
    -out "$TMPDIR/server.csr" 2>/dev/null || fail "openssl req -new failed"
listener_conf "$TMPDIR/csr.yaml" "      cert: $TMPDIR/server.csr
      key: $PKI/server.key" "$CA_OK"
t_fails csr 'csr\.yaml:5:13: .*server\.csr: it holds a certificate signing request \(CSR\), not a certificate'

: >"$TMPDIR/empty.pem"
listener_conf "$TMPDIR/emptyca.yaml" "$TLS_OK" "      ca: $TMPDIR/empty.pem"
t_fails emptyca 'emptyca\.yaml:8:11: no certificate found in CA file [^ ]*empty\.pem: the file is empty'
pass "(a) swapped cert/key, a .p12 as key, a CSR as cert, an empty CA: each said"

# --- (b) relative paths, written from the current directory
mkdir -p "$TMPDIR/etc" "$TMPDIR/certs"
cp "$PKI/server-fullchain.crt" "$PKI/server.key" "$PKI/client-ca.pem" "$TMPDIR/certs/"
listener_conf "$TMPDIR/etc/rel.yaml" "      cert: certs/server-fullchain.crt
      key: certs/server.key" "      ca: certs/client-ca.pem"
out=$(cd "$TMPDIR" && "$MTLSPROXY" -t -c etc/rel.yaml 2>&1)
rc=$?
[ "$rc" -eq 1 ] || fail "(b) -t exited $rc, want 1: $out"
printf '%s\n' "$out" | grep -q -E '^etc/rel\.yaml:5:13: cannot read certificate file etc/certs/server-fullchain\.crt: No such file or directory \(a relative path is taken from the configuration file.s folder etc, not from the current directory; certs/server-fullchain\.crt exists from here' ||
    fail "(b) no hint about relative paths: $out"
# a path that exists nowhere gets no hint
listener_conf "$TMPDIR/etc/rel2.yaml" "      cert: nosuch/server.crt
      key: certs/server.key" "      ca: certs/client-ca.pem"
out=$(cd "$TMPDIR" && "$MTLSPROXY" -t -c etc/rel2.yaml 2>&1)
printf '%s\n' "$out" | grep 'nosuch/server\.crt' | grep -q 'relative path' &&
    fail "(b) a hint for a file that is nowhere: $out"
pass "(b) a path relative to the current directory: the error says paths are taken from the config's folder"

# --- (c) the shipped example
"$MTLSPROXY" -t -c "$ROOT/conf/mtlsproxy.yaml" >"$TMPDIR/conf.out" 2>&1
first=$(sed -n 1p "$TMPDIR/conf.out" | sed 's/^[^ ]*: //')
if [ ! -e /etc/mtlsproxy/server.crt ]; then
	case $first in
	"cannot read certificate file /etc/mtlsproxy/server.crt: No such file or directory") ;;
	*) fail "(c) -t conf/mtlsproxy.yaml: unexpected first error: $first" ;;
	esac
	grep -q -F "$first" "$ROOT/conf/mtlsproxy.yaml" ||
	    fail "(c) conf/mtlsproxy.yaml does not say why -t fails on it: $first"
fi
# its recipe: the sed lines of the header comment, run from the repository
recipe=$(sed -n '/^#   sed /,/conf\/mtlsproxy.yaml > /p' "$ROOT/conf/mtlsproxy.yaml" | sed 's/^#   *//')
[ -n "$recipe" ] || fail "(c) conf/mtlsproxy.yaml has no recipe to try it with the demo PKI"
recipe=${recipe//build\/try.yaml/$TMPDIR/try.yaml}
(cd "$ROOT" && bash -c "$recipe") || fail "(c) the recipe failed: $recipe"
if [ "$PKI" != "$ROOT/certs-example/out" ]; then
	sed -i "s|$ROOT/certs-example/out/|$PKI/|g" "$TMPDIR/try.yaml"
fi
"$MTLSPROXY" -t -c "$TMPDIR/try.yaml" >"$TMPDIR/try.out" 2>&1 ||
    fail "(c) the example made with its own recipe does not pass -t: $(cat "$TMPDIR/try.out")"
pass "(c) conf/mtlsproxy.yaml says why -t fails as shipped; its recipe passes -t"

# --- (d) refusals of clients that do not speak what the listener does
config_head >"$TMPDIR/proxy.yaml"
config_listener api "$P" "\"127.0.0.1:$B\"" >>"$TMPDIR/proxy.yaml"
start_proxy "$TMPDIR/proxy.yaml"

log_mark
curl -sS --max-time 5 "http://127.0.0.1:$P/" >/dev/null 2>&1
assert_log_contains ' refused ' 'code=tls_error' 'reason="the client sent a plain HTTP request to this TLS port \(it must use https://\)"'
log_mark
echo | timeout -k 2 10 openssl s_client -connect "127.0.0.1:$P" -tls1_1 \
    -cipher 'DEFAULT:@SECLEVEL=0' >/dev/null 2>&1
assert_log_contains ' refused ' 'code=tls_error' "reason=\"unsupported protocol: the client offered only TLS versions below this listener's tls.min_version \\(TLSv1.2\\)\""
pass "(d) plain HTTP and TLS 1.1 clients: the refusal says so"

# --- (e) explain
"$MTLSPROXY" explain -c "$TMPDIR/proxy.yaml" --cert "$PKI/orders.p12" >"$TMPDIR/e1.out" 2>&1
rc=$?
[ "$rc" -eq 2 ] || fail "(e) explain --cert orders.p12 exited $rc, want 2"
grep -q -E 'orders\.p12: it is a PKCS#12 bundle .*openssl pkcs12 -in [^ ]*orders\.p12 -nokeys' "$TMPDIR/e1.out" ||
    fail "(e) explain --cert orders.p12: $(cat "$TMPDIR/e1.out")"
"$MTLSPROXY" explain -c "$TMPDIR/proxy.yaml" --cert "$PKI/orders.key" >"$TMPDIR/e2.out" 2>&1
grep -q -E 'orders\.key: it holds a private key, not a certificate' "$TMPDIR/e2.out" ||
    fail "(e) explain --cert orders.key: $(cat "$TMPDIR/e2.out")"
listener_conf "$TMPDIR/depth0.yaml" "$TLS_OK" "$CA_OK
      verify_depth: 0"
"$MTLSPROXY" explain -c "$TMPDIR/depth0.yaml" --cert "$PKI/orders.crt" >"$TMPDIR/e3.out" 2>&1
grep -q -F 'chain built by OpenSSL (cut off at client_auth.verify_depth 0: OpenSSL stopped before reaching a trust anchor)' "$TMPDIR/e3.out" ||
    fail "(e) verify_depth 0: the chain is not said to be cut off: $(cat "$TMPDIR/e3.out")"
grep -q -E 'not a trust anchor|no trusted issuer' "$TMPDIR/e3.out" &&
    fail "(e) verify_depth 0: blamed on the trust anchor: $(grep -E 'trust anchor|trusted issuer' "$TMPDIR/e3.out")"
grep -q -E '^  FAIL  verify_depth  chain too long: .*verify_depth \(0\)' "$TMPDIR/e3.out" ||
    fail "(e) verify_depth 0: no FAIL verify_depth line: $(cat "$TMPDIR/e3.out")"
pass "(e) explain: a .p12 or a key as --cert said; a chain cut by verify_depth said"

# --- (f) command line
"$MTLSPROXY" test -c "$TMPDIR/proxy.yaml" >"$TMPDIR/f1.out" 2>&1
rc=$?
[ "$rc" -eq 2 ] || fail "(f) 'mtlsproxy test' exited $rc, want 2"
grep -q 'the commands are check and explain' "$TMPDIR/f1.out" ||
    fail "(f) 'mtlsproxy test': $(cat "$TMPDIR/f1.out")"
"$MTLSPROXY" "$TMPDIR/proxy.yaml" >"$TMPDIR/f2.out" 2>&1
rc=$?
[ "$rc" -eq 2 ] || fail "(f) 'mtlsproxy FILE' exited $rc, want 2"
grep -q -F "is given with -c: -c $TMPDIR/proxy.yaml" "$TMPDIR/f2.out" ||
    fail "(f) 'mtlsproxy FILE': $(cat "$TMPDIR/f2.out")"
pass "(f) a command or a file without -c: the usage error says how"

# check and explain: a usage error is the mistake, the synopsis and where
# the help is (three lines or four), not the whole help text
for args in "check --bogus" "check -c" "explain --cert" "explain -c $TMPDIR/proxy.yaml"; do
	# shellcheck disable=SC2086
	"$MTLSPROXY" $args >"$TMPDIR/f3.out" 2>&1
	rc=$?
	[ "$rc" -eq 2 ] || fail "(f) 'mtlsproxy $args' exited $rc, want 2"
	[ "$(wc -l <"$TMPDIR/f3.out")" -le 4 ] && grep -q "^try 'mtlsproxy ${args%% *} --help'$" "$TMPDIR/f3.out" ||
	    fail "(f) 'mtlsproxy $args': $(cat "$TMPDIR/f3.out")"
done
grep -q -F 'mtlsproxy explain: --cert FILE is required' "$TMPDIR/f3.out" || fail "(f) explain without --cert: $(cat "$TMPDIR/f3.out")"
"$MTLSPROXY" check -c >"$TMPDIR/f3.out" 2>&1
grep -q -F 'mtlsproxy check: -c needs a value' "$TMPDIR/f3.out" || fail "(f) check -c: $(cat "$TMPDIR/f3.out")"
pass "(f) check and explain usage errors: the mistake, the synopsis, and where the help is"

# --- (g) a retry is logged as one
log_mark
cp "$TMPDIR/proxy.yaml" "$TMPDIR/proxy.yaml.good"
sed 's/^      ca: /      caa: /' "$TMPDIR/proxy.yaml.good" >"$TMPDIR/proxy.yaml.new"
mv "$TMPDIR/proxy.yaml.new" "$TMPDIR/proxy.yaml"
assert_log_contains 'info will try the reload again in 1 s$'
assert_log_contains 'info reloading .*proxy\.yaml \(trying again after a failed reload\)$'
mv "$TMPDIR/proxy.yaml.good" "$TMPDIR/proxy.yaml"
assert_log_contains 'info reloaded: generation'
pass "(g) a reload retry is logged as a retry"

stop_proxy
check_sanitizers

# --- (h) an IPv4-mapped IPv6 address is the IPv4 address it holds: a
# listener on [::ffff:127.0.0.1]:P accepts on 127.0.0.1:P (it used to fail
# to bind with "Invalid argument")
MPORT=$(free_port)
MBACK=$(free_port)
start_echo "$MBACK"
{
	config_head
	config_listener mapped "$MPORT" "\"127.0.0.1:$MBACK\"" |
	    sed "s/^    listen: .*/    listen: \"[::ffff:127.0.0.1]:$MPORT\"/"
} >"$TMPDIR/mapped.yaml"
grep -q -F "listen: \"[::ffff:127.0.0.1]:$MPORT\"" "$TMPDIR/mapped.yaml" || fail "(h) test setup"
start_proxy "$TMPDIR/mapped.yaml" "$MPORT"
s_client_send "$MPORT" 'mapped-hello\n' mapped-hello -cert "$PKI/orders.crt" -key "$PKI/orders.key"
grep -q -F mapped-hello "$SCLIENT_OUT" ||
    fail "(h) no echo through a listener on [::ffff:127.0.0.1]:$MPORT: rc $SCLIENT_RC $(tail -n 3 "$SCLIENT_ERR")"
stop_proxy
check_sanitizers
pass "(h) a listener on [::ffff:127.0.0.1]:PORT serves 127.0.0.1:PORT"
