#!/usr/bin/env python3
"""TLS client that puts many TLS records into one TCP segment.

The handshake runs over memory BIOs, so the client decides what goes out in
one send(): its last handshake flight (Certificate, CertificateVerify,
Finished) together with the first application records, and later bursts of
many small records at once. A server that reads ahead must still deliver
every record, even when no further bytes ever arrive on the socket.

usage: tls-burst.py PORT --cert F --key F --ca F [--servername N]
                    (--echo SIZES | --http PATHS) [--timeout S]
  --echo 5,300,1,16384  one record per size (random bytes), all sent with the
                        Finished; then the same again as a second burst; the
                        reply must be exactly the sent bytes (tcp echo)
  --http /a,/b,/c       one GET per record, all sent with the Finished;
                        prints each response's status line and body, one
                        line each ("200 <body>")
Prints "ok" and exits 0 on success; "ERROR <what>" and exits 1 otherwise.
"""
import argparse
import os
import socket
import ssl
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--servername", default="localhost")
    ap.add_argument("--echo")
    ap.add_argument("--http")
    ap.add_argument("--timeout", type=float, default=10.0)
    a = ap.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(a.ca)
    ctx.load_cert_chain(a.cert, a.key)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname=a.servername)
    sock = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    deadline = time.monotonic() + a.timeout

    def recv_some():
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            die("timed out waiting for the server")
        if not data:
            inc.write_eof()
        else:
            inc.write(data)
        return data

    def die(what):
        print("ERROR " + what)
        sys.exit(1)

    # Handshake; hold back the client's last flight.
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            pending = out.read()
            if pending:
                sock.sendall(pending)
            if not recv_some():
                die("server closed during the handshake")
    flight = out.read()

    def records(payloads):
        for p in payloads:
            tls.write(p)
        return out.read()

    if a.echo:
        sizes = [int(x) for x in a.echo.split(",")]
        want = b""
        first = [os.urandom(n) for n in sizes]
        second = [os.urandom(n) for n in sizes]
        # Burst 1 rides with the Finished.
        sock.sendall(flight + records(first))
        want += b"".join(first)
        got = read_exact(tls, recv_some, len(want), die)
        if got != want:
            die("first burst: echoed bytes differ")
        sock.sendall(records(second))
        want2 = b"".join(second)
        got = read_exact(tls, recv_some, len(want2), die)
        if got != want2:
            die("second burst: echoed bytes differ")
        print("ok")
        return

    if a.http:
        paths = a.http.split(",")
        reqs = [("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % p).encode()
                for p in paths]
        sock.sendall(flight + records(reqs))
        buf = b""
        for _ in paths:
            status, body, buf = read_response(tls, recv_some, buf, die)
            print("%s %s" % (status, body.decode(errors="replace").strip()))
        print("ok")
        return
    die("give --echo or --http")


def read_plain(tls, recv_some):
    while True:
        try:
            return tls.read(65536)
        except ssl.SSLWantReadError:
            if not recv_some():
                return b""


def read_exact(tls, recv_some, n, die):
    got = b""
    while len(got) < n:
        d = read_plain(tls, recv_some)
        if not d:
            die("server closed after %d of %d bytes" % (len(got), n))
        got += d
    return got


def read_response(tls, recv_some, buf, die):
    while b"\r\n\r\n" not in buf:
        d = read_plain(tls, recv_some)
        if not d:
            die("server closed before a full response header")
        buf += d
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ")[1]
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    while len(buf) < length:
        d = read_plain(tls, recv_some)
        if not d:
            die("server closed inside a response body")
        buf += d
    return status, buf[:length], buf[length:]


if __name__ == "__main__":
    main()
