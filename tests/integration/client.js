#!/usr/bin/env node
// TLS client for the integration tests (Node's tls module, the same stack an
// https.request would use). Prints the bytes received, or one line
// `ERROR <code> <message>`; exits 0 on success, 1 on failure.
//
// usage: node client.js HOST PORT [options]
//   --cert F --key F     client certificate and key (PEM)
//   --pfx F              client PKCS#12 instead, with --passphrase-file F
//   --ca F               CA for the server certificate (always verified)
//   --servername NAME    SNI and name to verify (default: localhost)
//   --send STRING        bytes to send; \n \r \t \\ and \xHH are unescaped
//   --send-file F        stream file F (with backpressure)
//   --send-size N        send N random bytes
//   --echo               expect exactly the sent bytes back (length and
//                        SHA-256); then close. Without it: read until the
//                        server closes (needs at least one byte)
//   --half-close         end the write side after sending; keep reading
//                        until the server closes
//   --out F              write received bytes to F instead of stdout
//   --lines              interactive: send each stdin line, wait for its
//                        echo, print `echo: LINE`; stdin EOF closes
//   --connections N      N connections in parallel, each with the payload
//                        (implies --echo); prints `ok N` when all succeed
//   --timeout MS         give up after MS (default 30000)
//   --min-version V      TLSv1.2 | TLSv1.3
//   --max-version V      TLSv1.2 | TLSv1.3
// On stderr: one `server-cert:` line per connection and a summary.
'use strict';
const tls = require('tls');
const fs = require('fs');
const crypto = require('crypto');
const readline = require('readline');

function usage(msg) {
  if (msg) process.stderr.write(`client.js: ${msg}\n`);
  process.stderr.write('usage: node client.js HOST PORT [--cert F --key F] [--ca F] ' +
    '[--send S | --send-file F | --send-size N] [--echo] [--half-close] [--out F] ' +
    '[--lines] [--connections N] [--timeout MS]\n');
  process.exit(2);
}

const opt = { servername: 'localhost', timeout: 30000, connections: 1 };
const pos = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const val = () => {
    if (i + 1 >= argv.length) usage(`${a} needs a value`);
    return argv[++i];
  };
  switch (a) {
    case '--cert': opt.cert = val(); break;
    case '--key': opt.key = val(); break;
    case '--pfx': opt.pfx = val(); break;
    case '--passphrase-file': opt.passphraseFile = val(); break;
    case '--ca': opt.ca = val(); break;
    case '--servername': opt.servername = val(); break;
    case '--send': opt.send = val(); break;
    case '--send-file': opt.sendFile = val(); break;
    case '--send-size': opt.sendSize = Number(val()); break;
    case '--echo': opt.echo = true; break;
    case '--half-close': opt.halfClose = true; break;
    case '--out': opt.out = val(); break;
    case '--lines': opt.lines = true; break;
    case '--connections': opt.connections = Number(val()); break;
    case '--timeout': opt.timeout = Number(val()); break;
    case '--min-version': opt.minVersion = val(); break;
    case '--max-version': opt.maxVersion = val(); break;
    default:
      if (a.startsWith('--')) usage(`unknown option ${a}`);
      pos.push(a);
  }
}
if (pos.length !== 2) usage('HOST and PORT are required');
const host = pos[0];
const port = Number(pos[1]);
if (opt.connections > 1) opt.echo = true;

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

function tlsOptions() {
  const o = {
    host, port, servername: opt.servername, rejectUnauthorized: true,
  };
  if (opt.ca) o.ca = fs.readFileSync(opt.ca);
  if (opt.cert) o.cert = fs.readFileSync(opt.cert);
  if (opt.key) o.key = fs.readFileSync(opt.key);
  if (opt.pfx) o.pfx = fs.readFileSync(opt.pfx);
  if (opt.passphraseFile) {
    o.passphrase = fs.readFileSync(opt.passphraseFile, 'utf8').split(/\r?\n/)[0];
  }
  if (opt.minVersion) o.minVersion = opt.minVersion;
  if (opt.maxVersion) o.maxVersion = opt.maxVersion;
  return o;
}

