#!/usr/bin/env python3
"""Backends for 54-tcp-audit.sh (tcp mode and unix-socket backends).

usage: tcp-audit-backend.py WHERE MODE [ARGS]
  WHERE: a port on 127.0.0.1, or unix:/path

MODE send N: send N bytes ("0123456789" repeated), then end its side;
  what the client sends is read and dropped, and its EOF closes.
MODE slowread RATE SECS: read at RATE bytes/s for SECS seconds, then as
  fast as it comes until EOF; then answer "got N" and close.
MODE busy DELAY (unix only): listen with a backlog of 0 and fill it with
  a connection of its own, so that connect() to the socket fails with
  EAGAIN ("Resource temporarily unavailable"); after DELAY seconds accept
  everything and answer each connection "echo:" + its first bytes.
MODE reset N: send N bytes, wait 0.3 s, then reset the connection (RST,
  as a crashed backend's kernel does).
MODE echo: answer each connection "echo:" + its first bytes.
MODE unlistened (unix only): bind the socket file and close it, so the
  file stays with nothing listening; then exit.

Prints "ready" once it accepts connections, and one line per connection.
"""
import os
import socket
import sys
import threading
import time

WHERE, MODE = sys.argv[1], sys.argv[2]
ARGS = sys.argv[3:]


def log(*a):
    print(*a, flush=True)


def listen(backlog):
    if WHERE.startswith("unix:"):
        path = WHERE[5:]
        try:
            os.unlink(path)
        except OSError:
            pass
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
    else:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", int(WHERE)))
    s.listen(backlog)
    return s


def drain_and_close(c):
    try:
        while c.recv(1 << 16):
            pass
    except OSError:
        pass
    c.close()


def send(c):
    n = int(ARGS[0])
    block = b"0123456789" * 6554
    threading.Thread(target=drain_and_close, args=(c,), daemon=True).start()
    left = n
    try:
        while left > 0:
            c.sendall(block[:min(left, len(block))])
            left -= min(left, len(block))
        c.shutdown(socket.SHUT_WR)
    except OSError as e:
        log("send: %s after %d bytes" % (e, n - left))
        return
    log("sent %d" % n)


def slowread(c):
    rate, secs = int(ARGS[0]), float(ARGS[1])
    n, t0 = 0, time.time()
    while time.time() - t0 < secs:
        d = c.recv(rate // 10)
        if not d:
            break
        n += len(d)
        time.sleep(0.1)
    else:
        while True:
            d = c.recv(1 << 16)
            if not d:
                break
            n += len(d)
    log("got %d" % n)
    c.sendall(b"got %d\n" % n)
    c.close()


def reset(c):
    c.sendall((b"0123456789" * (int(ARGS[0]) // 10 + 1))[:int(ARGS[0])])
    time.sleep(0.3)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()
    log("reset")


def echo_first(c):
    c.settimeout(5)
    try:
        d = c.recv(100)
        c.sendall(b"echo:" + d)
    except OSError:
        pass
    c.close()


if MODE == "unlistened":
    s = socket.socket(socket.AF_UNIX)
    path = WHERE[5:]
    try:
        os.unlink(path)
    except OSError:
        pass
    s.bind(path)
    s.close()
    log("ready")
    sys.exit(0)

if MODE == "busy":
    s = listen(0)
    filler = socket.socket(socket.AF_UNIX)
    filler.setblocking(False)
    filler.connect(WHERE[5:])
    probe = socket.socket(socket.AF_UNIX)
    probe.setblocking(False)
    try:
        probe.connect(WHERE[5:])
        log("the listen queue did not fill up")
        sys.exit(1)
    except BlockingIOError:
        pass
    log("ready")
    time.sleep(float(ARGS[0]))
    log("accepting")
    s.accept()[0].close()   # the filler
    while True:
        c, _ = s.accept()
        threading.Thread(target=echo_first, args=(c,), daemon=True).start()

s = listen(16)
log("ready")
handler = {"send": send, "slowread": slowread, "echo": echo_first, "reset": reset}[MODE]
while True:
    c, _ = s.accept()
    threading.Thread(target=handler, args=(c,), daemon=True).start()
