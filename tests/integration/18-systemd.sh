#!/usr/bin/env bash
# systemd integration, without systemd running:
# (a) notify messages seen by a fake NOTIFY_SOCKET listener: READY=1 with a
#     STATUS= line, WATCHDOG=1 every WatchdogSec/2 but none while one worker
#     thread is stopped (ptrace), STATUS= updated with the
#     connection count, RELOADING=1 + MONOTONIC_USEC then READY=1 around a
#     SIGHUP, STOPPING=1 on SIGTERM;
# (b) socket activation under systemd-socket-activate (listen "systemd:api"),
#     and clear start-up errors when the named socket is missing;
# (c) privilege drop to user/group (as root): /proc/PID/status shows the new
#     ids everywhere, NoNewPrivs 1, no capabilities, and it still serves.
. "$(dirname -- "$0")/lib.sh"

"$MTLSPROXY" -V | grep -q '^systemd: yes' ||
    fail "this binary was built without libsystemd (-V: $("$MTLSPROXY" -V | grep systemd)); install libsystemd-dev and rebuild"

ECHO_PORT=$(free_port)
start_echo "$ECHO_PORT"

# no_sanitizer_report FILE: the stderr of a run that was not through
# start_proxy holds no ASan/UBSan/LSan report.
no_sanitizer_report() {
	if grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$1"; then
		fail "sanitizer report in $1: $(grep -m1 -E 'Sanitizer|runtime error:' "$1")"
	fi
}

# echo_ok PORT WORD: an allowed client's line comes back through PORT.
echo_ok() {
	s_client_send "$1" "$2\n" "$2" -cert "$PKI/orders.crt" -key "$PKI/orders.key"
	grep -q -F -- "$2" "$SCLIENT_OUT" ||
	    fail "no echo of \"$2\" through 127.0.0.1:$1 (s_client rc $SCLIENT_RC): $(tail -n 3 "$SCLIENT_ERR")"
}

# ------------------------------------------------ (a) sd_notify messages

NOTIFY_SOCK=$TMPDIR/notify.sock
NOTIFY_LOG=$TMPDIR/notify.log
cat >"$TMPDIR/notify.py" <<'PY'
# A stand-in for systemd's notification socket: one line per datagram,
# the message's own newlines written as tabs.
import os, socket, sys
path, out = sys.argv[1], sys.argv[2]
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(out, "a", buffering=1) as f:
    while True:
        f.write(s.recv(65536).decode("utf-8", "replace").replace("\n", "\t") + "\n")
PY
: >"$NOTIFY_LOG"
python3 "$TMPDIR/notify.py" "$NOTIFY_SOCK" "$NOTIFY_LOG" 2>"$TMPDIR/notify.err" &
NOTIFY_PID=$!
track "$NOTIFY_PID"
for i in $(seq 50); do
	[ -S "$NOTIFY_SOCK" ] && break
	sleep 0.1
done
[ -S "$NOTIFY_SOCK" ] || fail "the fake notify socket did not appear: $(cat "$TMPDIR/notify.err")"

