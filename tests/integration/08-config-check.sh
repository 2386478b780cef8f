#!/usr/bin/env bash
# `mtlsproxy -t -c FILE` checks a config like `nginx -t`: 0 for a good one;
# 1 for a bad one with file:line:col and a hint. -h and -V exit 0.
. "$(dirname -- "$0")/lib.sh"

P1=$(free_port)
P2=$(free_port)
B=$(free_port)

# A config using most of the documented keys.
cat >"$TMPDIR/good.yaml" <<YAML
workers: 2
drain_timeout: 5s
log:
  level: info
  format: json
  access: true
listeners:
  - name: api
    listen: "127.0.0.1:$P1"
    tls:
      cert: $PKI/server-fullchain.crt
      key: $PKI/server-enc.key
      key_passphrase_file: $PKI/server-key.pass
      min_version: TLSv1.2
    client_auth:
      ca: $PKI/client-ca.pem
      crl: $PKI/crl.pem
      verify_depth: 4
      partial_chain: false
      client_eku: if_present
      allow:
        subject_cn: [orders, billing]
        subject_ou: [payments]
        subject_o: ["Demo Corp"]
        san_dns: [orders.demo.example]
        san_uri: ["spiffe://demo.example/ns/prod/*"]
    backend:
      address: ["127.0.0.1:$B", "127.0.0.1:$((B + 1))"]
      mode: tcp
      connect_timeout: 2s
    timeouts:
      handshake: 10s
      idle: 300s
    max_connections: 1000
  - name: partner
    listen: "127.0.0.1:$P2"
    tls:
      pkcs12: $PKI/server.p12
      pkcs12_passphrase_file: $PKI/server-p12.pass
      min_version: TLSv1.3
    client_auth:
      ca: $PKI/client-ca.pem
      trusted_certs: [$PKI/partner.crt]
      crl: $PKI/crl.der
      client_eku: required
    backend:
      address: "127.0.0.1:$B"
      mode: tcp
YAML
"$MTLSPROXY" -t -c "$TMPDIR/good.yaml" >"$TMPDIR/good.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] || fail "-t on a good config exited $rc: $(cat "$TMPDIR/good.out")"
port_accepts "$P1" && fail "-t left something listening on 127.0.0.1:$P1"
pass "-t good.yaml: $(tail -n 1 "$TMPDIR/good.out")"

# A typo'd key: line 12, column 7 (the key's first character).
cat >"$TMPDIR/typo.yaml" <<YAML
workers: 2
log:
  level: info
listeners:
  - name: api
    listen: "127.0.0.1:$P1"
    tls:
      cert: $PKI/server-fullchain.crt
      key: $PKI/server.key
    client_auth:
      ca: $PKI/client-ca.pem
      verfy_depth: 3
    backend:
      address: "127.0.0.1:$B"
      mode: tcp
YAML
"$MTLSPROXY" -t -c "$TMPDIR/typo.yaml" >"$TMPDIR/typo.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "-t on a config with a typo exited $rc, want 1: $(cat "$TMPDIR/typo.out")"
grep -q -F "typo.yaml:12:7" "$TMPDIR/typo.out" ||
    fail "the typo is not reported at typo.yaml:12:7: $(cat "$TMPDIR/typo.out")"
grep -q -F "verfy_depth" "$TMPDIR/typo.out" || fail "the message does not name the bad key: $(cat "$TMPDIR/typo.out")"
grep -q -i "did you mean" "$TMPDIR/typo.out" || fail "no 'did you mean' hint: $(cat "$TMPDIR/typo.out")"
grep -q -i "did you mean.*verify_depth" "$TMPDIR/typo.out" ||
    fail "the hint does not suggest verify_depth: $(cat "$TMPDIR/typo.out")"
pass "typo: $(grep -m1 'typo.yaml:12:7' "$TMPDIR/typo.out")"

# The daemon refuses to start with it, too.
timeout 10 "$MTLSPROXY" -c "$TMPDIR/typo.yaml" >"$TMPDIR/typo-run.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "mtlsproxy -c with a typo exited $rc, want 1"
grep -q -F "typo.yaml:12:7" "$TMPDIR/typo-run.out" || fail "mtlsproxy -c: the typo is not reported"
pass "mtlsproxy -c refuses to start with the typo"

