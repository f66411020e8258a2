"""Against the real Eureka server: registration, heartbeats, status, metadata, deregistration,
credentials, and the GIL."""

from __future__ import annotations

import threading
import time

import pytest

import registrar

from conftest import FAST, PASSWORD, Registry, unique_app


def test_registration_is_visible_up(make_client, registry: Registry):
    client = make_client(metadata={"zone": "a", "list": "x,y"})
    client.up()
    client.start()
    client.wait_registered(timeout=10)
    instance = registry.instance(client.app_name, client.instance_id)
    assert instance is not None
    assert instance["status"] == "UP"
    assert instance["app"] == client.app_name
    assert instance["metadata"]["zone"] == "a"
    assert instance["metadata"]["list"] == "x,y"
    info = client.info()
    assert info.state == registrar.State.REGISTERED
    assert info.status == registrar.Status.UP
    assert info.last_error == registrar.ErrorCode.OK and client.last_error is None
    assert info.registrations >= 1


def test_heartbeats_advance(make_client, registry: Registry):
    client = make_client().start()
    client.wait_registered(timeout=10)
    first = int(registry.instance(client.app_name, client.instance_id)["leaseInfo"]["lastRenewalTimestamp"])
    beats = client.info().heartbeats
    registry.wait_for(
        lambda: int(registry.instance(client.app_name, client.instance_id)["leaseInfo"]["lastRenewalTimestamp"])
        > first,
        timeout=5,
        what="lastRenewalTimestamp to advance",
    )
    registry.wait_for(lambda: client.info().heartbeats >= beats + 3, timeout=5, what="3 heartbeats")


def test_status_and_metadata_changes_reach_the_registry(make_client, registry: Registry):
    client = make_client().start()
    client.up()
    client.wait_registered(timeout=10)
    registry.wait_status(client.app_name, client.instance_id, "UP")
    client.down()
    client.set_metadata("version", "2")
    client.wait_registered(timeout=10)  # the registry has the latest status and metadata
    instance = registry.instance(client.app_name, client.instance_id)
    assert instance["status"] == "DOWN"
    assert instance["metadata"]["version"] == "2"
    client.set_metadata("version", None)
    client.up()
    client.wait_registered(timeout=10)
    instance = registry.instance(client.app_name, client.instance_id)
    assert instance["status"] == "UP"
    assert "version" not in instance["metadata"]


def test_out_of_service_reaches_the_registry(make_client, registry: Registry):
    # A real Eureka server keeps an existing UP or OUT_OF_SERVICE status when an instance
    # re-registers with the other one (its LeaseExists rule); the library goes through DOWN.
    client = make_client().start()
    client.up()
    client.wait_registered(timeout=10)
    registry.wait_status(client.app_name, client.instance_id, "UP")
    client.out_of_service()
    client.wait_registered(timeout=10)
    assert registry.instance(client.app_name, client.instance_id)["status"] == "OUT_OF_SERVICE"
    client.up()
    client.wait_registered(timeout=10)
    assert registry.instance(client.app_name, client.instance_id)["status"] == "UP"


def test_context_manager_deregisters(eureka_url, registry: Registry):
    with registrar.Client(from_env=False, url=eureka_url, app_name=unique_app(), **FAST) as client:
        client.up()
        client.wait_registered(timeout=10)
        assert registry.instance(client.app_name, client.instance_id)["status"] == "UP"
    assert client.closed
    assert registry.instance(client.app_name, client.instance_id) is None  # gone at once


def test_context_manager_deregisters_after_an_exception(eureka_url, registry: Registry):
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with registrar.Client(from_env=False, url=eureka_url, app_name=unique_app(), **FAST) as client:
            client.up()
            client.wait_registered(timeout=10)
            raise Boom()
    assert client.closed
    assert registry.instance(client.app_name, client.instance_id) is None


def test_stop_is_idempotent(make_client, registry: Registry):
    client = make_client().start()
    client.wait_registered(timeout=10)
    client.stop()
    assert registry.instance(client.app_name, client.instance_id) is None
    client.stop()
    assert client.state == registrar.State.STOPPED
    with pytest.raises(registrar.ShutDownError):
        client.wait_registered(timeout=1)
    with pytest.raises(registrar.ShutDownError):
        client.start()
    heartbeats = client.info().heartbeats
    time.sleep(0.5)
    assert client.info().heartbeats == heartbeats  # nothing is sent after stop
    assert registry.instance(client.app_name, client.instance_id) is None
    client.close()
    client.close()


def test_basic_auth_right_password(eureka_auth_url, auth_registry: Registry):
    with registrar.Client(
        from_env=False,
        url=eureka_auth_url,
        user="registrar",
        password=PASSWORD,
        app_name=unique_app(),
        **FAST,
    ) as client:
        client.up()
        client.wait_registered(timeout=10)
        assert auth_registry.instance(client.app_name, client.instance_id)["status"] == "UP"
    assert auth_registry.instance(client.app_name, client.instance_id) is None


def test_wrong_password_is_a_clear_error(eureka_auth_url, auth_registry: Registry):
    wrong = "not-the-" + PASSWORD + "-xyzzy"
    client = registrar.Client(
        from_env=False,
        url=eureka_auth_url,
        user="registrar",
        password=wrong,
        app_name=unique_app(),
        **FAST,
    )
    client.start()
    with pytest.raises(registrar.TimeoutError) as raised:
        client.wait_registered(timeout=2)
    cause = raised.value.__cause__
    assert isinstance(cause, registrar.UnauthorizedError)
    assert "401" in str(cause) or "403" in str(cause)
    assert client.info().last_error == registrar.ErrorCode.UNAUTHORIZED
    for text in (str(raised.value), repr(raised.value), str(cause), repr(cause), repr(client)):
        assert wrong not in text and "xyzzy" not in text, text
    client.close()
    assert auth_registry.instances(client.app_name) == []


def test_blocking_calls_release_the_gil(eureka_url):
    # wait_registered on an unregistered client blocks in C; Python threads keep running.
    client = registrar.Client(from_env=False, url="http://127.0.0.1:1/eureka/", app_name=unique_app(), **FAST)
    client.start()
    counter = [0]
    done = threading.Event()

    def spin() -> None:
        while not done.is_set():
            counter[0] += 1

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        started = time.monotonic()
        with pytest.raises(registrar.TimeoutError):
            client.wait_registered(timeout=1.0)
        assert time.monotonic() - started >= 0.9
    finally:
        done.set()
        spinner.join()
        client.close(timeout=1)
    assert counter[0] > 10_000  # the spinner ran while we waited


def test_heartbeats_do_not_need_the_gil(make_client):
    client = make_client().start()
    client.wait_registered(timeout=10)
    before = client.info().heartbeats
    # Hold the GIL in a pure-Python busy loop (no other Python thread to switch to) for 1.5 s.
    deadline = time.monotonic() + 1.5
    n = 0
    while time.monotonic() < deadline:
        n += 1
    after = client.info().heartbeats
    assert after - before >= 3, (before, after)  # ~7 expected at one every 0.2 s
