#!/usr/bin/env bash
# The systemd units: `systemd-analyze security --offline=true` rates
# mtlsproxy.service 2.0 or lower (OK), `systemd-analyze verify` accepts both
# units, the paths agree with `make install`, and every system call the
# daemon makes (start, -t, serve, reload, notify, watchdog, stop) is allowed
# by the unit's SystemCallFilter= (found with strace, so the hardening does
# not break it).
. "$(dirname -- "$0")/lib.sh"

UNIT=$ROOT/systemd/mtlsproxy.service
SOCKET=$ROOT/systemd/mtlsproxy.socket
[ -f "$UNIT" ] || fail "missing $UNIT"
[ -f "$SOCKET" ] || fail "missing $SOCKET"
command -v systemd-analyze >/dev/null ||
    fail "systemd-analyze not found (Debian package systemd; scripts/deps.sh installs it)"

# ------------------------------------------------------ exposure score

systemd-analyze security --offline=true --no-pager "$UNIT" >"$TMPDIR/security.txt" 2>&1
line=$(grep 'Overall exposure level' "$TMPDIR/security.txt") ||
    fail "systemd-analyze security printed no overall level: $(tail -n 5 "$TMPDIR/security.txt")"
score=$(printf '%s\n' "$line" | sed -n 's/.*: \([0-9][0-9]*\.[0-9]\) .*/\1/p')
[ -n "$score" ] || fail "cannot read the exposure level from: $line"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' ||
    fail "exposure level $score, want 2.0 or lower; weak points: $(grep '✗' "$TMPDIR/security.txt" | sort -k2 | head -n 20)"
printf '%s\n' "$line" | grep -q ' OK ' || fail "not rated OK: $line"
pass "systemd-analyze security: $score OK"

# ------------------------------------------ verify, with the built binary

# verify checks that ExecStart= is executable: point it at the build.
sed "s|/usr/local/bin/mtlsproxy|$MTLSPROXY|g" "$UNIT" >"$TMPDIR/mtlsproxy.service"
cp "$SOCKET" "$TMPDIR/mtlsproxy.socket"
(cd "$TMPDIR" && systemd-analyze verify ./mtlsproxy.socket ./mtlsproxy.service) >"$TMPDIR/verify.txt" 2>&1 ||
    fail "systemd-analyze verify: $(cat "$TMPDIR/verify.txt")"
[ ! -s "$TMPDIR/verify.txt" ] || fail "systemd-analyze verify complains: $(cat "$TMPDIR/verify.txt")"
grep -q -x 'Type=notify' "$UNIT" || fail "the service is not Type=notify"
grep -q -x 'ExecReload=/bin/kill -HUP $MAINPID' "$UNIT" || fail "ExecReload does not send SIGHUP"
grep -q -E '^WatchdogSec=[1-9]' "$UNIT" || fail "no WatchdogSec="
grep -q -x 'FileDescriptorName=api' "$SOCKET" || fail "the socket is not named api"
pass "systemd-analyze verify: both units load"

# make install puts the binary where the unit runs it.
rm -rf "$TMPDIR/destdir"
make -s -C "$ROOT" -o "$MTLSPROXY" install B="$(dirname -- "$MTLSPROXY")" DESTDIR="$TMPDIR/destdir" \
    >"$TMPDIR/install.txt" 2>&1 || fail "make install into DESTDIR failed: $(tail -n 5 "$TMPDIR/install.txt")"
for f in usr/local/bin/mtlsproxy usr/local/lib/systemd/system/mtlsproxy.service \
    usr/local/lib/systemd/system/mtlsproxy.socket usr/local/lib/sysusers.d/mtlsproxy.conf; do
	[ -e "$TMPDIR/destdir/$f" ] || fail "make install did not install /$f"
done
exec_start=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$TMPDIR/destdir/usr/local/lib/systemd/system/mtlsproxy.service")
[ "$exec_start" = /usr/local/bin/mtlsproxy ] || fail "installed unit runs $exec_start, make install put the binary in /usr/local/bin"
rm -rf "$TMPDIR/destdir"
make -s -C "$ROOT" -o "$MTLSPROXY" install B="$(dirname -- "$MTLSPROXY")" DESTDIR="$TMPDIR/destdir" PREFIX=/usr \
    >"$TMPDIR/install.txt" 2>&1 || fail "make install PREFIX=/usr failed: $(tail -n 5 "$TMPDIR/install.txt")"