# Several mistakes are all reported in one run, each with its place.
sed -e 's/^  level: info$/  level: loud/' \
    -e "s|ca: $PKI/client-ca.pem|ca: $TMPDIR/missing-ca.pem|" "$TMPDIR/typo.yaml" >"$TMPDIR/multi.yaml"
"$MTLSPROXY" -t -c "$TMPDIR/multi.yaml" >"$TMPDIR/multi.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "-t on a config with several mistakes exited $rc, want 1"
grep -q -F "multi.yaml:3:" "$TMPDIR/multi.out" || fail "bad log level not reported at line 3: $(cat "$TMPDIR/multi.out")"
grep -q -F "loud" "$TMPDIR/multi.out" || fail "the bad level value is not quoted: $(cat "$TMPDIR/multi.out")"
grep -q -F "multi.yaml:12:7" "$TMPDIR/multi.out" ||
    fail "typo not reported at 12:7 alongside the other error: $(cat "$TMPDIR/multi.out")"
pass "several errors in one run: $(grep -c -E 'multi\.yaml:[0-9]+:[0-9]+' "$TMPDIR/multi.out") reported"

# Mistakes in the config and in the files it names come out in one run:
# a typo in a listener's key and a wrong key passphrase (the README's
# example), from -t and from check, each with its place, then the count.
echo 'not the passphrase' >"$TMPDIR/wrong.pass"
sed -e '0,/^    listen:/s//    lisen:/' \
    -e "s|key_passphrase_file: $PKI/server-key.pass|key_passphrase_file: $TMPDIR/wrong.pass|" \
    "$TMPDIR/good.yaml" >"$TMPDIR/both.yaml"
lisen=$(grep -n '^    lisen:' "$TMPDIR/both.yaml" | cut -d: -f1)
kpf=$(grep -n "key_passphrase_file: $TMPDIR/wrong.pass" "$TMPDIR/both.yaml" | cut -d: -f1)
[ -n "$lisen" ] && [ -n "$kpf" ] || fail "test setup: both.yaml lacks the typo or the wrong passphrase file"
"$MTLSPROXY" -t -c "$TMPDIR/both.yaml" >"$TMPDIR/both.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "-t on a config with a typo and a wrong passphrase exited $rc, want 1"
grep -q -E "^$TMPDIR/both\.yaml:$lisen:5: unknown key \"lisen\" in listener \"api\" \(did you mean \"listen\"\?\)" "$TMPDIR/both.out" ||
    fail "-t: the typo is not reported at line $lisen: $(cat "$TMPDIR/both.out")"
grep -q -E "^$TMPDIR/both\.yaml:$kpf:[0-9]+: cannot decrypt key file $PKI/server-enc\.key: wrong passphrase in $TMPDIR/wrong\.pass" "$TMPDIR/both.out" ||
    fail "-t: the wrong passphrase is not reported beside the typo: $(cat "$TMPDIR/both.out")"
# The typo's "did you mean" says it all: "listen" is not reported missing.
grep -q -F 'missing required key' "$TMPDIR/both.out" &&
    fail "-t: the typo is also reported as a missing key: $(cat "$TMPDIR/both.out")"
[ "$(wc -l <"$TMPDIR/both.out")" -eq 3 ] ||
    fail "-t: want the typo, the passphrase and the summary, got: $(cat "$TMPDIR/both.out")"
tail -n 1 "$TMPDIR/both.out" | grep -q -x -F "mtlsproxy: 2 errors in $TMPDIR/both.yaml" ||
    fail "-t: the summary is not '2 errors': $(tail -n 1 "$TMPDIR/both.out")"
"$MTLSPROXY" check -c "$TMPDIR/both.yaml" >"$TMPDIR/both-check.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "check on a config with a typo and a wrong passphrase exited $rc, want 1"
grep -q -F 'wrong passphrase' "$TMPDIR/both-check.out" && grep -q -F 'unknown key "lisen"' "$TMPDIR/both-check.out" ||
    fail "check does not report both the typo and the wrong passphrase: $(cat "$TMPDIR/both-check.out")"
