#!/usr/bin/env node
// Plain HTTP/1.1 backend for the http-mode integration tests (Node's http
// module, no dependencies). Listens on 127.0.0.1:PORT.
//
// usage: node http-backend.js PORT [--raw FILE | --silent | --flaky]
//
//   GET  /headers[?...]     200, JSON {method, url, httpVersion, rawHeaders,
//                           socketRequests, remotePort}: rawHeaders is
//                           req.rawHeaders (name, value, name, value, ...)
//                           so duplicates and letter case are visible
//   POST /sha256[?rate=R]   200, JSON {len, sha256, te, cl, expect, subject}
//                           of the request body (read at R bytes/s if given)
//   GET  /big?n=N&mode=M    N deterministic bytes (see bigStream); M is
//                           length (Content-Length), chunked, or close (no
//                           Content-Length, no chunked: body until close)
//   GET  /big-sha?n=N       the sha256 hex of /big?n=N, as text
//   GET  /status/NNN        that status; 204 and 304 without a body, others
//                           with a short body
//   GET  /hang              never answers
//   GET  /slow?ms=N         the /headers JSON, N ms after the request
//   GET  /ws                WebSocket echo (Upgrade): first sends a text
//                           frame "hello subject=<X-Client-Subject>", then
//                           echoes every text/binary frame, answers close
//   anything else           200, the same JSON as /headers
//
// Every request is logged on stdout as one line:
//   req METHOD URL subject=<each X-Client-Subject value, joined by |> verify=<...>
//
// --raw FILE: instead of Node's parser, read request heads by hand (up to
//   the blank line), append each raw head to FILE followed by a line
//   "=====", and answer each with "200 ok" (Content-Length: 2). Request
//   bodies are not expected. Shows the exact bytes the proxy forwarded.
//   GET /hop-answer: an answer with hop-by-hop headers, its head in three
//   pieces. GET /big-head?n=N: an answer whose head has an N-byte header.
//   GET /304cl: 304 with "Content-Length: 10" and no body. POST
//   /continue-close: 100 Continue, then the connection closed. GET
//   /close-answer: 200 with Connection: close, the close 300 ms later. GET
//   /short-body: Content-Length 100, 10 bytes, the close. A head with
//   an Upgrade header (any protocol), or GET /force101: 101 Switching
//   Protocols; what follows is read as heads again (the tunnel's bytes).
// --silent: accept connections, read and discard, never answer.
'use strict';
const http = require('http');
const net = require('net');
const crypto = require('crypto');
const fs = require('fs');
const { URL } = require('url');

const args = process.argv.slice(2);
const port = Number(args[0]);
if (!port) {
  process.stderr.write('usage: node http-backend.js PORT [--raw FILE | --silent | --flaky]\n');
  process.exit(2);
}

// ------------------------------------------------------------ raw / silent

if (args[1] === '--silent') {
  const srv = net.createServer((s) => {
    s.on('data', () => {});
    s.on('error', () => {});
  });
  srv.listen(port, '127.0.0.1', () => process.stdout.write(`silent backend on ${port}\n`));
  return;
}