function errLine(code, message) {
  return `ERROR ${code} ${String(message).replace(/\s+/g, ' ').trim()}`;
}

// payload(): { buf } for in-memory payloads, { file, size } for files.
function payload() {
  if (opt.sendFile) return { file: opt.sendFile, size: fs.statSync(opt.sendFile).size };
  if (opt.send !== undefined) return { buf: unescape(opt.send) };
  if (opt.sendSize !== undefined) return { buf: crypto.randomBytes(opt.sendSize) };
  return { buf: Buffer.alloc(0) };
}

// One connection: resolves to { ok: true, received } or
// { ok: false, code, message }.
function runOne(pl, sink) {
  return new Promise((resolve) => {
    let settled = false;
    let received = 0;
    const recvHash = crypto.createHash('sha256');
    const sentHash = crypto.createHash('sha256');
    let sentDigest = null;
    let sentBytes = 0;
    const expect = pl.file ? pl.size : pl.buf.length;
    let sock;

    const finish = (r) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      r.received = received;
      r.sent = sentBytes;
      r.sha256 = recvHash.digest('hex');
      if (sock) sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({
      ok: false, code: 'TIMEOUT',
      message: `no result after ${opt.timeout} ms (received ${received} of ${expect} bytes)`,
    }), opt.timeout);

    const checkEcho = (final) => {
      if (!opt.echo) return;
      if (received > expect) {
        finish({ ok: false, code: 'MISMATCH', message: `received ${received} bytes, more than the ${expect} sent` });
        return;
      }
      if (received === expect && sentDigest !== null) {
        const got = recvHash.copy().digest('hex');
        if (got !== sentDigest) {
          finish({ ok: false, code: 'MISMATCH', message: `echoed bytes differ (sha256 sent ${sentDigest}, received ${got})` });
          return;
        }
        if (opt.halfClose && !final) return;	// wait for the server's close
        finish({ ok: true });
      }
    };

    try {
      sock = tls.connect(tlsOptions());
    } catch (e) {
      finish({ ok: false, code: e.code || 'EINVAL', message: e.message });
      return;
    }
    sock.on('secureConnect', () => {
      const pc = sock.getPeerCertificate();
      if (opt.connections === 1) process.stderr.write(`server-cert: subject=CN=${pc.subject && pc.subject.CN} ` +
        `bits=${pc.bits} curve=${pc.asn1Curve || '-'} protocol=${sock.getProtocol()}\n`);
      if (pl.file) {
        const rs = fs.createReadStream(pl.file, { highWaterMark: 64 * 1024 });
        rs.on('data', (d) => { sentHash.update(d); sentBytes += d.length; });
        rs.on('error', (e) => finish({ ok: false, code: e.code || 'EIO', message: e.message }));
        rs.on('end', () => {
          sentDigest = sentHash.digest('hex');
          if (opt.halfClose) sock.end();
          checkEcho(false);
        });
        rs.pipe(sock, { end: false });	// pipe pauses the file while sock is backed up
      } else {
        sentHash.update(pl.buf);
        sentBytes = pl.buf.length;
        sentDigest = sentHash.digest('hex');
        if (pl.buf.length > 0) sock.write(pl.buf);
        if (opt.halfClose) sock.end();
        checkEcho(false);
      }
    });
    sock.on('data', (d) => {
      received += d.length;
      recvHash.update(d);
      if (sink && !sink.write(d)) {
        sock.pause();
        sink.once('drain', () => sock.resume());
      }
      checkEcho(false);
    });
    sock.on('end', () => {
      if (opt.echo) {
        if (received === expect && sentDigest !== null) {
          checkEcho(true);
          return;
        }
        finish({ ok: false, code: 'EOF', message: `connection closed by the server after ${received} of ${expect} bytes` });
        return;
      }
      if (received === 0) {
        finish({ ok: false, code: 'EOF', message: 'connection closed by the server before any byte was received' });
        return;
      }
      finish({ ok: true });
    });
    sock.on('error', (e) => {
      finish({ ok: false, code: e.code || 'ERROR', message: e.message });
    });
    sock.on('close', () => {
      // 'end' or 'error' normally came first; this covers a bare close.
      if (!settled) {
        if (opt.echo && received === expect && sentDigest !== null) checkEcho(true);
        else finish({ ok: false, code: 'CLOSED', message: `connection closed after ${received} bytes` });
      }
    });
  });
}

