"""Discovery against the real Eureka server: queries, UP filter, choosing, change
notification, fork, and the discover example."""

from __future__ import annotations

import collections
import ctypes
import os
import subprocess
import threading
import time
from typing import List

import pytest

import registrar
from registrar import _native

from conftest import FAST, PYTHON, REPO, Registry, python_env, unique_app
from test_fork import in_child


@pytest.fixture
def discovery(eureka_url):
    with registrar.Discovery(from_env=False, url=eureka_url, timeout=2) as d:
        d.wait_ready(timeout=15)
        yield d


@pytest.fixture
def fleet(make_client):
    """Two apps: ORDERS with two UP instances and one DOWN, BILLING with one UP instance that
    also serves the VIP of ORDERS' secure VIP list."""
    orders = unique_app("orders")
    billing = unique_app("billing")
    clients = []
    for i, status in enumerate(["UP", "UP", "DOWN"]):
        client = make_client(
            app_name=orders,
            port=9100 + i,
            instance_id=f"{orders}-{i}",
            vip_address=f"{orders}-vip",
            secure_vip_address=f"{orders}-svip,shared-{orders}",
            secure_port=9443,
            metadata={"index": str(i), "zone": "a,b"},
        )
        client.set_status(status)
        clients.append(client.start())
    billing_client = make_client(
        app_name=billing, port=9200, instance_id=f"{billing}-0", secure_vip_address=f"shared-{orders}"
    )
    billing_client.up()
    clients.append(billing_client.start())
    for client in clients:
        client.wait_registered(timeout=10)
    return orders, billing, clients


def test_queries(discovery, fleet):
    orders, billing, _ = fleet
    discovery.refresh(timeout=10)
    up = discovery.instances(orders)
    assert [i.instance_id for i in up] == [f"{orders}-0", f"{orders}-1"]
    assert discovery.instances(orders.lower()) == up == discovery.instances(orders.upper())
    everyone = discovery.instances(orders, all_statuses=True)
    assert [i.status for i in everyone] == [registrar.Status.UP, registrar.Status.UP, registrar.Status.DOWN]
    assert [i.instance_id for i in discovery.instances(vip=f"{orders}-vip")] == [f"{orders}-0", f"{orders}-1"]
    shared = discovery.instances(secure_vip=f"shared-{orders}")
    assert {i.app for i in shared} == {orders.upper(), billing.upper()}
    assert discovery.instances("no-such-app") == []

    first = discovery.instance(f"{orders}-0")
    assert first is not None
    assert first.app == orders.upper() and first.host_name == "localhost" and first.ip_addr == "127.0.0.1"
    assert (first.port, first.port_enabled, first.secure_port, first.secure_port_enabled) == (9100, True, 9443, True)
    assert first.metadata == {"index": "0", "zone": "a,b"}
    assert first.health_check_url == "http://localhost:9100/healthcheck"
    assert first.overridden_status is None
    assert first.url() == "http://localhost:9100"
    assert first.url(secure=True, use_ip=True) == "https://127.0.0.1:9443"
    assert discovery.instance("no-such-id") is None
    assert any(i.instance_id == f"{billing}-0" for i in discovery.all())

    info = discovery.info()
    assert info.ready and info.state == registrar.DiscoveryState.RUNNING
    assert info.version >= 1 and info.instances >= 4 and info.full_fetches >= 1
    assert info.last_error == registrar.ErrorCode.OK and discovery.last_error is None
    assert info.age is not None and info.age < 10


def test_url_rule_matches_the_library(discovery, fleet):
    orders, _, _ = fleet
    discovery.refresh(timeout=10)
    out = _native.list_p()
    with discovery._use() as h:
        assert lib_call(h, orders, out) == 0
    try:
        python_side = discovery.instances(orders)
        for index, instance in enumerate(python_side):
            for flags, kwargs in [(0, {}), (1, {"secure": True}), (2, {"use_ip": True}), (3, {"secure": True, "use_ip": True})]:
                buf = ctypes.create_string_buffer(256)
                size = ctypes.c_size_t()
                assert _native.lib.registrar_instance_list_url(out.value, index, flags, buf, 256, ctypes.byref(size)) == 0
                assert instance.url(**kwargs) == buf.value.decode()
    finally:
        _native.lib.registrar_instance_list_free(out.value)


def lib_call(handle, app, out):
    return _native.lib.registrar_discovery_instances(handle, 0, app.encode(), 0, ctypes.byref(out))


def test_choose_round_robin_and_random(discovery, fleet):
    orders, _, _ = fleet
    discovery.refresh(timeout=10)
    picks = collections.Counter(discovery.choose(orders).instance_id for _ in range(20))
    assert picks == {f"{orders}-0": 10, f"{orders}-1": 10}  # evenly, DOWN never chosen
    urls = {discovery.choose_url(orders) for _ in range(4)}
    assert urls == {"http://localhost:9100", "http://localhost:9101"}
    assert discovery.choose_url(vip=f"{orders}-vip", secure=True, random=True) == "https://localhost:9443"
    with pytest.raises(registrar.NotFoundError, match="no-such-app"):
        discovery.choose("no-such-app")
    with pytest.raises(TypeError):
        discovery.choose(orders, vip="x")


