"""Health-driven status and drain before removal (issue 12) against the real Eureka server:
the registry (GET apps/APP/ID, never cached) shows DOWN after the threshold of failed checks
and UP after as many passes; a drain is seen by a discovery cache in another process."""

from __future__ import annotations

import json
import logging
import subprocess
import textwrap
import threading
import time

import registrar

from conftest import PYTHON, python_env

FAST_HEALTH = dict(health_interval=0.2, health_threshold=2)


def test_a_flapping_python_check_turns_the_registry_down_and_up_again(make_client, registry):
    healthy = [True]
    calls = [0]

    def check() -> bool:
        calls[0] += 1
        return healthy[0]

    client = make_client(**FAST_HEALTH)
    client.set_health_check(check)
    client.set_status(registrar.Status.UP)
    client.start()
    client.wait_registered(timeout=5)
    app, iid = client.app_name, client.instance_id
    registry.wait_status(app, iid, "UP")

    healthy[0] = False
    registry.wait_status(app, iid, "DOWN")
    snap = client.snapshot()
    assert snap["health"]["healthy"] is False, snap
    assert snap["host_status"] == "UP", snap
    # A falsy result is the failure's reason.
    assert snap["health"]["last_failure"] == "the health check failed: it returned False", snap
    assert client.info().status == registrar.Status.DOWN

    healthy[0] = True
    registry.wait_status(app, iid, "UP")
    assert client.snapshot()["health"]["healthy"] is True

    client.close()
    registry.wait_gone(app, iid, timeout=1)
    seen = calls[0]
    time.sleep(0.6)
    assert calls[0] == seen, "no check after close"


def test_a_raising_check_counts_as_failure_and_its_exception_is_the_reason(
    make_client, registry, caplog
):
    failing = [False]

    def check() -> bool:
        if failing[0]:
            raise RuntimeError("database unreachable")
        return True

    events = []
    client = make_client(**FAST_HEALTH)
    client.on_event(events.append)
    client.set_health_check(check)
    client.set_status("UP")
    client.start()
    client.wait_registered(timeout=5)
    app, iid = client.app_name, client.instance_id
    registry.wait_status(app, iid, "UP")
    caplog.set_level(logging.DEBUG, logger="registrar")
    failing[0] = True
    registry.wait_status(app, iid, "DOWN")
    # The exception is the reason: in the snapshot, the event, and the library's log.
    expected = "the health check failed: RuntimeError: database unreachable"
    assert client.snapshot()["health"]["last_failure"] == expected
    down = [
        e for e in events
        if e.kind is registrar.EventKind.STATUS_CHANGED and e.status is registrar.Status.DOWN
    ]
    assert down and down[0].cause is registrar.EventCause.HEALTH_CHECK, events
    assert down[0].reason == f"health check failing: {expected}", down
    assert any(expected in r.getMessage() for r in caplog.records), caplog.text
    # ... and the DEBUG log of the exception carries its traceback.
    raised = [r for r in caplog.records if r.getMessage().startswith("health check raised")]
    assert raised and raised[0].exc_info is not None, caplog.text
    failing[0] = False
    registry.wait_status(app, iid, "UP")
    # Removing the check gives the host's status back at once, whatever the verdict.
    failing[0] = True
    registry.wait_status(app, iid, "DOWN")
    client.set_health_check(None)
    registry.wait_status(app, iid, "UP")


def test_a_hanging_check_counts_as_failure_and_heartbeats_go_on(make_client, registry):
    release = threading.Event()
    hanging = threading.Event()
    running = [0]
    most = [0]

    def check() -> bool:
        running[0] += 1
        most[0] = max(most[0], running[0])
        try:
            if hanging.is_set():
                release.wait(10)  # a check stuck on a dead dependency
            return True
        finally:
            running[0] -= 1

    client = make_client(timeout=0.5, **FAST_HEALTH)
    client.set_health_check(check)
    client.set_status("UP")
    client.start()
    client.wait_registered(timeout=5)
    app, iid = client.app_name, client.instance_id
    registry.wait_status(app, iid, "UP")
    hanging.set()
    registry.wait_status(app, iid, "DOWN")
    renewed = int(registry.instance(app, iid)["leaseInfo"]["lastRenewalTimestamp"])
    registry.wait_for(
        lambda: int(registry.instance(app, iid)["leaseInfo"]["lastRenewalTimestamp"]) > renewed,
        timeout=5,
        what="heartbeats while the check hangs",
    )
    assert most[0] == 1, "never two calls at once"
    hanging.clear()
    release.set()
    registry.wait_status(app, iid, "UP")


