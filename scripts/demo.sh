#!/usr/bin/env bash
# `make demo`: build the demo PKI, start a plaintext HTTP backend on
# 127.0.0.1:8080, and run mtlsproxy in front of it on 127.0.0.1:8443, in the
# foreground. Ctrl-C stops both.
#
# usage: scripts/demo.sh BINARY
# env:   DEMO_PORT (8443), DEMO_BACKEND_PORT (8080)
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 path/to/mtlsproxy" >&2
	exit 2
fi
ROOT=$(cd -- "$(dirname -- "$0")/.." && pwd)
BIN=$1
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
[ -x "$BIN" ] || { echo "demo: $BIN is not an executable; run make first" >&2; exit 1; }
cd -- "$ROOT"

PORT=${DEMO_PORT:-8443}
BACKEND_PORT=${DEMO_BACKEND_PORT:-8080}
PKI=certs-example/out
CONF=build/demo.yaml

# port_open PORT: something accepts connections on 127.0.0.1:PORT.
port_open() {
	python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(0.5)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

certs-example/make-demo-pki.sh "$PKI"

for p in "$BACKEND_PORT" "$PORT"; do
	if port_open "$p"; then
		echo "demo: 127.0.0.1:$p is already in use; stop what listens there" \
		    "(or set DEMO_PORT / DEMO_BACKEND_PORT)" >&2
		exit 1
	fi
done

BACKEND_PID=
PROXY_PID=
cleanup() {
	if [ -n "$PROXY_PID" ] && kill -0 "$PROXY_PID" 2>/dev/null; then
		kill -TERM "$PROXY_PID" 2>/dev/null || true
		wait "$PROXY_PID" 2>/dev/null || true
	fi
	if [ -n "$BACKEND_PID" ]; then
		kill -TERM "$BACKEND_PID" 2>/dev/null || true
		wait "$BACKEND_PID" 2>/dev/null || true
	fi
}
trap cleanup EXIT
# Ctrl-C or SIGTERM: ask the proxy to drain (SIGTERM; it exits within its
# drain_timeout), then stop the backend.
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

python3 scripts/demo-backend.py "$BACKEND_PORT" 127.0.0.1 &
BACKEND_PID=$!
for _ in $(seq 50); do
	port_open "$BACKEND_PORT" && break
	kill -0 "$BACKEND_PID" 2>/dev/null || { echo "demo: the backend failed to start" >&2; exit 1; }
	sleep 0.1
done
port_open "$BACKEND_PORT" || { echo "demo: the backend does not accept on 127.0.0.1:$BACKEND_PORT" >&2; exit 1; }

mkdir -p build
cat >"$CONF" <<YAML
# Written by scripts/demo.sh; regenerated on every \`make demo\`.
workers: 2
drain_timeout: 5s
log:
  level: info
  format: text
  access: true
listeners:
  - name: demo
    listen: "127.0.0.1:$PORT"
    tls:
      cert: $ROOT/$PKI/server-fullchain.crt
      key: $ROOT/$PKI/server.key
    client_auth:
      ca: $ROOT/$PKI/client-ca.pem
      crl: $ROOT/$PKI/crl.pem
      allow:
        subject_cn: [orders, billing]
    backend:
      address: "127.0.0.1:$BACKEND_PORT"
      mode: http
YAML

cat <<MSG

mtlsproxy demo: https://localhost:$PORT/ -> http://127.0.0.1:$BACKEND_PORT/ (config: $CONF)

In another terminal, from $ROOT:

  # allowed (CN=orders):
  curl --cacert $PKI/root-ca.crt --cert $PKI/orders.crt --key $PKI/orders.key https://localhost:$PORT/

  # refused by policy (CN=mallory is not in allow.subject_cn):
  curl --cacert $PKI/root-ca.crt --cert $PKI/mallory.crt --key $PKI/mallory.key https://localhost:$PORT/

  # refused: no client certificate
  curl --cacert $PKI/root-ca.crt https://localhost:$PORT/

Each refusal logs one line below saying why. Press Ctrl-C to stop.

MSG

# setsid: the proxy is kept out of the terminal's process group, so Ctrl-C
# reaches it once, through the trap above, and it drains gracefully.
setsid "$BIN" -c "$CONF" &
PROXY_PID=$!
set +e
wait "$PROXY_PID"
rc=$?
set -e
PROXY_PID=
exit "$rc"
