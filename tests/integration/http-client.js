#!/usr/bin/env node
// HTTP-over-TLS client for the http-mode integration tests (Node's tls and
// https modules, no dependencies). Output is JSON on stdout (one object), so
// the shell tests read it with python3.
//
// usage: node http-client.js MODE PORT [options]
//   common: --ca F (server CA, always verified), --cert F --key F (client
//           certificate), --servername NAME (default localhost),
//           --timeout MS (default 20000)
//
//   keepalive PORT --count N --path P [--delay MS]
//       N sequential GETs of P through https.Agent({keepAlive, maxSockets: 1}),
//       MS apart (default 0). Each answer must be the backend's /headers
//       JSON. Prints {ok, count, reused, localPorts, subjects: [per request:
//       the list of X-Client-Subject values the backend saw], backendPorts:
//       [per request: the port the backend saw the request come from],
//       errors: [...]}.
//
//   raw PORT (--send S | --send-file F) [--methods GET,HEAD,...]
//            [--responses N] [--wait-close MS] [--chunks N]
//       Writes the bytes in ONE write (S: \r \n \t \\ \xHH unescaped), or in
//       N writes 50 ms apart with --chunks N. Parses the answer as HTTP/1.1
//       responses to the listed request methods (default GET each), until N
//       final responses are complete (then waits --wait-close MS, default 0,
//       to see whether the server closes) or the server closes or the
//       timeout hits. Prints {connected, responses: [{status, reason,
//       interim, headers: [[name, value]...], bodyLen, bodySha256, body}],
//       closedByServer, timedOut, error, rest, rawLen, raw, firstByteMs,
//       closeMs} (ms from the request's write to the first byte received,
//       and to the server's close)
//       (body: latin1 text when at most 64 KiB; rest: unparsed bytes;
//       raw: the first 64 KiB received, latin1).
//       --sequential [--gap MS]: the bytes are bodiless requests; send each
//       (split at its blank line) only once the answer to the previous one
//       is complete, and MS later (default: at once).
//
//   hold PORT --count N --path P --hold MS
//       N connections at once, each sending one keep-alive GET of P and
//       reading its whole answer (Content-Length), then holding the
//       connection open, idle, until MS after the start. Prints {answered,
//       codes: {status: n}, closedEarly, errors: [...]} once all answered
//       (on stderr: "answered N" as soon as they have), exits 0 when all N
//       answered 200 and none was closed before MS.
//
//   parallel PORT --count N --path P
//       N GETs of P at once, each on a connection of its own (no keep-alive;
//       Connection: close): all N handshakes first, then all N requests.
//       Prints {count, codes: {status: n}, errors: [...]}
//       and exits 0 when all N answered 200.
//
//   ws PORT --path P [--binary-size N] [--header 'Name: value']...
//       WebSocket over TLS: Upgrade, check the 101 and Sec-WebSocket-Accept,
//       read the backend's greeting frame, send a masked text frame and a
//       masked binary frame of N random bytes (default 100000) and expect
//       both echoed, then close. Prints {ok, status, accept, greeting,
//       textEcho, binaryEcho, closed, error}.
'use strict';
const tls = require('tls');
const https = require('https');
const fs = require('fs');
const crypto = require('crypto');

const argv = process.argv.slice(2);
const mode = argv[0];
const port = Number(argv[1]);
const opt = { servername: 'localhost', timeout: 20000, count: 1, path: '/headers',
  waitClose: 0, chunks: 1, binarySize: 100000 };
for (let i = 2; i < argv.length; i++) {
  const a = argv[i];
  const val = () => argv[++i];
  switch (a) {
    case '--ca': opt.ca = val(); break;
    case '--cert': opt.cert = val(); break;
    case '--key': opt.key = val(); break;
    case '--servername': opt.servername = val(); break;
    case '--timeout': opt.timeout = Number(val()); break;
    case '--count': opt.count = Number(val()); break;
    case '--delay': opt.delay = Number(val()); break;
    case '--hold': opt.hold = Number(val()); break;
    case '--path': opt.path = val(); break;
    case '--send': opt.send = val(); break;
    case '--send-file': opt.sendFile = val(); break;
    case '--methods': opt.methods = val().split(','); break;
    case '--responses': opt.responses = Number(val()); break;
    case '--wait-close': opt.waitClose = Number(val()); break;
    case '--chunks': opt.chunks = Number(val()); break;
    case '--binary-size': opt.binarySize = Number(val()); break;
    case '--sequential': opt.sequential = true; break;
    case '--gap': opt.gap = Number(val()); break;
    case '--header': (opt.headers = opt.headers || []).push(val()); break;
    default:
      process.stderr.write(`http-client.js: unknown option ${a}\n`);
      process.exit(2);
  }
}
if (!['keepalive', 'hold', 'parallel', 'raw', 'ws'].includes(mode) || !port) {
  process.stderr.write('usage: node http-client.js keepalive|hold|parallel|raw|ws PORT [options]\n');
  process.exit(2);
}