# notify_wait SECONDS PATTERN: wait for a datagram matching the extended
# regex (fields are tab-separated); prints the line.
notify_wait() {
	local max=$1 pat=$2 i
	for i in $(seq $((max * 10))); do
		if grep -E -m1 -- "$pat" "$NOTIFY_LOG"; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# notify_count PATTERN: datagrams so far matching the regex.
notify_count() {
	grep -c -E -- "$1" "$NOTIFY_LOG"
}

PORT=$(free_port)
{
	config_head
	config_listener notify "$PORT" "\"127.0.0.1:$ECHO_PORT\""
} >"$TMPDIR/notify.yaml"

export NOTIFY_SOCKET=$NOTIFY_SOCK WATCHDOG_USEC=1000000
unset WATCHDOG_PID
start_proxy "$TMPDIR/notify.yaml"
unset NOTIFY_SOCKET WATCHDOG_USEC

line=$(notify_wait 5 '^READY=1') || fail "no READY=1 within 5 s; got: $(cat "$NOTIFY_LOG")"
t_ready=$(now_ms)
printf '%s\n' "$line" | grep -q -E '(^|	)STATUS=0 connections open; 1 listener, 2 workers' ||
    fail "READY=1 came without the expected STATUS=: [$line]"
pass "READY=1 with STATUS: $(printf '%s' "$line" | tr '\t' ' ')"

# WatchdogSec=1s: pings every 500 ms while both workers' loops run.
for i in $(seq 30); do
	[ "$(notify_count '^WATCHDOG=1$')" -ge 2 ] && break
	sleep 0.1
done
n=$(notify_count '^WATCHDOG=1$')
ms=$(($(now_ms) - t_ready))
[ "$n" -ge 2 ] || fail "$n WATCHDOG=1 in ${ms} ms after READY=1 with WATCHDOG_USEC=1000000 (want 2 within ~2 s)"
[ "$ms" -le 2500 ] || fail "2 WATCHDOG=1 took ${ms} ms (want about 1 s)"
assert_log_contains 'systemd watchdog: pinging every 500 ms'
pass "$n WATCHDOG=1 pings ${ms} ms after READY=1"

# A stuck worker stops the pings: stop the thread "worker 1" alone (ptrace
# PTRACE_SEIZE + PTRACE_INTERRUPT stop one thread, not the process) for
# 2.5 s, then let it go.
STALL_TID=
for t in /proc/$PROXY_PID/task/*; do
	[ "$(cat "$t/comm" 2>/dev/null)" = "worker 1" ] && STALL_TID=${t##*/}
done
[ -n "$STALL_TID" ] || fail "no thread named \"worker 1\" in $(cat /proc/$PROXY_PID/task/*/comm | tr '\n' ' ')"
cat >"$TMPDIR/stall.py" <<'PY'
# Stop one thread for some seconds with ptrace, then resume it.
import ctypes, os, sys, time
tid, secs = int(sys.argv[1]), float(sys.argv[2])
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT, WALL = 17, 0x4206, 0x4207, 0x40000000
if libc.ptrace(PTRACE_SEIZE, tid, None, None) != 0:
    print("ptrace: " + os.strerror(ctypes.get_errno()))
    sys.exit(2)
libc.ptrace(PTRACE_INTERRUPT, tid, None, None)
os.waitpid(tid, WALL)
print("stopped", flush=True)
time.sleep(secs)
libc.ptrace(PTRACE_DETACH, tid, None, None)
PY
log_mark
# Count the pings from the moment the thread is stopped, not from when the
# helper starts (an interpreter can take a while to start).
python3 "$TMPDIR/stall.py" "$STALL_TID" 2.5 >"$TMPDIR/stall.out" 2>&1 &
STALL_PID=$!
for i in $(seq 100); do
	grep -q -e '^stopped' -e '^ptrace' "$TMPDIR/stall.out" 2>/dev/null && break
	sleep 0.05
done
pings_before=$(notify_count '^WATCHDOG=1$')
wait "$STALL_PID"
stall_rc=$?
if [ "$stall_rc" -eq 2 ]; then
	log "cannot ptrace here ($(cat "$TMPDIR/stall.out")): the stuck-worker check is skipped"
else
	[ "$stall_rc" -eq 0 ] || fail "stall.py failed: $(cat "$TMPDIR/stall.out")"
	pings_during=$(($(notify_count '^WATCHDOG=1$') - pings_before))
	# at most the ping(s) due before the first check that saw the stall
	[ "$pings_during" -le 1 ] ||
	    fail "$pings_during WATCHDOG=1 sent while worker 1 was stopped for 2.5 s"
	assert_log_contains 'error worker 1: its event loop has not run for over 500 ms; not pinging the systemd watchdog'
	n0=$(notify_count '^WATCHDOG=1$')
	for i in $(seq 20); do
		[ "$(notify_count '^WATCHDOG=1$')" -gt "$n0" ] && break
		sleep 0.1
	done
	[ "$(notify_count '^WATCHDOG=1$')" -gt "$n0" ] || fail "no WATCHDOG=1 within 2 s after worker 1 runs again"
	assert_log_contains 'all workers run again; pinging the systemd watchdog'
	pass "worker 1 stopped 2.5 s: $pings_during ping(s) meanwhile, the stall logged, pings again after"