grep -q -x 'ExecStart=/usr/bin/mtlsproxy -c /etc/mtlsproxy/mtlsproxy.yaml' \
    "$TMPDIR/destdir/usr/lib/systemd/system/mtlsproxy.service" ||
    fail "with PREFIX=/usr the installed unit does not run /usr/bin/mtlsproxy: $(grep ^Exec "$TMPDIR/destdir/usr/lib/systemd/system/mtlsproxy.service")"
rm -rf "$TMPDIR/destdir"
pass "make install: binary and unit paths agree (PREFIX=/usr/local and /usr)"

# ------------------------------------ system calls vs SystemCallFilter=

if ! command -v strace >/dev/null; then
	fail "strace not found (scripts/deps.sh installs it)"
fi
if ldd "$MTLSPROXY" 2>/dev/null | grep -q -E 'libasan|libubsan'; then
	# The sanitizers' own runtime (LeakSanitizer's ptrace) is not the daemon's.
	log "sanitizer build: the system-call check runs with the plain build only"
	exit 0
fi

# The allowed set: @system-service minus @privileged and @resources, as the
# unit says (the groups are read from the unit, not repeated here), with
# nested groups expanded by systemd-analyze syscall-filter.
SEEN=" "
expand() {
	local t
	for t in "$@"; do
		case $SEEN in *" $t "*) continue ;; esac
		SEEN="$SEEN$t "
		case $t in
		@*) expand $(systemd-analyze syscall-filter --no-pager "$t" |
		    sed -n 's/^    \([@a-z_0-9-]*\)$/\1/p') ;;
		*) printf '%s\n' "$t" ;;
		esac
	done
}
# SystemCallFilter= lines apply in order: the first (an allow list) sets
# the default, later ones add (NAME) or remove (~NAME) system calls.
: >"$TMPDIR/allowed.txt"
: >"$TMPDIR/denied.txt"
n=0
while IFS= read -r spec; do
	n=$((n + 1))
	SEEN=" "
	case $spec in
	"~"*)
		# shellcheck disable=SC2086
		expand ${spec#\~} | sort -u >"$TMPDIR/set.txt"
		comm -23 "$TMPDIR/allowed.txt" "$TMPDIR/set.txt" >"$TMPDIR/tmp.txt"
		cat "$TMPDIR/set.txt" >>"$TMPDIR/denied.txt"
		;;
	*)
		# shellcheck disable=SC2086
		expand $spec | sort -u >"$TMPDIR/set.txt"
		sort -u "$TMPDIR/allowed.txt" "$TMPDIR/set.txt" >"$TMPDIR/tmp.txt"
		;;
	esac
	mv "$TMPDIR/tmp.txt" "$TMPDIR/allowed.txt"
done < <(sed -n 's/^SystemCallFilter=//p' "$UNIT")
[ "$n" -gt 0 ] || fail "no SystemCallFilter= in the unit"
case $(sed -n 's/^SystemCallFilter=//p' "$UNIT" | head -n 1) in
"~"*) fail "the first SystemCallFilter= is a deny list: the check below assumes an allow list" ;;
esac
[ "$(wc -l <"$TMPDIR/allowed.txt")" -gt 100 ] || fail "the allowed system-call list looks wrong: $(wc -l <"$TMPDIR/allowed.txt") names"
grep -q -x setuid "$TMPDIR/denied.txt" || fail "the deny list lacks setuid: $(head -c 300 "$TMPDIR/denied.txt")"

ECHO_PORT=$(free_port)
PORT=$(free_port)
start_echo "$ECHO_PORT"
# Run as the unit does: a non-root user holding CAP_NET_BIND_SERVICE as an
# ambient capability (User= + AmbientCapabilities=), with key copies that
# user can read.
mkdir -p "$TMPDIR/keys"
cp "$PKI/server-fullchain.crt" "$PKI/server.key" "$TMPDIR/keys/"
chmod 755 "$TMPDIR" "$TMPDIR/keys"
chmod 644 "$TMPDIR/keys/"*
{
	config_head
	config_listener unit "$PORT" "\"127.0.0.1:$ECHO_PORT\"" "" "      cert: $TMPDIR/keys/server-fullchain.crt
      key: $TMPDIR/keys/server.key"
} >"$TMPDIR/unit.yaml"
chmod 644 "$TMPDIR/unit.yaml"
AS_UNIT=()
if [ "$(id -u)" -eq 0 ]; then
	AS_UNIT=(setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" --clear-groups
	    --inh-caps=+net_bind_service --ambient-caps=+net_bind_service)
