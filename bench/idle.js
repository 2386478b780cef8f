'use strict';
// Open N fully handshaken, idle mTLS connections to 127.0.0.1:PORT and hold
// them, for the benchmark's "KiB per idle connection".
//
//   node bench/idle.js PORT N PKIDIR
//
// Each connection presents PKIDIR/client.crt + client.key and verifies the
// server against PKIDIR/ca.crt (servername localhost). A connection counts
// as established when the server's TLS 1.3 NewSessionTicket arrived (the
// server sends it only after it has verified the client's certificate and
// Finished), or 1 s after the client finished its side when no ticket
// comes. At most 32 handshakes are in flight at once, so no proxy's accept
// queue overflows. Prints "ready N" when all N are established (or "error
// ..." and exits 1), then holds them. On SIGTERM it prints "alive K" (those
// still open: a proxy that dropped idle connections shows here) and exits.
const tls = require('tls');
const fs = require('fs');
const path = require('path');

const [port, n, dir] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
if (!port || !n || !dir) {
	console.error('usage: node idle.js PORT N PKIDIR');
	process.exit(2);
}
const opts = {
	host: '127.0.0.1',
	port,
	servername: 'localhost',
	ca: fs.readFileSync(path.join(dir, 'ca.crt')),
	cert: fs.readFileSync(path.join(dir, 'client.crt')),
	key: fs.readFileSync(path.join(dir, 'client.key')),
	minVersion: 'TLSv1.3',
};
const INFLIGHT = 32;
const socks = new Set();
let started = 0, established = 0, open = 0, inflight = 0, ready = false, tickets = 0;

function fail(msg) {
	if (ready)
		return;
	console.log('error ' + msg);
	process.exit(1);
}

function one() {
	started++;
	inflight++;
	let done = false;
	const s = tls.connect(opts);
	socks.add(s);
	const established_ = () => {
		if (done)
			return;
		done = true;
		inflight--;
		established++;
		if (established === n) {
			ready = true;
			console.log('ready ' + n + ' tickets ' + tickets);
		}
		more();
	};
	s.on('session', () => { if (!done) tickets++; established_(); });
	s.on('secureConnect', () => { open++; setTimeout(established_, 1000); });
	s.on('data', () => {});
	s.on('error', (e) => fail('connection ' + started + ': ' + e.message));
	s.on('close', () => {
		socks.delete(s);
		if (!done)
			fail('connection closed during the handshake');
		open--;
	});
	s.setTimeout(0);
}

function more() {
	while (inflight < INFLIGHT && started < n)
		one();
}

process.on('SIGTERM', () => {
	console.log('alive ' + open);
	for (const s of socks)
		s.destroy();
	process.exit(0);
});
setTimeout(() => fail('timeout: ' + established + ' of ' + n + ' established after 120 s'), 120000).unref();
more();
