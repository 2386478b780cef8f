#!/usr/bin/env python3
"""Demo plaintext HTTP backend for `make demo`: answers every GET with a
greeting and, behind mtlsproxy in http mode, the caller's identity as the
proxy's headers tell it. It listens on loopback only; mtlsproxy is what
clients talk to.

usage: demo-backend.py [PORT] [HOST]     (default 8080 127.0.0.1)
"""
import http.server
import sys

BODY = b"hello from the demo backend, you reached it through mtlsproxy\n"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "demo-backend"

    def body(self):
        who = self.headers.get("X-Client-Subject")
        if who is None:
            return BODY
        return BODY + ("you are %s (SPIFFE ID %s)\n" % (
            who, self.headers.get("X-Client-SAN-URI", "none"))).encode()

    def do_GET(self):
        body = self.body()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body())))
        self.end_headers()

    def log_message(self, fmt, *args):
        sys.stderr.write("demo-backend: %s %s\n" % (self.address_string(), fmt % args))


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    httpd = http.server.ThreadingHTTPServer((host, port), Handler)
    sys.stderr.write("demo-backend: listening on %s:%d\n" % (host, port))
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
