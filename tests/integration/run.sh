#!/usr/bin/env bash
# Run the integration tests against a built daemon.
#
# usage: tests/integration/run.sh BINARY [NAME...]
#   NAME: run only tests whose file name contains NAME (e.g. 02 or refused)
#
# Each tests/integration/NN-*.sh runs in its own bash with MTLSPROXY (the
# binary, absolute), PKI (certs-example/out, absolute) and TMPDIR
# (tests/integration/tmp/NN-name, emptied first). One line per test, then
# "N passed, N failed"; exit 1 if any failed.
set -uo pipefail

if [ $# -lt 1 ]; then
	echo "usage: $0 path/to/mtlsproxy [NAME...]" >&2
	exit 2
fi
HERE=$(cd -- "$(dirname -- "$0")" && pwd)
ROOT=$(cd -- "$HERE/../.." && pwd)
BIN=$1
shift
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
if [ ! -x "$BIN" ]; then
	echo "run.sh: $BIN is not an executable (run make first)" >&2
	exit 2
fi
for tool in openssl curl node python3 timeout; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool not found (scripts/deps.sh installs it)" >&2; exit 2; }
done

PKI=$ROOT/certs-example/out
"$ROOT/certs-example/make-demo-pki.sh" "$PKI" || { echo "run.sh: building the demo PKI failed" >&2; exit 2; }

TMPBASE=$HERE/tmp
mkdir -p "$TMPBASE"
# Two runs at once would share tmp/NN-name: the second one waits.
if command -v flock >/dev/null; then
	exec 9>"$TMPBASE/.lock"
	if ! flock -n 9; then
		echo "# another run.sh is using $TMPBASE; waiting for it (max 10 min)" >&2
		flock -w 600 9 || { echo "run.sh: gave up waiting for the other run" >&2; exit 2; }
	fi
fi
PER_TEST_LIMIT=${ITEST_TIMEOUT:-180}

# The tests start python3 hundreds of times: use the system's interpreter
# directly when there is one, not a version-manager shim in front of it
# (pyenv's costs about 0.3 s per start).
if [ -x /usr/bin/python3 ]; then
	mkdir -p -- "$TMPBASE/bin"
	ln -sf /usr/bin/python3 "$TMPBASE/bin/python3"
	PATH=$TMPBASE/bin:$PATH
	export PATH
fi

passed=0
failed=0
for t in "$HERE"/[0-9][0-9]-*.sh; do
	[ -e "$t" ] || continue
	name=$(basename -- "$t" .sh)
	if [ $# -gt 0 ]; then
		want=
		for pat in "$@"; do
			case $name in *"$pat"*) want=1 ;; esac
		done
		[ -n "$want" ] || continue
	fi
	dir=$TMPBASE/$name
	rm -rf -- "$dir"
	mkdir -p -- "$dir"
	t0=$(date +%s)
	# timeout runs the test in a process group of its own, so at the
	# time limit it stops the test and everything the test started.
	MTLSPROXY=$BIN PKI=$PKI TMPDIR=$dir \
	    timeout -k 5 "$PER_TEST_LIMIT" bash "$t" >"$dir/test.log" 2>&1 </dev/null 9>&-
	rc=$?
	secs=$(($(date +%s) - t0))
	if [ "$rc" -eq 0 ]; then
		echo "ok $name (${secs}s)"
		passed=$((passed + 1))
	else
		[ "$rc" -eq 124 ] && echo "# $name: killed after ${PER_TEST_LIMIT}s" >>"$dir/test.log"
		echo "FAIL $name (exit $rc, ${secs}s; full log: $dir/test.log)"
		tail -n 25 "$dir/test.log" | sed 's/^/    /'
		failed=$((failed + 1))
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