grep -q -F 'missing required key' "$TMPDIR/both-check.out" &&
    fail "check: the typo is also reported as a missing key: $(cat "$TMPDIR/both-check.out")"
pass "a typo and a wrong key passphrase reported in one run, by -t and by check"

# Errors come in file order, though the files are loaded after the whole
# configuration is read: a wrong passphrase in the first listener, then a
# typo in the second; -t and check alike.
sed -e "s|key_passphrase_file: $PKI/server-key.pass|key_passphrase_file: $TMPDIR/wrong.pass|" \
    -e '/name: partner/,$s/^      min_version: TLSv1.3$/      min_vers: TLSv1.3/' \
    "$TMPDIR/good.yaml" >"$TMPDIR/order.yaml"
kpf=$(grep -n "key_passphrase_file: $TMPDIR/wrong.pass" "$TMPDIR/order.yaml" | cut -d: -f1)
typo=$(grep -n '^      min_vers:' "$TMPDIR/order.yaml" | cut -d: -f1)
[ -n "$kpf" ] && [ -n "$typo" ] && [ "$kpf" -lt "$typo" ] || fail "test setup: order.yaml"
"$MTLSPROXY" -t -c "$TMPDIR/order.yaml" >"$TMPDIR/order.out" 2>&1
[ $? -eq 1 ] || fail "-t on order.yaml did not exit 1: $(cat "$TMPDIR/order.out")"
cut -d: -f2 "$TMPDIR/order.out" | head -n 2 | tr '\n' ' ' | grep -q -x "$kpf $typo " ||
    fail "-t: errors not in file order (want lines $kpf, $typo): $(cat "$TMPDIR/order.out")"
"$MTLSPROXY" check -c "$TMPDIR/order.yaml" >"$TMPDIR/order-check.out" 2>&1
[ $? -eq 1 ] || fail "check on order.yaml did not exit 1: $(cat "$TMPDIR/order-check.out")"
grep -E '^/' "$TMPDIR/order-check.out" | cut -d: -f2 | tr '\n' ' ' | grep -q -x "$kpf $typo " ||
    fail "check: errors not in file order (want lines $kpf, $typo): $(cat "$TMPDIR/order-check.out")"
pass "errors in file order: line $kpf (a file) before line $typo (a typo), from -t and check"

# The same inside one listener: a typo in its client_auth section and a
# wrong passphrase in its tls section; a bad value in its tls section and a
# missing CA file in its client_auth section. The sound section's files are
# still loaded, so each run reports both.
sed -e '0,/^      verify_depth: 4$/s//      verfy_depth: 4/' \
    -e "s|key_passphrase_file: $PKI/server-key.pass|key_passphrase_file: $TMPDIR/wrong.pass|" \
    "$TMPDIR/good.yaml" >"$TMPDIR/inner1.yaml"
"$MTLSPROXY" -t -c "$TMPDIR/inner1.yaml" >"$TMPDIR/inner1.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "-t on inner1.yaml exited $rc, want 1"
grep -q -F 'unknown key "verfy_depth"' "$TMPDIR/inner1.out" && grep -q -F 'wrong passphrase' "$TMPDIR/inner1.out" ||
    fail "a client_auth typo hides the same listener's wrong passphrase: $(cat "$TMPDIR/inner1.out")"
sed -e '0,/^      min_version: TLSv1.2$/s//      min_version: TLSv1.9/' \
    -e "0,\|ca: $PKI/client-ca.pem|s||ca: $TMPDIR/missing-ca.pem|" \
    "$TMPDIR/good.yaml" >"$TMPDIR/inner2.yaml"
"$MTLSPROXY" check -c "$TMPDIR/inner2.yaml" >"$TMPDIR/inner2.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "check on inner2.yaml exited $rc, want 1"
grep -q -F 'TLSv1.9' "$TMPDIR/inner2.out" && grep -q -E "cannot read CA file $TMPDIR/missing-ca\.pem" "$TMPDIR/inner2.out" ||
    fail "a bad tls value hides the same listener's missing CA file: $(cat "$TMPDIR/inner2.out")"