function tlsOptions() {
  const o = { host: '127.0.0.1', port, servername: opt.servername, rejectUnauthorized: true };
  if (opt.ca) o.ca = fs.readFileSync(opt.ca);
  if (opt.cert) o.cert = fs.readFileSync(opt.cert);
  if (opt.key) o.key = fs.readFileSync(opt.key);
  return o;
}

function unescape(s) {
  return Buffer.from(s.replace(/\\(x[0-9a-fA-F]{2}|.)/g, (m, c) => {
    switch (c[0]) {
      case 'n': return '\n';
      case 'r': return '\r';
      case 't': return '\t';
      case '\\': return '\\';
      case 'x': return String.fromCharCode(parseInt(c.slice(1), 16));
      default: return m;
    }
  }), 'latin1');
}

function done(obj, code) {
  process.stdout.write(JSON.stringify(obj, null, 1) + '\n');
  process.exit(code);
}

// -------------------------------------------------------------------- hold

function hold() {
  const out = { answered: 0, codes: {}, closedEarly: 0, errors: [] };
  const socks = [];
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    for (const sk of socks) sk.destroy();
    done(out, out.codes['200'] === opt.count && out.closedEarly === 0 && out.errors.length === 0 ? 0 : 1);
  };
  setTimeout(end, opt.hold);
  setTimeout(() => { out.errors.push('timeout'); end(); }, Math.max(opt.timeout, opt.hold + 5000));
  for (let n = 0; n < opt.count; n++) {
    const sk = tls.connect(tlsOptions());
    socks.push(sk);
    let buf = Buffer.alloc(0);
    let answered = false;
    sk.on('secureConnect', () => {
      sk.write(`GET ${opt.path} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    });
    sk.on('data', (d) => {
      if (answered) return;
      buf = Buffer.concat([buf, d]);
      const e = buf.indexOf('\r\n\r\n');
      if (e < 0) return;
      const head = buf.subarray(0, e).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (!m || !cl || buf.length < e + 4 + Number(cl[1])) return;
      answered = true;
      out.answered++;
      out.codes[m[1]] = (out.codes[m[1]] || 0) + 1;
      if (out.answered === opt.count) process.stderr.write(`answered ${out.answered}\n`);
    });
    sk.on('end', () => { if (!ended) out.closedEarly++; });
    sk.on('error', (e) => { if (!ended) out.errors.push(`${e.code || ''} ${e.message}`); });
  }
}

// ---------------------------------------------------------------- parallel

function parallel() {
  const base = tlsOptions();
  const out = { count: 0, codes: {}, errors: [] };
  const timer = setTimeout(() => { out.errors.push('timeout'); done(out, 1); }, opt.timeout);
  let left = opt.count;
  const finish = () => {
    if (--left > 0) return;
    clearTimeout(timer);
    done(out, out.codes['200'] === opt.count ? 0 : 1);
  };
  // Every connection finishes its handshake first; then all N requests go
  // out together, so they are at the proxy at once however slowly the
  // handshakes came (a busy machine).
  const reqs = [];
  let pending = opt.count;
  const ready = () => {
    if (--pending === 0) for (const r of reqs) if (!r.destroyed) r.end();
  };
  for (let n = 0; n < opt.count; n++) {
    let counted = false;
    const once = () => { if (!counted) { counted = true; ready(); } };
    const req = https.request({ ...base, agent: false, method: 'GET', path: opt.path,
      headers: { Connection: 'close' } }, (res) => {
      res.resume();
      res.on('end', () => {
        out.count++;
        out.codes[res.statusCode] = (out.codes[res.statusCode] || 0) + 1;
        finish();
      });
    });
    req.on('socket', (sk) => sk.once('secureConnect', once));
    req.on('error', (e) => { out.errors.push(`${e.code || ''} ${e.message}`); once(); finish(); });
    reqs.push(req);
  }
}

// ---------------------------------------------------------------- keepalive

function keepalive() {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  const base = tlsOptions();
  const out = { ok: false, count: 0, reused: 0, localPorts: [], subjects: [], backendPorts: [],
    errors: [] };
  const ports = new Set();
  const timer = setTimeout(() => { out.errors.push('timeout'); done(out, 1); }, opt.timeout);
  let i = 0;
  const next = () => {
    if (i === opt.count) {
      clearTimeout(timer);
      out.localPorts = [...ports];
      out.ok = out.errors.length === 0;
      agent.destroy();
      done(out, out.ok ? 0 : 1);
      return;
    }
    const n = i++;
    const req = https.request({ ...base, agent, method: 'GET', path: `${opt.path}?i=${n}` }, (res) => {
      let body = '';
      ports.add(res.socket.localPort);
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        out.count++;
        if (req.reusedSocket) out.reused++;
        try {
          const j = JSON.parse(body);
          const subj = [];
          for (let k = 0; k < j.rawHeaders.length; k += 2) {
            if (j.rawHeaders[k].toLowerCase() === 'x-client-subject') subj.push(j.rawHeaders[k + 1]);
          }
          out.subjects.push(subj);
          out.backendPorts.push(j.remotePort);
          if (j.url !== `${opt.path}?i=${n}`) out.errors.push(`request ${n}: backend saw url ${j.url}`);
        } catch (e) {
          out.errors.push(`request ${n}: status ${res.statusCode}, body not JSON: ${body.slice(0, 200)}`);
          out.subjects.push(null);
        }
        if (opt.delay) setTimeout(next, opt.delay); else next();
      });
    });
    req.on('error', (e) => {
      out.errors.push(`request ${n}: ${e.code || ''} ${e.message}`);
      clearTimeout(timer);
      done(out, 1);
    });
    req.end();
  };
  next();
}

// ---------------------------------------------------------------------- raw

// Parse as many complete responses from buf as possible. state: {i (index
// of the request whose answer comes next), responses, switched}. Returns
// the unparsed rest. final: the server closed (an until-close body ends).
function parseResponses(buf, st, final) {
  for (;;) {
    if (st.switched) return buf;
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return buf;
    const head = buf.subarray(0, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(head[0]);
    if (!m) { st.error = `bad status line: ${JSON.stringify(head[0].slice(0, 200))}`; return buf; }
    const status = Number(m[1]);
    const headers = head.slice(1).map((l) => {
      const c = l.indexOf(':');
      return c < 0 ? [l, null] : [l.slice(0, c), l.slice(c + 1).trim()];
    });
    const get = (n) => {
      const h = headers.find((x) => x[0].toLowerCase() === n);
      return h ? h[1] : null;
    };
    const method = (st.methods[st.i] || 'GET').toUpperCase();
    let rest = buf.subarray(end + 4);
    let body;
    if (status >= 100 && status < 200) {
      body = Buffer.alloc(0);
      if (status === 101) st.switched = true;
    } else if (method === 'HEAD' || status === 204 || status === 304) {
      body = Buffer.alloc(0);
    } else if ((get('transfer-encoding') || '').toLowerCase().includes('chunked')) {
      const parts = [];
      let p = 0;
      let complete = false;
      for (;;) {
        const le = rest.indexOf('\r\n', p);
        if (le < 0) break;
        const size = parseInt(rest.subarray(p, le).toString('latin1').split(';')[0], 16);
        if (Number.isNaN(size)) { st.error = 'bad chunk size'; return buf; }
        if (size === 0) {
          // trailers until an empty line
          let q = le + 2;
          let ok = false;
          for (;;) {
            const te = rest.indexOf('\r\n', q);
            if (te < 0) break;
            if (te === q) { q += 2; ok = true; break; }
            q = te + 2;
          }
          if (ok) { complete = true; p = q; }
          break;
        }
        if (rest.length < le + 2 + size + 2) break;
        parts.push(rest.subarray(le + 2, le + 2 + size));
        p = le + 2 + size + 2;
      }
      if (!complete) return buf;
      body = Buffer.concat(parts);
      rest = rest.subarray(p);
    } else if (get('content-length') !== null) {
      const n = Number(get('content-length'));
      if (rest.length < n) return buf;
      body = rest.subarray(0, n);
      rest = rest.subarray(n);
    } else {
      if (!final) return buf;	// until close
      body = rest;
      rest = Buffer.alloc(0);
    }
    const interim = status >= 100 && status < 200 && status !== 101;
    st.responses.push({
      status, reason: m[2] || '', interim, headers,
      bodyLen: body.length,
      bodySha256: crypto.createHash('sha256').update(body).digest('hex'),
      body: body.length <= 65536 ? body.toString('latin1') : null,
    });
    if (!interim) st.i++;
    buf = rest;
  }
}

function raw() {
  const data = opt.sendFile ? fs.readFileSync(opt.sendFile) : unescape(opt.send || '');
  const st = { i: 0, responses: [], methods: opt.methods || [], switched: false, error: null };
  const out = { connected: false, responses: st.responses, closedByServer: false, timedOut: false,
    error: null, rest: '', rawLen: 0, raw: '', firstByteMs: null, closeMs: null };
  let tSent = null;
  let buf = Buffer.alloc(0);
  const rawParts = [];
  let rawKept = 0;
  let finished = false;
  let closeTimer = null;
  const finish = () => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    if (closeTimer) clearTimeout(closeTimer);
    if (!out.error && st.error) out.error = st.error;
    out.rest = buf.subarray(0, 4096).toString('latin1');
    out.raw = Buffer.concat(rawParts).toString('latin1');
    sock.destroy();
    done(out, 0);
  };
  const finals = () => st.responses.filter((r) => !r.interim).length;
  const timer = setTimeout(() => { out.timedOut = true; finish(); }, opt.timeout);
  const sock = tls.connect(tlsOptions());
  // --sequential: split into requests at each blank line
  const seq = [];
  if (opt.sequential) {
    let p = 0;
    for (;;) {
      const e = data.indexOf('\r\n\r\n', p);
      if (e < 0) break;
      seq.push(data.subarray(p, e + 4));
      p = e + 4;
    }
    if (p < data.length) seq.push(data.subarray(p));
  }
  let sent = 0;
  let gapTimer = null;
  const sendNext = () => {
    if (gapTimer) return;
    while (sent < seq.length && sent <= finals()) {
      if (opt.gap && sent > 0) {
        gapTimer = setTimeout(() => {
          gapTimer = null;
          if (sock.destroyed) return;
          sock.write(seq[sent++]);
          sendNext();
        }, opt.gap);
        return;
      }
      sock.write(seq[sent++]);
    }
  };
  sock.on('secureConnect', () => {
    out.connected = true;
    tSent = Date.now();
    if (opt.sequential) { sendNext(); return; }
    if (opt.chunks <= 1) {
      sock.write(data);
      return;
    }
    const size = Math.ceil(data.length / opt.chunks);
    let off = 0;
    const step = () => {
      if (off >= data.length || sock.destroyed) return;
      sock.write(data.subarray(off, off + size));
      off += size;
      setTimeout(step, 50);
    };
    step();
  });
  sock.on('data', (d) => {
    if (out.firstByteMs === null && tSent !== null) out.firstByteMs = Date.now() - tSent;
    out.rawLen += d.length;
    if (rawKept < 65536) { rawParts.push(d.subarray(0, 65536 - rawKept)); rawKept += Math.min(d.length, 65536 - rawKept); }
    buf = Buffer.concat([buf, d]);
    buf = parseResponses(buf, st, false);
    if (st.error) { finish(); return; }
    if (opt.sequential) sendNext();
    if (opt.responses && finals() >= opt.responses && !closeTimer) {
      if (opt.waitClose > 0) closeTimer = setTimeout(finish, opt.waitClose);
      else finish();
    }
  });
  sock.on('end', () => {
    out.closedByServer = true;
    if (tSent !== null) out.closeMs = Date.now() - tSent;
    buf = parseResponses(buf, st, true);
    finish();
  });
  sock.on('error', (e) => {
    out.error = `${e.code || 'ERROR'} ${e.message}`;
    if (e.code === 'ECONNRESET') out.closedByServer = true;
    finish();
  });
  sock.on('close', () => {
    out.closedByServer = true;
    buf = parseResponses(buf, st, true);
    finish();
  });
}

// ----------------------------------------------------------------------- ws

function wsClientFrame(opcode, payload) {
  const len = payload.length;
  let head;
  if (len < 126) {
    head = Buffer.from([0x80 | opcode, 0x80 | len]);
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode; head[1] = 0x80 | 126; head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode; head[1] = 0x80 | 127; head.writeBigUInt64BE(BigInt(len), 2);
  }
  const mask = crypto.randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < len; i++) body[i] ^= mask[i & 3];
  return Buffer.concat([head, mask, body]);
}

function ws() {
  const key = crypto.randomBytes(16).toString('base64');
  const want = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  const text = `hello over websocket ${process.pid}`;
  const bin = crypto.randomBytes(opt.binarySize);
  const out = { ok: false, status: null, accept: null, greeting: null, textEcho: null,
    binaryEcho: null, closed: false, error: null, headers: null };
  let buf = Buffer.alloc(0);
  let stage = 'head';
  const timer = setTimeout(() => { out.error = `timeout in stage ${stage}`; done(out, 1); }, opt.timeout);
  const fin = (ok) => {
    clearTimeout(timer);
    out.ok = ok;
    sock.destroy();
    done(out, ok ? 0 : 1);
  };
  const sock = tls.connect(tlsOptions());
  sock.on('secureConnect', () => {
    sock.write(`GET ${opt.path} HTTP/1.1\r\nHost: localhost:${port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
      (opt.headers || []).map((h) => `${h}\r\n`).join('') + '\r\n');
  });
  const readFrame = () => {
    if (buf.length < 2) return null;
    const op = buf[0] & 0x0f;
    if (buf[1] & 0x80) { out.error = 'server frame is masked'; fin(false); return null; }
    let len = buf[1] & 0x7f;
    let off = 2;
    if (len === 126) { if (buf.length < 4) return null; len = buf.readUInt16BE(2); off = 4; }
    else if (len === 127) { if (buf.length < 10) return null; len = Number(buf.readBigUInt64BE(2)); off = 10; }
    if (buf.length < off + len) return null;
    const payload = buf.subarray(off, off + len);
    buf = buf.subarray(off + len);
    return { op, payload };
  };
  const step = () => {
    if (stage === 'head') {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
      buf = buf.subarray(end + 4);
      out.status = Number((/^HTTP\/1\.1 (\d{3})/.exec(lines[0]) || [])[1]);
      out.headers = lines.slice(1);
      const acc = lines.find((l) => /^sec-websocket-accept:/i.test(l));
      out.accept = acc ? acc.slice(acc.indexOf(':') + 1).trim() : null;
      if (out.status !== 101) { out.error = `expected 101, got: ${lines[0]}`; fin(false); return; }
      if (out.accept !== want) { out.error = `Sec-WebSocket-Accept ${out.accept}, expected ${want}`; fin(false); return; }
      stage = 'greeting';
    }
    for (;;) {
      const f = readFrame();
      if (!f) return;
      if (stage === 'greeting') {
        if (f.op !== 1) { out.error = `greeting: opcode ${f.op}`; fin(false); return; }
        out.greeting = f.payload.toString('utf8');
        sock.write(wsClientFrame(1, Buffer.from(text)));
        stage = 'text';
      } else if (stage === 'text') {
        out.textEcho = f.payload.toString('utf8');
        if (f.op !== 1 || out.textEcho !== text) { out.error = `text echo: opcode ${f.op} ${JSON.stringify(out.textEcho)}`; fin(false); return; }
        sock.write(wsClientFrame(2, bin));
        stage = 'binary';
      } else if (stage === 'binary') {
        const same = f.op === 2 && Buffer.compare(f.payload, bin) === 0;
        out.binaryEcho = { op: f.op, len: f.payload.length, same };
        if (!same) { out.error = `binary echo differs (opcode ${f.op}, ${f.payload.length} bytes, sent ${bin.length})`; fin(false); return; }
        sock.write(wsClientFrame(8, Buffer.from([0x03, 0xe8])));
        stage = 'close';
      } else if (stage === 'close') {
        if (f.op === 8) { out.closed = true; fin(true); return; }
      }
    }
  };
  sock.on('data', (d) => { buf = Buffer.concat([buf, d]); step(); });
  sock.on('error', (e) => { out.error = `${e.code || 'ERROR'} ${e.message} (stage ${stage})`; fin(false); });
  sock.on('close', () => {
    if (stage === 'close') { out.closed = true; fin(true); return; }
    if (!out.error) out.error = `connection closed in stage ${stage}`;
    fin(false);
  });
}

if (mode === 'keepalive') keepalive();
else if (mode === 'parallel') parallel();
else if (mode === 'hold') hold();
else if (mode === 'raw') raw();
else ws();
