#!/usr/bin/env python3
"""A stand-in registry for what a real Eureka server will not do on demand: answer every
request with one fixed HTTP status and plain-text reason (e.g. 400 "Missing instanceId").

    stub_registry.py STATUS REASON PORTFILE [SECONDS]

Listens on 127.0.0.1 (a free port, written to PORTFILE once listening) and exits by itself
after SECONDS (default 60), so a forgotten stub cannot linger.
"""
import http.server
import sys
import threading

status, reason, port_file = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
lifetime = float(sys.argv[4]) if len(sys.argv) > 4 else 60.0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(reason)))
        self.end_headers()
        self.wfile.write(reason)

    do_GET = do_POST = do_PUT = do_DELETE = answer

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.replace(port_file + ".tmp", port_file)
threading.Timer(lifetime, server.shutdown).start()
server.serve_forever()