pass "one listener: a mistake in one section and a bad file in the other, reported together"

# A CA file that does not exist: named, with its line.
sed -e 's/verfy_depth/verify_depth/' \
    -e "s|ca: $PKI/client-ca.pem|ca: $TMPDIR/missing-ca.pem|" "$TMPDIR/typo.yaml" >"$TMPDIR/noca.yaml"
"$MTLSPROXY" -t -c "$TMPDIR/noca.yaml" >"$TMPDIR/noca.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "-t with a missing CA file exited $rc, want 1"
grep -q -E "noca\.yaml:11:[0-9]+.*missing-ca\.pem" "$TMPDIR/noca.out" ||
    fail "missing CA file not reported at noca.yaml:11 with its path: $(cat "$TMPDIR/noca.out")"
pass "missing CA file: $(grep -m1 'missing-ca' "$TMPDIR/noca.out")"

# A config file that does not exist.
"$MTLSPROXY" -t -c "$TMPDIR/nonexistent.yaml" >"$TMPDIR/none.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || fail "-t on a missing config file exited $rc, want 1"
grep -q -F "nonexistent.yaml" "$TMPDIR/none.out" || fail "a missing config file is not named: $(cat "$TMPDIR/none.out")"
pass "missing config file"

# -h and -V
"$MTLSPROXY" -h >"$TMPDIR/h.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] || fail "-h exited $rc"
grep -q -e '-c' "$TMPDIR/h.out" && grep -q -e '-t' "$TMPDIR/h.out" ||
    fail "-h does not describe -c and -t: $(cat "$TMPDIR/h.out")"
"$MTLSPROXY" -V >"$TMPDIR/v.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] || fail "-V exited $rc"
grep -q -E '^mtlsproxy [0-9]+\.[0-9]+\.[0-9]+' "$TMPDIR/v.out" ||
    fail "-V does not print 'mtlsproxy X.Y.Z': $(cat "$TMPDIR/v.out")"
want=$(sed -n 's/^#define MTLSPROXY_VERSION[[:space:]]*"\(.*\)"/\1/p' "$ROOT/src/mtlsproxy.h")
if [ -n "$want" ]; then
	grep -q -F "mtlsproxy $want" "$TMPDIR/v.out" ||
	    fail "-V prints $(head -n 1 "$TMPDIR/v.out"), the header says $want"
fi
pass "-h, -V: $(head -n 1 "$TMPDIR/v.out")"

# A usage error exits 2 (a configuration error exits 1) with one line
# saying what is wrong and where to look, not the whole help.
# usage_fails WHAT ARGS...: exit 2, stderr is exactly WHAT and the hint
usage_fails() {
	local want=$1
	shift
	"$MTLSPROXY" "$@" >"$TMPDIR/usage.out" 2>"$TMPDIR/usage.err"
	rc=$?
	[ "$rc" -eq 2 ] || fail "mtlsproxy $*: exited $rc, want 2: $(cat "$TMPDIR/usage.err")"
	[ ! -s "$TMPDIR/usage.out" ] || fail "mtlsproxy $*: wrote to stdout: $(cat "$TMPDIR/usage.out")"
	printf 'mtlsproxy: %s\ntry '"'"'mtlsproxy --help'"'"'\n' "$want" | cmp -s - "$TMPDIR/usage.err" ||
	    fail "mtlsproxy $*: stderr is not 'mtlsproxy: $want' and the --help hint: $(cat "$TMPDIR/usage.err")"
	pass "mtlsproxy $*: exit 2, $want"
}
usage_fails 'unknown option "--no-such-option"' --no-such-option
usage_fails 'unknown option "-x"' -t -x
usage_fails 'option "-c" needs an argument (the configuration file)' -c
usage_fails 'option "--config" needs an argument (the configuration file)' --config
usage_fails 'unexpected argument "extra"' -t -c "$TMPDIR/good.yaml" extra
usage_fails 'unexpected argument "extra"' -V extra
usage_fails 'option "--help" takes no argument' --help=1

