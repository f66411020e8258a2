"""Shared fixtures: real Eureka servers (from scripts/test.sh, or started here), fast clients,
and a direct HTTP view of the registry."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

import registrar

REPO = Path(__file__).resolve().parents[3]
EUREKA_SCRIPT = REPO / "scripts" / "test-eureka.sh"
PASSWORD = os.environ.get("REGISTRAR_TEST_PASSWORD", "s3cret-pw")

#: Fast settings for tests: heartbeats every 0.2 s, lease 2 s, 2 s HTTP timeout.
FAST = dict(
    heartbeat_interval=0.2,
    lease_duration=2,
    timeout=2,
    hostname="localhost",
    ip_address="127.0.0.1",
)


def unique_app(prefix: str = "py") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Registry:
    """Reads a Eureka server directly (never through registrar)."""

    def __init__(self, url: str, user: Optional[str] = None, password: Optional[str] = None):
        self.url = url if url.endswith("/") else url + "/"
        self._auth = (
            "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode() if user else None
        )

    def get(self, path: str) -> Optional[Dict[str, Any]]:
        request = urllib.request.Request(self.url + path, headers={"Accept": "application/json"})
        if self._auth:
            request.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def instance(self, app: str, instance_id: str) -> Optional[Dict[str, Any]]:
        body = self.get(f"apps/{app.upper()}/{instance_id}")
        return None if body is None else body["instance"]

    def instances(self, app: str) -> List[Dict[str, Any]]:
        body = self.get(f"apps/{app.upper()}")
        if body is None:
            return []
        found = body["application"].get("instance", [])
        return found if isinstance(found, list) else [found]

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def wait_status(self, app: str, instance_id: str, status: str, timeout: float = 10.0) -> Dict:
        seen: Dict[str, Any] = {}

        def check() -> bool:
            instance = self.instance(app, instance_id)
            seen["i"] = instance
            return instance is not None and instance["status"] == status

        self.wait_for(check, timeout, f"{app}/{instance_id} to be {status} (last: {seen})")
        return seen["i"]

    def wait_gone(self, app: str, instance_id: str, timeout: float = 10.0) -> None:
        self.wait_for(
            lambda: self.instance(app, instance_id) is None, timeout, f"{app}/{instance_id} gone"
        )


class EurekaServer:
    """A dedicated server started with scripts/test-eureka.sh in its own directory."""

    def __init__(self, directory: Path, auth: bool = False):
        self.directory = directory
        self.auth = auth
        self.url = ""
        self.port = 0

    def start(self, port: Optional[int] = None) -> str:
        command = [str(EUREKA_SCRIPT), "start", str(self.directory)]
        if self.auth:
            command.append("--auth")
        if port:
            command += ["--port", str(port)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"cannot start a Eureka server: {result.stderr[-2000:]}")
        self.url = result.stdout.strip().splitlines()[-1]
        self.port = int((self.directory / "port").read_text())
        return self.url

    def stop(self) -> None:
        subprocess.run([str(EUREKA_SCRIPT), "stop", str(self.directory)], timeout=60)


@pytest.fixture(scope="session")
def run_dir() -> Iterator[Path]:
    configured = os.environ.get("REGISTRAR_TEST_RUN_DIR")
    if configured:
        yield Path(configured)
        return
    directory = Path(tempfile.mkdtemp(prefix="registrar-pytest."))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _shared_server(run_dir: Path, variable: str, name: str, auth: bool) -> Iterator[str]:
    url = os.environ.get(variable)
    if url:
        yield url
        return
    # pytest run on its own: start a server here (scripts/test-python.sh normally does).
    server = EurekaServer(run_dir / f"pytest-{name}-{uuid.uuid4().hex[:6]}", auth=auth)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def eureka_url(run_dir: Path) -> Iterator[str]:
    """The shared plain Eureka server (REGISTRAR_TEST_EUREKA_URL)."""
    yield from _shared_server(run_dir, "REGISTRAR_TEST_EUREKA_URL", "shared", auth=False)


@pytest.fixture(scope="session")
def eureka_auth_url(run_dir: Path) -> Iterator[str]:
    """The shared Eureka server requiring basic auth (REGISTRAR_TEST_EUREKA_AUTH_URL)."""
    yield from _shared_server(run_dir, "REGISTRAR_TEST_EUREKA_AUTH_URL", "shared-auth", auth=True)


@pytest.fixture
def registry(eureka_url: str) -> Registry:
    return Registry(eureka_url)


@pytest.fixture
def auth_registry(eureka_auth_url: str) -> Registry:
    return Registry(eureka_auth_url, "registrar", PASSWORD)


@pytest.fixture
def dedicated_server(run_dir: Path) -> Iterator[EurekaServer]:
    """A server of this test's own (for restarts), in a new subdirectory of the run dir so the
    outer cleanup stops it even if this process dies."""
    server = EurekaServer(Path(tempfile.mkdtemp(prefix="pytest-dedicated.", dir=run_dir)))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_client(eureka_url: str) -> Iterator[Callable[..., registrar.Client]]:
    """Creates clients against the shared server with fast settings (keyword overrides), with
    a unique app name unless one is given; closes them all at the end of the test."""
    made: List[registrar.Client] = []

    def make(**settings: Any) -> registrar.Client:
        values: Dict[str, Any] = dict(FAST, url=eureka_url, app_name=unique_app(), port=8080)
        values.update(settings)
        client = registrar.Client(from_env=False, **values)
        made.append(client)
        return client

    yield make
    for client in made:
        try:
            client.close()
        except registrar.RegistrarError:
            pass


def python_env(**extra: str) -> Dict[str, str]:
    """The environment for a Python subprocess: no REGISTRY_* from the outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


PYTHON = sys.executable


class TlsServers:
    """The shared https and mTLS registries and the certificates they use (made by
    scripts/test-certs.sh; see scripts/test-tls-servers.sh)."""

    def __init__(self, certs: Path, tls_url: str, mtls_url: str):
        self.certs = certs
        self.tls_url = tls_url
        self.mtls_url = mtls_url

    def cert(self, name: str) -> str:
        return str(self.certs / name)


@pytest.fixture(scope="session")
def tls_servers(run_dir: Path) -> Iterator[TlsServers]:
    names = ("REGISTRAR_TEST_TLS_CERTS", "REGISTRAR_TEST_EUREKA_TLS_URL", "REGISTRAR_TEST_EUREKA_MTLS_URL")
    if all(os.environ.get(n) for n in names):
        certs, tls_url, mtls_url = (os.environ[n] for n in names)
        yield TlsServers(Path(certs), tls_url, mtls_url)
        return
    # pytest run on its own: start both here (scripts/test.sh normally does).
    directory = Path(tempfile.mkdtemp(prefix="pytest-tls.", dir=run_dir))
    result = subprocess.run(
        [str(REPO / "scripts" / "test-tls-servers.sh"), str(directory)],
        capture_output=True, text=True, timeout=240,
    )
    try:
        if result.returncode != 0:
            raise RuntimeError(f"cannot start the TLS registries: {result.stderr[-2000:]}")
        values = dict(
            line.removeprefix("export ").split("=", 1) for line in result.stdout.splitlines()
        )
        values = {k: v.strip("'") for k, v in values.items()}
        yield TlsServers(Path(values[names[0]]), values[names[1]], values[names[2]])
    finally:
        for name in ("shared-tls", "shared-mtls"):
            subprocess.run([str(EUREKA_SCRIPT), "stop", str(directory / name)], timeout=60)