// --flaky: answers the first request on each connection and drops the
// connection (closed, no answer) at the second, as a backend does whose
// keep-alive timeout strikes just as a request arrives. "drop=always" in
// the query drops at any request. One line per request on stdout:
//   flaky conn=N req=M METHOD PATH answered|dropped
// The answer's body is "conn=N req=M METHOD PATH\n".
if (args[1] === '--flaky') {
  let conns = 0;
  const srv = net.createServer((s) => {
    const conn = ++conns;
    let buf = Buffer.alloc(0);
    let reqs = 0;
    let need = -1; // body bytes still to skip, -1: reading a head
    let cur = null;
    const handle = () => {
      for (;;) {
        if (need < 0) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = buf.subarray(0, end).toString('latin1');
          buf = buf.subarray(end + 4);
          const [method, path] = head.split('\r\n')[0].split(' ');
          const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
          need = cl ? Number(cl[1]) : 0;
          cur = { method, path, n: ++reqs };
        }
        if (buf.length < need) return;
        buf = buf.subarray(need);
        need = -1;
        const line = `conn=${conn} req=${cur.n} ${cur.method} ${cur.path}`;
        if (cur.n >= 2 || /[?&]drop=always/.test(cur.path)) {
          process.stdout.write(`flaky ${line} dropped\n`);
          s.destroy();
          return;
        }
        process.stdout.write(`flaky ${line} answered\n`);
        const body = `${line}\n`;
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n` +
          `Content-Type: text/plain\r\n\r\n${body}`);
      }
    };
    s.on('data', (d) => { buf = Buffer.concat([buf, d]); handle(); });
    s.on('error', () => {});
  });
  srv.listen(port, '127.0.0.1', () => process.stdout.write(`flaky backend on ${port}\n`));
  return;
}

if (args[1] === '--raw') {
  const file = args[2];
  const srv = net.createServer((s) => {
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      let end;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.subarray(0, end + 4);
        buf = buf.subarray(end + 4);
        fs.appendFileSync(file, Buffer.concat([head, Buffer.from('=====\n')]));
        process.stdout.write(`raw head ${head.length} bytes\n`);
        const line = head.toString('latin1').split('\r\n')[0];
        let m;
        if (line.startsWith('GET /hop-answer ')) {
          // An answer with hop-by-hop headers, its head in three writes
          // 100 ms apart: X-Hop before the Connection header that lists it,
          // after 20 other names.
          const fillers = Array.from({ length: 20 }, (_, i) => 'X-F' + i).join(', ');
          const parts = [
            'HTTP/1.1 200 OK\r\nX-Hop: secret\r\nProxy-Connection: keep-alive\r\nKeep-',
            'Alive: timeout=5\r\nX-Kept: yes\r\nX-Empty:\r\nContent-Length: 2\r\nX-Hop2: also\r\n',
            'Connection: ' + fillers + ', X-Hop, keep-alive,x-hop2 , Content-Length, X-Empty\r\nX-Last: yes\r\n\r\nok',
          ];
          parts.forEach((p, i) => setTimeout(() => s.write(p), 100 * i));
        } else if (line.startsWith('GET /304cl ')) {
          // A 304 with the Content-Length its 200 would have: no body.
          s.write('HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 10\r\n\r\n');
        } else if (line.startsWith('GET /short-body ')) {
          // Content-Length 100, 10 bytes of it, then the close.
          s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789');
        } else if (line.startsWith('GET /close-answer ')) {
          // An answer with Connection: close; the close itself 300 ms
          // later, after what was pipelined behind it has arrived.
          s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
          setTimeout(() => s.destroy(), 300);
          s.removeAllListeners('data');
          s.on('data', () => {});
          return;
        } else if (line.startsWith('POST /continue-close ')) {
          // 100 Continue, then the connection closed without an answer.
          s.write('HTTP/1.1 100 Continue\r\n\r\n');
          setTimeout(() => s.destroy(), 100);
        } else if (/\r\nupgrade:/i.test(head.toString('latin1')) || line.startsWith('GET /force101 ')) {
          // Accepts any upgrade (as an h2c-capable server would), or
          // none asked: 101, then the bytes that follow are read as heads
          // again and logged, as what came through the tunnel.
          const up = /\r\nupgrade: *([^\r]*)/i.exec(head.toString('latin1'));
          s.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${up ? up[1] : 'h2c'}\r\n\r\n`);
        } else if ((m = /^GET \/big-head\?n=(\d+) /.exec(line))) {
          // A head with an N-byte header, in 8 KiB writes 20 ms apart.
          const h = Buffer.from('HTTP/1.1 200 OK\r\nX-Big: ' + 'b'.repeat(Number(m[1])) +
            '\r\nContent-Length: 2\r\n\r\nok', 'latin1');
          for (let i = 0; i * 8192 < h.length; i++)
            setTimeout(() => s.write(h.subarray(i * 8192, (i + 1) * 8192)), 20 * i);
        } else {
          s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok');
        }
      }
    });
    s.on('error', () => {});
  });
  srv.listen(port, '127.0.0.1', () => process.stdout.write(`raw backend on ${port}\n`));
  return;
}