def test_registry_health_url_and_bad_checks(make_client):
    client = make_client()
    try:
        client.set_health_check(42)  # type: ignore[arg-type]
    except TypeError as e:
        assert "callable" in str(e)
    else:
        raise AssertionError("a non-callable check must be refused")
    assert client.snapshot()["health"] is None
    try:
        make_client(health_url="localhost:1")
    except registrar.InvalidConfigError as e:
        assert "REGISTRY_HEALTH_URL" in str(e)
    else:
        raise AssertionError("a health URL without http:// must be refused")


WATCHER = textwrap.dedent(
    """
    import json, sys, time
    import registrar
    url, app, iid = sys.argv[1:4]
    seen = []
    with registrar.Discovery(from_env=False, url=url, fetch_interval=0.2) as d:
        d.wait_ready(timeout=10)
        deadline = time.time() + 20
        while time.time() < deadline:
            d.refresh(timeout=5)
            found = d.instance(iid)
            state = found.status.name if found is not None else "GONE"
            print(json.dumps([time.time(), state]), flush=True)
            if state == "GONE" and "DOWN" in seen:
                break
            seen.append(state)
            time.sleep(0.1)
    """
)


def test_a_drain_is_seen_by_a_discovery_cache_in_another_process(make_client, registry, eureka_url):
    client = make_client(drain_seconds=2, heartbeat_interval=0.5, lease_duration=3)
    client.set_status("UP")
    client.start()
    client.wait_registered(timeout=5)
    app, iid = client.app_name, client.instance_id
    registry.wait_status(app, iid, "UP")
    watcher = subprocess.Popen(
        [PYTHON, "-c", WATCHER, eureka_url, app, iid],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=python_env(),
    )
    try:
        # The other process sees the instance UP before the stop begins.
        assert watcher.stdout is not None
        for line in watcher.stdout:
            if json.loads(line)[1] == "UP":
                break
        else:
            raise AssertionError(f"the watcher never saw UP: {watcher.stderr.read()}")
        started = time.time()
        client.stop()
        stopped = time.time()
        out, err = watcher.communicate(timeout=30)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0, err
    states = [json.loads(line) for line in out.splitlines()]
    runs = [s for i, (_, s) in enumerate(states) if i == 0 or states[i - 1][1] != s]
    down = [t for t, s in states if s == "DOWN"]
    gone = [t for t, s in states if s == "GONE"]
    assert down, f"the other process never saw DOWN: {runs}"
    assert gone, f"the other process never saw the instance gone: {runs}"
    assert min(down) < stopped, "DOWN was visible while stop was still draining"
    assert min(gone) > min(down), "DOWN first, then gone"
    assert runs in (["DOWN", "GONE"], ["UP", "DOWN", "GONE"]), runs
    assert stopped - started >= 2.0, f"stop covers the drain: {stopped - started:.2f} s"
    assert stopped - started < 2.0 + 5, "and is bounded by drain + REGISTRY_TIMEOUT"
    registry.wait_gone(app, iid, timeout=1)


def test_a_second_stop_with_a_shorter_timeout_cuts_the_drain_short(make_client, registry):
    """A stop from another thread (a second signal) during a 30 s drain, allowing 1 s: the
    drain ends so that the DELETE fits, and both stops succeed. Before, the second stop gave
    up at its deadline, both raised, and the instance stayed listed as DOWN."""
    client = make_client(drain_seconds=30)
    client.set_status("UP")
    client.start()
    client.wait_registered(timeout=5)
    app, iid = client.app_name, client.instance_id
    registry.wait_status(app, iid, "UP")
    outcome = []
    first = threading.Thread(target=lambda: outcome.append(_outcome(client.stop)))
    first.start()
    registry.wait_status(app, iid, "DOWN")
    client.stop(timeout=1)
    registry.wait_gone(app, iid, timeout=1)
    first.join(timeout=10)
    assert outcome == [None], outcome


def _outcome(call):
    try:
        call()
    except registrar.RegistrarError as e:
        return e
    return None
