#!/usr/bin/env node
// TCP echo backend for the integration tests: listens on 127.0.0.1:PORT and
// writes back every byte it receives, with backpressure (pipe). Half-close
// aware: when the client ends its side, the echo finishes writing what it
// has, then ends too.
//
// usage: node echo-backend.js PORT
'use strict';
const net = require('net');

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: echo-backend.js PORT');
  process.exit(2);
}

let conns = 0;
const server = net.createServer({ allowHalfOpen: true }, (sock) => {
  conns++;
  const peer = `${sock.remoteAddress}:${sock.remotePort}`;
  let bytes = 0;
  sock.on('data', (d) => { bytes += d.length; });
  sock.on('error', (e) => console.error(`echo: ${peer}: ${e.code || e.message}`));
  sock.on('close', () => {
    console.error(`echo: ${peer} closed after ${bytes} bytes`);
  });
  // pipe() pauses reading while the write side is backed up, and calls
  // end() once the readable side has ended and everything is flushed.
  sock.pipe(sock);
});
server.on('error', (e) => {
  console.error(`echo: ${e.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  console.error(`echo: listening on 127.0.0.1:${port}`);
});
const stop = () => {
  server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
