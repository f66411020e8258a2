#!/usr/bin/env python3
"""A misbehaving registry for the C fault tests (tests/c/test_faults.c): what a real Eureka
server cannot be made to do. The first path segment of the service URL picks the behaviour,
so one stub serves every scenario at once:

    http://127.0.0.1:PORT/<mode>/eureka/

    ok        a healthy Eureka: 204 to POST, 200 to PUT and DELETE, an empty registry to GET
    500, 503, 429
              that status (plain-text reason) to every request
    redirect  302 to every request, Location: http://127.0.0.1:PORT/ok/eureka/...
    nodelete  healthy, except DELETE answers 500 "delete refused (stub)"
    hang      never answers (the connection stays open until the stub exits)
    endless   GET answers 200 with a chunked body that never ends (other methods: healthy)
    stall     GET answers 200, Content-Length 1000000, 10 bytes, then nothing

`GET /_count/<mode>` answers the number of requests that mode has received (plain text), so a
test can prove what was, and was not, sent.

    fault_registry.py PORTFILE [SECONDS]

Listens on 127.0.0.1 (a free port, written to PORTFILE once listening) and exits by itself
after SECONDS (default 120), so a forgotten stub cannot linger.
"""
import http.server
import os
import sys
import threading
import time

port_file = sys.argv[1]
lifetime = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0
counts = {}
lock = threading.Lock()
EMPTY_REGISTRY = b'{"applications":{"versions__delta":"1","apps__hashcode":"","application":[]}}'


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if status >= 300 else "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        parts = self.path.split("/")
        mode = parts[1] if len(parts) > 1 else ""
        if mode == "_count":
            with lock:
                n = counts.get(parts[2] if len(parts) > 2 else "", 0)
            return self.reply(200, str(n).encode())
        with lock:
            counts[mode] = counts.get(mode, 0) + 1
        method = self.command
        if mode in ("500", "503", "429"):
            return self.reply(int(mode), b"stub says " + mode.encode())
        if mode == "redirect":
            rest = "/".join(parts[2:])
            port = self.server.server_address[1]
            return self.reply(302, b"", [("Location", f"http://127.0.0.1:{port}/ok/{rest}")])
        if mode == "hang":
            time.sleep(lifetime)
            return None
        if mode == "nodelete" and method == "DELETE":
            return self.reply(500, b"delete refused (stub)")
        if mode == "endless" and method == "GET":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                while True:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                return None
        if mode == "stall" and method == "GET":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b'{"applicat')
            self.wfile.flush()
            time.sleep(lifetime)
            return None
        if method == "POST":
            return self.reply(204)
        if method == "GET":
            return self.reply(200, EMPTY_REGISTRY)
        return self.reply(200)

    do_GET = do_POST = do_PUT = do_DELETE = answer

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.replace(port_file + ".tmp", port_file)
threading.Timer(lifetime, server.shutdown).start()
server.serve_forever()
