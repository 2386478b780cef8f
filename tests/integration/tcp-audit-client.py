#!/usr/bin/env python3
"""A TLS client that reads slowly, for 54-tcp-audit.sh.

usage: tcp-audit-client.py PORT PKI RATE SECS
Connects to 127.0.0.1:PORT with PKI/orders.crt (server checked against
PKI/root-ca.crt) and a small receive buffer, reads at RATE bytes/s for
SECS seconds, then as fast as it can until the server closes. Prints
"bytes N end E": E is close_notify (a clean TLS close), eof (the
connection ended without one) or error:REASON.
"""
import socket
import ssl
import sys
import time

port, pki, rate, secs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
ctx = ssl.create_default_context(cafile=pki + "/root-ca.crt")
ctx.load_cert_chain(pki + "/orders.crt", pki + "/orders.key")
# Debian's Python sets this by default; without it an end with no
# close_notify is told apart from a clean close.
ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
raw = socket.socket()
# A small window: what the client has not read stays on the proxy's side.
raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
raw.settimeout(30)
raw.connect(("127.0.0.1", port))
n, end = 0, "?"
try:
    s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
    t0 = time.time()
    while True:
        slow = time.time() - t0 < secs
        d = s.recv(rate // 10 if slow else 1 << 16)
        if not d:
            end = "close_notify"
            break
        n += len(d)
        if slow:
            time.sleep(0.1)
except ssl.SSLEOFError:
    end = "eof"
except (ssl.SSLError, OSError) as e:
    end = "error:%s" % (getattr(e, "reason", None) or e)
print("bytes %d end %s" % (n, end))
