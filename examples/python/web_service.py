#!/usr/bin/env python3
"""A small web service (standard library http.server) that registers itself with Eureka.

It listens first (PORT, default 0: any free port), then registers the port it really got,
with its own health and status URLs, and serves them:

    GET /health  -> 200 {"status": "UP"}        (REGISTRY_HEALTH_CHECK_URL)
    GET /info    -> 200 the registration state  (REGISTRY_STATUS_PAGE_URL)
    GET /        -> 200 hello                   (REGISTRY_HOME_PAGE_URL)

The registry comes from the environment (REGISTRY_URL, REGISTRY_APP_NAME, ...). HOST (default
127.0.0.1) is the address to listen on and to advertise. On SIGINT/SIGTERM it deregisters
first (so the registry stops sending traffic), then stops serving, and exits 0.

    REGISTRY_URL=http://127.0.0.1:8761/eureka/ REGISTRY_APP_NAME=hello-web \
        python examples/python/web_service.py
"""

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import registrar


class Handler(BaseHTTPRequestHandler):
    client: "registrar.Client"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == "/health":
            self.reply(200, {"status": "UP"})
        elif self.path == "/info":
            info = self.client.info()
            self.reply(
                200,
                {
                    "app": self.client.app_name,
                    "instanceId": self.client.instance_id,
                    "state": info.state.name,
                    "status": info.status.name,
                    "heartbeats": info.heartbeats,
                },
            )
        elif self.path == "/":
            self.reply(200, {"hello": self.client.app_name})
        else:
            self.reply(404, {"error": "not found"})

    def reply(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: this is an example


def main() -> int:
    host = os.environ.get("HOST", "127.0.0.1")
    server = ThreadingHTTPServer((host, int(os.environ.get("PORT", "0"))), Handler)
    port = server.server_address[1]
    base = f"http://{host}:{port}"
    try:
        client = registrar.Client(
            port=port,
            hostname=os.environ.get("REGISTRY_HOSTNAME") or host,
            ip_address=os.environ.get("REGISTRY_IP_ADDRESS") or host,
            home_page_url=f"{base}/",
            status_page_url=f"{base}/info",
            health_check_url=f"{base}/health",
        )
    except registrar.RegistrarError as e:
        print(f"web_service: {e}", file=sys.stderr)
        server.server_close()
        return 2
    Handler.client = client

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())

    serving = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    serving.start()
    print(f"serving on {base}/ as {client.app_name}/{client.instance_id}", flush=True)

    client.up()  # we are listening: ready for traffic
    client.start()
    registered = False
    reported = ""  # print each distinct reason for not being registered once
    while not stop.is_set():
        try:
            client.wait_registered(timeout=0.5)
            if not registered:
                print(f"registered {client.app_name}/{client.instance_id}", flush=True)
                registered = True
            reported = ""
            stop.wait(0.5)
        except registrar.TimeoutError as e:
            reason = str(e.__cause__ or e)
            if reason != reported:
                print(f"web_service: not registered: {reason}", file=sys.stderr, flush=True)
                reported = reason

    try:
        client.close()  # deregister before we stop answering
    except registrar.RegistrarError as e:
        print(f"web_service: deregistration incomplete: {e}", file=sys.stderr)
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