# What a start checks after loading must fail -t and check as well: an
# unknown user or group, "group" without "user", an admin endpoint on a
# listener's address. Each at its place in the file.
sed -e 's/verfy_depth/verify_depth/' "$TMPDIR/typo.yaml" >"$TMPDIR/base.yaml"
# variant NAME TOP_LINES: base.yaml with TOP_LINES after "workers: 2"
variant() {
	{
		printf 'workers: 2\n%s\n' "$2"
		tail -n +2 "$TMPDIR/base.yaml"
	} >"$TMPDIR/$1.yaml"
}
# t_fails NAME PLACE TEXT: -t and check exit 1 naming NAME.yaml:PLACE and TEXT;
# a start fails too
t_fails() {
	local f=$TMPDIR/$1.yaml
	"$MTLSPROXY" -t -c "$f" >"$TMPDIR/$1.t.out" 2>&1
	rc=$?
	[ "$rc" -eq 1 ] || fail "$1: -t exited $rc, want 1: $(cat "$TMPDIR/$1.t.out")"
	grep -q -F "$1.yaml:$2: $3" "$TMPDIR/$1.t.out" ||
	    fail "$1: -t does not say '$1.yaml:$2: $3': $(cat "$TMPDIR/$1.t.out")"
	"$MTLSPROXY" check -c "$f" >"$TMPDIR/$1.check.out" 2>&1
	rc=$?
	[ "$rc" -eq 1 ] || fail "$1: check exited $rc, want 1: $(cat "$TMPDIR/$1.check.out")"
	grep -q -F "$1.yaml:$2: error: $3" "$TMPDIR/$1.check.out" ||
	    fail "$1: check does not say '$1.yaml:$2: error: $3': $(cat "$TMPDIR/$1.check.out")"
	timeout 10 "$MTLSPROXY" -c "$f" >"$TMPDIR/$1.run.out" 2>&1
	rc=$?
	[ "$rc" -eq 1 ] || fail "$1: mtlsproxy -c exited $rc, want 1: $(cat "$TMPDIR/$1.run.out")"
	pass "$1: $(grep -m1 -F "$1.yaml:$2" "$TMPDIR/$1.t.out")"
}
variant nouser 'user: mtlsproxy-no-such-user'
t_fails nouser 2:7 'cannot switch to user "mtlsproxy-no-such-user": no such user'
variant nogroup "user: $(id -un)
group: mtlsproxy-no-such-group"
t_fails nogroup 3:8 'cannot switch to group "mtlsproxy-no-such-group": no such group'
variant grouponly "group: $(id -gn)"
t_fails grouponly 2:8 '"group" needs "user" as well'
variant adminsame "admin:
  listen: \"127.0.0.1:$P1\""
t_fails adminsame 3:11 "admin listen address \"127.0.0.1:$P1\" is taken by the listener at line"
variant adminany "admin:
  listen: \"0.0.0.0:$P1\"
  remote: true"
t_fails adminany 3:11 "admin listen address \"0.0.0.0:$P1\" is taken by the listener at line"
# the same port on another address, another port, the current user: fine
variant fine "user: $(id -un)
admin:
  listen: \"127.0.0.2:$P1\""
"$MTLSPROXY" -t -c "$TMPDIR/fine.yaml" >"$TMPDIR/fine.out" 2>&1 ||
    fail "-t on a config with an existing user and an admin endpoint on 127.0.0.2:$P1: $(cat "$TMPDIR/fine.out")"
pass "-t: an existing user, an admin endpoint on the listener's port of another address: valid"

# Port 0 (any free port) is refused for a listener, a backend and the
# admin endpoint: with 2 workers a listener would bind two random ports.
sed -e "s|listen: \"127.0.0.1:$P1\"|listen: \"127.0.0.1:0\"|" "$TMPDIR/base.yaml" >"$TMPDIR/port0.yaml"
t_fails port0 6:13 'invalid listen address "127.0.0.1:0": port 0 is not allowed (it means any free port); ports go from 1 to 65535'
sed -e "s|address: \"127.0.0.1:$B\"|address: \"127.0.0.1:0\"|" "$TMPDIR/base.yaml" >"$TMPDIR/bport0.yaml"
t_fails bport0 14:16 'invalid backend address "127.0.0.1:0": port 0 is not allowed'
variant aport0 'admin:
  listen: "127.0.0.1:0"'