def test_changes_are_seen_and_notified(discovery, make_client):
    app = unique_app("changing")
    seen: List[int] = []
    arrived = threading.Event()

    def on_change(version: int) -> None:
        seen.append(version)
        if discovery.instances(app):
            arrived.set()

    discovery.on_change(on_change)
    version = discovery.version
    client = make_client(app_name=app).start()
    client.up()
    client.wait_registered(timeout=10)
    discovery.refresh(timeout=10)  # (the default fetch interval is 30 s)
    assert discovery.wait_change(version, timeout=10) > version
    assert arrived.wait(timeout=10)
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    client.stop()
    discovery.refresh(timeout=10)
    assert discovery.instances(app) == []


def test_fetch_interval_is_a_setting(eureka_url, make_client):
    with registrar.Discovery(from_env=False, url=eureka_url, fetch_interval=0.2) as d:
        d.wait_ready(timeout=15)
        version = d.version
        client = make_client().start()
        client.wait_registered(timeout=10)
        assert d.wait_change(version, timeout=5) > version  # a scheduled refresh saw it


def test_keeps_the_last_registry_when_the_server_is_unreachable():
    d = registrar.Discovery(from_env=False, url="http://127.0.0.1:1/eureka/", timeout=1)
    with pytest.raises(registrar.TimeoutError, match="not been started|not started"):
        d.wait_ready(timeout=0.2)
    d.start()
    with pytest.raises(registrar.TimeoutError) as raised:
        d.wait_ready(timeout=1)
    assert isinstance(raised.value.__cause__, registrar.TransportError)
    assert d.instances("anything") == []
    with pytest.raises(registrar.NotFoundError, match="not been fetched"):
        d.choose("anything")
    assert not d.info().ready and d.info().age is None
    d.close()
    d.close()
    with pytest.raises(registrar.ShutDownError):
        d.instances("anything")


def test_discovery_in_a_forked_child(discovery):
    def child():
        try:
            discovery.instances("x")
            return {"instances": "no error"}
        except registrar.ForkedError:
            discovery.close()
            return {"instances": "ForkedError"}

    assert in_child(child, timeout=10) == {"instances": "ForkedError"}
    assert discovery.info().ready  # the parent's cache is untouched


def test_importing_registrar_does_not_import_discovery():
    code = "import sys, registrar; print('registrar.discovery' in sys.modules, 'dataclasses' in sys.modules)"
    result = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=python_env())
    assert result.stdout.split() == ["False", "False"], result.stderr


def test_discover_example(eureka_url, fleet):
    orders, _, _ = fleet
    env = python_env(REGISTRY_URL=eureka_url)
    result = subprocess.run(
        [PYTHON, str(REPO / "examples" / "python" / "discover.py"), orders],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{orders}-0 localhost:9100 UP",
        f"{orders}-1 localhost:9101 UP",
    ]
    result = subprocess.run(
        [PYTHON, str(REPO / "examples" / "python" / "discover.py")],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 2 and "usage" in result.stderr
    result = subprocess.run(
        [PYTHON, str(REPO / "examples" / "python" / "discover.py"), "x"],
        capture_output=True, text=True, env=python_env(REGISTRY_URL="http://127.0.0.1:1/eureka/", REGISTRY_TIMEOUT="0.5"),
        timeout=60,
    )
    assert result.returncode == 1 and "unreachable" in result.stderr


def test_discovery_logger(eureka_url):
    """The cache's messages reach a Python function (the first fetch at INFO) and a
    logging.Logger; set_logger(None) and close remove it; a bad level is refused."""
    import logging

    got: List[tuple] = []
    d = registrar.Discovery(from_env=False, url=eureka_url, timeout=2)
    d.set_logger(lambda level, message: got.append((level, message)), registrar.LogLevel.DEBUG)
    with d:
        d.wait_ready(timeout=15)
        deadline = time.monotonic() + 10
        while not any(level == registrar.LogLevel.INFO for level, _ in got) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(level == registrar.LogLevel.INFO for level, _ in got), got
        assert all(isinstance(level, registrar.LogLevel) and message for level, message in got)
        with pytest.raises(ValueError):  # as for Client.set_logger: not a LogLevel
            d.set_logger(print, 42)
        d.set_logger(logging.getLogger("registrar-test"), registrar.LogLevel.WARN)
        d.set_logger(None)
    with pytest.raises(registrar.ShutDownError):
        d.set_logger(print)


def test_discovery_logger_reports_an_unreachable_registry():
    warnings: List[str] = []
    d = registrar.Discovery(from_env=False, url="http://127.0.0.1:1/eureka/", timeout=0.5)
    d.set_logger(lambda level, message: warnings.append(message), registrar.LogLevel.WARN)
    with d:
        deadline = time.monotonic() + 10
        while not warnings and time.monotonic() < deadline:
            time.sleep(0.05)
    assert warnings and "127.0.0.1" in warnings[0], warnings