// -------------------------------------------------------- deterministic data

// /big streams PERIOD-byte blocks of a fixed pseudo-random buffer; PERIOD is
// prime so that no power-of-two chunking can hide a reordering.
const PERIOD = 1000003;
const BASE = (() => {
  const b = Buffer.alloc(PERIOD + 32);
  for (let i = 0, o = 0; o < PERIOD; i++, o += 32) {
    crypto.createHash('sha256').update(`mtlsproxy-big-${i}`).digest().copy(b, o);
  }
  return b.subarray(0, PERIOD);
})();

// Chunks of at most 64 KiB making up n bytes.
function* bigChunks(n) {
  let off = 0;
  while (n > 0) {
    const len = Math.min(n, 65536, PERIOD - off);
    yield BASE.subarray(off, off + len);
    n -= len;
    off = (off + len) % PERIOD;
  }
}

function bigSha(n) {
  const h = crypto.createHash('sha256');
  for (const c of bigChunks(n)) h.update(c);
  return h.digest('hex');
}

// Write n bytes to a writable with backpressure, then call done.
function streamBig(w, n, done) {
  const it = bigChunks(n);
  const pump = () => {
    for (;;) {
      const r = it.next();
      if (r.done) { done(); return; }
      if (!w.write(r.value)) { w.once('drain', pump); return; }
    }
  };
  pump();
}

// ------------------------------------------------------------------ helpers

function headerValues(req, name) {
  const out = [];
  const lc = name.toLowerCase();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i].toLowerCase() === lc) out.push(req.rawHeaders[i + 1]);
  }
  return out;
}

function sendJson(res, status, obj) {
  const body = Buffer.from(JSON.stringify(obj) + '\n');
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length });
  res.end(body);
}

function describe(req) {
  return {
    method: req.method,
    url: req.url,
    httpVersion: req.httpVersion,
    rawHeaders: req.rawHeaders,
    socketRequests: req.socket._mtlsRequests,
    remotePort: req.socket.remotePort,
  };
}

// ------------------------------------------------------------------ server

const server = http.createServer();
// HB_KEEPALIVE_MS: how long an idle keep-alive connection is kept (60 s).
server.keepAliveTimeout = Number(process.env.HB_KEEPALIVE_MS || 60000);
server.headersTimeout = 60000;
server.requestTimeout = 0;
server.maxHeaderSize = 64 * 1024;

server.on('connection', (s) => {
  s._mtlsRequests = 0;
  process.stdout.write('conn\n');  // a line per TCP connection from the proxy
});

// Answer Expect: 100-continue ourselves so the log shows we saw it.
server.on('checkContinue', (req, res) => {
  req._sawExpect = true;
  res.writeContinue();
  server.emit('request', req, res);
});