t_fails aport0 3:11 'invalid admin listen address "127.0.0.1:0": port 0 is not allowed'

# Two listeners on one port, one of them on the wildcard address: the second
# bind would fail at start ("Address already in use"), so -t, check and a
# start refuse it at the second listener's listen, naming the first.
# [::] beside 0.0.0.0 is fine: IPv6 sockets are bound v6only.
second_listener() {
	cat "$TMPDIR/base.yaml"
	sed -n '/^  - name: api$/,$p' "$TMPDIR/base.yaml" |
	    sed -e 's/name: api/name: web/' -e "s|listen: \"127.0.0.1:$P1\"|listen: \"$1\"|"
}
second_listener "0.0.0.0:$P1" >"$TMPDIR/overlap.yaml"
t_fails overlap 17:13 "listen address \"0.0.0.0:$P1\" overlaps the listener \"api\" at line 5 (\"127.0.0.1:$P1\"): a wildcard address takes the port on every address; give one of them another port"
second_listener "[::]:$P1" >"$TMPDIR/v6any.yaml"
"$MTLSPROXY" -t -c "$TMPDIR/v6any.yaml" >"$TMPDIR/v6any.out" 2>&1 ||
    fail "-t on listeners 127.0.0.1:$P1 and [::]:$P1: $(cat "$TMPDIR/v6any.out")"
pass "-t: 127.0.0.1:$P1 beside [::]:$P1 is valid (v6only)"

# The README's example of a config mistake prints what the README says:
# its minimal configuration with "listen" misspelt and a key_passphrase_file
# holding the wrong passphrase, /etc/mtlsproxy standing for $TMPDIR/etc.
mkdir -p "$TMPDIR/etc"
cp "$PKI/server-fullchain.crt" "$PKI/client-ca.pem" "$TMPDIR/etc/"
cp "$PKI/server-enc.key" "$TMPDIR/etc/server.key"
echo 'not the passphrase' >"$TMPDIR/etc/key.pass"
sed -n '/^## A minimal configuration/,/^```$/{/^listeners:/,/^```$/p}' "$ROOT/README.md" |
    sed -e '$d' -e 's/^    listen:/    lisen:/' \
	-e '/^      key: /a\      key_passphrase_file: key.pass' \
	-e "s|/etc/mtlsproxy|$TMPDIR/etc|g" >"$TMPDIR/etc/mtlsproxy.yaml"
grep -q '^    lisen:' "$TMPDIR/etc/mtlsproxy.yaml" && grep -q 'key_passphrase_file' "$TMPDIR/etc/mtlsproxy.yaml" ||
    fail "test setup: the README's minimal configuration not found: $(cat "$TMPDIR/etc/mtlsproxy.yaml")"
sed -n '/^\$ mtlsproxy -t -c \/etc\/mtlsproxy\/mtlsproxy.yaml$/,/^```$/p' "$ROOT/README.md" |
    sed -e '1d' -e '$d' >"$TMPDIR/readme-want.out"
[ -s "$TMPDIR/readme-want.out" ] || fail "test setup: the README's example output not found"
(cd "$TMPDIR" && env -u CREDENTIALS_DIRECTORY "$MTLSPROXY" -t -c "$TMPDIR/etc/mtlsproxy.yaml") 2>&1 |
    sed "s|$TMPDIR/etc|/etc/mtlsproxy|g" >"$TMPDIR/readme-got.out"
diff "$TMPDIR/readme-want.out" "$TMPDIR/readme-got.out" >"$TMPDIR/readme.diff" ||
    fail "the README's example output is not what mtlsproxy prints: $(cat "$TMPDIR/readme.diff")"
pass "the README's config-mistake example is what mtlsproxy prints"
