#!/usr/bin/env python3
"""Backend made with Python's own http.server, for the http-mode tests of
backends that close their connection after every answer.

usage: py-backend.py PORT MODE

MODE http10: Python's default server, HTTP/1.0: each answer carries
  "HTTP/1.0", a Content-Length, no Connection header, and the server
  closes after it (as BaseHTTPRequestHandler does by default).
MODE close11: HTTP/1.1 answers with "Connection: close" (the way gunicorn's
  sync workers and many small servers answer), then the close.

Paths (any method; HEAD gets the head only):
  /len[?...]     200, JSON {conn, remotePort, url, httpVersion, rawHeaders}
                 (the shape of http-backend.js's /headers), a Content-Length
  /nolen         the same JSON without a Content-Length: ends at the close
  /chunked       (close11 only) the same JSON, Transfer-Encoding: chunked
  /big?n=N       N bytes of "0123456789" repeated, with a Content-Length
  /status/NNN    that status, no body for 204 and 304
conn counts the connections the server accepted (1, 2, ...); remotePort
is the peer's port; rawHeaders is [name, value, name, value, ...]. Each request is logged on stdout: "req N METHOD PATH".
"""
import json
import socketserver
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

PORT = int(sys.argv[1])
MODE = sys.argv[2]
COUNT = [0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1" if MODE == "close11" else "HTTP/1.0"

    def setup(self):
        super().setup()
        COUNT[0] += 1
        self.conn_no = COUNT[0]

    def log_message(self, fmt, *args):
        pass

    def answer(self):
        print("req %d %s %s" % (self.conn_no, self.command, self.path), flush=True)
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        path = self.path.split("?")[0]
        head = self.command == "HEAD"
        status = 200
        raw = []
        for name, value in self.headers.items():
            raw += [name, value]
        body = json.dumps({"conn": self.conn_no, "remotePort": self.client_address[1],
                           "url": self.path, "httpVersion": self.request_version,
                           "rawHeaders": raw}).encode()
        if path.startswith("/status/"):
            status = int(path[8:])
            body = b"" if status in (204, 304) else b"status\n"
        elif path == "/big":
            n = int(self.path.split("n=")[1])
            body = (b"0123456789" * (n // 10 + 1))[:n]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if MODE == "close11":
            self.send_header("Connection", "close")
        if path == "/chunked" and MODE == "close11":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if not head:
                half = len(body) // 2
                for part in (body[:half], body[half:]):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
        else:
            if path != "/nolen" and status not in (204, 304):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head and status not in (204, 304):
                self.wfile.write(body)
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = answer


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


Server(("127.0.0.1", PORT), Handler).serve_forever()