fi

# It serves, and STATUS= follows the number of open connections (refreshed
# every 5 s).
echo_ok "$PORT" "notify echo $$"
HELD_OUT=$TMPDIR/held.out
rm -f "$TMPDIR/held.fifo"
mkfifo "$TMPDIR/held.fifo"
node "$ITEST_DIR/client.js" 127.0.0.1 "$PORT" --ca "$PKI/root-ca.crt" \
    --cert "$PKI/orders.crt" --key "$PKI/orders.key" --lines \
    <"$TMPDIR/held.fifo" >"$HELD_OUT" 2>"$TMPDIR/held.err" &
HELD_PID=$!
track "$HELD_PID"
exec 3<>"$TMPDIR/held.fifo"
printf 'held\n' >&3
for i in $(seq 50); do
	grep -q -x 'echo: held' "$HELD_OUT" && break
	sleep 0.1
done
grep -q -x 'echo: held' "$HELD_OUT" || fail "the held connection did not echo: $(cat "$HELD_OUT")"
line=$(notify_wait 8 '^STATUS=1 connection open;') ||
    fail "no STATUS= with \"1 connection open\" within 8 s of opening a connection; got: $(grep STATUS "$NOTIFY_LOG" | tail -n 3)"
exec 3>&-
pass "STATUS= follows the connections: $line"

# SIGHUP: RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC, µs), then READY=1.
ready_before=$(notify_count '^READY=1')
mono_before=$(python3 -c 'import time; print(time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)')
kill -HUP "$PROXY_PID"
line=$(notify_wait 5 '^RELOADING=1	MONOTONIC_USEC=[0-9]+') ||
    fail "no RELOADING=1 with MONOTONIC_USEC within 5 s of SIGHUP; got: $(tail -n 3 "$NOTIFY_LOG")"
mono=$(printf '%s\n' "$line" | sed 's/.*MONOTONIC_USEC=\([0-9]*\).*/\1/')
[ "$mono" -ge "$mono_before" ] && [ "$mono" -le $((mono_before + 5000000)) ] ||
    fail "MONOTONIC_USEC=$mono is not CLOCK_MONOTONIC in µs at the reload (sent SIGHUP at $mono_before)"
for i in $(seq 50); do
	[ "$(notify_count '^READY=1')" -gt "$ready_before" ] && break
	sleep 0.1
done
[ "$(notify_count '^READY=1')" -gt "$ready_before" ] ||
    fail "no READY=1 after RELOADING=1; got: $(tail -n 3 "$NOTIFY_LOG")"
grep -n -E '^(RELOADING|READY)=1' "$NOTIFY_LOG" | tail -n 2 | head -n 1 | grep -q RELOADING ||
    fail "READY=1 did not follow RELOADING=1: $(grep -E '^(RELOADING|READY)' "$NOTIFY_LOG" | tail -n 3)"
pass "SIGHUP: RELOADING=1 MONOTONIC_USEC=$mono, then READY=1"

# SIGTERM: STOPPING=1, then a clean exit.
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
notify_wait 1 '^STOPPING=1' >/dev/null || fail "no STOPPING=1 after SIGTERM; got: $(tail -n 3 "$NOTIFY_LOG")"
kill "$HELD_PID" 2>/dev/null
wait "$HELD_PID" 2>/dev/null
untrack "$HELD_PID"
pass "SIGTERM: STOPPING=1, exit 0"

