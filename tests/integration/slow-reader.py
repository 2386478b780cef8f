# A backend that reads request bodies slowly: PORT CHUNK DELAY. It reads
# CHUNK bytes every DELAY seconds (with a small receive buffer, so the
# sender's queue shows it), then answers "read N" and closes.
import socket, sys, time
port = int(sys.argv[1]); chunk = int(sys.argv[2]); delay = float(sys.argv[3])
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
ls.bind(("127.0.0.1", port)); ls.listen(8)
while True:
    c, _ = ls.accept()
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = c.recv(4096)
        if not d: break
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"): n = int(line.split(b":")[1])
    got = len(body)
    while got < n:
        time.sleep(delay)
        d = c.recv(min(chunk, n - got))
        if not d: break
        got += len(d)
    msg = b"read %d\n" % got
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(msg) + msg)
    c.close()