else
	log "not root: the daemon runs as $(id -un), without CAP_NET_BIND_SERVICE"
fi

# A fake notify socket, so the sd_notify and watchdog calls happen too.
python3 -c 'import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
while True:
    s.recv(65536)' "$TMPDIR/notify.sock" &
track $!
for i in $(seq 50); do
	[ -S "$TMPDIR/notify.sock" ] && break
	sleep 0.1
done
[ -S "$TMPDIR/notify.sock" ] || fail "the fake notify socket did not appear"

strace -f -qq -o "$TMPDIR/strace-t.txt" ${AS_UNIT[@]+"${AS_UNIT[@]}"} "$MTLSPROXY" -t -c "$TMPDIR/unit.yaml" >/dev/null 2>&1 ||
    fail "mtlsproxy -t failed under strace"
PROXY_N=$((PROXY_N + 1))
PROXY_LOG=$TMPDIR/proxy-$PROXY_N.log
LOG_MARK=0
NOTIFY_SOCKET=$TMPDIR/notify.sock WATCHDOG_USEC=1000000 \
    strace -f -qq -o "$TMPDIR/strace.txt" ${AS_UNIT[@]+"${AS_UNIT[@]}"} "$MTLSPROXY" -c "$TMPDIR/unit.yaml" 2>"$PROXY_LOG" &
STRACE_PID=$!
track "$STRACE_PID"
wait_port "$PORT" "$STRACE_PID" 10 || fail "mtlsproxy under strace did not start: $(tail -n 5 "$PROXY_LOG")"
# Signals go to the daemon itself, strace's child.
PROXY_PID=$(pgrep -P "$STRACE_PID" | head -n 1)
[ -n "$PROXY_PID" ] || fail "no mtlsproxy process under strace"
if [ ${#AS_UNIT[@]} -gt 0 ]; then
	grep -q -x 'CapEff:	0000000000000000' "/proc/$PROXY_PID/status" ||
	    fail "CAP_NET_BIND_SERVICE kept after binding: $(grep -E 'Cap(Eff|Amb)' "/proc/$PROXY_PID/status" | tr '\n' ' ')"
	grep -q -x 'NoNewPrivs:	1' "/proc/$PROXY_PID/status" || fail "no_new_privs not set"
	pass "started as the unit starts it: capabilities dropped after binding, NoNewPrivs 1"
fi
s_client_send "$PORT" "under strace\n" "under strace" -cert "$PKI/orders.crt" -key "$PKI/orders.key"
grep -q -F 'under strace' "$SCLIENT_OUT" || fail "no echo under strace"
log_mark
kill -HUP "$PROXY_PID"
assert_log_contains 'reloaded'
sleep 1.2	# a few watchdog pings
kill -TERM "$PROXY_PID"
PROXY_PID=
for i in $(seq 100); do
	kill -0 "$STRACE_PID" 2>/dev/null || break
	sleep 0.1
done
wait "$STRACE_PID"
rc=$?
untrack "$STRACE_PID"
[ "$rc" -eq 0 ] || fail "mtlsproxy under strace exited $rc"
grep -q "cannot notify systemd" "$PROXY_LOG" && fail "$(grep -m1 "cannot notify systemd" "$PROXY_LOG")"

# Only what mtlsproxy does, from its execve on (not setpriv before it).
for f in "$TMPDIR/strace-t.txt" "$TMPDIR/strace.txt"; do
	awk -v bin="$MTLSPROXY" 'index($0, "execve(\"" bin "\"") && / = 0$/ { on = 1 } on' "$f"
done |
    sed -n 's/^[0-9]* *\([a-z_0-9]*\)(.*/\1/p; s/^[0-9]* *<\.\.\. \([a-z_0-9]*\) resumed>.*/\1/p' |
    sort -u >"$TMPDIR/used.txt"
[ "$(wc -l <"$TMPDIR/used.txt")" -gt 20 ] || fail "strace recorded too few system calls: $(cat "$TMPDIR/used.txt")"
bad=$(comm -23 "$TMPDIR/used.txt" "$TMPDIR/allowed.txt" | tr '\n' ' ')
[ -z "$bad" ] || fail "system calls the unit's SystemCallFilter= would refuse: $bad"
pass "all $(wc -l <"$TMPDIR/used.txt") system calls used are allowed by the unit's filter"