async function single() {
  const pl = payload();
  let sink = null;
  const chunks = [];
  if (opt.out) sink = fs.createWriteStream(opt.out);
  else sink = { write: (d) => { chunks.push(d); return true; } };
  const r = await runOne(pl, sink);
  if (opt.out) await new Promise((res) => sink.end(res));
  if (!r.ok) {
    process.stdout.write(errLine(r.code, r.message) + '\n');
    process.stderr.write(`client.js: sent=${r.sent} received=${r.received}\n`);
    process.exitCode = 1;
    return;
  }
  if (!opt.out) process.stdout.write(Buffer.concat(chunks));
  process.stderr.write(`client.js: sent=${r.sent} received=${r.received} sha256=${r.sha256}\n`);
}

async function many() {
  const pl = payload();
  const results = await Promise.all(
    Array.from({ length: opt.connections }, () => runOne(pl, null)));
  const bad = results.filter((r) => !r.ok);
  if (bad.length === 0) {
    process.stdout.write(`ok ${results.length}\n`);
    return;
  }
  const codes = {};
  for (const r of bad) codes[r.code] = (codes[r.code] || 0) + 1;
  process.stdout.write(errLine('SOME', `${bad.length} of ${results.length} connections failed: ` +
    Object.entries(codes).map(([k, v]) => `${k}x${v}`).join(' ') + `; first: ${bad[0].message}`) + '\n');
  process.exitCode = 1;
}

function lines() {
  let sock;
  let pending = [];	// lines sent and not yet echoed, in order
  let buf = '';
  let inputDone = false;
  let failed = false;
  const die = (code, message) => {
    if (failed) return;
    failed = true;
    process.stdout.write(errLine(code, message) + '\n');
    process.exit(1);
  };
  const maybeClose = () => {
    if (inputDone && pending.length === 0) sock.end();
  };
  sock = tls.connect(tlsOptions());
  sock.setEncoding('latin1');
  sock.on('secureConnect', () => {
    process.stderr.write(`server-cert: protocol=${sock.getProtocol()}\n`);
    process.stdout.write('connected\n');
    const rl = readline.createInterface({ input: process.stdin });
    rl.on('line', (line) => {
      pending.push(line);
      sock.write(line + '\n');
    });
    rl.on('close', () => { inputDone = true; maybeClose(); });
  });
  sock.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const want = pending.shift();
      if (line !== want) die('MISMATCH', `expected echo of "${want}", got "${line}"`);
      process.stdout.write(`echo: ${line}\n`);
    }
    maybeClose();
  });
  sock.on('end', () => {
    if (pending.length > 0 || !inputDone) die('EOF', `connection closed by the server with ${pending.length} line(s) not echoed`);
  });
  sock.on('error', (e) => die(e.code || 'ERROR', e.message));
  sock.on('close', () => { if (!failed) process.exit(0); });
}

if (opt.lines) lines();
else if (opt.connections > 1) many();
else single();
if (!opt.lines) {
  // A hard cap in case a promise never settles.
  setTimeout(() => {
    process.stdout.write(errLine('TIMEOUT', 'client.js hard timeout') + '\n');
    process.exit(1);
  }, opt.timeout + 5000).unref();
}
