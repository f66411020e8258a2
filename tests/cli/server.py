"""The same small service as server.js, for machines without Node.js (scripts/test-cli.sh).

    python3 server.py PORT STATE_DIR

GET /health: 200, or 503 while STATE_DIR/unhealthy exists. SIGTERM/SIGINT/SIGHUP are appended
to STATE_DIR/signals; SIGTERM exits with the status in STATE_DIR/term-exit (default 0), SIGINT
exits 130, SIGHUP keeps running. GET /crash exits 3, GET /die kills the process (SIGKILL).
"""
import http.server
import os
import signal
import sys
import threading
import time

port, state = int(sys.argv[1]), sys.argv[2]


def note(line):
    with open(os.path.join(state, "signals"), "a") as f:
        f.write(line + "\n")


def on_term(*_):
    note("SIGTERM")
    try:
        code = int(open(os.path.join(state, "term-exit")).read().strip())
    except (OSError, ValueError):
        code = 0
    os._exit(code)


def on_int(*_):
    note("SIGINT")
    os._exit(130)


signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, on_int)
signal.signal(signal.SIGHUP, lambda *_: note("SIGHUP"))


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            sick = os.path.exists(os.path.join(state, "unhealthy"))
            self.reply(503 if sick else 200, b"sick\n" if sick else b"ok\n")
        elif self.path == "/crash":
            self.reply(200, b"bye\n")
            threading.Timer(0.05, lambda: os._exit(3)).start()
        elif self.path == "/die":
            self.reply(200, b"bye\n")
            threading.Timer(0.05, lambda: os.kill(os.getpid(), signal.SIGKILL)).start()
        else:
            self.reply(200, b"hello\n")

    def reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass


time.sleep(int(os.environ.get("LISTEN_DELAY_MS", "0")) / 1000)
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
