"""fork(): a client used in a child gives ForkedError and never hangs; the parent's
registration is untouched; a child can make its own client."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any, Callable, Dict

import pytest

import registrar

from conftest import FAST, Registry, unique_app

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")


def in_child(function: Callable[[], Dict[str, Any]], timeout: float = 30.0) -> Dict[str, Any]:
    """Runs function in a fork() child; returns what it returned (a JSON-able dict)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.close(read_end)
            result = function()
            os.write(write_end, json.dumps(result).encode())
            code = 0
        except BaseException as e:
            try:
                os.write(write_end, json.dumps({"child error": repr(e)}).encode())
            except BaseException:
                pass
        finally:
            os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_end)
        raise AssertionError(f"the fork() child hung for {timeout} s")
    with os.fdopen(read_end, "rb") as pipe:
        output = pipe.read()
    result = json.loads(output or b"{}")
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, result
    return result


def test_inherited_client_raises_forked_and_never_hangs(make_client, registry: Registry):
    client = make_client(metadata={"k": "v"}).start()
    client.up()
    client.wait_registered(timeout=10)

    def child() -> Dict[str, Any]:
        outcomes = {}
        calls = {
            "info": client.info,
            "start": client.start,
            "up": client.up,
            "set_metadata": lambda: client.set_metadata("k", "child"),
            "get_metadata": lambda: client.get_metadata("k"),
            "wait_registered": lambda: client.wait_registered(timeout=5),
            "last_error": lambda: client.last_error,
            "stop": client.stop,
        }
        for name, call in calls.items():
            started = time.monotonic()
            try:
                call()
                outcomes[name] = "no error"
            except registrar.ForkedError as e:
                outcomes[name] = "ForkedError" if "fork" in str(e) else f"message: {e}"
            except Exception as e:
                outcomes[name] = repr(e)
            if time.monotonic() - started > 1:
                outcomes[name] += " (slow)"
        started = time.monotonic()
        client.close()  # forgets the handle; must neither raise nor deregister the parent
        outcomes["close"] = "ok" if time.monotonic() - started < 1 else "slow"
        outcomes["identity"] = f"{client.app_name}/{client.instance_id}"  # cached, still there
        return outcomes

    outcomes = in_child(child)
    assert outcomes.pop("close") == "ok"
    assert outcomes.pop("identity") == f"{client.app_name}/{client.instance_id}"
    assert set(outcomes.values()) == {"ForkedError"}, outcomes

    # the parent's registration is untouched and keeps its heartbeats
    beats = client.info().heartbeats
    registry.wait_for(lambda: client.info().heartbeats >= beats + 2, timeout=5, what="heartbeats")
    instance = registry.instance(client.app_name, client.instance_id)
    assert instance["status"] == "UP" and instance["metadata"]["k"] == "v"
    assert client.get_metadata("k") == "v"
    client.close()
    assert registry.instance(client.app_name, client.instance_id) is None


def test_child_makes_its_own_client(eureka_url, registry: Registry, make_client):
    parent = make_client().start()  # the parent has a running client (threads) when forking
    parent.wait_registered(timeout=10)
    app = unique_app("child")

    def child() -> Dict[str, Any]:
        with registrar.Client(from_env=False, url=eureka_url, app_name=app, **FAST) as own:
            own.up()
            own.wait_registered(timeout=10)
            seen = registry.instance(own.app_name, own.instance_id)
            return {"pid": os.getpid(), "status": seen and seen["status"], "id": own.instance_id}

    result = in_child(child)
    assert result["status"] == "UP" and result["pid"] != os.getpid()
    assert registry.instance(app, result["id"]) is None  # the child deregistered on exit
    assert parent.info().state == registrar.State.REGISTERED


def test_child_health_checks_run_on_threads_of_its_own(eureka_url, make_client):
    """The parent's health check threads do not exist in a fork() child: the child's first
    check must start one of its own rather than queue for a parent's thread, and the parent's
    idle runner must leave nothing behind that breaks the child (parking_lot's waiter table
    did: the child crashed in about 1 of 6 runs of a single fork, so this forks 4 times)."""
    parent = make_client(health_interval=0.1, health_threshold=2)
    parent.set_health_check(lambda: True)
    parent.start().wait_registered(timeout=10)
    deadline = time.monotonic() + 10
    while parent.snapshot()["health"]["checks"]["passed"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert parent.snapshot()["health"]["checks"]["passed"] >= 2  # the parent's thread runs
    app = unique_app("child-health")

    def child() -> Dict[str, Any]:
        calls = []
        with registrar.Client(from_env=False, url=eureka_url, app_name=app,
                              health_interval=0.1, health_threshold=2, **FAST) as own:
            own.set_health_check(lambda: calls.append(1) or True)
            own.up()
            own.wait_registered(timeout=10)
            until = time.monotonic() + 10
            while len(calls) < 3 and time.monotonic() < until:
                time.sleep(0.05)
            return {"calls": len(calls), "health": own.snapshot()["health"]}

    for _ in range(4):
        result = in_child(child)
        assert result["calls"] >= 3 and result["health"]["checks"]["failed"] == 0, result
    assert parent.snapshot()["health"]["healthy"] is True


def test_fork_while_another_thread_is_inside_a_call(make_client):
    """A thread of the parent blocked in wait_registered at fork time must not leave the
    child's copy of the client locked."""
    import threading

    client = make_client(url="http://127.0.0.1:1/eureka/").start()
    waiting = threading.Thread(
        target=lambda: pytest.raises(registrar.TimeoutError, client.wait_registered, timeout=2)
    )
    waiting.start()
    time.sleep(0.3)  # the thread is now inside the C call

    def child() -> Dict[str, Any]:
        try:
            client.info()
            return {"info": "no error"}
        except registrar.ForkedError:
            client.close()
            return {"info": "ForkedError", "closed": client.closed}

    assert in_child(child, timeout=10) == {"info": "ForkedError", "closed": True}
    waiting.join(timeout=10)
    client.close(timeout=1)
