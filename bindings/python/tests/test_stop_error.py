"""stop tells the truth: when the registry refuses the DELETE, stop (and close) raise an error
naming it, instead of reporting a deregistration that did not happen. A stub registry, because
a real Eureka server cannot be made to refuse a DELETE."""

from __future__ import annotations

import http.server
import threading
from typing import Iterator

import pytest

import registrar

from conftest import FAST, unique_app


class RefusesDelete(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status, body = {"POST": (204, b""), "DELETE": (500, b"delete refused (stub)")}.get(
            self.command, (200, b"")
        )
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT = do_DELETE = do_GET = answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_registry() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RefusesDelete)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/eureka/"
    server.shutdown()
    server.server_close()


def test_stop_raises_when_the_registry_refuses_the_delete(refusing_registry: str) -> None:
    values = dict(FAST, url=refusing_registry, app_name=unique_app(), port=8080)
    client = registrar.Client(from_env=False, **values).start()
    client.wait_registered(timeout=5)
    with pytest.raises(registrar.RejectedError) as raised:
        client.stop()
    message = str(raised.value)
    assert "DELETE" in message and "500" in message and "delete refused (stub)" in message
    # The outcome stays the truth: asking again gives the same answer, close too.
    with pytest.raises(registrar.RejectedError):
        client.stop()
    with pytest.raises(registrar.RejectedError):
        client.close()
