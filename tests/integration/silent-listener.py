#!/usr/bin/env python3
"""A TCP port on 127.0.0.1 whose connects get no answer, as a host that is
down or a backend whose listen queue is full: it listens with a queue of one
and never accepts, and fills the queue itself, so the kernel drops the SYNs
of every further connect. Prints "silent" when ready; runs until killed.

usage: silent-listener.py PORT
"""
import socket
import sys
import time

port = int(sys.argv[1])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(('127.0.0.1', port))
ls.listen(0)
held = []
for _ in range(4):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(('127.0.0.1', port))
    except BlockingIOError:
        pass
    held.append(c)
print('silent', flush=True)
while True:
    time.sleep(3600)