# WATCHDOG_PID naming another process: that watchdog is not ours, no pings.
: >"$NOTIFY_LOG"
export NOTIFY_SOCKET=$NOTIFY_SOCK WATCHDOG_USEC=1000000 WATCHDOG_PID=1
start_proxy "$TMPDIR/notify.yaml"
unset NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID
notify_wait 5 '^READY=1' >/dev/null || fail "no READY=1 (WATCHDOG_PID=1)"
sleep 1.5
[ "$(notify_count '^WATCHDOG=1$')" -eq 0 ] || fail "WATCHDOG=1 sent although WATCHDOG_PID names another process"
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy exited $PROXY_RC on SIGTERM"
pass "no pings when WATCHDOG_PID is another process"

# ------------------------------------------------- (b) socket activation

command -v systemd-socket-activate >/dev/null ||
    fail "systemd-socket-activate not found (Debian package systemd; scripts/deps.sh installs it)"

PORT=$(free_port)
{
	config_head
	config_listener activated "$PORT" "\"127.0.0.1:$ECHO_PORT\""
} | sed "s|listen: \"127.0.0.1:$PORT\"|listen: \"systemd:api\"|" >"$TMPDIR/activated.yaml"
grep -q 'listen: "systemd:api"' "$TMPDIR/activated.yaml" || fail "test config lacks systemd:api"

# activate NAME: systemd-socket-activate binds 127.0.0.1:$PORT, waits for the
# first connection, then execs mtlsproxy (same PID) with that socket as
# LISTEN_FDS=1, LISTEN_FDNAMES=NAME.
activate() {
	PROXY_N=$((PROXY_N + 1))
	PROXY_LOG=$TMPDIR/proxy-$PROXY_N.log
	PROXY_PORT=$PORT
	LOG_MARK=0
	systemd-socket-activate -l "127.0.0.1:$PORT" --fdname="$1" \
	    "$MTLSPROXY" -c "$TMPDIR/activated.yaml" >"$TMPDIR/proxy-$PROXY_N.out" 2>"$PROXY_LOG" &
	PROXY_PID=$!
	track "$PROXY_PID"
	wait_port "$PORT" "$PROXY_PID" 5 ||
	    fail "systemd-socket-activate did not listen on 127.0.0.1:$PORT: $(cat "$PROXY_LOG")"
}

activate api
echo_ok "$PORT" "activated echo $$"
assert_log_contains 'listener "activated" on systemd:api: socket from systemd on 127\.0\.0\.1:'"$PORT"' \(shared by 2 workers\)'
assert_log_contains ' access ' 'listener=activated' 'subject="CN=orders'
# more connections than workers: every worker's copy of the socket accepts
for i in 1 2 3 4; do
	echo_ok "$PORT" "activated $i"
done
# the inherited socket is not passed on: LISTEN_* was unset, the fd closes on exec
assert_log_lacks 'no listener uses the socket'
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "socket-activated mtlsproxy exited $PROXY_RC on SIGTERM"
pass "socket activation: served through the socket systemd-socket-activate passed as \"api\""

# A socket passed under another name: exit 1, naming what was wanted and
# what was passed.
activate web
port_accepts "$PORT"	# the first connection makes it exec mtlsproxy
proxy_wait_exit 10 || fail "mtlsproxy kept running without its socket \"api\""
[ "$PROXY_RC" -eq 1 ] || fail "exit $PROXY_RC without the socket \"api\", want 1"
grep -q -F 'listener "activated": cannot listen on systemd:api: systemd passed no socket named "api"; it passed 1: "web"' "$PROXY_LOG" ||
    fail "unclear error for a wrongly named socket: $(cat "$PROXY_LOG")"
pass "wrong FileDescriptorName: $(grep -o 'systemd passed no socket.*' "$PROXY_LOG")"

