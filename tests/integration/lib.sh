# Helpers for the integration tests; sourced by every NN-name.sh.
#
# The runner (run.sh) sets MTLSPROXY (the binary), PKI (certs-example/out)
# and TMPDIR (a fresh directory for this test). Everything listens on
# 127.0.0.1 only, every wait is bounded, and every process a test starts is
# recorded by PID and stopped by PID when the test ends.
#
# Tests do not use `set -e`: each step that matters is checked with an
# explicit assertion that says what went wrong.

set -u -o pipefail

: "${MTLSPROXY:?run through tests/integration/run.sh (MTLSPROXY unset)}"
: "${PKI:?run through tests/integration/run.sh (PKI unset)}"
: "${TMPDIR:?run through tests/integration/run.sh (TMPDIR unset)}"

ITEST_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd -- "$ITEST_DIR/../.." && pwd)
export TMPDIR

PIDS=()			# every background process started by a helper
PROXY_PID=
PROXY_LOG=
PROXY_RC=
PROXY_PORT=
PROXY_N=0
LOG_MARK=0		# assertions look at log lines after this one

# ---------------------------------------------------------------- basics

log() {
	printf '# %s\n' "$*"
}

fail() {
	printf 'FAIL: %s\n' "$*"
	if [ -n "$PROXY_LOG" ] && [ -f "$PROXY_LOG" ]; then
		printf -- '--- last lines of %s:\n' "$PROXY_LOG"
		tail -n 15 "$PROXY_LOG"
	fi
	exit 1
}

pass() {
	log "passed: $*"
}

# Stop every recorded process by PID: SIGTERM, up to 3 s, then SIGKILL.
cleanup_pids() {
	local pid i alive
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for i in $(seq 30); do
		alive=
		for pid in "${PIDS[@]}"; do
			kill -0 "$pid" 2>/dev/null && alive=1
		done
		[ -z "$alive" ] && break
		sleep 0.1
	done
	for pid in "${PIDS[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	PIDS=()
}
trap cleanup_pids EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# track PID: remember a background process for the cleanup trap.
track() {
	PIDS+=("$1")
}

# untrack PID: forget a process that has exited.
untrack() {
	local pid keep=()
	for pid in "${PIDS[@]}"; do
		[ "$pid" = "$1" ] || keep+=("$pid")
	done
	PIDS=(${keep[@]+"${keep[@]}"})
}

# free_port: print a TCP port on 127.0.0.1 that nothing uses now. Each
# test draws from a range of its own (250 ports from 10000 + 250 * NN, NN
# the test's number), below the kernel's ephemeral range (32768 up): no
# outgoing connection and no other test running beside this one can take
# the port before the daemon binds it. Ports handed out are remembered, so
# one test never gets the same port twice.
free_port() {
	python3 - "$TMPDIR" <<'PY'
import os, random, re, socket, sys
tmp = sys.argv[1]
m = re.match(r"(\d+)", os.path.basename(tmp.rstrip("/")))
nn = int(m.group(1)) % 88 if m else random.randint(0, 87)
seen_file = os.path.join(tmp, ".ports")
try:
    seen = set(int(x) for x in open(seen_file).read().split())
except OSError:
    seen = set()
cands = [p for p in range(10000 + 250 * nn, 10250 + 250 * nn) if p not in seen]
random.shuffle(cands)
for p in cands:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    with open(seen_file, "a") as f:
        f.write("%d\n" % p)
    print(p)
    break
else:
    raise SystemExit("free_port: no free port left in this test's range")
PY
}