server.on('request', (req, res) => {
  req.socket._mtlsRequests += 1;
  const u = new URL(req.url, 'http://backend');
  process.stdout.write(`req ${req.method} ${req.url} subject=${headerValues(req, 'x-client-subject').join('|')} ` +
    `verify=${headerValues(req, 'x-client-verify').join('|')}\n`);

  if (u.pathname === '/sha256') {
    const h = crypto.createHash('sha256');
    let len = 0;
    const rate = Number(u.searchParams.get('rate') || 0);	// bytes/s, 0: no limit
    req.on('data', (d) => {
      h.update(d);
      len += d.length;
      if (rate > 0) {
        req.pause();
        setTimeout(() => req.resume(), Math.ceil((d.length * 1000) / rate));
      }
    });
    req.on('end', () => sendJson(res, 200, {
      len,
      sha256: h.digest('hex'),
      te: req.headers['transfer-encoding'] || null,
      cl: req.headers['content-length'] || null,
      expect: req.headers.expect || null,
      sawExpect: !!req._sawExpect,
      subject: headerValues(req, 'x-client-subject'),
    }));
    return;
  }

  if (u.pathname === '/big-sha') {
    const body = bigSha(Number(u.searchParams.get('n') || 0)) + '\n';
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }

  if (u.pathname === '/big') {
    const n = Number(u.searchParams.get('n') || 0);
    const mode = u.searchParams.get('mode') || 'length';
    req.resume();
    if (mode === 'close') {
      // Until-close body: write the response by hand so that Node adds
      // neither Content-Length nor chunked framing.
      const s = req.socket;
      s.write('HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n');
      if (req.method === 'HEAD') { s.end(); return; }
      streamBig(s, n, () => s.end());
      return;
    }
    const hdrs = { 'Content-Type': 'application/octet-stream' };
    if (mode === 'chunked') hdrs['Transfer-Encoding'] = 'chunked';
    else hdrs['Content-Length'] = String(n);
    res.writeHead(200, hdrs);
    if (req.method === 'HEAD') { res.end(); return; }
    streamBig(res, n, () => res.end());
    return;
  }

  const m = /^\/status\/(\d{3})$/.exec(u.pathname);
  if (m) {
    const code = Number(m[1]);
    req.resume();
    req.on('end', () => {
      if (code === 204 || code === 304) {
        res.writeHead(code, { 'X-Status-Test': String(code) });
        res.end();
      } else {
        const body = `status ${code}\n`;
        res.writeHead(code, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
      }
    });
    return;
  }

  if (u.pathname === '/slow') {
    req.resume();
    const ms = Number(u.searchParams.get('ms') || 0);
    req.on('end', () => setTimeout(() => sendJson(res, 200, describe(req)), ms));
    return;
  }

  if (u.pathname === '/hang') {
    req.resume();
    return;	// never answer
  }

  // /headers and everything else: what we received.
  req.resume();
  req.on('end', () => sendJson(res, 200, describe(req)));
});

// ---------------------------------------------------------------- WebSocket

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function wsFrame(opcode, payload) {
  const len = payload.length;
  let head;
  if (len < 126) {
    head = Buffer.from([0x80 | opcode, len]);
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode; head[1] = 126; head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode; head[1] = 127; head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, payload]);
}

server.on('upgrade', (req, socket, head) => {
  const key = req.headers['sec-websocket-key'];
  process.stdout.write(`upgrade ${req.url} subject=${headerValues(req, 'x-client-subject').join('|')}\n`);
  if (!key || (req.headers.upgrade || '').toLowerCase() !== 'websocket') {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  const accept = crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${accept}\r\n\r\n`);
  socket.write(wsFrame(1, Buffer.from(`hello subject=${headerValues(req, 'x-client-subject').join('|')}`)));
  let buf = head && head.length ? Buffer.from(head) : Buffer.alloc(0);
  const onData = () => {
    for (;;) {
      if (buf.length < 2) return;
      const op = buf[0] & 0x0f;
      const masked = (buf[1] & 0x80) !== 0;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2); off = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2)); off = 10;
      }
      const maskOff = off;
      if (masked) off += 4;
      if (buf.length < off + len) return;
      const payload = Buffer.from(buf.subarray(off, off + len));
      if (masked) {
        for (let i = 0; i < len; i++) payload[i] ^= buf[maskOff + (i & 3)];
      }
      buf = buf.subarray(off + len);
      if (op === 8) {
        socket.end(wsFrame(8, payload.subarray(0, 2)));
        return;
      }
      if (op === 9) { socket.write(wsFrame(10, payload)); continue; }
      if (op === 1 || op === 2) socket.write(wsFrame(op, payload));
    }
  };
  socket.on('data', (d) => { buf = Buffer.concat([buf, d]); onData(); });
  socket.on('error', () => {});
  onData();
});

server.on('clientError', (err, socket) => {
  process.stdout.write(`clientError ${err.code || ''} ${err.message}\n`);
  if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
});

server.listen(port, '127.0.0.1', () => process.stdout.write(`http backend on ${port}\n`));