# Not socket-activated at all: exit 1, saying how to pass the socket.
"$MTLSPROXY" -c "$TMPDIR/activated.yaml" 2>"$TMPDIR/nosockets.err"
rc=$?
no_sanitizer_report "$TMPDIR/nosockets.err"
[ "$rc" -eq 1 ] || fail "exit $rc with systemd:api and no passed sockets, want 1"
grep -q -F 'systemd passed no sockets (LISTEN_FDS is not set for this process); "systemd:api" needs a .socket unit with FileDescriptorName=api' "$TMPDIR/nosockets.err" ||
    fail "unclear error without passed sockets: $(cat "$TMPDIR/nosockets.err")"
grep -q 'systemd-socket-activate --fdname=api' "$TMPDIR/nosockets.err" ||
    fail "the error does not mention systemd-socket-activate: $(cat "$TMPDIR/nosockets.err")"
pass "no sockets passed: clear start-up error"

# -------------------------------------------------- (c) privilege drop

# The key copies below are readable by everyone so that a process started
# as nobody can load them.
mkdir -p "$TMPDIR/keys"
cp "$PKI/server-fullchain.crt" "$PKI/server.key" "$PKI/client-ca.pem" "$TMPDIR/keys/"
chmod 755 "$TMPDIR" "$TMPDIR/keys"
chmod 644 "$TMPDIR/keys/"*
KEYS_TLS="      cert: $TMPDIR/keys/server-fullchain.crt
      key: $TMPDIR/keys/server.key"

if [ "$(id -u)" -ne 0 ]; then
	PORT=$(free_port)
	{
		echo "user: root"
		config_head
		config_listener priv "$PORT" "\"127.0.0.1:$ECHO_PORT\"" "" "$KEYS_TLS"
	} >"$TMPDIR/notroot.yaml"
	"$MTLSPROXY" -c "$TMPDIR/notroot.yaml" 2>"$TMPDIR/notroot.err"
	rc=$?
	no_sanitizer_report "$TMPDIR/notroot.err"
	[ "$rc" -eq 1 ] || fail "exit $rc for user: root while not root, want 1"
	grep -q 'cannot switch to user "root": not running as root' "$TMPDIR/notroot.err" ||
	    fail "unclear error: $(cat "$TMPDIR/notroot.err")"
	log "not root: the privilege drop itself is tested only when run as root (CI is)"
	exit 0
fi

NOBODY_UID=$(id -u nobody) || fail "no user nobody"
NOGROUP_GID=$(getent group nogroup | cut -d: -f3)
[ -n "$NOGROUP_GID" ] || fail "no group nogroup"

PORT=$(free_port)
{
	printf 'user: nobody\ngroup: nogroup\n'
	config_head
	config_listener priv "$PORT" "\"127.0.0.1:$ECHO_PORT\""
} >"$TMPDIR/priv.yaml"
start_proxy "$TMPDIR/priv.yaml"
st=/proc/$PROXY_PID/status
grep -q -x "Uid:	$NOBODY_UID	$NOBODY_UID	$NOBODY_UID	$NOBODY_UID" "$st" ||
    fail "real/effective/saved/fs uid are not nobody's ($NOBODY_UID): $(grep Uid: "$st")"
grep -q -x "Gid:	$NOGROUP_GID	$NOGROUP_GID	$NOGROUP_GID	$NOGROUP_GID" "$st" ||
    fail "real/effective/saved/fs gid are not nogroup's ($NOGROUP_GID): $(grep Gid: "$st")"
grep -q -E '^Groups:	*(65534 *)?$' "$st" ||
    fail "supplementary groups kept from root: $(grep Groups: "$st")"