# port_accepts PORT: true when a TCP connect to 127.0.0.1:PORT succeeds.
port_accepts() {
	python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(1)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

# wait_port PORT PID [SECONDS]: wait until PORT accepts (default 5 s);
# fail early if PID exits.
wait_port() {
	local port=$1 pid=$2 max=${3:-5} i
	for i in $(seq $((max * 10))); do
		port_accepts "$port" && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# now_ms: milliseconds since the epoch.
now_ms() {
	date +%s%3N
}

# -------------------------------------------------------------- backends

# start_echo PORT: the node TCP echo backend on 127.0.0.1:PORT.
start_echo() {
	local port=$1 pid
	node "$ITEST_DIR/echo-backend.js" "$port" >>"$TMPDIR/echo-$port.log" 2>&1 &
	pid=$!
	track "$pid"
	wait_port "$port" "$pid" 5 ||
	    fail "echo backend did not start on 127.0.0.1:$port: $(tail -n 5 "$TMPDIR/echo-$port.log")"
	ECHO_PID=$pid
}

# start_silent PORT: a port on 127.0.0.1 where connects get no answer
# (silent-listener.py).
start_silent() {
	local port=$1 pid i
	/usr/bin/python3 "$ITEST_DIR/silent-listener.py" "$port" >"$TMPDIR/silent-$port.out" 2>&1 &
	pid=$!
	track "$pid"
	for i in $(seq 50); do
		grep -q silent "$TMPDIR/silent-$port.out" && return 0
		sleep 0.1
	done
	fail "the silent listener did not start on 127.0.0.1:$port: $(cat "$TMPDIR/silent-$port.out")"
}

# start_http PORT: a small HTTP backend (scripts/demo-backend.py) that
# answers every GET with HTTP_BODY.
HTTP_BODY="hello from the demo backend, you reached it through mtlsproxy"
start_http() {
	local port=$1 pid
	python3 "$ROOT/scripts/demo-backend.py" "$port" 127.0.0.1 >>"$TMPDIR/http-$port.log" 2>&1 &
	pid=$!
	track "$pid"
	wait_port "$port" "$pid" 5 ||
	    fail "HTTP backend did not start on 127.0.0.1:$port: $(tail -n 5 "$TMPDIR/http-$port.log")"
	HTTP_PID=$pid
}

# ---------------------------------------------------------------- config

# config_head: the top of a test config (workers, drain, logging).
config_head() {
	cat <<EOF
workers: 2
drain_timeout: ${DRAIN_TIMEOUT:-5s}
log:
  level: ${LOG_LEVEL:-debug}
  format: text
  access: true
listeners:
EOF
}

# config_listener NAME PORT BACKEND [CLIENT_AUTH_EXTRA] [TLS_BLOCK]: one
# listener with the demo server cert, client-ca.pem, and the given extra
# client_auth lines (already indented by 6). BACKEND is a YAML value.
config_listener() {
	local name=$1 port=$2 backend=$3 extra=${4:-} tls=${5:-}
	if [ -z "$tls" ]; then
		tls="      cert: $PKI/server-fullchain.crt
      key: $PKI/server.key"
	fi
	cat <<EOF
  - name: $name
    listen: "127.0.0.1:$port"
    tls:
$tls
    client_auth:
      ca: $PKI/client-ca.pem
EOF
	[ -n "$extra" ] && printf '%s\n' "$extra"
	cat <<EOF
    backend:
      address: $backend
      mode: tcp
      connect_timeout: 2s
    timeouts:
      handshake: 5s
      idle: 60s
EOF
}

# ----------------------------------------------------------------- proxy

# start_proxy CONFIG [PORT]: run the daemon in the background, stderr to
# $TMPDIR/proxy-N.log ($PROXY_LOG), and wait (max 5 s) until PORT (default:
# the first listen port in CONFIG) accepts.
start_proxy() {
	local conf=$1 port=${2:-}
	if [ -z "$port" ]; then
		port=$(sed -n 's/.*listen: *"\{0,1\}127\.0\.0\.1:\([0-9]*\).*/\1/p' "$conf" | head -n1)
		[ -n "$port" ] || fail "start_proxy: no 127.0.0.1 listen port in $conf"
	fi
	PROXY_N=$((PROXY_N + 1))
	PROXY_LOG=$TMPDIR/proxy-$PROXY_N.log
	PROXY_PORT=$port
	PROXY_RC=
	LOG_MARK=0
	# PROXY_ULIMIT: ulimit options for the daemon alone (e.g. "-n 100");
	# the shell execs it, so the PID is the daemon's
	bash -c "${PROXY_ULIMIT:+ulimit $PROXY_ULIMIT && }exec \"\$0\" \"\$@\"" "$MTLSPROXY" \
	    -c "$conf" >"$TMPDIR/proxy-$PROXY_N.out" 2>"$PROXY_LOG" &
	PROXY_PID=$!
	track "$PROXY_PID"
	if ! wait_port "$port" "$PROXY_PID" 5; then
		if ! kill -0 "$PROXY_PID" 2>/dev/null; then
			wait "$PROXY_PID"
			fail "mtlsproxy exited with status $? at start-up (config $conf)"
		fi
		fail "mtlsproxy did not accept on 127.0.0.1:$port within 5 s (config $conf)"
	fi
	log "mtlsproxy pid $PROXY_PID on 127.0.0.1:$port, log $PROXY_LOG"
}

# check_sanitizers: fail if the proxy log holds an ASan/UBSan/LSan report
# (builds with SANITIZE=...; UBSan may report and carry on).
check_sanitizers() {
	[ -n "$PROXY_LOG" ] && [ -f "$PROXY_LOG" ] || return 0
	if grep -q -E 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$PROXY_LOG"; then
		fail "sanitizer report in $PROXY_LOG: $(grep -m1 -E 'Sanitizer|runtime error:' "$PROXY_LOG")"
	fi
}

# stop_proxy: SIGTERM by PID, wait up to 10 s, then SIGKILL. Sets PROXY_RC
# (exit status; 137 when it had to be killed) and PROXY_STOP_MS.
stop_proxy() {
	local i t0
	[ -n "$PROXY_PID" ] || return 0
	t0=$(now_ms)
	kill -TERM "$PROXY_PID" 2>/dev/null || true
	for i in $(seq 100); do
		kill -0 "$PROXY_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$PROXY_PID" 2>/dev/null; then
		log "mtlsproxy pid $PROXY_PID still running 10 s after SIGTERM: SIGKILL"
		kill -KILL "$PROXY_PID" 2>/dev/null || true
	fi
	wait "$PROXY_PID" 2>/dev/null
	PROXY_RC=$?
	PROXY_STOP_MS=$(($(now_ms) - t0))
	untrack "$PROXY_PID"
	PROXY_PID=
	check_sanitizers
}

# proxy_wait_exit SECONDS: wait for the proxy to exit on its own; sets
# PROXY_RC, or returns 1 if it is still running.
proxy_wait_exit() {
	local max=$1 i
	for i in $(seq $((max * 10))); do
		kill -0 "$PROXY_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$PROXY_PID" 2>/dev/null && return 1
	wait "$PROXY_PID" 2>/dev/null
	PROXY_RC=$?
	untrack "$PROXY_PID"
	PROXY_PID=
	check_sanitizers
	return 0
}

# hup_ok: SIGHUP to the proxy, then wait (max 5 s) for the next
# generation (GEN, 1 at start) to be logged; a failed reload fails the test.
GEN=1
hup_ok() {
	local i
	log_mark
	kill -HUP "$PROXY_PID" || fail "cannot send SIGHUP to $PROXY_PID"
	for i in $(seq 50); do
		log_has_line "info reloaded: generation $((GEN + 1)) in use for new connections" && break
		log_has_line 'reload failed' && fail "reload failed: $(new_log_lines | grep -E 'error reload' | head -n 3)"
		sleep 0.1
	done
	log_has_line "info reloaded: generation $((GEN + 1)) in use for new connections" ||
	    fail "no 'reloaded: generation $((GEN + 1))' line within 5 s of SIGHUP"
	GEN=$((GEN + 1))
}

# ------------------------------------------------------------ log checks

# log_mark: later log assertions only look at lines logged from now on.
log_mark() {
	LOG_MARK=$(wc -l <"$PROXY_LOG")
}

# new_log_lines: the proxy log after the mark.
new_log_lines() {
	tail -n +$((LOG_MARK + 1)) "$PROXY_LOG"
}

# log_has_line PATTERN...: some new log line matches every extended regex.
log_has_line() {
	local lines p
	lines=$(new_log_lines)
	for p in "$@"; do
		lines=$(printf '%s\n' "$lines" | grep -E -- "$p") || return 1
	done
	[ -n "$lines" ]
}

# assert_log_contains PATTERN...: wait (max 3 s) for one log line, logged
# since log_mark, that matches every extended regex PATTERN.
assert_log_contains() {
	local i
	for i in $(seq 30); do
		log_has_line "$@" && return 0
		sleep 0.1
	done
	fail "no line in the proxy log (since the last mark) matches all of: $(printf '[%s] ' "$@")"
}

# assert_log_lacks PATTERN: no new log line matches PATTERN.
assert_log_lacks() {
	if new_log_lines | grep -E -q -- "$1"; then
		fail "the proxy log has a line matching [$1]: $(new_log_lines | grep -E -- "$1" | head -n 1)"
	fi
}

# ---------------------------------------------------------- TLS clients

# s_client_send PORT MESSAGE EXPECT [openssl s_client options...]:
# connect with `openssl s_client -quiet` (server verified against
# root-ca.crt), send MESSAGE (printf %b escapes), keep stdin open until the
# output contains EXPECT or s_client exits (max 5 s), then close stdin.
# Sets SCLIENT_OUT (file with received bytes), SCLIENT_ERR, SCLIENT_RC.
s_client_send() {
	local port=$1 msg=$2 expect=$3 i
	shift 3
	SCLIENT_OUT=$TMPDIR/sclient.out
	SCLIENT_ERR=$TMPDIR/sclient.err
	local done=$TMPDIR/sclient.rc
	rm -f "$SCLIENT_OUT" "$SCLIENT_ERR" "$done"
	: >"$SCLIENT_OUT"
	{
		printf '%b' "$msg"
		for i in $(seq 50); do
			[ -s "$done" ] && break
			if [ -n "$expect" ] && grep -q -F -- "$expect" "$SCLIENT_OUT" 2>/dev/null; then
				break
			fi
			sleep 0.1
		done
	} | {
		timeout -k 2 10 openssl s_client -connect "127.0.0.1:$port" \
		    -servername localhost -CAfile "$PKI/root-ca.crt" \
		    -verify_return_error -quiet -no_ign_eof "$@" \
		    >"$SCLIENT_OUT" 2>"$SCLIENT_ERR"
		echo $? >"$done"
	}
	SCLIENT_RC=$(cat "$done")
}

# curl_get PORT [curl options...]: GET https://localhost:PORT/ (pinned to
# 127.0.0.1), server verified against root-ca.crt. Sets CURL_OUT, CURL_ERR,
# CURL_RC.
curl_get() {
	local port=$1
	shift
	CURL_OUT=$TMPDIR/curl.out
	CURL_ERR=$TMPDIR/curl.err
	curl -sS --max-time 10 --resolve "localhost:$port:127.0.0.1" \
	    --cacert "$PKI/root-ca.crt" "$@" "https://localhost:$port/" \
	    >"$CURL_OUT" 2>"$CURL_ERR"
	CURL_RC=$?
}

# node_client PORT [client.js options...]: run tests/integration/client.js
# against 127.0.0.1:PORT with the CA set. Sets NODE_OUT, NODE_ERR, NODE_RC.
node_client() {
	local port=$1
	shift
	NODE_OUT=$TMPDIR/node.out
	NODE_ERR=$TMPDIR/node.err
	timeout -k 2 "${NODE_TIMEOUT:-60}" node "$ITEST_DIR/client.js" 127.0.0.1 "$port" \
	    --ca "$PKI/root-ca.crt" "$@" >"$NODE_OUT" 2>"$NODE_ERR"
	NODE_RC=$?
}
