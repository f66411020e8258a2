"""The examples, end to end, as subprocesses against the real Eureka server."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Dict, List

import pytest

from conftest import PASSWORD, PYTHON, REPO, Registry, python_env, unique_app
from test_exit_hooks import finish, read_line

EXAMPLES = REPO / "examples" / "python"


def example_env(url: str, app: str, **extra: str) -> Dict[str, str]:
    return python_env(
        REGISTRY_URL=url,
        REGISTRY_APP_NAME=app,
        REGISTRY_HOSTNAME="localhost",
        REGISTRY_IP_ADDRESS="127.0.0.1",
        REGISTRY_HEARTBEAT_INTERVAL="0.2",
        REGISTRY_LEASE_DURATION="2",
        REGISTRY_TIMEOUT="2",
        **extra,
    )


def start(script: str, env: Dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [PYTHON, str(EXAMPLES / script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_register_example(eureka_url, registry: Registry, sig):
    app = unique_app("example")
    process = start("register.py", example_env(eureka_url, app, REGISTRY_PORT="8123"))
    line = read_line(process)
    instance_id = f"localhost:{app}:8123"
    assert line == f"registered {app.upper()}/{instance_id}"
    assert registry.instance(app, instance_id)["status"] == "UP"
    time.sleep(0.5)  # a few heartbeats
    process.send_signal(sig)
    result = finish(process)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # the one line was all
    assert result.stderr == "register: signal received, deregistering\n"
    assert registry.instance(app, instance_id) is None


def test_register_example_bad_configuration(eureka_url):
    process = start("register.py", example_env(eureka_url, "x", REGISTRY_PORT="99999"))
    result = finish(process)
    assert result.returncode != 0
    assert "REGISTRY_PORT" in result.stderr and "99999" in result.stderr
    assert result.stdout == ""


def test_register_example_reports_why_without_flooding():
    process = start(
        "register.py", example_env("http://127.0.0.1:1/eureka/", unique_app("down"))
    )
    time.sleep(3)  # many retries happen meanwhile
    process.send_signal(signal.SIGTERM)
    result = finish(process)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if "deregistering" not in line]
    assert 1 <= len(lines) <= 2, lines
    assert "unreachable" in lines[-1]


def test_register_example_signals_and_exit_status(eureka_url):
    """tests/example_signals.py, shared with the C and Go suites: a signal is acted on within
    100 ms (bound 300 ms) before and after registration, and a deregistration that fails makes
    the exit status 1."""
    result = subprocess.run(
        [PYTHON, str(REPO / "tests" / "example_signals.py"), "--registry", eureka_url, "--",
         PYTHON, str(EXAMPLES / "register.py")],
        env=python_env(), capture_output=True, text=True, timeout=180,
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout


def test_register_example_wrong_password(eureka_auth_url, auth_registry: Registry):
    app = unique_app("badpw")
    wrong = "wrong-" + PASSWORD + "-zz9"
    env = example_env(eureka_auth_url, app, REGISTRY_USER="registrar", REGISTRY_PASSWORD=wrong)
    process = start("register.py", env)
    time.sleep(2)
    process.send_signal(signal.SIGTERM)
    result = finish(process)
    assert result.returncode == 0
    assert result.stdout == ""
    assert "401" in result.stderr and "unauthorized" in result.stderr
    assert wrong not in result.stderr and "zz9" not in result.stderr
    assert auth_registry.instances(app) == []


def http_get(url: str) -> Dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_web_service_example(eureka_url, registry: Registry):
    app = unique_app("web")
    env = example_env(eureka_url, app)
    del env["REGISTRY_HOSTNAME"], env["REGISTRY_IP_ADDRESS"]
    process = start("web_service.py", env)
    try:
        serving = read_line(process)
        assert serving.startswith("serving on http://127.0.0.1:")
        port = int(serving.split("http://127.0.0.1:")[1].split("/")[0])
        instance_id = f"127.0.0.1:{app}:{port}"
        assert read_line(process) == f"registered {app.upper()}/{instance_id}"
        instance = registry.instance(app, instance_id)
        assert instance["status"] == "UP"
        assert int(instance["port"]["$"]) == port  # its real port
        assert instance["healthCheckUrl"] == f"http://127.0.0.1:{port}/health"
        assert http_get(instance["healthCheckUrl"]) == {"status": "UP"}
        status_page = http_get(instance["statusPageUrl"])
        assert status_page["state"] == "REGISTERED" and status_page["status"] == "UP"
    finally:
        process.send_signal(signal.SIGTERM)
        result = finish(process)
    assert result.returncode == 0, result.stderr
    assert registry.instance(app, instance_id) is None


def gunicorn_command() -> List[str]:
    executable = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.skip("gunicorn is not installed (pip install gunicorn, or the 'test' extra)")
    command = [executable]
    help_text = subprocess.run([executable, "--help"], capture_output=True, text=True).stdout
    if "--no-control-socket" in help_text:
        command.append("--no-control-socket")
    return command


def test_gunicorn_preload_registers_once_in_the_master(eureka_url, registry: Registry):
    app = unique_app("gunicorn")
    command = gunicorn_command() + [
        "-c", str(EXAMPLES / "gunicorn.conf.py"),
        "--preload", "-w", "2", "-b", "127.0.0.1:0",
        "--chdir", str(EXAMPLES), "--graceful-timeout", "5",
        "wsgi_app:app",
    ]
    env = example_env(eureka_url, app)
    del env["REGISTRY_HOSTNAME"], env["REGISTRY_IP_ADDRESS"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    log: List[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum("leaves the registration" in l for l in log) < 2:
            log.append(read_line(process))
        assert sum("leaves the registration to the master" in l for l in log) == 2, log
        registry.wait_for(lambda: registry.instances(app), timeout=10, what="the registration")
        instances = registry.instances(app)
        assert len(instances) == 1, instances  # one server, one instance, however many workers
        instance = instances[0]
        port = int(instance["port"]["$"])
        assert instance["status"] == "UP"
        workers = {http_get(instance["healthCheckUrl"])["worker"] for _ in range(20)}
        assert workers and process.pid not in workers  # served by the workers
        # (apps/{APP} is served from the server's cache, which renewals do not refresh;
        # apps/{APP}/{ID} is not cached)
        instance_id = instance["instanceId"]
        beats = int(registry.instance(app, instance_id)["leaseInfo"]["lastRenewalTimestamp"])
        registry.wait_for(
            lambda: int(registry.instance(app, instance_id)["leaseInfo"]["lastRenewalTimestamp"])
            > beats,
            timeout=5,
            what="heartbeats from the master",
        )
        assert f"127.0.0.1:{app}:{port}" == instance_id
    finally:
        process.send_signal(signal.SIGTERM)
        result = finish(process, timeout=30)
    output = "\n".join(log) + result.stdout
    assert result.returncode == 0, output
    assert "registrar: deregistered" in output, output
    assert registry.instance(app, instance_id) is None
