// A small HTTP service for the registrar command's tests (scripts/test-cli.sh).
//   node server.js PORT STATE_DIR
// GET /health answers 200, or 503 while STATE_DIR/unhealthy exists (health flapping).
// SIGTERM, SIGINT and SIGHUP are appended to STATE_DIR/signals; SIGTERM then exits with the
// status in STATE_DIR/term-exit (default 0), SIGINT exits 130, SIGHUP keeps running.
// GET /crash ends the process with status 3; GET /die kills it with SIGKILL.
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');

const port = Number(process.argv[2]);
const dir = process.argv[3];
const note = (line) => fs.appendFileSync(path.join(dir, 'signals'), line + '\n');

const server = http.createServer((req, res) => {
  if (req.url === '/health') {
    const sick = fs.existsSync(path.join(dir, 'unhealthy'));
    res.writeHead(sick ? 503 : 200, { 'Content-Type': 'text/plain' });
    res.end(sick ? 'sick\n' : 'ok\n');
  } else if (req.url === '/crash') {
    res.end('bye\n', () => process.exit(3));
  } else if (req.url === '/die') {
    res.end('bye\n', () => process.kill(process.pid, 'SIGKILL'));
  } else {
    res.end('hello\n');
  }
});

process.on('SIGTERM', () => {
  note('SIGTERM');
  let code = 0;
  try { code = Number(fs.readFileSync(path.join(dir, 'term-exit'), 'utf8').trim()); } catch (e) {}
  process.exit(code);
});
process.on('SIGINT', () => { note('SIGINT'); process.exit(130); });
process.on('SIGHUP', () => note('SIGHUP'));

// Listen late when asked, so readiness by port/health is observable.
const delay = Number(process.env.LISTEN_DELAY_MS || 0);
setTimeout(() => server.listen(port, '127.0.0.1'), delay);
