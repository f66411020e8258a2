// The example service wrapped by the registrar command: answers / and /health on REGISTRY_PORT.
'use strict';
const http = require('http');
const port = Number(process.env.REGISTRY_PORT || 3000);
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end(req.url === '/health' ? 'ok\n' : 'hello from orders\n');
});
server.listen(port, () => console.log(`listening on ${port}`));
// registrar passes SIGTERM on after the drain: finish the requests in flight, then exit.
process.on('SIGTERM', () => server.close(() => process.exit(0)));
