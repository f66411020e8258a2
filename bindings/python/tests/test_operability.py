"""Operability: metrics (Prometheus text), JSON snapshots and logging to the "registrar" logger,
against the real Eureka server."""

from __future__ import annotations

import re
import subprocess
from typing import Dict, List, Tuple

import pytest

import registrar

from conftest import FAST, PASSWORD, PYTHON, Registry, python_env, unique_app

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def parse_metrics(text: str) -> List[Tuple[str, Dict[str, str], float]]:
    """A strict reader of the text exposition format: every sample needs a TYPE line before
    it, counters end in _total, label values use only the three escapes; no duplicate series."""
    assert text.endswith("\n")
    typed: Dict[str, str] = {}
    samples = []
    seen = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge"), line
            assert name not in typed, f"repeated TYPE: {line}"
            typed[name] = kind
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, body, value = match.groups()
        assert name in typed, f"sample without TYPE: {line}"
        if typed[name] == "counter":
            assert name.endswith("_total"), line
        labels: Dict[str, str] = {}
        if body:
            consumed = 0
            for m in _LABEL.finditer(body):
                assert m.start() == consumed, f"bad labels in {line!r}"
                consumed = m.end()
                raw = m.group(2)
                labels[m.group(1)] = re.sub(
                    r"\\(.)", lambda e: {"n": "\n"}.get(e.group(1), e.group(1)), raw
                )
            assert consumed == len(body), f"bad labels in {line!r}"
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen, f"duplicate series {line}"
        seen.add(key)
        samples.append((name, labels, float(value)))
    return samples


def value(samples, name: str, **labels: str) -> float:
    found = [v for n, l, v in samples if n == name and all(l.get(k) == w for k, w in labels.items())]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return found[0]


def test_metrics_text_is_valid_and_heartbeats_count(make_client, registry):
    client = make_client()
    client.up()
    client.start()
    client.wait_registered(timeout=10)
    registry.wait_for(
        lambda: client.info().heartbeats >= 2, timeout=10, what="two heartbeats"
    )
    text = registrar.metrics()
    assert "# HELP registrar_heartbeats_total " in text
    assert "# TYPE registrar_heartbeats_total counter" in text
    samples = parse_metrics(text)
    who = dict(app=client.app_name, instance=client.instance_id)
    assert value(samples, "registrar_heartbeats_total", result="success", **who) >= 2
    assert value(samples, "registrar_heartbeats_total", result="error", **who) == 0
    assert value(samples, "registrar_registrations_total", result="success", **who) >= 1
    assert 0 <= value(samples, "registrar_last_success_age_seconds", **who) < 10
    assert value(samples, "registrar_clients") >= 1
    assert value(samples, "registrar_info", version=registrar.library_version()) == 1

    snapshot = client.snapshot()
    assert snapshot["phase"] == "registered"
    assert snapshot["status"] == "UP"
    assert snapshot["instance_id"] == client.instance_id
    assert snapshot["server"] == registry.url
    assert snapshot["counters"]["heartbeats"]["success"] >= 2
    assert snapshot["last_error"] is None
    assert snapshot["last_success_unix_ms"] >= snapshot["created_unix_ms"] > 0

    # A freed client leaves the metrics.
    client.close()
    samples = parse_metrics(registrar.metrics())
    assert not [s for s in samples if s[1].get("instance") == client.instance_id]


def test_discovery_fetches_are_counted(eureka_url, make_client):
    registered = make_client()
    registered.up()
    registered.start()
    registered.wait_registered(timeout=10)
    with registrar.Discovery(from_env=False, url=eureka_url, fetch_interval=60) as discovery:
        discovery.wait_ready(timeout=10)
        discovery.refresh(timeout=10)
        snapshot = discovery.snapshot()
        cache = str(snapshot["cache"])
        samples = parse_metrics(registrar.metrics())
        assert value(samples, "registrar_discovery_fetches_total", cache=cache, kind="full", result="success") >= 1
        assert value(samples, "registrar_discovery_fetches_total", cache=cache, kind="delta", result="success") >= 1
        assert value(samples, "registrar_discovery_fetches_total", cache=cache, kind="full", result="error") == 0
        assert value(samples, "registrar_discovery_instances", cache=cache) == snapshot["instances"] >= 1
        assert value(samples, "registrar_discovery_caches") >= 1
        assert snapshot["phase"] == "running"
        assert snapshot["server"] == Registry(eureka_url).url
        assert snapshot["last_error"] is None


def test_snapshots_never_show_credentials(eureka_auth_url):
    url = eureka_auth_url.replace("://", f"://registrar:{PASSWORD}@", 1)
    with registrar.Client(from_env=False, url=url, app_name=unique_app("ops-auth"), **FAST) as client:
        client.wait_registered(timeout=10)
        assert PASSWORD not in repr(client.snapshot())
    # a wrong password: the error is in the snapshot, the password is not
    wrong = eureka_auth_url.replace("://", "://registrar:not-the-pw-xyz@", 1)
    client = registrar.Client(from_env=False, url=wrong, app_name=unique_app("ops-auth"), **FAST)
    try:
        client.start()
        Registry(eureka_auth_url).wait_for(
            lambda: client.snapshot()["last_error"] is not None, timeout=10, what="the 401"
        )
        snapshot = client.snapshot()
        assert snapshot["last_error"]["code"] == "REGISTRAR_ERR_UNAUTHORIZED"
        assert "not-the-pw-xyz" not in repr(snapshot)
        assert "not-the-pw-xyz" not in registrar.metrics()
    finally:
        client.close()


_UNREACHABLE = """
import logging, sys, time
{setup}
import registrar
c = registrar.Client(from_env=False, url="http://127.0.0.1:1/eureka/", app_name="quiet",
                     heartbeat_interval=0.2, timeout=1)
c.start()
deadline = time.time() + 10
while c.info().failed_requests < 1 and time.time() < deadline:
    time.sleep(0.05)
assert c.info().failed_requests >= 1
c.close(timeout=1)
"""


@pytest.mark.parametrize("configured", [False, True])
def test_silent_unless_logging_is_configured(configured):
    setup = "logging.basicConfig(level=logging.INFO, format='%(name)s %(levelname)s %(message)s')" if configured else ""
    result = subprocess.run(
        [PYTHON, "-c", _UNREACHABLE.format(setup=setup)],
        capture_output=True, text=True, env=python_env(), timeout=60,
    )
    assert result.returncode == 0, result.stderr
    if configured:
        assert "registrar WARNING registration failed: registry unreachable" in result.stderr
    else:
        # Without the package's NullHandler, logging's last resort would print the warning.
        assert result.stderr == ""


def test_set_logger_none_silences_and_a_function_receives(make_client):
    received = []
    client = make_client(url="http://127.0.0.1:1/eureka/", timeout=1)
    client.set_logger(lambda level, message: received.append((level, message)), registrar.LogLevel.WARN)
    client.start()
    Registry("http://127.0.0.1:1/eureka/").wait_for(lambda: received, timeout=10, what="a message")
    assert received[0][0] == registrar.LogLevel.WARN
    client.set_logger(None)
    client.close(timeout=1)
