"""TLS to the registry through the Python package: the real Eureka server over https and with
client certificates required (see conftest.tls_servers); wrong-host and expired certificates
from a small TLS listener here (one Eureka server cannot serve them beside its good one)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

import registrar

from conftest import FAST, TlsServers, unique_app


def register(url: str, timeout: float = 10.0, **settings: Any) -> registrar.Client:
    """A started client that registered within ``timeout`` (raises otherwise)."""
    client = registrar.Client(
        from_env=False, **dict(FAST, url=url, app_name=unique_app("pytls"), **settings)
    )
    client.set_status(registrar.Status.UP)
    client.start()
    try:
        client.wait_registered(timeout=timeout)
    except BaseException:
        client.close()
        raise
    return client


def registration_error(url: str, **settings: Any) -> str:
    """The background thread's error for a client that cannot register."""
    client = registrar.Client(
        from_env=False, **dict(FAST, url=url, app_name=unique_app("pytls"), **settings)
    )
    with client:
        with pytest.raises(registrar.TimeoutError):
            client.wait_registered(timeout=1.5)
        error = client.last_error
        assert isinstance(error, registrar.TransportError), error
        return str(error)


@contextlib.contextmanager
def tls_listener(cert: str, key: str) -> Iterator[str]:
    """Accepts TLS handshakes with this certificate on a free loopback port; yields the URL."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    context.wrap_socket(conn, server_side=True).close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.getsockname()[1]}/eureka/"
    finally:
        done.set()
        thread.join(5)
        server.close()


def test_registers_and_discovers_over_https_with_the_registry_ca_file(tls_servers: TlsServers):
    with register(tls_servers.tls_url, ca_file=tls_servers.cert("ca.pem")):
        pass
    # A pathlib.Path works as well as a string, and discovery uses the same TLS settings.
    with registrar.Discovery(
        from_env=False, url=tls_servers.tls_url, ca_file=Path(tls_servers.cert("ca.pem"))
    ) as discovery:
        discovery.wait_ready(timeout=10)


def test_an_unknown_issuer_is_reported_with_the_server(tls_servers: TlsServers):
    error = registration_error(tls_servers.tls_url)
    assert "TLS" in error and "unknown issuer" in error, error
    assert tls_servers.tls_url.rstrip("/").rsplit("/", 1)[0] in error, error
    error = registration_error(tls_servers.tls_url, ca_file=tls_servers.cert("untrusted-ca.pem"))
    assert "unknown issuer" in error, error


def test_ssl_cert_file_and_ssl_cert_dir(tls_servers: TlsServers, monkeypatch, tmp_path: Path):
    monkeypatch.setenv("SSL_CERT_FILE", tls_servers.cert("ca.pem"))
    with register(tls_servers.tls_url):
        pass
    monkeypatch.delenv("SSL_CERT_FILE")
    (tmp_path / "ca.pem").write_bytes(Path(tls_servers.cert("ca.pem")).read_bytes())
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    with register(tls_servers.tls_url):
        pass


def test_wrong_host_and_expired_certificates(tls_servers: TlsServers):
    ca = tls_servers.cert("ca.pem")
    with tls_listener(tls_servers.cert("wrong-host.pem"), tls_servers.cert("wrong-host.key")) as url:
        error = registration_error(url, ca_file=ca)
        assert "wrong host name" in error and "wrong-host.invalid" in error, error
    with tls_listener(tls_servers.cert("expired.pem"), tls_servers.cert("expired.key")) as url:
        error = registration_error(url, ca_file=ca)
        assert "has expired" in error, error
        assert url.split("/eureka")[0] in error, error
        # A TLS failure moves on to the next service URL.
        with register(f"{url},{tls_servers.tls_url}", ca_file=ca):
            pass


def test_mutual_tls(tls_servers: TlsServers):
    ca = tls_servers.cert("ca.pem")
    for cert, key in [("client.pem", "client.key"), ("client-rsa.pem", "client-rsa.key")]:
        with register(
            tls_servers.mtls_url,
            ca_file=ca,
            client_cert=tls_servers.cert(cert),
            client_key=tls_servers.cert(key),
        ):
            pass
    error = registration_error(tls_servers.mtls_url, ca_file=ca)
    assert "requires a client certificate" in error, error


@pytest.mark.parametrize(
    "settings, expected",
    [
        ({"ca_file": "/nonexistent/ca.pem"}, "REGISTRY_CA_FILE '/nonexistent/ca.pem': cannot read"),
        ({"ca_file": "not-pem.txt"}, "REGISTRY_CA_FILE"),
        ({"client_cert": "client.pem"}, "REGISTRY_CLIENT_KEY is not"),
        ({"client_cert": "client.pem", "client_key": "not-pem.txt"}, "REGISTRY_CLIENT_KEY"),
        (
            {"client_cert": "client.pem", "client_key": "client-rsa.key"},
            "does not belong to the certificate in REGISTRY_CLIENT_CERT",
        ),
    ],
)
def test_bad_files_are_invalid_config_naming_the_setting(
    tls_servers: TlsServers, settings: dict, expected: str
):
    values = {
        k: v if v.startswith("/") else tls_servers.cert(v) for k, v in settings.items()
    }
    with pytest.raises(registrar.InvalidConfigError, match=expected):
        registrar.Client(from_env=False, url=tls_servers.tls_url, app_name="x", **values)
    with pytest.raises(registrar.InvalidConfigError, match=expected):
        registrar.Discovery(from_env=False, url=tls_servers.tls_url, **values)