grep -q -x 'NoNewPrivs:	1' "$st" || fail "no_new_privs is not set: $(grep NoNewPrivs "$st")"
grep -q -x 'CapEff:	0000000000000000' "$st" || fail "capabilities left: $(grep CapEff "$st")"
grep -q -x 'CapPrm:	0000000000000000' "$st" || fail "permitted capabilities left: $(grep CapPrm "$st")"
# every thread, not only the main one
for t in /proc/$PROXY_PID/task/*/status; do
	grep -q -x "Uid:	$NOBODY_UID	$NOBODY_UID	$NOBODY_UID	$NOBODY_UID" "$t" ||
	    fail "thread $t still has uid $(grep Uid: "$t")"
done
assert_log_contains "switched to user \"nobody\" \\(uid $NOBODY_UID, gid $NOGROUP_GID\\)"
echo_ok "$PORT" "as nobody $$"
assert_log_contains ' access ' 'listener=priv' 'subject="CN=orders'
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy (as nobody) exited $PROXY_RC on SIGTERM"
pass "dropped to nobody:nogroup (uid $NOBODY_UID, gid $NOGROUP_GID), NoNewPrivs 1, no capabilities, still serving"

# An unknown user or group: exit 1, naming it, at its place in the config.
for what in "user: no-such-user-$$" "user: nobody
group: no-such-group-$$"; do
	{
		printf '%s\n' "$what"
		config_head
		config_listener priv "$(free_port)" "\"127.0.0.1:$ECHO_PORT\""
	} >"$TMPDIR/unknown.yaml"
	"$MTLSPROXY" -c "$TMPDIR/unknown.yaml" 2>"$TMPDIR/unknown.err"
	rc=$?
	no_sanitizer_report "$TMPDIR/unknown.err"
	[ "$rc" -eq 1 ] || fail "exit $rc for [$what], want 1"
	name=$(printf '%s\n' "$what" | tail -n 1 | sed 's/^[a-z]*: //')
	grep -q -E "unknown.yaml:[0-9]+:[0-9]+: cannot switch to (user|group) \"$name\": no such (user|group)" "$TMPDIR/unknown.err" ||
	    fail "unclear error for [$what]: $(cat "$TMPDIR/unknown.err")"
done
pass "unknown user or group: exit 1 naming it"

# Started as nobody: "user: nobody" is fine (no_new_privs still set);
# "user: root" cannot be reached.
command -v setpriv >/dev/null || fail "setpriv (util-linux) not found"
PORT=$(free_port)
{
	echo "user: nobody"
	config_head
	config_listener priv "$PORT" "\"127.0.0.1:$ECHO_PORT\"" "" "$KEYS_TLS"
} >"$TMPDIR/asnobody.yaml"
chmod 644 "$TMPDIR/asnobody.yaml"
PROXY_N=$((PROXY_N + 1))
PROXY_LOG=$TMPDIR/proxy-$PROXY_N.log
LOG_MARK=0
setpriv --reuid="$NOBODY_UID" --regid="$NOGROUP_GID" --clear-groups \
    "$MTLSPROXY" -c "$TMPDIR/asnobody.yaml" 2>"$PROXY_LOG" &
PROXY_PID=$!
track "$PROXY_PID"
wait_port "$PORT" "$PROXY_PID" 5 || fail "mtlsproxy started as nobody with user: nobody did not start: $(cat "$PROXY_LOG")"
grep -q -x 'NoNewPrivs:	1' "/proc/$PROXY_PID/status" || fail "no_new_privs not set when not switching users"
echo_ok "$PORT" "started as nobody $$"
stop_proxy
[ "$PROXY_RC" -eq 0 ] || fail "mtlsproxy (started as nobody) exited $PROXY_RC"
sed 's/^user: nobody$/user: root/' "$TMPDIR/asnobody.yaml" >"$TMPDIR/toroot.yaml"
chmod 644 "$TMPDIR/toroot.yaml"
setpriv --reuid="$NOBODY_UID" --regid="$NOGROUP_GID" --clear-groups \
    "$MTLSPROXY" -c "$TMPDIR/toroot.yaml" 2>"$TMPDIR/toroot.err"
rc=$?
no_sanitizer_report "$TMPDIR/toroot.err"
[ "$rc" -eq 1 ] || fail "exit $rc for user: root when started as nobody, want 1"
grep -q 'cannot switch to user "root": not running as root' "$TMPDIR/toroot.err" ||
    fail "unclear error: $(cat "$TMPDIR/toroot.err")"
pass "not root: its own user is accepted, another is a start-up error"
