#!/usr/bin/env node
// GET https://localhost:PORT/ with Node's https module, as a service client
// would. Prints `status N` and the body, or `ERROR CODE MESSAGE`; exit 0/1.
// usage: node https-get.js PORT CA [CERT KEY]
'use strict';
const https = require('https');
const fs = require('fs');

const [port, ca, cert, key] = process.argv.slice(2);
const opts = {
  host: '127.0.0.1', servername: 'localhost', port: Number(port), path: '/',
  ca: fs.readFileSync(ca), agent: false, timeout: 10000,
};
if (cert) {
  opts.cert = fs.readFileSync(cert);
  opts.key = fs.readFileSync(key);
}
const req = https.get(opts, (res) => {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (d) => { body += d; });
  res.on('end', () => {
    process.stdout.write(`status ${res.statusCode}\n${body}`);
    process.exit(0);
  });
});
req.on('timeout', () => req.destroy(new Error('timeout')));
req.on('error', (e) => {
  process.stdout.write(`ERROR ${e.code || 'ERR'} ${e.message}\n`);
  process.exit(1);
});
